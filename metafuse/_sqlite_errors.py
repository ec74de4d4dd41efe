"""Turns `sqlite3` exceptions into the catalog's own errors, naming the catalog file.

Owns `translate` and the `Translated` block. It imports only `errors`, holds nothing between
calls, and never retries, rolls back or closes anything: what to do about the error is its caller's.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from .errors import BusyError, CatalogError, CatalogFileError, StorageError


def translate(error: sqlite3.Error, path: str, busy_timeout: float) -> CatalogError | None:
    """Return the catalog error that `error` means, or None when it is a bug to re-raise.

    Matches SQLite's own messages exactly, never words inside them: a search for the word
    "locked" fails with "no such column: locked", which is not a lock timeout.
    """
    message = str(error).lower()
    if message in _BUSY:
        return BusyError(path, busy_timeout)
    if message in _STORAGE:
        return StorageError(path, f"the disk refused a write ({error}); nothing was written")
    if message.startswith("attempt to write a readonly database"):
        return CatalogFileError(path, "is read-only; writes are refused")
    if message in _DAMAGED:
        return CatalogFileError(path, f"is damaged or unreadable ({error})")
    if isinstance(error, sqlite3.IntegrityError):
        # Every write checks names and versions first, so a constraint failure means the
        # file's indexes disagree with its tables: a damaged file, not a user error.
        return CatalogFileError(path, f"is damaged: {error} (run integrity_check)")
    return None


class Translated:
    """A block in which every `sqlite3` error becomes a `CatalogError` naming `path`.

    `on_error(error)` runs first (a transaction notes that SQLite ended it); an error that
    `translate` does not know is reported as an unexpected failure of the file, never raw.
    Keeps nothing between blocks, so one instance may guard any number of blocks, in any
    threads at once. A plain class rather than a generator: every read enters one.
    """

    __slots__ = ("busy_timeout", "on_error", "path")

    def __init__(
        self, path: str, busy_timeout: float, on_error: Callable[[sqlite3.Error], None] | None = None
    ) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.on_error = on_error

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        if not isinstance(error, sqlite3.Error):
            return
        if self.on_error is not None:
            self.on_error(error)
        result = translate(error, self.path, self.busy_timeout)
        if result is None:
            result = CatalogFileError(
                self.path, f"SQLite failed unexpectedly ({type(error).__name__}: {error})"
            )
        _log.debug("%s: %s", self.path, result)
        raise result from error


_log = logging.getLogger("metafuse.catalog")
_BUSY = frozenset({"database is locked", "database table is locked", "database is busy"})
_STORAGE = frozenset({"database or disk is full", "disk i/o error"})
_DAMAGED = frozenset(
    {"database disk image is malformed", "file is not a database", "unable to open database file"}
)
