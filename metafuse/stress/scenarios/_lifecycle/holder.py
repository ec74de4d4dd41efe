"""A thread that holds a write transaction open (the writer lock with it) until a fork waits for it.

A fork round forks while this transaction is open. The holder commits only once the catalog's
own before-fork hook is seen waiting for it (the forking thread arms a hold at the interleaving
point `FORK_WAITS`, which that hook reaches only while it waits for a call in flight, and the
holder lets it go on once committed), or once the fork is over. So a fork that waits starts its
child clean, and a fork that does not wait (the `fork_unsafe` fault, the `fork_no_wait` mutant)
forks with the transaction open, in every round: the child inherits the open transaction and the
writer lock, and the bug shows whatever the timing. Releasing the holder as the fork starts
instead left a race between its COMMIT and the fork, which a loaded machine could lose in every
round of a short run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .... import perturb
from ....errors import BusyError, CatalogClosedError
from .._content import rewrite
from .shelf import Shelf
from .timing import HOLD_SECONDS

FORK_WAITS = "fork: call in flight -> waited out"
"""The point the catalog's before-fork hook reaches only while it waits for a call in flight."""
POLL_SECONDS = 0.001
"""How often a held transaction looks whether the fork is waiting for it."""


class LockHolder:
    """A thread that, on request, saves inside a transaction and holds it (writer lock and all).

    Rounds are numbered, so a late signal from an earlier round can never pass for the current
    one: `hold` returns True only while this round's transaction is open and the thread waits,
    in Python, for `release` or for the fork armed with `forking` to wait for it.
    """

    def __init__(self, shelf: Shelf, name: str, label: str, stop: Callable[[], bool]) -> None:
        self.shelf = shelf
        self.name = name
        self.label = label
        self._stop = stop
        self._cond = threading.Condition()
        self._wanted = self._holding = self._released = self._done = 0
        self._fork: perturb.Hold | None = None
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
                    fork, self._fork = self._fork, None
                    self._cond.notify_all()
                if fork is not None:
                    fork.release()  # committed (or failed): a fork waiting for it goes on

    def _hold_until_released(self, number: int) -> None:
        # Until `release`, or until the fork armed with `forking` waits for this transaction
        # (the catalog's before-fork hook reached FORK_WAITS): it commits then, and the fork goes
        # on once `_run` releases it. A fork that does not wait forks with it open.
        give_up = time.monotonic() + HOLD_SECONDS
        with self._cond:
            self._holding = number
            self._cond.notify_all()
            while self._released < number and not (self._fork is not None and self._fork.reached.is_set()):
                left = give_up - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(min(left, POLL_SECONDS))

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

    def forking(self, fork: perturb.Hold) -> None:
        """Commit the held transaction once the forking thread reaches `fork`'s point (a hold it
        armed at `FORK_WAITS`), then release it; call before forking, with a transaction held."""
        with self._cond:
            self._fork = fork
            self._cond.notify_all()

    def join(self, timeout: float) -> None:
        """Wait for the thread to stop (it stops when the run does)."""
        self.release()
        self._thread.join(timeout)
