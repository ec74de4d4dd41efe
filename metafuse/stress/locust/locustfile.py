"""The store-capable stress scenarios as Locust users, with one linearizability verdict at the master.

    locust -f metafuse/stress/locust/locustfile.py --master --catalog s3://bucket/prefix
    locust -f metafuse/stress/locust/locustfile.py --worker --master-host HOST

Users: `WriterUser` is `concurrent_writers` (read a random dataset, save a new token over the
version read), `ReaderUser` the reads of `read_heavy_workload` and `cache_invalidation_race`,
`OwnerUser` writes its worker's own dataset and reads another's (the tests' user).
Locust's settings are the run's: users = clients, `--run-time` = duration, spawn rate =
ramp-up. With `--metafuse-operations N` the work decides the length instead: each user tells
the master when it has made N calls (and works on), the master stops the test once all have,
and `--run-time` only caps it (a run capped before its work is done is INCONCLUSIVE: too
little evidence never passes).

Every catalog call is reported through `events.request`: request type `catalog` with
the operation (`get`, `save`) as its name; a conflict is reported under request type `conflict`,
a success of its own kind, so Locust's failures are the catalog's errors alone.

Every worker records its users' operations in the history format, with wall-clock times. When
the test stops, the master asks every worker (connected, or that said hello) for its history (the worker
stops its users first, giving each `STOP_GRACE` seconds to finish its task: a call cut short is
recorded `unknown`), receives it in 1 MB pieces,
measures each worker's clock against its own by round trips, merges the histories onto its
clock (intervals widened by each worker's uncertainty, `metafuse.stress.distributed`) and
checks them as `metafuse stress check-history` does. A history that is NOT linearizable sets
the master's exit code to 6; one that cannot be decided (a worker's history did not arrive by
`--collect-timeout`, or the search ran past `--check-timeout`) to 7. The one-pass invariants
(version chain, stale and torn reads) are checked first: when one fails, the search is skipped.
`--history FILE` keeps the merged history.

Locust loads this file by path, as a module of its own: imports here are absolute.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import gevent
from locust import User, constant_throughput, events
from locust.env import Environment
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner

from metafuse.catalog import Catalog
from metafuse.errors import CatalogError, ConflictError
from metafuse.stress import distributed
from metafuse.stress.history import SETUP_CLIENT, HistoryWriter, read_token
from metafuse.stress.history import start as start_history
from metafuse.stress.scenarios._content import recreate, rewrite, tokened

T = TypeVar("T")

CATALOG_ENV = "METAFUSE_LOCUST_CATALOG"
"""Environment variable naming the catalog when `--catalog` is not given."""
EXIT_NOT_LINEARIZABLE = 6
"""The master's exit code when the merged history is not linearizable."""
EXIT_INCONCLUSIVE = 7
"""The master's exit code when the verdict could not be decided (a history did not arrive, the
search ran out of time, or no client recorded an operation)."""
NAMES = tuple(f"locust.writers.{index}" for index in range(5))
"""The datasets users read and write (created afresh by the master when a test starts): the first
`--metafuse-datasets` of them."""
READS_PER_SECOND = 100
"""Each `ReaderUser`'s pace."""
CLOCK_PROBES = 5
CLOCK_TIMEOUT = 10.0
"""Seconds the master waits for one worker's clock probes (after its history arrived)."""
CLIENTS_PER_WORKER = 100_000
STOP_GRACE = 5.0
"""Seconds a worker's users get to finish their task when the master collects the histories,
before a call still running is cut short (and recorded as unknown)."""
CLOCK_STEP_ENV = "METAFUSE_LOCUST_CLOCK_STEP_MS"
"""For tests: a worker whose environment sets this (milliseconds, may be negative) steps its wall
clock by that much once it has answered the master's first measurement, as a clock set by hand
mid-run would. Only what the worker reads changes (its recorded times and its answers to the
master's probes); the master measures, detects and widens exactly as for a real clock."""
_HELLO, _COLLECT, _HISTORY = "metafuse_hello", "metafuse_collect", "metafuse_history"
_CLOCK, _CLOCK_REPLY = "metafuse_clock", "metafuse_clock_reply"
_FINISHED = "metafuse_finished"


