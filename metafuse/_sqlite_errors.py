"""Turns `sqlite3` exceptions into the catalog's own errors, naming the catalog file."""

from __future__ import annotations

import sqlite3

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


_BUSY = frozenset({"database is locked", "database table is locked", "database is busy"})
_STORAGE = frozenset({"database or disk is full", "disk i/o error"})
_DAMAGED = frozenset(
    {"database disk image is malformed", "file is not a database", "unable to open database file"}
)
