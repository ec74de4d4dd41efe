"""One fork round: pause the run's working threads, hold a transaction, fork, check the child.

The child saves through the catalog it inherited and through a new one, checks each sees the
other's write, and exits with a status that says how it went (`CHILD_OK` and the others); the
parent reaps it within `CHILD_TIMEOUT` (killing it as hung after that) and must then read what
the child acknowledged.

Owns `Forker`, `wait_child`, the child's checks and its exit statuses. It declares no scenario and
judges no invariant: it leaves outcomes in its metrics. Of the catalog's private modules it imports
only `_connections.FORK_WAIT`, to tell a refusal after the library's full (documented) wait from a
failure.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

from .... import perturb
from ...._connections import FORK_WAIT
from ....catalog import Catalog
from ....errors import BusyError, CatalogClosedError, CatalogFileError
from .._content import rewrite
from .holder import FORK_WAITS, LockHolder
from .quiet import Quiet
from .shelf import Shelf
from .timing import CHILD_TIMEOUT, FIRST_ROUND_OVERRUN, QUIESCE_TIMEOUT
from .watch import Watch

CHILD_OK, CHILD_ERROR, CHILD_BUSY, CHILD_STALE, CHILD_REFUSED = 0, 5, 3, 4, 6
"""A forked child's exit statuses: all checks passed, an error, a busy database, a stale read, and
a refusal (`CatalogFileError`: the library refuses a child forked with a call still in flight)."""
REFUSED_AFTER_WAIT = "skipped: refused, the fork waited FORK_WAIT for a call in flight"
"""The outcome of a refused child whose fork waited its full `FORK_WAIT`: documented, not a failure."""


def _child(inherited: Catalog, path: str, name: str, token: str) -> int:
    """In a forked child: save through the inherited catalog and a new one; each must see the other."""
    try:
        current = inherited.get(name)
        if current is None:
            return CHILD_STALE
        first = inherited.save(rewrite(current, f"{token}a"), expected_version=current.version)
        with Catalog(path) as fresh:
            seen = fresh.get(name)
            if seen is None or (seen.version, seen.description) != (first.version, first.description):
                return CHILD_STALE
            second = fresh.save(rewrite(seen, f"{token}b"), expected_version=seen.version)
        again = inherited.get(name)
        if again is None or (again.version, again.description) != (second.version, second.description):
            return CHILD_STALE
        return CHILD_OK
    except BusyError:
        return CHILD_BUSY
    except CatalogFileError:
        return CHILD_REFUSED
    except BaseException:
        return CHILD_ERROR


STARVED = "skipped: starved, killed at its deadline having waited most of it for a CPU or the disk"
"""The outcome of a child still running at its deadline that never had the machine (see `watch`)."""


def fork_with_threads() -> int:
    """`os.fork()` from a process whose other threads are working, without Python 3.12+'s
    warning that such a fork may deadlock the child: forking there, with the library's fork
    guard, is what the fork scenarios and probes test."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork")
        return os.fork()


def wait_child(pid: int, timeout: float) -> str:
    """Reap child `pid`: "exit 0", "exit N", "signal N", or, if it is still running after `timeout`
    seconds, kill it and return "hung" or `STARVED`.

    `STARVED` means the kernel shows the child spent most of those seconds queued for a CPU or in
    disk I/O (`watch.Watch.starved`): a probe that got no time to run, not a hang. The figures of
    a killed child go to stderr, beside the stack dump the child wrote before it was killed.
    """
    watch = Watch(pid)
    deadline = watch.start + timeout
    while True:
        watch.sample()
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() >= deadline:
            watch.sample()  # judged now: a starved child can take long to die once killed
            outcome = STARVED if watch.starved() else "hung"
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            sys.stderr.write(f"metafuse: child {pid} killed, {outcome.split(',')[0]}: {watch.describe()}\n")
            return outcome
        time.sleep(0.005)
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit {os.WEXITSTATUS(status)}"


class Forker:
    """Runs fork rounds in this process: pause the workers, hold a transaction, fork, check the child."""

    def __init__(
        self, shelf: Shelf, names: dict[str, str], label: str, quiet: Quiet, stop: Callable[[], bool]
    ):
        self.shelf = shelf
        self.name = names["fork"]
        self.label = label
        self.quiet = quiet
        self.holder = LockHolder(shelf, names["hold"], label, stop)
        self.outcomes: Counter[str] = Counter()
        self.acked: dict[str, tuple[int, str]] = {}
        self.errors: list[str] = []
        self.rounds = 0

    def round(self, patience: float = QUIESCE_TIMEOUT) -> None:
        """One fork while the lock holder holds a write transaction and the run's working threads
        are parked, until the child has exited (see `Quiet`).

        `patience` bounds each wait (workers parked, transaction held). A later round that cannot
        set up within it is skipped; the first round of a run waits as long as the run allows
        (see `first_round_patience`), so every run forks at least once however loaded the machine.
        """
        if not self.quiet.pause(patience):
            self.outcomes["skipped: workers did not pause"] += 1
            return
        try:
            self._fork(patience)
        finally:
            self.quiet.resume()

    def _fork(self, patience: float) -> None:
        try:
            if not self.holder.hold(patience):
                self.outcomes["skipped: no transaction held"] += 1
                return
            self.rounds += 1
            token = f"{self.label}-fork-{self.rounds}"
            inherited, _ = self.shelf.current()
            # The threads are parked at safe points while the fork happens; the holder commits
            # once the fork waits for its transaction (a fork that does not forks with it open).
            with perturb.hold(FORK_WAITS) as fork:
                self.holder.forking(fork)
                began = time.monotonic()
                pid = fork_with_threads()
            waited = time.monotonic() - began
            if pid == 0:
                code = CHILD_ERROR
                try:
                    # A child about to be killed as hung first says where it is stuck.
                    faulthandler.dump_traceback_later(CHILD_TIMEOUT * 0.9, exit=False)
                    code = _child(inherited, self.shelf.path, self.name, token)
                finally:
                    os._exit(code)
        finally:
            self.holder.release()
        outcome = wait_child(pid, CHILD_TIMEOUT)
        if outcome == f"exit {CHILD_REFUSED}" and waited >= FORK_WAIT:
            # On an overloaded machine a call can outlast the fork's wait; the child then refuses
            # to write, as the library documents. A refusal after a shorter wait is a failure.
            outcome = REFUSED_AFTER_WAIT
        self.outcomes[outcome] += 1
        if outcome == f"exit {CHILD_OK}":
            self._confirm(f"{token}b")

    def _confirm(self, token: str) -> None:
        """The parent must read what its child acknowledged (exit 0) through its own catalog."""
        catalog, _ = self.shelf.current()
        try:
            seen = catalog.get(self.name)
        except CatalogClosedError:
            return
        except Exception as error:
            self.errors.append(f"confirm: {type(error).__name__}: {error}")
            return
        if seen is None or seen.description != token:
            self.outcomes["parent missed child's write"] += 1
        else:
            self.acked[self.name] = (seen.version, token)

    def metrics(self) -> dict[str, Any]:
        """Fork outcomes and the writes they acknowledged (lock holder's included)."""
        acked = dict(self.acked)
        if self.holder.acked is not None:
            acked[self.holder.name] = self.holder.acked
        return {"forks": dict(self.outcomes), "acked": acked, "errors": self.errors + self.holder.errors}


def first_round_patience(deadline: float) -> float:
    """How long the first fork round may wait: until `FIRST_ROUND_OVERRUN` past the run's end."""
    return max(QUIESCE_TIMEOUT, deadline + FIRST_ROUND_OVERRUN - time.monotonic())
