"""The collection handshake: every worker's history reaches the master, whatever Locust's own events do.

Locust's `test_stop` is no use for it: in a headless run the master stops listening half a
second after it quits, before the workers have stopped. So the collection is its own exchange
of messages:

- a worker says hello when its test starts (`HELLO`), and the master measures its clock then;
- when the test stops, the master asks every worker, connected or that said hello (`COLLECT`);
  the worker stops its users (each may finish its task for `STOP_GRACE` seconds, a call still
  running then is recorded `unknown`) and answers with its history in pieces of at most 1 MB
  (`HISTORY`); the master waits `--collect-timeout` seconds for all of them;
- with `--metafuse-operations`, a user that made its calls says so (`FINISHED`), and once every
  user has, the master stops the test.

The master then measures each worker's clock again; `gather` hands the verdict each history with
its clock, and names the workers whose history did not arrive.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import tempfile
import threading
import time
from typing import Any

import gevent
from locust.env import Environment
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner

from metafuse.catalog import Catalog
from metafuse.errors import CatalogError
from metafuse.stress import distributed
from metafuse.stress.history import SETUP_CLIENT, HistoryWriter, read_token
from metafuse.stress.history import start as start_history
from metafuse.stress.scenarios._content import recreate, tokened

from . import _clocks, _settings

CLIENTS_PER_WORKER = 100_000
"""Worker *i*'s users are clients `CLIENTS_PER_WORKER * (i + 1)` and up in the history."""
STOP_GRACE = 5.0
"""Seconds a worker's users get to finish their task when the master collects the histories,
before a call still running is cut short (and recorded as unknown)."""
HELLO, COLLECT = "metafuse_hello", "metafuse_collect"
"""The messages of the handshake: a worker's hello, the master's request for its history."""
HISTORY, FINISHED = "metafuse_history", "metafuse_finished"
"""A piece of a worker's history; a number of users that made their calls."""


@dataclasses.dataclass
class Recorder:
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
        with self.opening:
            if self.opened is None:
                if state.ready is not None and state.ready[0] == self.target:
                    self.opened, state.ready = state.ready[1], None
                else:
                    self.opened = Catalog.open(self.target)
            return self.opened

    def new_writer(self) -> HistoryWriter:
        """The history of one more user (the next client number)."""
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
class Collector:
    """The master's (or a local run's) side: setup operations, the workers' answers, the verdict."""

    setup: bytes = b""
    hello: dict[str, str] = dataclasses.field(default_factory=dict)
    pieces: dict[str, list[bytes]] = dataclasses.field(default_factory=dict)
    complete: set[str] = dataclasses.field(default_factory=set)
    clocks: _clocks.Measurements = dataclasses.field(default_factory=_clocks.Measurements)
    status: str | None = None
    started: bool = False
    """Whether a test started here (the master's, or a local run's)."""
    finished: int = 0
    """Users that made their `--metafuse-operations` calls (as the workers reported)."""
    ending: bool = False
    """Whether the test is being stopped because every user made its calls."""


@dataclasses.dataclass
class State:
    """This process's part in the current test (one test at a time)."""

    recorder: Recorder | None = None
    collector: Collector = dataclasses.field(default_factory=Collector)
    ready: tuple[str, Catalog] | None = None
    """A catalog a worker opened before its test, from its own --catalog: the first test's calls
    use it if the master names the same catalog."""


state = State()


def on_init(environment: Environment, **_: Any) -> None:
    """`init` listener: check the options, and register the handshake's and the clocks' messages."""
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        _settings.check(environment)
        # Up front, not when the test starts: a worker receives the master's --catalog then, and
        # a catalog that cannot be opened is one line and exit 2 before anyone waits for workers.
        _settings.open_catalog(environment).close()
    if isinstance(runner, WorkerRunner):
        _open_early(environment)
        step = os.environ.get(_clocks.STEP_ENV, "")
        try:
            _clocks.set_step(step)
        except ValueError:
            _settings.fail(f"{_clocks.STEP_ENV} must be a number of milliseconds, not {step!r}")
        runner.register_message(COLLECT, _send_history, concurrent=True)
        runner.register_message(_clocks.PROBE, _clocks.answer)
    elif isinstance(runner, MasterRunner):
        runner.register_message(HELLO, _on_hello, concurrent=True)
        runner.register_message(HISTORY, _on_history)
        runner.register_message(_clocks.REPLY, _on_clock_reply)
    if runner is not None and not isinstance(runner, WorkerRunner):
        runner.register_message(FINISHED, _on_finished)


def on_test_start(environment: Environment, **_: Any) -> None:
    """`test_start` listener: the master creates the datasets; a worker starts its history."""
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        state.collector = Collector(started=True)
        state.collector.setup = _create_datasets(environment)
    if not isinstance(runner, MasterRunner):
        fd, path = tempfile.mkstemp(prefix="metafuse-locust-", suffix=".jsonl")
        os.close(fd)
        start_history(path)
        index = int(getattr(runner, "worker_index", 0))
        worker = max(index, 0)
        base = (worker + 1) * CLIENTS_PER_WORKER
        state.recorder = Recorder(_settings.target(environment), path, base, worker)
        if isinstance(runner, WorkerRunner):
            runner.send_message(HELLO, {"index": index})


