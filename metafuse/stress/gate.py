"""Round gates: every client waits, one decides whether another round starts, all agree.

Owns `BarrierGate` and `Flag`; the thread and process runs make the barrier and the flag
(threading or multiprocessing) and hand them in. It touches no catalog and imports only `client`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .client import ClientContext

_GRACE = 5.0


class BarrierGate:
    """A two-phase barrier: after the first wait, client 0 of the round decides for everyone.

    Works with `threading.Barrier` and a one-item list (threads) or a multiprocessing
    `Barrier` and `Value` (processes). A client that never arrives breaks the barrier after the
    run's deadline plus a grace period, and every waiting client stops.
    """

    def __init__(self, barrier: Any, flag: Any) -> None:
        self._barrier = barrier
        self._flag = flag

    def next_round(self, client: ClientContext) -> bool:
        """Wait for every client; return False for all of them once the run is over."""
        timeout = max(0.0, client.deadline - time.monotonic()) + _GRACE
        try:
            if self._barrier.wait(timeout) == 0:
                self._flag.value = 1 if client.should_stop() else 0
            self._barrier.wait(timeout)
        except threading.BrokenBarrierError:
            return False
        return not self._flag.value

    def abort(self) -> None:
        """Release every waiting client (used when the run is stopped early)."""
        self._barrier.abort()


class Flag:
    """A mutable integer for threads, shaped like `multiprocessing.Value`."""

    def __init__(self) -> None:
        self.value = 0
