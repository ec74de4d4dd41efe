"""A thread that holds a write transaction open (the writer lock with it) until a fork releases it.

A fork round forks while this transaction is open: the catalog's own before-fork hook must then
wait for it to commit, so the child starts clean (with the `fork_unsafe` fault it does not, and
the child inherits the open transaction and the writer lock). Importing this module registers a
before-fork hook that releases every holder in use; it is registered after the catalog's own
hooks (this module imports the catalog first), so it runs before them.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable

from ....errors import BusyError, CatalogClosedError
from .._content import rewrite
from .shelf import Shelf
from .timing import HOLD_SECONDS


class LockHolder:
    """A thread that, on request, saves inside a transaction and holds it (writer lock and all).

    Rounds are numbered, so a late signal from an earlier round can never pass for the current
    one: `hold` returns True only while this round's transaction is open and the thread waits,
    in Python, for `release`.
    """

    def __init__(self, shelf: Shelf, name: str, label: str, stop: Callable[[], bool]) -> None:
        self.shelf = shelf
        self.name = name
        self.label = label
        self._stop = stop
        self._cond = threading.Condition()
        self._wanted = self._holding = self._released = self._done = 0
        self.acked: tuple[int, str] | None = None
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name=f"{label}-holder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop():
            with self._cond:
                if not self._cond.wait_for(lambda: self._wanted > self._done, 0.05):
                    continue
                number = self._wanted
            catalog, _ = self.shelf.current()
            token = f"{self.label}-hold-{number}"
            try:
                with catalog.transaction():
                    current = catalog.get(self.name)
                    if current is None:
                        raise LookupError(f"{self.name} is missing")
                    stored = catalog.save(rewrite(current, token), expected_version=current.version)
                    self._hold_until_released(number)
                self.acked = (stored.version, token)
            except (BusyError, CatalogClosedError):
                pass
            except Exception as error:
                if len(self.errors) < 20:
                    self.errors.append(f"hold: {type(error).__name__}: {error}")
            finally:
                with self._cond:
                    self._done = number
                    self._cond.notify_all()

    def _hold_until_released(self, number: int) -> None:
        # Released by the fork itself (see `_release_holders_before_fork`): the catalog's own
        # before-fork hook then waits for this transaction to commit, so the child starts clean.
        # With the `fork_unsafe` fault that wait is skipped and the child inherits the open
        # transaction and the writer lock: the bug shows in every round, not by chance.
        with self._cond:
            self._holding = number
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._released >= number, HOLD_SECONDS)

    def hold(self, timeout: float) -> bool:
        """Ask the thread to enter and hold a write transaction; True once it holds this round's."""
        with self._cond:
            self._wanted += 1
            number = self._wanted
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._holding == number or self._done >= number, timeout)
            return self._holding == number and self._done < number

    def release(self) -> None:
        """Let the held transaction (if any) commit."""
        with self._cond:
            self._released = self._wanted
            self._cond.notify_all()

    def __enter__(self) -> LockHolder:
        _holders.add(self)
        return self

    def __exit__(self, *_: object) -> None:
        _holders.discard(self)

    def join(self, timeout: float) -> None:
        """Wait for the thread to stop (it stops when the run does)."""
        self.release()
        self._thread.join(timeout)


_holders: weakref.WeakSet[LockHolder] = weakref.WeakSet()


def _release_holders_before_fork() -> None:
    # Registered after metafuse's own hooks, so it runs before them (Python runs before-fork
    # hooks in reverse order of registration).
    for holder in list(_holders):
        holder.release()


os.register_at_fork(before=_release_holders_before_fork)
