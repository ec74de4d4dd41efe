"""A read-only view of SQLite's WAL-index header, which every commit by any SQLite client changes.

In WAL mode SQLite keeps a shared-memory file `<db>-shm` (the "WAL-index", documented at
https://sqlite.org/walformat.html). Its first 48 bytes are a header that the committing connection
rewrites at the end of every transaction: among other fields, `iChange` ("incremented with each
transaction"), `mxFrame` (the last valid frame) and the WAL salts. So if these 48 bytes are equal at
two moments, no transaction committed in between, whoever the writer was: a MetaFuse catalog, the
`sqlite3` shell, a migration script.

Reading them is a load from a read-only shared mapping: no system call, no lock, no GIL release.
The view keeps one SQLite connection of its own open for as long as it lives, so the `-shm` file
is never truncated and rebuilt under the mapping (SQLite does that only when the first
connection to a database opens it).
"""

from __future__ import annotations

import mmap
import os
import sqlite3
from collections.abc import Callable

HEADER = 48
"""Bytes of the WAL-index header compared (the first of its two copies)."""


class WalIndex:
    """The WAL-index header of one database file, readable at memory speed."""

    def __init__(self, db_path: str, connect: Callable[[], sqlite3.Connection]) -> None:
        self.path = f"{db_path}-shm"
        self._conn = connect()
        try:
            # The first read transaction maps the WAL-index and holds it open with this connection.
            self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if os.fstat(fd).st_size < HEADER:
                    raise OSError(f"{self.path} holds no WAL-index header")
                self._map = mmap.mmap(fd, HEADER, mmap.MAP_SHARED, mmap.PROT_READ)
            finally:
                os.close(fd)
        except BaseException:
            self._conn.close()
            raise

    def header(self) -> bytes:
        """The header as it is now; equal values at two moments mean no commit in between."""
        return self._map[:HEADER]

    def data_version(self) -> int:
        """`PRAGMA data_version` of this view's own connection (changes when anyone commits)."""
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        """Close the connection; the mapping goes when the last reader drops this object."""
        self._conn.close()


def open_walindex(db_path: str, connect: Callable[[], sqlite3.Connection]) -> WalIndex | None:
    """Return the WAL-index view of `db_path`, or None where there is none (not in WAL mode)."""
    try:
        return WalIndex(db_path, connect)
    except (OSError, sqlite3.Error, ValueError):
        return None
