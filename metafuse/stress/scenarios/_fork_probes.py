"""A fork probe whose outcome does not depend on timing: a child that shares its parent's slot lock shows.

`lock_excluded` holds a `ChangeSlots` lock (the change-slot file's lock every writer takes for
its compare-and-set) across a fork, on a slot file of its own in a temporary directory so it
neither waits for nor delays the run's writers, and the child asks for the same lock. The child
must wait until the parent lets go: the parent holds on until it sees the child blocked on the
lock in `/proc/locks`. A child that kept the parent's open file description of the slot file
gets its `flock` at once, while the parent still holds it, and says so in its exit status.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
import struct
import tempfile
import time

from ..._freshness import ChangeSlots
from ._lifecycle.fork import fork_with_threads, wait_child

TIMEOUT = 4.0
"""Seconds the child gets before it is killed (and the probe fails)."""
OVERLAP = 7
"""Exit status of a `lock_excluded` child that got the lock while the parent held it."""
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


PROBES = {"lock_excluded": lock_excluded}
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
