"""Parking every working thread of a lifecycle run, in every process, at a safe point for a fork.

See `Quiet`: what a forker may rely on once `pause` returns True, and why a thread uncounts
itself before its last look at the pause requests.

Owns `Quiet`. It touches no catalog and forks nothing: it counts on the `Board` it is given, and the
forker decides when to pause.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ...client import Board
from .timing import HOLD_SECONDS
from .worker import Worker


class Quiet:
    """Parks the run's working threads, in every process, at a safe point (between calls).

    A fork round parks them from before the fork until its child has exited. Parked at a safe
    point, the forking process's own threads hold no lock a child could inherit (only the
    catalog's state is under test). Parked everywhere, no thread competes with the child for
    SQLite's write lock, whose busy wait is not fair: on a loaded machine a child racing the
    run's writers could wait seconds for it, and a clean child would look hung or busy. The
    child's only obstacle is then the bug under test, a lock it inherited.

    The counts live on a `Board` that every process of the run shares: pause requests, working
    threads, parked threads.
    """

    REQUESTS, ACTIVE, PARKED = 0, 1, 2
    """The board's slots this uses."""

    def __init__(self, board: Board) -> None:
        self._board = board

    def arrive(self) -> None:
        """A working thread starts: from now on a pause waits for it to park."""
        self._board.add(self.ACTIVE)

    def checkpoint(self) -> None:
        """Called by a working thread between calls: wait here while a pause is requested.

        At most `HOLD_SECONDS`: a forker that died without resuming cannot stop the run.
        """
        if not self._board.read(self.REQUESTS):
            return
        give_up = time.monotonic() + HOLD_SECONDS
        self._board.add(self.PARKED)
        while True:
            while self._board.read(self.REQUESTS) and time.monotonic() < give_up:
                time.sleep(0.001)
            # Uncount first, then look again: a pause requested in between either sees this
            # thread uncounted (and waits for it) or is seen here (and keeps it parked). Looking
            # first would let a pause count it as parked while it went on to its next call.
            self._board.add(self.PARKED, -1)
            if not self._board.read(self.REQUESTS) or time.monotonic() >= give_up:
                return
            self._board.add(self.PARKED)

    def leave(self) -> None:
        """A working thread that stops for good no longer needs to be paused."""
        self._board.add(self.ACTIVE, -1)

    def pause(self, timeout: float) -> bool:
        """Request a pause; return whether every working thread parked in time (if not, the
        request is withdrawn)."""
        self._board.add(self.REQUESTS)
        give_up = time.monotonic() + timeout
        while self._board.read(self.PARKED) < self._board.read(self.ACTIVE):
            if time.monotonic() >= give_up:
                self.resume()
                return False
            time.sleep(0.001)
        return True

    def resume(self) -> None:
        """Withdraw this pause request; the threads go on once no other is pending."""
        self._board.add(self.REQUESTS, -1)

    def work(self, worker: Worker, stop: Callable[[], bool]) -> None:
        """A working thread's loop: `worker.step()` until `stop()`, parking between steps."""
        self.arrive()
        try:
            while not stop():
                self.checkpoint()
                worker.step()
        finally:
            self.leave()
