"""A forked child's own copies of the SQLite locks its abandoned connections count as held.

A forked child abandons the connections it inherited (see `metafuse._connections`). SQLite keeps
one lock record per file for all of a process's connections, so in the child those abandoned
connections still count as holding what they held in the parent. For an idle connection to a
WAL database that is two shared locks, documented at https://sqlite.org/walformat.html: the
database file's SHARED lock (which keeps another process's last close from checkpointing and
deleting the WAL) and the `-shm` file's DMS lock (which keeps another process from truncating and
rebuilding the WAL-index). A fork does not pass POSIX locks on, and SQLite, counting them as held,
never takes them again for the child's new connections: other processes would not see the child.

So the parent notes, just before the fork (`record`), which of the two it holds on each catalog
file, and the child takes those (`take_over`) on a descriptor of its own that is never closed
(closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
included). The child then holds them for its life, as SQLite believes it does: the abandoned
connections never close. The note is taken before the fork because the parent may let go of its
locks the moment the fork returns, before the child runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

SHARED = (0x40000002, 510)
"""The database file's SHARED lock range: (first byte, length)."""
DMS = (128, 1)
"""The `-shm` file's DMS lock: (first byte, length)."""

_held: list[int] = []
"""Descriptors carrying the locks taken here, kept open for the life of the process."""
_noted: dict[str, list[tuple[str, int, tuple[int, int]]]] = {}
"""Per catalog file, at the last fork: (file, inode, range) of each lock the parent held."""
_taken: set[str] = set()
"""Catalog files `take_over` has run for in this process since the fork."""


def record(paths: list[str]) -> None:
    """In the parent, just before a fork: note which of the two locks it holds on each file."""
    _noted.clear()
    locks = _read_locks(os.getpid()) if paths else []  # /proc/locks read once for every file
    for path in paths:
        held = []
        for name, span in ((path, SHARED), (f"{path}-shm", DMS)):
            with contextlib.suppress(OSError):
                inode = os.stat(name).st_ino
                if _covered(locks, inode, *span):
                    held.append((name, inode, span))
        _noted[path] = held
    _taken.clear()


def take_over(path: str) -> str | None:
    """In a forked child: take the locks on `path` and its `-shm` its parent held at the fork.

    Returns None, or why the child cannot hold them (another process took the file over between
    the fork and now): the child must then not use the file.
    """
    if path in _taken:
        return None
    _taken.add(path)
    for name, inode, (start, length) in _noted.get(path, []):
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return f"{name} was deleted after the fork"
        _held.append(fd)  # never closed, even when the lock is refused: see the module docstring
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, length, start, os.SEEK_SET)
        except OSError:
            return f"another process locked {name} after the fork"
        if os.fstat(fd).st_ino != inode:
            return f"{name} was replaced after the fork"
    return None


_Lock = tuple[int, int, float]
"""One POSIX read lock: (inode, first byte, last byte; `inf` for a lock to the end of the file)."""


def _read_locks(pid: int) -> list[_Lock]:
    """The POSIX read locks process `pid` holds, from one reading of `/proc/locks` (none without it)."""
    found: list[_Lock] = []
    with contextlib.suppress(OSError, ValueError), open("/proc/locks", encoding="ascii") as locks:
        for line in locks:
            fields = line.split()
            if len(fields) >= 8 and fields[1] == "POSIX" and fields[3] == "READ" and fields[4] == str(pid):
                inode = int(fields[5].rsplit(":", 1)[1])
                found.append((inode, int(fields[6]), float("inf") if fields[7] == "EOF" else int(fields[7])))
    return found


def _covered(locks: list[_Lock], inode: int, start: int, length: int) -> bool:
    """Whether one of `locks` covers bytes `start` to `start + length - 1` of the file `inode`.

    Covering, not equal: the kernel merges a process's adjacent read locks into one range (the
    DMS lock with a read mark next to it, say)."""
    end = start + length - 1
    return any(lock_inode == inode and first <= start and last >= end for lock_inode, first, last in locks)
