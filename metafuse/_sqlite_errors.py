"""Turns `sqlite3` exceptions into the catalog's own errors, naming the catalog file."""

from __future__ import annotations

import sqlite3

from .errors import BusyError, CatalogError, CatalogFileError, StorageError


def translate(error: sqlite3.Error, path: str, busy_timeout: float) -> CatalogError | None:
    """Return the catalog error that `error` means, or None when it is a bug to re-raise."""
    message = str(error).lower()
    if "locked" in message or "busy" in message:
        return BusyError(path, busy_timeout)
    if "disk is full" in message or "disk i/o error" in message:
        return StorageError(path, f"the disk refused a write ({error}); nothing was written")
    if "readonly" in message or "read-only" in message:
        return CatalogFileError(path, "is read-only; writes are refused")
    if "malformed" in message or "not a database" in message or "unable to open" in message:
        return CatalogFileError(path, f"is damaged or unreadable ({error})")
    return None
