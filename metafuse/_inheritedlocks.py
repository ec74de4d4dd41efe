"""A forked child's own copies of the SQLite locks its abandoned connections count as held.

A forked child abandons the connections it inherited (see `metafuse._connections`). SQLite keeps
one lock record per file for all of a process's connections, so in the child those abandoned
connections still count as holding what they held in the parent. For an idle connection to a
WAL database that is two shared locks, documented at https://sqlite.org/walformat.html: the
database file's SHARED lock (which keeps another process's last close from checkpointing and
deleting the WAL) and the `-shm` file's DMS lock (which keeps another process from truncating and
rebuilding the WAL-index). A fork does not pass POSIX locks on, and SQLite, counting them as held,
never takes them again for the child's new connections: other processes would not see the child.

`take_over` takes the same two locks for the child, each only where the parent holds it, on a
descriptor of its own that is never closed (closing any descriptor of a file drops every POSIX
lock the process holds on it, SQLite's included). The child then holds them for its life, as
SQLite believes it does: the abandoned connections never close.
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
_taken: set[str] = set()
"""Files `take_over` has run for in this process (cleared by `forget` in each child)."""


def forget() -> None:
    """In a forked child, before any `take_over`: the parent's takings are not this process's."""
    _taken.clear()


def take_over(path: str) -> list[str]:
    """In a forked child: take the locks on the catalog file `path` and its `-shm` that the parent
    holds as SHARED and DMS; return the files locked (fewer when the parent held none, or a
    lock could not be had now)."""
    if path in _taken:
        return []
    _taken.add(path)
    parent = os.getppid()
    locked: list[str] = []
    for name, (start, length) in ((path, SHARED), (f"{path}-shm", DMS)):
        with contextlib.suppress(OSError):
            inode = os.stat(name).st_ino
            if not _holds(parent, inode, start, length):
                continue
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
            _held.append(fd)  # never closed, even when the lock is refused: see the module docstring
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, length, start, os.SEEK_SET)
            locked.append(name)
    return locked


def _holds(pid: int, inode: int, start: int, length: int) -> bool:
    """Whether process `pid` holds a POSIX read lock covering that range of the file `inode`.

    Covering, not equal: the kernel merges a process's adjacent read locks into one range (the
    DMS lock with a read mark next to it, say)."""
    end = start + length - 1
    with contextlib.suppress(OSError, ValueError), open("/proc/locks", encoding="ascii") as locks:
        for line in locks:
            fields = line.split()
            if (
                len(fields) >= 8
                and fields[1] == "POSIX"
                and fields[3] == "READ"
                and fields[4] == str(pid)
                and fields[5].endswith(f":{inode}")
                and int(fields[6]) <= start
                and (fields[7] == "EOF" or int(fields[7]) >= end)
            ):
                return True
    return False