def _create_datasets(environment: Environment) -> bytes:
    """Create the run's datasets afresh; return the setup's history lines (client -1)."""
    catalog = _settings.open_catalog(environment)
    try:
        invoke = time.time_ns()
        created = recreate(catalog, [tokened(name, "initial") for name in _settings.names(environment)])
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


# -- the worker's side ---------------------------------------------------------------------------


def _open_early(environment: Environment) -> None:
    """Open the worker's own --catalog (if it was given one) before any test starts.

    Opening a catalog on a store makes an S3 client, seconds of CPU on a loaded machine that
    never yield to gevent's hub: done inside a test, the worker missed its heartbeats, the
    master declared it (and, with every worker opening at once, all of them) missing and
    stopped the test after a few calls. A catalog that cannot be opened now is tried again
    by the test's calls, whose failures Locust counts.
    """
    named = str(_settings.option(environment, "catalog", "") or "")
    if not named:
        return
    try:
        state.ready = (named, Catalog.open(named))
    except CatalogError as error:
        print(f"[metafuse] the catalog cannot be opened yet; the test's calls try again: {error}", flush=True)


def _send_history(environment: Environment, msg: Message) -> None:
    """Stop this worker's users, then send their history to the master in bounded pieces.

    Each user first gets `STOP_GRACE` seconds to finish the task it is in (Locust's graceful
    stop); only a call still running then is cut short, and recorded as unknown.
    """
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
    recorder, state.recorder = state.recorder, None
    data = recorder.finish() if recorder is not None else b""
    pieces = distributed.chunks(data)
    for number, piece in enumerate(pieces):
        runner.send_message(HISTORY, {"number": number, "last": number == len(pieces) - 1, "data": piece})


# -- the master's side ---------------------------------------------------------------------------


def _on_hello(environment: Environment, msg: Message) -> None:
    """Note the worker, and measure its clock now (this runs in a greenlet of its own)."""
    collector = state.collector
    collector.hello[msg.node_id] = f"worker {msg.data['index']} ({msg.node_id})"
    runner = environment.runner
    assert isinstance(runner, MasterRunner)
    clock = _clocks.measure(runner, collector.clocks, msg.node_id, time.monotonic() + _clocks.TIMEOUT)
    if clock is not None:
        collector.clocks.first[msg.node_id] = clock


def _on_history(environment: Environment, msg: Message) -> None:
    collector = state.collector
    pieces = collector.pieces.setdefault(msg.node_id, [])
    if msg.data["number"] == len(pieces):
        pieces.append(bytes(msg.data["data"]))
        if msg.data["last"]:
            collector.complete.add(msg.node_id)


def _on_clock_reply(environment: Environment, msg: Message) -> None:
    _clocks.note_reply(state.collector.clocks, msg)


def _on_finished(environment: Environment, msg: Message) -> None:
    """Count users that made their calls; once all have, stop the test (headless: quit)."""
    collector = state.collector
    collector.finished += int(msg.data["users"])
    runner = environment.runner
    assert runner is not None
    users = int(runner.target_user_count)
    if collector.ending or not collector.started or collector.finished < users:
        return
    collector.ending = True
    calls = _settings.quota(environment)
    print(f"[metafuse] work: all {users} users made their {calls} calls: stopping the test", flush=True)
    # Not from this handler: stopping waits for the workers' histories, which arrive through
    # the message listener that is running it.
    headless = _settings.option(environment, "headless", True)
    gevent.spawn(runner.quit if headless else runner.stop)


def gather(environment: Environment) -> tuple[list[distributed.Part], list[str]]:
    """At the end of a test: every history of the run, each with its clock, and the hosts missing.

    The master asks every worker and waits `--collect-timeout` for their answers, then measures
    the clock of each that answered; a local run hands over its own history.
    """
    runner = environment.runner
    collector = state.collector
    parts = [distributed.Part("the master's setup", collector.setup, distributed.EXACT)]
    missing: list[str] = []
    if not isinstance(runner, MasterRunner):
        recorder, state.recorder = state.recorder, None
        if recorder is not None:
            parts.append(distributed.Part("this process", recorder.finish(), distributed.EXACT))
        return parts, missing
    deadline = time.monotonic() + float(_settings.option(environment, "collect_timeout", 30.0))
    # Every worker connected now or that said hello: one still opening the catalog has not
    # said hello yet, but its users may already have written.
    nodes = {node.id: f"worker {runner.get_worker_index(node.id)} ({node.id})" for node in runner.clients.all}
    nodes.update(collector.hello)
    asked = time.monotonic()
    for node in nodes:
        runner.send_message(COLLECT, None, client_id=node)
    _clocks.wait_until(lambda: all(node in collector.complete for node in nodes), deadline)
    answered = sum(node in collector.complete for node in nodes)
    took = time.monotonic() - asked
    print(f"[metafuse] histories: {answered} of {len(nodes)} workers answered in {took:.2f} s", flush=True)
    for node, host in nodes.items():
        # The probes get a deadline of their own: waiting for a dead worker's history may
        # have used up the collection's.
        probing = time.monotonic() + _clocks.TIMEOUT
        clock = None
        if node in collector.complete:
            clock = _clocks.measure(runner, collector.clocks, node, probing)
        if clock is None:
            missing.append(host)
            continue
        first = collector.clocks.first.get(node)
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
        parts.append(distributed.Part(host, b"".join(collector.pieces[node]), clock))
    return parts, missing
