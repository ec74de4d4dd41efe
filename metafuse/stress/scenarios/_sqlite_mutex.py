"""SQLite's VFS mutex, held by a thread of its own so that a fork meets it held, by construction.

SQLite's unix VFS takes one process-wide mutex (`SQLITE_MUTEX_STATIC_VFS1`) in every open and
every close of a file. A thread holding it at a fork leaves the child's copy held for good, so
anything in the child that opens or closes a file through SQLite (closing an inherited
connection, say) waits forever. Waiting for a reader thread to happen to be in there at the fork
makes that outcome a matter of timing; holding the mutex makes it certain.

It is reached through `ctypes`, from the `_sqlite3` extension module's own handle, so the mutex
is the one of the SQLite library `sqlite3` itself runs on, whether that library is linked in or
shared. Where it cannot be reached (a build that hides SQLite's symbols, or has no extension file),
`vfs_mutex_held` holds nothing and says so. This module owns that hold only; it may not touch a
catalog or a connection.
"""

from __future__ import annotations

import _sqlite3
import contextlib
import ctypes
import functools
import threading
from collections.abc import Iterator
from typing import Any

MUTEX_STATIC_VFS1 = 11
"""SQLite's number for the mutex its unix VFS takes in every open and close (`sqlite3.h`)."""
HOLD_WAIT = 5.0
"""Seconds to wait for the holding thread to get the mutex (another thread may be opening a file)."""


@functools.lru_cache(maxsize=1)
def _library() -> Any:
    """The SQLite library `sqlite3` runs on, through ctypes, or None if it cannot be reached."""
    extension = getattr(_sqlite3, "__file__", None)  # None where SQLite is built into the interpreter
    if extension is None:
        return None
    try:
        library = ctypes.CDLL(extension)
        library.sqlite3_mutex_alloc.restype = ctypes.c_void_p
        library.sqlite3_mutex_alloc.argtypes = [ctypes.c_int]
        library.sqlite3_mutex_enter.argtypes = [ctypes.c_void_p]
        library.sqlite3_mutex_leave.argtypes = [ctypes.c_void_p]
    except (AttributeError, OSError):
        return None
    return library


@contextlib.contextmanager
def vfs_mutex_held() -> Iterator[bool]:
    """Hold SQLite's VFS mutex in another thread for the `with` block; yield whether it is held.

    Inside the block this process cannot open or close any SQLite file: keep it to a fork.
    """
    library = _library()
    mutex = library.sqlite3_mutex_alloc(MUTEX_STATIC_VFS1) if library is not None else None
    if not mutex:
        yield False
        return
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        library.sqlite3_mutex_enter(mutex)
        try:
            held.set()
            done.wait()
        finally:
            library.sqlite3_mutex_leave(mutex)

    thread = threading.Thread(target=hold, name="probe-vfs-mutex", daemon=True)
    thread.start()
    try:
        yield held.wait(HOLD_WAIT)
    finally:
        done.set()
        thread.join()
