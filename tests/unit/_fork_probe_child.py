"""Runs one fork probe in an interpreter of its own and prints its verdict.

Usage: `python _fork_probe_child.py PROBE DIRECTORY [BUG]`. With `shared` (for `lock_excluded`),
the child keeps sharing its parent's open file description of the slot file (the bug
`fork_shares_flock` plants); with `closing` (for `hooks_unblocked`), a child closes the idle
connections it inherited (the bug `fork_closes_inherited_connection` plants); with `gone` (for
`lock_excluded`), the process also has, first in line for the after-fork hook, change slots whose
file has been removed (a catalog nobody closed, in a directory since removed). A
fresh interpreter has no other thread and no other catalog, so what the probe's fork meets is
the probe and the library alone, not whatever earlier tests left in a test worker.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import threading

from metafuse import _connections, _freshness
from metafuse.stress.scenarios import _fork_probes


def _shares_the_description(self: _freshness.ChangeSlots) -> None:
    """The bug `fork_shares_flock` plants: a new description is opened but never put in place."""
    fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
    os.close(fd)
    self._lock = threading.Lock()


def _closes_inherited(self: _connections.ConnectionPool) -> None:
    """The bug `fork_closes_inherited_connection` plants: a child closes every idle inherited
    connection (the rest of the hook, for connections busy at the fork, does not matter here)."""
    for session in self._sessions:
        if session.uses == 0:
            with contextlib.suppress(sqlite3.Error):
                session._close()
    self._sessions = []
    self._lock = threading.Lock()
    self._local = threading.local()


class _InOrder(list):  # type: ignore[type-arg]
    """The live change slots in the order they were opened, so the removed ones come first."""

    def add(self, item: object) -> None:
        self.append(item)

    def discard(self, item: object) -> None:
        if item in self:
            self.remove(item)


def main(argv: list[str]) -> int:
    probe, directory, *bug = argv
    if bug == ["shared"]:
        _freshness.ChangeSlots._reopen_after_fork = _shares_the_description  # type: ignore[method-assign]
    if bug == ["closing"]:
        _connections.ConnectionPool._after_fork_in_child = _closes_inherited  # type: ignore[method-assign]
    gone = None
    if bug == ["gone"]:
        _freshness._live = _InOrder()  # type: ignore[assignment]
        os.mkdir(os.path.join(directory, "gone"))
        gone = _freshness.ChangeSlots(os.path.join(directory, "gone", "c.db-mfgen"))
        os.remove(gone.path)
    print(_fork_probes.PROBES[probe](directory))
    del gone
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