def _options(parser: Any, **_: Any) -> None:
    parser.add_argument(
        "--catalog",
        env_var=CATALOG_ENV,
        default="",
        help="metafuse: the catalog every worker writes (a file path, or s3://bucket/prefix?...)",
    )
    parser.add_argument(
        "--history", default="", help="metafuse: write the merged history of the run to this file"
    )
    parser.add_argument(
        "--collect-timeout",
        type=float,
        default=30.0,
        help="metafuse: seconds the master waits for the workers' histories (default 30)",
    )
    parser.add_argument(
        "--metafuse-operations",
        type=int,
        default=0,
        help="metafuse: catalog calls each user makes; the test ends when every user"
        " has made its calls, --run-time is then only a cap (reached first: INCONCLUSIVE). 0: no"
        " quota, the test runs until --run-time (default 0)",
    )
    parser.add_argument(
        "--metafuse-datasets",
        type=int,
        default=len(NAMES),
        help=f"metafuse: how many datasets the users share, 1 to {len(NAMES)}; fewer means more"
        f" contention (default {len(NAMES)})",
    )
    parser.add_argument(
        "--check-timeout",
        type=float,
        default=60.0,
        help="metafuse: seconds the linearizability search may take; undecided is INCONCLUSIVE (default 60)",
    )


@dataclasses.dataclass
class _Recorder:
    """A worker's (or a local run's) side: the shared catalog and its users' histories.

    The catalog is opened by the first call that needs it, not when the test starts: a worker
    that cannot reach the store keeps running, and each of its calls fails on its own (counted
    by Locust, recorded in the history) while the others decide the verdict.
    """

    target: str
    path: str
    base: int
    worker: int
    """This worker's index (0 in a local run)."""
    writers: list[HistoryWriter] = dataclasses.field(default_factory=list)
    numbers: itertools.count[int] = dataclasses.field(default_factory=itertools.count)
    opened: Catalog | None = None
    opening: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def catalog(self) -> Catalog:
        """The shared catalog, opened now if no call has opened it yet (`CatalogError` if it
        cannot be: the next call tries again)."""
        global _ready
        with self.opening:
            if self.opened is None:
                if _ready is not None and _ready[0] == self.target:
                    self.opened, _ready = _ready[1], None
                else:
                    self.opened = Catalog.open(self.target)
            return self.opened

    def new_writer(self) -> HistoryWriter:
        writer = HistoryWriter(self.path, self.base + next(self.numbers))
        self.writers.append(writer)
        return writer

    def finish(self) -> bytes:
        """Flush every user's buffer, close the catalog, return the history and remove its file."""
        for writer in self.writers:
            writer.flush()
        if self.opened is not None:
            with contextlib.suppress(CatalogError):
                self.opened.close()
        with open(self.path, "rb") as file:
            data = file.read()
        os.unlink(self.path)
        return data


@dataclasses.dataclass
class _Collector:
    """The master's (or a local run's) side: setup operations, the workers' answers, the verdict."""

    setup: bytes = b""
    hello: dict[str, str] = dataclasses.field(default_factory=dict)
    pieces: dict[str, list[bytes]] = dataclasses.field(default_factory=dict)
    complete: set[str] = dataclasses.field(default_factory=set)
    replies: dict[tuple[str, int], tuple[int, int]] = dataclasses.field(default_factory=dict)
    probes: itertools.count[int] = dataclasses.field(default_factory=itertools.count)
    first_clocks: dict[str, distributed.ClockOffset] = dataclasses.field(default_factory=dict)
    """Each worker's clock as measured when it said hello, at the start of its test."""
    status: str | None = None
    started: bool = False
    """Whether a test started here (the master's, or a local run's)."""
    finished: int = 0
    """Users that made their `--metafuse-operations` calls (as the workers reported)."""
    ending: bool = False
    """Whether the test is being stopped because every user made its calls."""


