"""The store-capable stress scenarios as Locust users: every catalog call reported to Locust and recorded.

`WriterUser` is `concurrent_writers` (read a random dataset, save a new token over the version
read), `ReaderUser` the reads of `read_heavy_workload` and `cache_invalidation_race`, `OwnerUser`
writes its worker's own dataset and reads another's (the tests' user). All share the worker's one
catalog (`_collect.Recorder`) and write their operations into its history.

Every catalog call is reported through `events.request`: request type `catalog` with the
operation (`get`, `save`) as its name. Two of the catalog's answers are reported apart, each
under a request type of its own that Locust counts as a success: a conflict (`conflict`), and a
call refused because the catalog was overloaded (`busy`: `BusyError`, nothing written). So
Locust's failures are the catalog's errors alone. A busy call did no work: it does not count
towards `--metafuse-operations`, and a user whose every save was refused busy has not made its
calls, so a catalog that only answers busy never lets a run with a quota finish (it ends
INCONCLUSIVE at its `--run-time` cap). Importing this module imports Locust (and so gevent's
monkey-patching).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import gevent
from locust import User, constant_throughput

from metafuse.errors import BusyError, CatalogError, ConflictError
from metafuse.stress.scenarios._content import rewrite

from . import _clocks, _collect, _settings

T = TypeVar("T")

READS_PER_SECOND = 100
"""Each `ReaderUser`'s pace."""


class _CatalogUser(User):
    """A client of the shared catalog whose every call is reported to Locust and recorded."""

    abstract = True

    def on_start(self) -> None:
        recorder = _collect.state.recorder
        assert recorder is not None, "the test started without a catalog"
        self.catalog = recorder.catalog
        self.history = recorder.new_writer()
        self.names = _settings.names(self.environment)
        self.worker = recorder.worker
        self.quota = _settings.quota(self.environment)
        self.calls = 0  # calls the catalog answered: a busy one did no work
        self.saves_answered = self.saves_busy = 0
        self.sequence = 0
        self.reported = False

    def begin_task(self) -> None:
        """At the start of each task: a user that made its quota of calls tells the master, once.

        Its quota is of calls the catalog answered, and if it tried to save, at least one save
        must have been answered: a user whose every save was refused busy did no writing, and
        a run of such users (a writer lock that never comes free) must not end as if it had.
        It goes on working until the master stops the test: a worker that got ahead (another
        was descheduled on a loaded machine) would otherwise finish before the others began,
        and no call of theirs would overlap any of its own.
        """
        wrote = self.saves_answered > 0 or not self.saves_busy
        if self.quota and self.calls >= self.quota and wrote and not self.reported:
            self.reported = True
            runner = self.environment.runner
            assert runner is not None
            runner.send_message(_collect.FINISHED, {"users": 1})

    def call(
        self,
        op: str,
        key: str,
        run: Callable[[], T],
        *,
        expected: int | None = None,
        token: str | None = None,
    ) -> T | None:
        """Run one catalog call; report it to Locust and record it. A catalog error returns None.

        Reported under request type `catalog`, or `conflict` (`ConflictError`) or `busy`
        (`BusyError`), which Locust counts as successes: only the catalog's other errors fail.
        """
        invoke = _clocks.clock.now()
        started = time.perf_counter()
        value: T | None = None
        error: BaseException | None = None
        try:
            value = run()
        except BaseException as exc:
            error = exc
            if not isinstance(exc, CatalogError):
                raise  # the user is being stopped: recorded below as unknown
        finally:
            ret = _clocks.clock.now()
            busy = isinstance(error, BusyError)
            self.calls += not busy
            if op == "save":
                self.saves_busy += busy
                self.saves_answered += not busy and (error is None or isinstance(error, ConflictError))
            self.history.call(op, key, invoke, ret, value, error, expected=expected, token=token)
            kind = "conflict" if isinstance(error, ConflictError) else "busy" if busy else "catalog"
            self.environment.events.request.fire(
                request_type=kind,
                name=op,
                response_time=(time.perf_counter() - started) * 1000,
                response_length=0,
                exception=error if isinstance(error, CatalogError) and kind == "catalog" else None,
                context={},
            )
        return value

    def read_modify_save(self, name: str) -> None:
        """Read `name`, then save a unique token over the version read (a conflict is not retried)."""
        current = self.call("get", name, lambda: self.catalog().get(name))
        if current is None:
            return
        # Under gevent nothing switches between two catalog calls of a file catalog (sqlite3
        # blocks the hub): without this yield no two users of one worker would ever race.
        gevent.sleep(0)
        self.sequence += 1
        token = f"client-{self.history.client}-write-{self.sequence}"
        self.call(
            "save",
            name,
            lambda: self.catalog().save(rewrite(current, token), expected_version=current.version),
            expected=current.version,
            token=token,
        )


class WriterUser(_CatalogUser):
    """`concurrent_writers`: read a random dataset, save a unique token over the version read."""

    def read_modify_save_any(self) -> None:
        self.begin_task()
        self.read_modify_save(random.choice(self.names))

    tasks = [read_modify_save_any]  # noqa: RUF012 - Locust reads a list


class OwnerUser(_CatalogUser):
    """Read-modify-save of its worker's own dataset, racing the worker's other users; then a read
    of another worker's dataset.

    Worker *i* writes `NAMES[i % datasets]` alone, and reads the others. So every save races
    only saves from its own worker, and a worker reads datasets it never writes, whose every
    change comes from another host: what a fault that loses a racing save or serves a stale
    copy needs to show in the history (the tests' runs).
    """

    def write_own_read_other(self) -> None:
        self.begin_task()
        own = self.names[self.worker % len(self.names)]
        self.read_modify_save(own)
        other = random.choice([name for name in self.names if name != own] or [own])
        self.call("get", other, lambda: self.catalog().get(other))

    tasks = [write_own_read_other]  # noqa: RUF012 - Locust reads a list


class ReaderUser(_CatalogUser):
    """The reads of `read_heavy_workload` and `cache_invalidation_race`: get a random dataset.

    At most 100 reads a second per user (Locust's open-model pacing). Unpaced, a cached read
    takes microseconds, and the tens of thousands of reads that then fall within each
    clock-uncertainty window give the linearizability search more orders than it can try.
    """

    wait_time = constant_throughput(READS_PER_SECOND)

    def read(self) -> None:
        self.begin_task()
        name = random.choice(self.names)
        self.call("get", name, lambda: self.catalog().get(name))

    tasks = [read]  # noqa: RUF012 - Locust reads a list
