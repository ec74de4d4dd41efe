"""Clients as spawned processes: their start, the watchdog, the driver's kills, their records.

Owns `ProcessRun`, the `ProcessControl` it hands a scenario's driver, the picklable job a client
process rebuilds its context from, and the client process's entry point. A hung or killed client
is SIGKILLed and reaped here. Judges nothing (`_run_verdicts` does).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import random
import signal
import time
from collections.abc import MutableSequence
from typing import Any

from .. import faults as fault_hooks
from ..catalog import Catalog
from . import _watchdog
from ._client_run import ClientRun, Outcome, run_client
from .client import Board, ClientContext
from .control import ProcessControl
from .gate import BarrierGate
from .recorder import Recorder
from .resources import RssProbe
from .scenario import REGISTRY

log = logging.getLogger("metafuse.stress")


@dataclasses.dataclass(frozen=True)
class _Job:
    """What a client process needs to rebuild its context (plain, picklable data)."""

    scenario: str
    module: str
    client: int
    incarnation: int
    clients: int
    path: str
    shared: dict[str, Any]
    seed: int
    duration: int
    record: bool
    synchronous: str
    faults: tuple[str, ...]
    log_level: int
    history: str | None = None
    rate: float | None = None
    ramp_up: float = 0.0
    warmup: float = 0.0


class _Control:
    """The process run's `ProcessControl`: what a scenario's driver may do while it runs."""

    def __init__(self, run: ProcessRun, rng: random.Random) -> None:
        self._run = run
        self.rng = rng
        self.state: dict[str, Any] = {}

    @property
    def elapsed(self) -> float:
        """Seconds since the clients started."""
        return time.monotonic() - self._run.start

    @property
    def duration(self) -> int:
        """The run's duration in seconds."""
        return self._run.duration

    @property
    def kills_wanted(self) -> int:
        """How many kills the run's configuration asks for."""
        return self._run.config.kills

    def running(self) -> list[int]:
        """Client slots whose process is alive and has not finished."""
        return sorted(self._run.conns)

    def kill_and_replace(self, slot: int) -> None:
        """SIGKILL the client in `slot` and start a new one in its place."""
        self._run.kill_and_replace(slot)