_recorder: _Recorder | None = None
_collector = _Collector()
_ready: tuple[str, Catalog] | None = None
"""A catalog a worker opened before its test, from its own --catalog: the first test's calls
use it if the master names the same catalog."""


@dataclasses.dataclass
class _Clock:
    """A worker's wall clock: the real one, plus a step taken after the first measurement (tests)."""

    step_ns: int = 0
    applied_ns: int = 0
    answered: int = 0

    def now(self) -> int:
        return time.time_ns() + self.applied_ns

    def answered_probe(self) -> None:
        self.answered += 1
        if self.answered == CLOCK_PROBES:
            self.applied_ns = self.step_ns


_clock = _Clock()


def _fail(message: str) -> None:
    """A one-line error for the operator, then exit 2 (Locust's usage error)."""
    sys.stderr.write(f"metafuse: {message}\n")
    sys.exit(2)


def _quota(environment: Environment) -> int:
    """Each user's `--metafuse-operations` (0: none)."""
    return int(getattr(environment.parsed_options, "metafuse_operations", 0) or 0)


def _names(environment: Environment) -> tuple[str, ...]:
    """The datasets of this run: the first `--metafuse-datasets` of `NAMES`."""
    return NAMES[: int(getattr(environment.parsed_options, "metafuse_datasets", len(NAMES)))]


def _check_options(environment: Environment) -> None:
    options = environment.parsed_options
    operations = int(getattr(options, "metafuse_operations", 0) or 0)
    if operations < 0:
        _fail(f"--metafuse-operations must be 0 (no quota) or a positive number of calls, not {operations}")
    datasets = int(getattr(options, "metafuse_datasets", len(NAMES)))
    if not 1 <= datasets <= len(NAMES):
        _fail(f"--metafuse-datasets must be 1 to {len(NAMES)}, not {datasets}")


def _target(environment: Environment) -> str:
    target = str(getattr(environment.parsed_options, "catalog", "") or "")
    if not target:
        _fail(f"--catalog (or {CATALOG_ENV}) is required: a catalog file path or an s3:// URL")
    return target


def _open(environment: Environment) -> Catalog:
    target = _target(environment)
    try:
        return Catalog.open(target)
    except CatalogError as error:
        _fail(str(error))
        raise  # unreachable: _fail exits


def _on_test_start(environment: Environment, **_: Any) -> None:
    global _recorder, _collector
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        _collector = _Collector(started=True)
        _collector.setup = _create_datasets(environment)
    if not isinstance(runner, MasterRunner):
        fd, path = tempfile.mkstemp(prefix="metafuse-locust-", suffix=".jsonl")
        os.close(fd)
        start_history(path)
        index = int(getattr(runner, "worker_index", 0))
        worker = max(index, 0)
        _recorder = _Recorder(_target(environment), path, (worker + 1) * CLIENTS_PER_WORKER, worker)
        if isinstance(runner, WorkerRunner):
            runner.send_message(_HELLO, {"index": index})


def _create_datasets(environment: Environment) -> bytes:
    """Create the run's datasets afresh; return the setup's history lines (client -1)."""
    catalog = _open(environment)
    try:
        invoke = time.time_ns()
        created = recreate(catalog, [tokened(name, "initial") for name in _names(environment)])
        ret = time.time_ns()
    finally:
        catalog.close()
    fd, path = tempfile.mkstemp(prefix="metafuse-locust-setup-", suffix=".jsonl")
    os.close(fd)
    try:
        writer = HistoryWriter(path, SETUP_CLIENT)
        for dataset in created:
            writer.add(
                "create", dataset.name, invoke, ret, "ok", version=dataset.version, token=read_token(dataset)
            )
        writer.flush()
        with open(path, "rb") as file:
            return file.read()
    finally:
        os.unlink(path)


