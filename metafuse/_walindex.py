"""A read-only view of SQLite's WAL-index header, which every commit by any SQLite client changes.

In WAL mode SQLite keeps a shared-memory file `<db>-shm` (the "WAL-index", documented at
https://sqlite.org/walformat.html). Its first 48 bytes are a header that the committing connection
rewrites at the end of every transaction: among other fields, `iChange` ("incremented with each
transaction"), `mxFrame` (the last valid frame) and the WAL salts. So if these 48 bytes are equal at
two moments, no transaction committed in between, whoever the writer was: a MetaFuse catalog, the
`sqlite3` shell, a migration script.

Reading them is a load from a read-only shared mapping: no system call, no lock, no GIL release.

Two hazards shape how the mapping is held:
- POSIX drops *every* lock a process holds on a file when the process closes *any* descriptor of
  that file. SQLite locks `-shm`; closing a descriptor we opened on it would silently release
  SQLite's locks (and let another process re-initialise the file under our feet). So a `-shm` file
  is opened and mapped once per process and inode, and that descriptor is never closed
  (`_MAPS`): one descriptor per database a process has ever cached, not per Catalog.
- SQLite truncates and rebuilds `-shm` when the *first* connection to a database opens it; reading
  a mapping while the file is shorter raises SIGBUS. Each view keeps one SQLite connection of its
  own open while it lives, so no other process is ever first while we read.
"""

from __future__ import annotations

import mmap
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable

HEADER = 48
"""Bytes of the WAL-index header compared (the first of its two copies)."""


class _Mapped:
    """One `-shm` file mapped for the process: its identity, mapping, descriptor and live views."""

    __slots__ = ("device", "fd", "inode", "mapped", "users")

    def __init__(self, device: int, inode: int, mapped: mmap.mmap, fd: int) -> None:
        self.device = device
        self.inode = inode
        self.mapped = mapped
        self.fd = fd
        self.users = 0

    def close(self) -> None:
        self.mapped.close()
        os.close(self.fd)


_MAPS: dict[str, _Mapped] = {}
"""Per `-shm` path, the file mapped there (see the module docstring)."""
_MAPS_LOCK = threading.Lock()


def _mapping(path: str) -> _Mapped:
    """The process-wide read-only mapping of the `-shm` file at `path`, one more user counted.

    When the file at `path` is a new one (SQLite deletes `-shm` when the last connection anywhere
    closes, and the next open makes a new file), the mapping of the old, deleted file is closed:
    no connection of this process can still use a deleted `-shm`, so no SQLite lock is dropped.
    """
    with _MAPS_LOCK:
        _drain_released()
        info = os.stat(path)
        cached = _MAPS.get(path)
        if cached is not None and (cached.device, cached.inode) != (info.st_dev, info.st_ino):
            del _MAPS[path]
            cached.close()
            cached = None
        if cached is None:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            opened = os.fstat(fd)
            if opened.st_size < HEADER:
                # Kept open like any other: closing it could drop SQLite's locks on the file.
                _MAPS[path] = _Mapped(opened.st_dev, opened.st_ino, mmap.mmap(-1, HEADER), fd)
                raise OSError(f"{path} holds no WAL-index header")
            mapped = mmap.mmap(fd, HEADER, mmap.MAP_SHARED, mmap.PROT_READ)
            cached = _MAPS[path] = _Mapped(opened.st_dev, opened.st_ino, mapped, fd)
        cached.users += 1
        return cached


_RELEASED: list[tuple[str, _Mapped]] = []
"""Views gone since the last `_mapping` call. Finalizers only append here (an atomic step): they
may run at any allocation, even inside `_mapping` with its lock held, so they must not lock."""


def _release(path: str, entry: _Mapped) -> None:
    """Finalizer of a view: queue its release for the next `_mapping` call."""
    _RELEASED.append((path, entry))


def _drain_released() -> None:
    """Unmap entries whose last view is gone, unless SQLite may still hold a lock on the file.

    Called with `_MAPS_LOCK` held. Views are garbage by then, so no cache hit is still reading
    the mapping. SQLite may still lock the file for a connection of this process (one that
    closes later, or a plain `sqlite3` connection): then the mapping stays, for reuse or a purge.
    """
    while _RELEASED:
        path, entry = _RELEASED.pop()
        entry.users -= 1
        if entry.users or _MAPS.get(path) is not entry or _locked_by_us(entry.inode):
            continue
        del _MAPS[path]
        entry.close()


def _locked_by_us(inode: int) -> bool:
    """Whether this process holds a POSIX lock on the file with `inode` (True when unsure)."""
    mine = str(os.getpid())
    try:
        with open("/proc/locks", encoding="ascii") as locks:
            for line in locks:
                fields = line.split()
                if len(fields) > 5 and fields[4] == mine and fields[5].endswith(f":{inode}"):
                    return True
    except OSError:
        return True
    return False


def release_unused() -> None:
    """Unmap now every `-shm` whose views are all gone and that SQLite holds no lock on here.

    `Catalog.close` calls it for an object-store catalog, whose private replica file goes with it,
    so closing one leaves no descriptor behind (the next mapping of any file would release it).
    """
    with _MAPS_LOCK:
        _drain_released()


class WalIndex:
    """The WAL-index header of one database file, readable at memory speed."""

    def __init__(self, db_path: str, connect: Callable[[], sqlite3.Connection]) -> None:
        self.path = f"{db_path}-shm"
        self._conn: sqlite3.Connection | None = connect()
        try:
            # The first read transaction maps the WAL-index and holds it open with this connection.
            self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            entry = _mapping(self.path)
        except BaseException:
            self._conn.close()
            raise
        self._map = entry.mapped
        weakref.finalize(self, _release, self.path, entry)
        _live.add(self)

    def header(self) -> bytes:
        """The header as it is now; equal values at two moments mean no commit in between."""
        return self._map[:HEADER]

    def close(self) -> None:
        """Close this view's connection (the shared mapping stays for the process)."""
        _live.discard(self)
        if self._conn is not None:  # None in a forked child: see `_after_fork_in_child`
            self._conn.close()

    def _after_fork_in_child(self) -> None:
        # The child's copy is abandoned, never closed: closing runs SQLite code on per-file
        # state (its mutexes) that a parent thread outside our calls may have held at the fork.
        # Kept referenced, so no finaliser closes it either; SQLite still counts it as open.
        if self._conn is not None:
            _abandoned.append(self._conn)
            self._conn = None


_live: weakref.WeakSet[WalIndex] = weakref.WeakSet()
_abandoned: list[sqlite3.Connection] = []
"""A forked child's copies of the views' connections, kept so that nothing ever closes them."""


def open_walindex(db_path: str, connect: Callable[[], sqlite3.Connection]) -> WalIndex | None:
    """Return the WAL-index view of `db_path`, or None where there is none (not in WAL mode)."""
    try:
        return WalIndex(db_path, connect)
    except (OSError, sqlite3.Error, ValueError):
        return None


def _after_fork_in_child() -> None:
    global _MAPS_LOCK
    _MAPS_LOCK = threading.Lock()
    for view in list(_live):
        view._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
