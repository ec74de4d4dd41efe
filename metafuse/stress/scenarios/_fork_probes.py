"""Fork probes: a child that shares its parent's slot lock, or hangs in its after-fork hooks, shows.

`lock_excluded` holds a `ChangeSlots` lock (the change-slot file's lock every writer takes for
its compare-and-set) across a fork, on a slot file of its own in a temporary directory so it
neither waits for nor delays the run's writers, and the child asks for the same lock. The child
must wait until the parent lets go: the parent holds on until it sees the child blocked on the
lock in `/proc/locks`. A child that kept the parent's open file description of the slot file
gets its `flock` at once, while the parent still holds it, and says so in its exit status.

`hooks_unblocked` forks `FORKS` times while a thread of the parent holds SQLite's VFS mutex
(`_sqlite_mutex`), the one every open and close of a file takes, and another reads a catalog's
file through a `sqlite3` connection of its own (an application's own use of the file, which no
fork waits for), with the catalog's connection and WAL-index view idle. Each child only runs the
after-fork hooks and exits. A hook that closes an inherited connection (or opens one) waits
forever on the mutex its child inherited held: every fork catches it, whatever the timing. A hook
that runs other SQLite code on the file waits only if the fork met the reader inside a per-file
mutex, which is a matter of timing. Where SQLite's mutex cannot be reached, only the reader is
left, and the first kind of hook is caught by timing too.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
import sqlite3
import struct
import tempfile
import threading
import time

from ..._freshness import ChangeSlots
from ...catalog import Catalog
from ._lifecycle.fork import STARVED, fork_with_threads, wait_child
from ._sqlite_mutex import vfs_mutex_held

TIMEOUT = 4.0
"""Seconds the child gets before it is killed (and the probe fails)."""
OVERLAP = 7
"""Exit status of a `lock_excluded` child that got the lock while the parent held it."""
FORKS = 12
"""Forks `hooks_unblocked` makes (it stops at the first child that does not exit)."""
_FLAG = struct.Struct("<q")
_HELD, _ENTERED = 0, 1


def lock_excluded(directory: str) -> str | None:
    """Hold a slot-file lock across a fork while the child asks for it; None if the child waited."""
    slots = ChangeSlots(os.path.join(directory, "probe-mfgen"))
    flags = mmap.mmap(-1, 2 * _FLAG.size)
    try:
        inode = os.stat(slots.path).st_ino
        with slots.locked():
            _FLAG.pack_into(flags, _HELD * _FLAG.size, 1)
            pid = fork_with_threads()
            if pid == 0:
                status = 1  # anything but 0 or OVERLAP: the child failed before it could tell
                try:
                    with slots.locked():
                        _FLAG.pack_into(flags, _ENTERED * _FLAG.size, 1)
                        status = OVERLAP if _FLAG.unpack_from(flags, _HELD * _FLAG.size)[0] else 0
                finally:
                    os._exit(status)
            # Hold until the child either got in (the bug) or is seen waiting for the lock.
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                if _FLAG.unpack_from(flags, _ENTERED * _FLAG.size)[0] or _waiting(pid, inode):
                    break
                time.sleep(0.001)
            _FLAG.pack_into(flags, _HELD * _FLAG.size, 0)
        outcome = wait_child(pid, TIMEOUT)
    finally:
        flags.close()
        slots.close()
    if outcome == f"exit {OVERLAP}":
        return "the child took the slot-file lock while its parent held it"
    if outcome != "exit 0":
        return f"the child ended with {outcome}"
    return None


def _waiting(pid: int, inode: int) -> bool:
    """Whether process `pid` is blocked on a `flock` of the file with `inode` (`/proc/locks`)."""
    with contextlib.suppress(OSError), open("/proc/locks", encoding="ascii") as locks:
        for line in locks:
            fields = line.split()
            if "->" in fields and str(pid) in fields and fields[-3].endswith(f":{inode}"):
                return True
    return False


def hooks_unblocked(directory: str) -> str | None:
    """Fork `FORKS` times while other threads hold SQLite's VFS mutex and read a catalog's file
    through a connection the catalog does not own; None if every child got through its after-fork
    hooks and exited."""
    path = os.path.join(directory, "probe.db")
    stop, reading = threading.Event(), threading.Event()
    with Catalog(path) as catalog:
        catalog.get("probe")  # an idle connection (and the WAL-index view's) for children to inherit
        reader = threading.Thread(
            target=_read_until, args=(path, stop, reading), name="probe-reader", daemon=True
        )
        reader.start()
        try:
            reading.wait(TIMEOUT)  # fork only once the reader is in its loop
            for _ in range(FORKS):
                with vfs_mutex_held():
                    pid = fork_with_threads()
                    if pid == 0:
                        os._exit(0)
                outcome = wait_child(pid, TIMEOUT)
                if outcome not in ("exit 0", STARVED):  # a starved child proves nothing either way
                    return f"a child forked while another thread was inside SQLite ended with {outcome}"
        finally:
            stop.set()
            reader.join()
    return None


def _read_until(path: str, stop: threading.Event, reading: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        while not stop.is_set():
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            reading.set()
    finally:
        conn.close()


PROBES = {"lock_excluded": lock_excluded, "hooks_unblocked": hooks_unblocked}
"""Every probe by name."""


def run_probes() -> dict[str, str]:
    """Run every probe once, each in a fresh temporary directory; return the failures by name."""
    failures: dict[str, str] = {}
    for name, probe in PROBES.items():
        directory = tempfile.mkdtemp(prefix="metafuse-fork-probe-")
        try:
            problem = probe(directory)
        except Exception as error:
            problem = f"{type(error).__name__}: {error}"
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        if problem is not None:
            failures[name] = problem
    return failures