# -- the worker's side of the handshake ----------------------------------------------------------


def _on_init(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        _check_options(environment)
        # Up front, not when the test starts: a worker receives the master's --catalog then, and
        # a catalog that cannot be opened is one line and exit 2 before anyone waits for workers.
        _open(environment).close()
    if isinstance(runner, WorkerRunner):
        _open_early(environment)
        step = os.environ.get(CLOCK_STEP_ENV, "")
        try:
            _clock.step_ns = round(float(step) * 1e6) if step else 0
        except ValueError:
            _fail(f"{CLOCK_STEP_ENV} must be a number of milliseconds, not {step!r}")
        runner.register_message(_COLLECT, _send_history, concurrent=True)
        runner.register_message(_CLOCK, _answer_clock)
    elif isinstance(runner, MasterRunner):
        runner.register_message(_HELLO, _on_hello, concurrent=True)
        runner.register_message(_HISTORY, _on_history)
        runner.register_message(_CLOCK_REPLY, _on_clock_reply)
    if runner is not None and not isinstance(runner, WorkerRunner):
        runner.register_message(_FINISHED, _on_finished)


def _open_early(environment: Environment) -> None:
    """Open the worker's own --catalog (if it was given one) before any test starts.

    Opening a catalog on a store makes an S3 client, seconds of CPU on a loaded machine that
    never yield to gevent's hub: done inside a test, the worker missed its heartbeats, the
    master declared it (and, with every worker opening at once, all of them) missing and
    stopped the test after a few calls. A catalog that cannot be opened now is tried again
    by the test's calls, whose failures Locust counts.
    """
    global _ready
    target = str(getattr(environment.parsed_options, "catalog", "") or "")
    if not target:
        return
    try:
        _ready = (target, Catalog.open(target))
    except CatalogError as error:
        print(f"[metafuse] the catalog cannot be opened yet; the test's calls try again: {error}", flush=True)


def _send_history(environment: Environment, msg: Message) -> None:
    """Stop this worker's users, then send their history to the master in bounded pieces.

    Each user first gets `STOP_GRACE` seconds to finish the task it is in (Locust's graceful
    stop); only a call still running then is cut short, and recorded as unknown.
    """
    global _recorder
    runner = environment.runner
    assert runner is not None
    # Killing a user mid-call can leave a half-made connection to the store open until the
    # process exits (urllib3 closes a socket whose connect failed, not one whose connect was
    # interrupted), and a server that serves one connection at a time then waits on it
    # instead of answering anyone: the other workers' calls stall, and their histories with them.
    ungraceful, environment.stop_timeout = environment.stop_timeout, STOP_GRACE
    try:
        runner.stop()
    finally:
        environment.stop_timeout = ungraceful
    recorder, _recorder = _recorder, None
    data = recorder.finish() if recorder is not None else b""
    pieces = distributed.chunks(data)
    for number, piece in enumerate(pieces):
        runner.send_message(_HISTORY, {"number": number, "last": number == len(pieces) - 1, "data": piece})


def _answer_clock(environment: Environment, msg: Message) -> None:
    assert environment.runner is not None
    environment.runner.send_message(_CLOCK_REPLY, {"probe": msg.data["probe"], "remote": _clock.now()})
    _clock.answered_probe()


# -- the master's side ---------------------------------------------------------------------------


def _on_hello(environment: Environment, msg: Message) -> None:
    """Note the worker, and measure its clock now (this runs in a greenlet of its own)."""
    collector = _collector
    collector.hello[msg.node_id] = f"worker {msg.data['index']} ({msg.node_id})"
    runner = environment.runner
    assert isinstance(runner, MasterRunner)
    clock = _measure_clock(runner, msg.node_id, time.monotonic() + CLOCK_TIMEOUT)
    if clock is not None:
        collector.first_clocks[msg.node_id] = clock


def _on_history(environment: Environment, msg: Message) -> None:
    pieces = _collector.pieces.setdefault(msg.node_id, [])
    if msg.data["number"] == len(pieces):
        pieces.append(bytes(msg.data["data"]))
        if msg.data["last"]:
            _collector.complete.add(msg.node_id)


def _on_finished(environment: Environment, msg: Message) -> None:
    """Count users that made their calls; once all have, stop the test (headless: quit)."""
    collector = _collector
    collector.finished += int(msg.data["users"])
    runner = environment.runner
    assert runner is not None
    users = int(runner.target_user_count)
    if collector.ending or not collector.started or collector.finished < users:
        return
    collector.ending = True
    print(
        f"[metafuse] work: all {users} users made their {_quota(environment)} calls: stopping the test",
        flush=True,
    )
    # Not from this handler: stopping waits for the workers' histories, which arrive through
    # the message listener that is running it.
    gevent.spawn(runner.quit if getattr(environment.parsed_options, "headless", True) else runner.stop)


def _on_clock_reply(environment: Environment, msg: Message) -> None:
    _collector.replies[(msg.node_id, int(msg.data["probe"]))] = (int(msg.data["remote"]), time.time_ns())


def _wait(until: Callable[[], bool], deadline: float) -> bool:
    """Yield to Locust's message listener until `until()` or the monotonic `deadline`."""
    while not until():
        if time.monotonic() >= deadline:
            return False
        gevent.sleep(0.01)
    return True


def _replied(node: str, probe: int) -> bool:
    return (node, probe) in _collector.replies


def _measure_clock(runner: MasterRunner, node: str, deadline: float) -> distributed.ClockOffset | None:
    probes = []
    for _ in range(CLOCK_PROBES):
        probe = next(_collector.probes)
        sent = time.time_ns()
        runner.send_message(_CLOCK, {"probe": probe}, client_id=node)
        if not _wait(functools.partial(_replied, node, probe), deadline):
            break
        remote, received = _collector.replies[(node, probe)]
        probes.append((sent, remote, received))
    return distributed.ClockOffset.from_probes(probes) if probes else None


def _on_test_stop(environment: Environment, **_: Any) -> None:
    global _recorder
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return
    parts = [distributed.Part("the master's setup", _collector.setup, distributed.EXACT)]
    missing: list[str] = []
    if isinstance(runner, MasterRunner):
        deadline = time.monotonic() + float(getattr(environment.parsed_options, "collect_timeout", 30.0))
        # Every worker connected now or that said hello: one still opening the catalog has not
        # said hello yet, but its users may already have written.
        nodes = {
            node.id: f"worker {runner.get_worker_index(node.id)} ({node.id})" for node in runner.clients.all
        }
        nodes.update(_collector.hello)
        asked = time.monotonic()
        for node in nodes:
            runner.send_message(_COLLECT, None, client_id=node)
        _wait(lambda: all(node in _collector.complete for node in nodes), deadline)
        answered = sum(node in _collector.complete for node in nodes)
        print(
            f"[metafuse] histories: {answered} of {len(nodes)} workers answered in"
            f" {time.monotonic() - asked:.2f} s",
            flush=True,
        )
        for node, host in nodes.items():
            # The probes get a deadline of their own: waiting for a dead worker's history may
            # have used up the collection's.
            probing = time.monotonic() + CLOCK_TIMEOUT
            clock = _measure_clock(runner, node, probing) if node in _collector.complete else None
            if clock is None:
                missing.append(host)
                continue
            first = _collector.first_clocks.get(node)
            if first is not None and not clock.agrees(first):
                # The clock stepped or drifted past both bounds: only a bound covering both
                # measurements is safe. Otherwise the end's (usually the tighter: the worker is
                # idle then) is used, since each extra microsecond of width slows the search.
                moved = (clock.offset_ns - first.offset_ns) / 1e6
                print(
                    f"[metafuse] clocks: {host}'s clock moved {moved:+.3f} ms against the master's during"
                    " the run, beyond both measurements' bounds: its intervals cover both",
                    flush=True,
                )
                clock = clock.spanning(first)
            parts.append(distributed.Part(host, b"".join(_collector.pieces[node]), clock))
    else:
        recorder, _recorder = _recorder, None
        if recorder is not None:
            parts.append(distributed.Part("this process", recorder.finish(), distributed.EXACT))
    operations = distributed.merge(parts)
    bound = max((part.clock.uncertainty_ns for part in parts), default=0)
    timeout = float(getattr(environment.parsed_options, "check_timeout", 60.0))
    users = int(getattr(runner, "target_user_count", 0))
    work = distributed.Work(_quota(environment), users, _collector.finished)
    check = functools.partial(
        distributed.judge, operations, missing=missing, bound_ns=bound, timeout=timeout, work=work
    )
    # A native thread, so the hub keeps answering the workers' heartbeats during a long search.
    verdict: distributed.Verdict = gevent.get_hub().threadpool.apply(check)
    for line in verdict.lines():
        print(line, flush=True)
    history = str(getattr(environment.parsed_options, "history", "") or "")
    if history:
        distributed.write(history, operations)
        print(f"[metafuse] verdict: merged history written to {history}", flush=True)
    _collector.status = verdict.status


def _on_quitting(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    if _collector.started and _collector.status is None:
        # Seen once under heavy load: the master quit at --run-time without firing test_stop,
        # so nothing was collected. A run with no verdict must not look like a passing one.
        print(
            "[metafuse] verdict: INCONCLUSIVE: the test ended without a verdict (Locust never stopped it)",
            flush=True,
        )
        environment.process_exit_code = EXIT_INCONCLUSIVE
    elif _collector.status == distributed.NOT_LINEARIZABLE:
        environment.process_exit_code = EXIT_NOT_LINEARIZABLE
    elif _collector.status == distributed.INCONCLUSIVE:
        environment.process_exit_code = EXIT_INCONCLUSIVE


# -- the users -----------------------------------------------------------------------------------


class _CatalogUser(User):
    """A client of the shared catalog whose every call is reported to Locust and recorded."""

    abstract = True

    def on_start(self) -> None:
        assert _recorder is not None, "the test started without a catalog"
        self.catalog = _recorder.catalog
        self.history = _recorder.new_writer()
        self.names = _names(self.environment)
        self.worker = _recorder.worker
        self.quota = _quota(self.environment)
        self.calls = 0
        self.sequence = 0
        self.reported = False

    def begin_task(self) -> None:
        """At the start of each task: a user that made its quota of calls tells the master, once.

        It goes on working until the master stops the test: a worker that got ahead (another
        was descheduled on a loaded machine) would otherwise finish before the others began,
        and no call of theirs would overlap any of its own.
        """
        if self.quota and self.calls >= self.quota and not self.reported:
            self.reported = True
            runner = self.environment.runner
            assert runner is not None
            runner.send_message(_FINISHED, {"users": 1})

    def call(
        self,
        op: str,
        key: str,
        run: Callable[[], T],
        *,
        expected: int | None = None,
        token: str | None = None,
    ) -> T | None:
        """Run one catalog call; report it to Locust and record it. A catalog error returns None."""
        invoke = _clock.now()
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
            ret = _clock.now()
            self.calls += 1
            self.history.call(op, key, invoke, ret, value, error, expected=expected, token=token)
            self.environment.events.request.fire(
                request_type="conflict" if isinstance(error, ConflictError) else "catalog",
                name=op,
                response_time=(time.perf_counter() - started) * 1000,
                response_length=0,
                exception=error
                if isinstance(error, CatalogError) and not isinstance(error, ConflictError)
                else None,
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


events.init_command_line_parser.add_listener(_options)
events.init.add_listener(_on_init)
events.test_start.add_listener(_on_test_start)
events.test_stop.add_listener(_on_test_stop)
events.quitting.add_listener(_on_quitting)
