"""Turns `sqlite3` exceptions into the catalog's own errors, naming the catalog file."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterator

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


@contextlib.contextmanager
def translated(
    path: str, busy_timeout: float, on_error: Callable[[sqlite3.Error], None] | None = None
) -> Iterator[None]:
    """Turn every `sqlite3` error inside the block into a `CatalogError` naming `path`.

    `on_error(error)` runs first (a transaction notes that SQLite ended it); an error that
    `translate` does not know is reported as an unexpected failure of the file, never raw.
    """
    try:
        yield
    except sqlite3.Error as error:
        if on_error is not None:
            on_error(error)
        result = translate(error, path, busy_timeout)
        if result is None:
            result = CatalogFileError(path, f"SQLite failed unexpectedly ({type(error).__name__}: {error})")
        _log.debug("%s: %s", path, result)
        raise result from error


_log = logging.getLogger("metafuse.catalog")
_BUSY = frozenset({"database is locked", "database table is locked", "database is busy"})
_STORAGE = frozenset({"database or disk is full", "disk i/o error"})
_DAMAGED = frozenset(
    {"database disk image is malformed", "file is not a database", "unable to open database file"}
)
