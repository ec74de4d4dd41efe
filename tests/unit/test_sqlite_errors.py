"""Tests for metafuse._sqlite_errors: SQLite's messages map to catalog errors, words inside them do not."""

from __future__ import annotations

import sqlite3

import pytest

from metafuse._sqlite_errors import translate
from metafuse.errors import BusyError, CatalogFileError, StorageError


@pytest.mark.parametrize(
    "message", ["database is locked", "database table is locked", "database is busy", "Database Is Locked"]
)
def test_lock_timeouts_become_busy_errors(message: str) -> None:
    error = translate(sqlite3.OperationalError(message), "/data/c.db", 2.5)
    assert isinstance(error, BusyError)
    assert (error.path, error.timeout) == ("/data/c.db", 2.5)


@pytest.mark.parametrize("message", ["database or disk is full", "disk I/O error"])
def test_disk_failures_become_storage_errors(message: str) -> None:
    error = translate(sqlite3.OperationalError(message), "/data/c.db", 1)
    assert isinstance(error, StorageError)
    assert error.path == "/data/c.db"
    assert message in str(error)


def test_readonly_becomes_a_catalog_file_error() -> None:
    error = translate(sqlite3.OperationalError("attempt to write a readonly database"), "/data/c.db", 1)
    assert type(error) is CatalogFileError
    assert "read-only" in error.problem


@pytest.mark.parametrize(
    "message", ["database disk image is malformed", "file is not a database", "unable to open database file"]
)
def test_damage_becomes_a_catalog_file_error(message: str) -> None:
    error = translate(sqlite3.DatabaseError(message), "/data/c.db", 1)
    assert type(error) is CatalogFileError
    assert "damaged or unreadable" in error.problem


@pytest.mark.parametrize(
    "message",
    [
        "no such column: locked",
        "no such column: busy",
        "no such column: malformed",
        "no such column: readonly",
        'fts5: syntax error near "locked"',
        "no such table: disk",
        "UNIQUE constraint failed: datasets.name",
        'near "SELEC": syntax error',
    ],
)
def test_other_errors_are_left_alone(message: str) -> None:
    assert translate(sqlite3.OperationalError(message), "/data/c.db", 1) is None
