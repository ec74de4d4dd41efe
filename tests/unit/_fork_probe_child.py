"""Runs the fork probe `lock_excluded` in an interpreter of its own and prints its verdict.

Usage: `python _fork_probe_child.py DIRECTORY [shared]`; with `shared`, the child keeps sharing
its parent's open file description of the slot file (the bug `fork_shares_flock` plants). A
fresh interpreter has no other thread and no other catalog, so what the probe's fork meets is
the probe and the library alone, not whatever earlier tests left in a test worker.
"""

from __future__ import annotations

import os
import sys
import threading

from metafuse import _freshness
from metafuse.stress.scenarios import _fork_probes


def _shares_the_description(self: _freshness.ChangeSlots) -> None:
    """The bug `fork_shares_flock` plants: a new description is opened but never put in place."""
    fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
    os.close(fd)
    self._lock = threading.Lock()


def main(argv: list[str]) -> int:
    directory, *bug = argv
    if bug == ["shared"]:
        _freshness.ChangeSlots._reopen_after_fork = _shares_the_description  # type: ignore[method-assign]
    print(_fork_probes.lock_excluded(directory))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