class ProcessRun(ClientRun):
    """Runs the clients as spawned processes, each with a catalog of its own."""

    def run(self) -> Outcome:
        """Spawn every client, start the clock once all are ready, run the driver, and collect
        the records; kill what the watchdog gives up on."""
        spawn = multiprocessing.get_context("spawn")
        self.spawn_ctx = spawn
        self.live: MutableSequence[int] = spawn.RawArray("q", 3 * self.clients)
        self.stop = spawn.Event()
        self.barrier = spawn.Barrier(self.clients)
        self.flag = spawn.RawValue("b", 0)
        self.board_values = spawn.RawArray("q", Board.SIZE)
        self.board_lock = spawn.Lock()
        self.conns: dict[int, multiprocessing.connection.Connection] = {}
        self.procs: dict[int, Any] = {}
        self.incarnations = [0] * self.clients
        self.recorders: list[Recorder] = []
        self.reports = self.scenario.report_sink()
        self.killed: list[int] = []
        self.crashed: list[int] = []
        self.go = spawn.Event()
        self.start_at = spawn.RawValue("d", 0.0)
        self.ready = 0
        self.spawned_at: dict[int, float] = {}
        self.ready_at: dict[int, float] = {}
        control: ProcessControl = _Control(self, random.Random(self.config.seed ^ 0x5EED))
        interrupted = False
        try:
            for slot in range(self.clients):
                self._spawn(slot)
            # The clock starts when every interpreter has started: spawning 50 of them on two
            # cores takes seconds, which would otherwise eat into the measured duration.
            ready_by = time.monotonic() + _watchdog.STARTUP_TIMEOUT
            while self.ready < self.clients and self.conns and time.monotonic() < ready_by:
                self._pump(0.05)
            self.start = self.start_at.value = time.monotonic()
            self.deadline = self.start + self.duration
            self.go.set()
            self.watch = _watchdog.Watchdog(
                self.deadline, _watchdog.ProcessClientsProgress(self.live, self._running_pids)
            )
            probe = RssProbe(self.duration)
            try:
                while self.conns and time.monotonic() < self._hard_stop():
                    self._pump(0.05)
                    if self.scenario.driver is not None and time.monotonic() < self.deadline:
                        self.scenario.driver(control)
                    self.meter.update(self.live, time.monotonic() - self.start)
            except KeyboardInterrupt:  # clients ignore SIGINT: tell them to stop, collect their records
                interrupted = True
                self.deadline = min(self.deadline, time.monotonic())
                self.stop.set()
                hard_stop = time.monotonic() + _watchdog.WATCHDOG_GRACE
                while self.conns and time.monotonic() < hard_stop:
                    self._pump(0.05)
            self._drain()
            hung = sorted(self.conns)
            rss = probe.finish()
        finally:
            self.stop.set()
            for slot in list(self.conns):
                self._end(slot, signal.SIGKILL)
            for proc in self.procs.values():
                proc.join(5)
        elapsed = min(time.monotonic(), self.deadline) - self.start
        if hung:
            log.warning("%s: client processes %s hung and were killed", self.scenario.name, hung)
        return Outcome(
            self.recorders,
            self.reports,
            elapsed,
            hung,
            self.crashed,
            self.killed,
            rss,
            interrupted=interrupted,
        )

    def _hard_stop(self) -> float:
        """When the watchdog gives up on the slowest client still running.

        Clients get `WATCHDOG_GRACE` past the deadline, extended while they make progress (see
        `_watchdog.Watchdog`), or past the moment one reported ready if that came later, and one
        still starting gets `STARTUP_TIMEOUT` from its spawn: a replacement for a killed client,
        spawned near the deadline on a loaded machine, is still importing and opening its
        catalog (seconds of CPU) when the deadline passes. That is a slow start, bounded as the
        first clients' start is, not a hang.
        """
        limit = self.watch.limit(time.monotonic())
        for slot in self.conns:
            ready = self.ready_at.get(slot)
            if ready is None:
                limit = max(limit, self.spawned_at[slot] + _watchdog.STARTUP_TIMEOUT)
            else:
                limit = max(limit, ready + _watchdog.WATCHDOG_GRACE)
        return limit

    def _running_pids(self) -> list[int]:
        """The process ids of the clients still running (those the watchdog still waits for)."""
        return [pid for slot in self.conns if (pid := self.procs[slot].pid) is not None]

    def _spawn(self, slot: int) -> None:
        incarnation = self.incarnations[slot]
        job = _Job(
            scenario=self.scenario.name,
            module=self.scenario.client.__module__,
            client=slot,
            incarnation=incarnation,
            clients=self.clients,
            path=self.path,
            shared=self.shared,
            seed=self.config.seed + 7_919 * incarnation,
            duration=self.duration,
            record=self.config.record,
            synchronous=self.config.synchronous,
            faults=self.faults,
            log_level=logging.getLogger("metafuse").getEffectiveLevel(),
            history=self.config.history,
            rate=self.config.rate,
            ramp_up=self.config.ramp_up,
            warmup=self.config.warmup,
        )
        receiver, sender = self.spawn_ctx.Pipe(duplex=False)
        proc = self.spawn_ctx.Process(
            target=_process_main,
            args=(
                job,
                sender,
                self.live,
                (self.barrier, self.flag, self.board_values, self.board_lock),
                self.stop,
                self.go,
                self.start_at,
            ),
            name=f"stress-{slot}.{incarnation}",
            daemon=True,
        )
        proc.start()
        sender.close()
        self.conns[slot] = receiver
        self.procs[slot] = proc
        self.spawned_at[slot] = time.monotonic()
        self.ready_at.pop(slot, None)

    def _pump(self, timeout: float) -> None:
        ready = multiprocessing.connection.wait(list(self.conns.values()), timeout)
        by_conn = {id(conn): slot for slot, conn in self.conns.items()}
        for conn in ready:
            assert isinstance(conn, multiprocessing.connection.Connection)
            slot = by_conn[id(conn)]
            try:
                kind, value = conn.recv()
            except Exception:  # EOF or a message cut short by SIGKILL
                self._end(slot, None)
                self.crashed.append(slot)
                self._say_how_it_ended(slot)
                continue
            if kind == "ready":
                self.ready += 1
                self.ready_at[slot] = time.monotonic()
            elif kind == "report":
                self.reports.append(value)
            else:
                self.recorders.append(value)
                if not value.finished:
                    self.crashed.append(slot)
                self._end(slot, None)

    def _say_how_it_ended(self, slot: int) -> None:
        """Log how a client process that sent no record ended: its exit status or its signal."""
        proc = self.procs.get(slot)
        if proc is None:
            return
        proc.join(1.0)
        code = proc.exitcode
        if code is None:
            how = "still running"
        elif code < 0:
            how = f"killed by signal {-code} ({signal.strsignal(-code)})"
        else:
            how = f"exit status {code}"
        log.warning("%s: client %d ended without sending its record (%s)", self.scenario.name, slot, how)

    def _drain(self) -> None:
        """Read every message already waiting: a client whose record has arrived is not hung."""
        while self.conns and multiprocessing.connection.wait(list(self.conns.values()), 0):
            self._pump(0)

    def _end(self, slot: int, sig: int | None) -> None:
        """Stop listening to `slot`; with `sig`, kill its process and reap it.

        A client that ended by itself is not waited for here: its process may take a while to
        exit on a loaded machine, and waiting would hold up reading the other clients' records
        until the watchdog counted them as hung. Every process is reaped when the run ends.
        """
        conn = self.conns.pop(slot, None)
        if conn is not None:
            conn.close()
        proc = self.procs.get(slot)
        if sig is not None and proc is not None and proc.is_alive() and proc.pid is not None:
            os.kill(proc.pid, sig)
            proc.join(5)

    def kill_and_replace(self, slot: int) -> None:
        """SIGKILL the client in `slot`, keep what it reported before dying, spawn its next incarnation."""
        proc = self.procs.get(slot)
        if proc is None or slot not in self.conns or proc.pid is None:
            return
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(5)
        # Drain what it sent before dying (acknowledgements count even if the client died).
        conn = self.conns.pop(slot)
        try:
            while conn.poll(0):
                kind, value = conn.recv()
                if kind == "report":
                    self.reports.append(value)
        except Exception:
            pass
        conn.close()
        self.killed.append(slot)
        self.incarnations[slot] += 1
        self._spawn(slot)


