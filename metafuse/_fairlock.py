"""`FairLock`: a lock granted in the order it was asked for.

`threading.Lock` is not fair: a thread that releases it and asks again at once usually wins
against threads already waiting. That is harmless while the lock is held for microseconds, but
a catalog on an object store holds its writer lock across network round trips, and a thread
retrying a lost commit in a loop could then keep its neighbours waiting past their busy
timeout. A `FairLock` hands the lock to the longest waiter first.
"""

from __future__ import annotations

import collections
import threading
import time


class FairLock:
    """A first-come, first-served lock with `acquire(timeout)` and `release()`."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._waiting: collections.deque[object] = collections.deque()
        self._held = False

    def acquire(self, timeout: float = -1) -> bool:
        """Wait for the lock, behind every earlier caller; False if `timeout` s pass first."""
        with self._cond:
            if not self._held and not self._waiting:
                self._held = True
                return True
            ticket = object()
            self._waiting.append(ticket)
            deadline = None if timeout < 0 else time.monotonic() + timeout
            while self._held or self._waiting[0] is not ticket:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self._waiting.remove(ticket)
                    self._cond.notify_all()  # the next in line may be free to go now
                    return False
                self._cond.wait(remaining)
            self._waiting.popleft()
            self._held = True
            return True

    def release(self) -> None:
        """Let the longest waiter (if any) have the lock."""
        with self._cond:
            if not self._held:
                raise RuntimeError("release of an unlocked FairLock")
            self._held = False
            self._cond.notify_all()