def _process_main(
    job: _Job,
    sender: multiprocessing.connection.Connection,
    live: MutableSequence[int],
    shared: tuple[Any, Any, Any, Any],
    stop: Any,
    go: Any,
    start_at: Any,
) -> None:
    """Entry point of a client process (spawn context)."""
    barrier, flag, board_values, board_lock = shared
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the runner, which stops us cleanly
    logging.basicConfig(level=job.log_level, format="%(processName)s %(name)s: %(message)s")
    __import__(job.module)
    scenario = REGISTRY[job.scenario]
    with fault_hooks.enabled(*job.faults):
        catalog = Catalog.open(job.path, synchronous=job.synchronous) if scenario.shared_catalog else None
        sender.send(("ready", None))
        go.wait(_watchdog.STARTUP_TIMEOUT)
        ctx = ClientContext(
            client=job.client,
            clients=job.clients,
            mode="process",
            path=job.path,
            catalog=catalog,
            shared=job.shared,
            seed=job.seed,
            start=start_at.value,
            deadline=start_at.value + job.duration,
            record=job.record,
            live=live,
            gate=BarrierGate(barrier, flag),
            report=lambda value: sender.send(("report", value)),
            stopped=stop.is_set,
            board=Board(board_values, board_lock),
            history=job.history,
            rate=job.rate,
            ramp_up=job.ramp_up,
            warmup=job.warmup,
        )
        probe = RssProbe(job.duration)
        try:
            run_client(scenario, ctx)
        finally:
            if catalog is not None:
                catalog.close()
            ctx.recorder.metrics["rss_warm"], ctx.recorder.metrics["rss_end"] = probe.finish()
    sender.send(("final", ctx.recorder))
    sender.close()
