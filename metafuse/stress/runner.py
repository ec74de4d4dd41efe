"""Runs one scenario: setup, clients as threads or spawned processes, a watchdog, then invariants."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import MutableSequence
from typing import Any

from .. import faults as fault_hooks
from .. import perturb as perturbation
from .._logcommits import REPLICA_ROOT_ENV, is_store_url
from ..catalog import Catalog
from . import history as op_history
from . import scenarios as _builtin  # noqa: F401 - registers the built-in scenarios by name
from .client import Board, ClientContext, Schedule
from .config import StressConfig
from .control import ProcessControl
from .gate import BarrierGate, Flag
from .linearizability import check as check_linearizable
from .progress import Progress
from .recorder import Recorder, merge
from .resources import RssProbe, catalog_fds, count_open_fds, rss_growth
from .result import ScenarioResult, clients_table, operations_table, series_table
from .scenario import REGISTRY, InvariantResult, RunView, Scenario, SetupContext

log = logging.getLogger("metafuse.stress")

WATCHDOG_GRACE = 5.0
"""Seconds past the duration that clients get to finish before they are declared hung."""
STARTUP_TIMEOUT = 60.0
"""Seconds client processes get to start before the run begins without the stragglers."""


@dataclasses.dataclass
class _Outcome:
    recorders: list[Recorder]
    reports: Any
    elapsed: float
    hung: list[int]
    crashed: list[int]
    killed: list[int]
    rss: tuple[int, int] = (0, 0)  # thread mode: this process after warm-up, and as clients stop
    left_open: bool = False  # thread mode: the shared catalog stayed open under a hung client
    interrupted: bool = False  # Ctrl-C stopped the clients early; the figures cover what ran


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


def run_scenario(
    scenario: Scenario,
    config: StressConfig,
    *,
    path: str | None = None,
    faults: tuple[str, ...] = (),
    progress: bool | float = False,
) -> ScenarioResult:
    """Run `scenario` once and return its result; never hangs past duration + the watchdog grace.

    With no `path` the catalog lives in a temporary directory that is removed afterwards.
    `faults` names fault hooks (see `metafuse.faults`) switched on for this run only, in this
    process and in every client process. `progress` is True for a redrawn status line, a number
    of seconds for a progress line that often, False for none. Ctrl-C stops the clients and
    returns the result so far, marked `interrupted`.
    """
    # Faults already on (METAFUSE_FAULTS, or an enclosing `faults.enabled`) are part of the run,
    # and so is a perturbation already on (METAFUSE_PERTURB) when the config names none.
    faults = tuple(sorted(set(faults) | fault_hooks.current()))
    if config.perturb is None and perturbation.current() is not None:
        config = dataclasses.replace(config, perturb=str(perturbation.current()))
    clients = config.clients_for(scenario.default_clients)
    duration = config.duration_for(scenario.default_duration)
    mode = "process" if scenario.always_process else config.mode
    settings = run_settings(
        scenario, config, path, mode=mode, clients=clients, duration=duration, faults=faults
    )
    workdir = history_dir = None
    outcome = None
    checked_history = None
    if scenario.history_checked and config.check_history:
        if config.history is None:
            history_dir = tempfile.mkdtemp(prefix="metafuse-stress-history-")
            config = dataclasses.replace(config, history=os.path.join(history_dir, "history.jsonl"))
        checked_history = config.history
    if path is None:
        workdir = tempfile.mkdtemp(prefix="metafuse-stress-")
        path = os.path.join(workdir, "catalog.db")
        if scenario.store_only is not None:
            path = f"log+file://{os.path.join(workdir, 'store')}"
    elif is_store_url(path):
        # Every client's replica in one directory of the run's, removed afterwards: a killed
        # client process cannot remove its own.
        workdir = tempfile.mkdtemp(prefix="metafuse-stress-replicas-")
    replicas = _ReplicaRoot(workdir if path is not None and is_store_url(path) else None)
    log.debug("%s: %d %s clients, %d s, seed %d", scenario.name, clients, mode, duration, config.seed)
    try:
        with fault_hooks.enabled(*faults), replicas, _perturbing(config.perturb):
            setup = SetupContext(clients, duration, config.seed, random.Random(config.seed), path, config)
            if config.history is not None:
                op_history.start(config.history)
            with Catalog.open(path, synchronous=config.synchronous) as catalog:
                shared = scenario.setup(catalog, setup)
            # Quiescent points: no client has started yet / every client has stopped. The
            # verdict counts the catalog's own files; the whole process is a reported figure.
            fd_before, process_fds_before = catalog_fds(path), count_open_fds()
            label = f"{scenario.name} ({clients} {mode} clients)"
            meter = Progress(label, duration, enabled=progress)
            run_class = _ProcessRun if mode == "process" else _ThreadRun
            outcome = run_class(scenario, config, path, clients, duration, shared, faults, meter).run()
            meter.clear()
            fd_after, process_fds_after = catalog_fds(path), count_open_fds()
            with Catalog.open(path, synchronous=config.synchronous) as catalog:
                view = RunView(
                    scenario=scenario.name,
                    mode=mode,
                    clients=clients,
                    duration=duration,
                    seed=config.seed,
                    shared=shared,
                    recorders=outcome.recorders,
                    merged=merge(outcome.recorders),
                    reports=outcome.reports,
                    catalog=catalog,
                    elapsed=outcome.elapsed,
                    hung=outcome.hung,
                    crashed=outcome.crashed,
                    killed=outcome.killed,
                    fd_before=fd_before,
                    fd_after=fd_after,
                )
                verdicts = [_clients_finished(view)]
                verdicts += [_evaluate(invariant, view) for invariant in scenario.invariants]
                if checked_history is not None:
                    verdicts.append(_linearizable(checked_history))
                metrics = _metrics(scenario, view)
                metrics.update(_memory(mode, outcome))
                metrics.update(process_fds_before=process_fds_before, process_fds_after=process_fds_after)
                metrics["catalog"] = (
                    "object store, a replica per client, linearizable reads" if is_store_url(path) else "file"
                )
        merged = view.merged
        scheduled = None if config.rate is None else scheduled_operations(config, clients, outcome.elapsed)
        started = sum(sum(counts.values()) for counts in merged.counts.values())
        return ScenarioResult(
            scenario=scenario.name,
            title=scenario.title,
            mode=mode,
            clients=clients,
            duration=duration,
            elapsed=round(outcome.elapsed, 3),
            seed=config.seed,
            operations=operations_table(merged, outcome.elapsed),
            retries={
                "operations_retried": merged.operations_retried,
                "total_retries": merged.total_retries,
                "longest_conflict_streak": merged.longest_conflict_streak,
            },
            metrics=metrics,
            invariants=verdicts,
            errors=merged.errors,
            faults=sorted(faults),
            interrupted=outcome.interrupted,
            series=series_table(merged, outcome.elapsed),
            per_client=clients_table(outcome.recorders),
            settings=settings,
            scheduled=scheduled,
            never_started=None if scheduled is None else max(0, scheduled - started),
        )
    finally:
        if workdir is not None and outcome is not None and outcome.left_open:
            # Removing the files would pull them from under the hung client, like a close.
            log.warning("%s: kept %s for the client still using it", scenario.name, workdir)
        elif workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        if history_dir is not None:
            shutil.rmtree(history_dir, ignore_errors=True)


def _perturbing(text: str | None) -> contextlib.AbstractContextManager[object]:
    """Schedule perturbation as `text` says (`seed=N,p=P`) for the run, here and in its client processes."""
    if text is None:
        return contextlib.nullcontext()
    settings = perturbation.parse(text)
    return perturbation.enabled(settings.seed, settings.p)


SETTINGS = (
    "mode",
    "clients",
    "duration",
    "seed",
    "rate",
    "ramp_up",
    "warmup",
    "catalog",
    "catalog_path",
    "synchronous",
    "kills",
    "faults",
    "history",
    "max_attempts",
    "backoff_scale",
    "lockstep",
    "perturb",
    "catalogs",
)
"""The keys of `ScenarioResult.settings`: every setting that changes what a run's clients do.
`catalog` is its kind (temporary file, file, s3, log+file); `catalog_path` the file or URL a
user named (None for a temporary file); `kills` is None for a scenario that kills nothing;
`perturb` the schedule perturbation (`seed=N,p=P`, None: off); `catalogs` how thread-mode
clients got their Catalog (None in process mode and for scenarios whose clients open their own)."""


def run_settings(
    scenario: Scenario,
    config: StressConfig,
    path: str | None,
    *,
    mode: str,
    clients: int,
    duration: int,
    faults: tuple[str, ...],
) -> dict[str, Any]:
    """Return the settings (`SETTINGS`, in that order) of `scenario` run with `config` on `path`."""
    if path is None:
        kind = "temporary file"
    elif is_store_url(path):
        kind = path.split(":", 1)[0]
    else:
        kind = "file"
    return {
        "mode": mode,
        "clients": clients,
        "duration": duration,
        "seed": config.seed,
        "rate": config.rate,
        "ramp_up": config.ramp_up,
        "warmup": config.warmup,
        "catalog": kind,
        "catalog_path": path,
        "synchronous": config.synchronous,
        "kills": config.kills if scenario.driver is not None else None,
        "faults": sorted(faults),
        "history": config.history is not None,
        "max_attempts": config.max_attempts,
        "backoff_scale": config.backoff_scale,
        "lockstep": config.lockstep,
        "perturb": config.perturb,
        "catalogs": catalogs_shape(scenario, config) if mode == "thread" else None,
    }


def catalogs_shape(scenario: Scenario, config: StressConfig) -> str | None:
    """How thread-mode clients of `scenario` get their Catalog (`config.CATALOGS`), or None when
    the scenario's clients open their own. A scenario that needs `own_catalogs` keeps them."""
    if not scenario.shared_catalog:
        return None
    if scenario.own_catalogs:
        return scenario.catalogs
    return config.catalogs or scenario.catalogs


def _own_catalog(shape: str | None, client: int) -> bool:
    """Whether thread-mode `client` opens a Catalog of its own under `shape` (mixed: odd clients)."""
    return shape == "per-client" or (shape == "mixed" and client % 2 == 1)


def scheduled_operations(config: StressConfig, clients: int, elapsed: float) -> int:
    """Return how many operations an open-model run's schedule made due in its first `elapsed`
    seconds, over all `clients` (each client's share, as `Schedule` spaces it)."""
    assert config.rate is not None
    end = int(elapsed * 1e9)
    return sum(
        Schedule(config.rate, clients, client, 0, config.ramp_up).first_at_or_after(end)
        for client in range(clients)
    )


class _ReplicaRoot:
    """Points `METAFUSE_REPLICA_DIR` at `directory` for a run (client processes inherit it)."""

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        self._previous: str | None = None

    def __enter__(self) -> None:
        if self.directory is not None:
            self._previous = os.environ.get(REPLICA_ROOT_ENV)
            os.environ[REPLICA_ROOT_ENV] = self.directory

    def __exit__(self, *exc: object) -> None:
        if self.directory is None:
            return
        if self._previous is None:
            os.environ.pop(REPLICA_ROOT_ENV, None)
        else:
            os.environ[REPLICA_ROOT_ENV] = self._previous


def _evaluate(invariant: Any, view: RunView) -> InvariantResult:
    try:
        ok, detail = invariant.check(view)
    except Exception as error:  # a crashing check is a failed check, reported, not raised
        ok, detail = False, f"check raised {type(error).__name__}: {error}"
    state = "inconclusive" if ok is None else "ok" if ok else "FAILED"
    log.debug("invariant %s: %s (%s)", invariant.name, state, detail)
    return InvariantResult(invariant.name, invariant.promise, bool(ok), detail, inconclusive=ok is None)


HISTORY_CHECK_SECONDS = 30.0
"""Seconds the `linearizable` check may search; keys still undecided then make it inconclusive."""


def _linearizable(path: str) -> InvariantResult:
    """The history the run recorded at `path`, judged as `stress check-history` judges it."""
    promise = "every dataset's recorded history is linearizable (what `stress check-history` checks)"
    try:
        operations = op_history.read_history(path)
    except Exception as error:
        return InvariantResult("linearizable", promise, False, f"history unreadable: {error}")
    results = check_linearizable(operations, timeout=HISTORY_CHECK_SECONDS)
    bad = [result for result in results if result.linearizable is False]
    undecided = [result.key for result in results if result.linearizable is None]
    detail = f"{len(operations)} operations on {len(results)} datasets"
    if bad:
        example = (
            bad[0].counterexample.describe(min(op.invoke for op in operations))[0]
            if bad[0].counterexample
            else ""
        )
        return InvariantResult(
            "linearizable",
            promise,
            False,
            f"{detail}: {len(bad)} not linearizable, first {bad[0].key} {example}".rstrip(),
        )
    if undecided:
        return InvariantResult(
            "linearizable",
            promise,
            False,
            f"{detail}: {len(undecided)} undecided in {HISTORY_CHECK_SECONDS:g} s",
            inconclusive=True,
        )
    return InvariantResult("linearizable", promise, True, f"{detail}: all linearizable")


def _clients_finished(view: RunView) -> InvariantResult:
    problems = []
    if view.hung:
        problems.append(f"clients {view.hung} hung past the watchdog")
    if view.crashed:
        problems.append(f"clients {view.crashed} crashed")
    ok = not problems
    everyone = "the 1 client" if view.clients == 1 else f"all {view.clients} clients"
    detail = "; ".join(problems) if problems else f"{everyone} finished"
    return InvariantResult("clients_finished", "every client finished on time without crashing", ok, detail)


def _metrics(scenario: Scenario, view: RunView) -> dict[str, Any]:
    try:
        return scenario.metrics(view)
    except Exception as error:
        return {"metrics_error": f"{type(error).__name__}: {error}"}


def _memory(mode: str, outcome: _Outcome) -> dict[str, Any]:
    """Resident memory after warm-up and as the clients stopped, of whichever process grew most:
    this one (it holds every client in thread mode, the reports in process mode) or a client
    process (those killed before reporting, or younger than the warm-up, are not counted)."""
    pairs = [outcome.rss]
    if mode == "process":
        pairs += [
            (int(r.metrics.get("rss_warm", 0)), int(r.metrics.get("rss_end", 0))) for r in outcome.recorders
        ]
    measured = [(rss_growth(warm, end), warm, end) for warm, end in pairs]
    measured = [item for item in measured if item[0] is not None]
    if not measured:
        return {}
    growth, warm, end = max(measured)
    return {
        "rss_warm_mb": round(warm / 2**20, 1),
        "rss_end_mb": round(end / 2**20, 1),
        "rss_growth": round(float(growth or 0.0), 4),
    }


def _run_client(scenario: Scenario, ctx: ClientContext) -> None:
    try:
        scenario.client(ctx)
        ctx.recorder.finished = True
    except BaseException as error:
        ctx.recorder.error(f"client {ctx.client} crashed: {type(error).__name__}: {error}")
        log.debug("client %d crashed", ctx.client, exc_info=True)
    finally:
        ctx.publish()
        if ctx.history is not None:
            ctx.history.flush()


class _Run:
    def __init__(
        self,
        scenario: Scenario,
        config: StressConfig,
        path: str,
        clients: int,
        duration: int,
        shared: dict[str, Any],
        faults: tuple[str, ...],
        meter: Progress,
    ) -> None:
        self.scenario = scenario
        self.config = config
        self.path = path
        self.clients = clients
        self.duration = duration
        self.shared = shared
        self.faults = faults
        self.meter = meter


class _ThreadRun(_Run):
    def run(self) -> _Outcome:
        shape = catalogs_shape(self.scenario, self.config)
        owned = [_own_catalog(shape, client) for client in range(self.clients)]
        catalog = (
            Catalog.open(self.path, synchronous=self.config.synchronous)
            if shape is not None and not all(owned)
            else None
        )
        # Several catalogs on one file in one process is a real application shape, and the only
        # one in which thread mode crosses the freshness check between catalogs on every read.
        own = [
            Catalog.open(self.path, synchronous=self.config.synchronous) if mine else None for mine in owned
        ]
        live: MutableSequence[int] = [0] * (3 * self.clients)
        stop = threading.Event()
        gate = BarrierGate(threading.Barrier(self.clients), Flag())
        board = Board([0] * Board.SIZE, threading.Lock())
        reports = self.scenario.report_sink()
        start = time.monotonic()
        deadline = start + self.duration
        contexts = [
            ClientContext(
                client=client,
                clients=self.clients,
                mode="thread",
                path=self.path,
                catalog=own[client] or catalog,
                shared=self.shared,
                seed=self.config.seed,
                start=start,
                deadline=deadline,
                record=self.config.record,
                live=live,
                gate=gate,
                report=reports.append,
                stopped=stop.is_set,
                board=board,
                history=self.config.history,
                rate=self.config.rate,
                ramp_up=self.config.ramp_up,
                warmup=self.config.warmup,
            )
            for client in range(self.clients)
        ]
        threads = [
            threading.Thread(
                target=_run_client, args=(self.scenario, ctx), name=f"stress-{ctx.client}", daemon=True
            )
            for ctx in contexts
        ]
        probe = RssProbe(self.duration)
        interrupted = False
        try:
            for thread in threads:
                thread.start()
            hard_stop = deadline + WATCHDOG_GRACE
            while any(thread.is_alive() for thread in threads) and time.monotonic() < hard_stop:
                for thread in threads:
                    thread.join(0.05)
                    self.meter.update(live, time.monotonic() - start)
        except KeyboardInterrupt:  # stop the clients and report what they did (a second Ctrl-C aborts)
            interrupted = True
            stop.set()
            gate.abort()
            for thread in threads:
                thread.join(WATCHDOG_GRACE / len(threads))
        elapsed = min(time.monotonic(), deadline) - start
        rss = probe.finish()
        hung = [index for index, thread in enumerate(threads) if thread.is_alive()]
        if hung:
            stop.set()
            gate.abort()
            log.warning("%s: clients %s still running after the watchdog", self.scenario.name, hung)
        # A hung client may still be inside the shared catalog: closing it under that client
        # would turn a reported hang into a crash or a half-finished call. Leave it open (its
        # descriptors then show in the leak count, next to the hang that explains them), and
        # close it once the hung clients have finished, if they ever do.
        if catalog is not None and not hung:
            catalog.close()
        elif catalog is not None:
            _close_after(catalog, [threads[index] for index in hung])
        for index, mine in enumerate(own):
            if mine is not None and index not in hung:
                mine.close()
            elif mine is not None:
                _close_after(mine, [threads[index]])
        recorders = [ctx.recorder for ctx in contexts]
        crashed = [r.client for r in recorders if not r.finished and r.client not in hung]
        return _Outcome(
            recorders,
            reports,
            elapsed,
            hung,
            crashed,
            [],
            rss,
            left_open=bool(hung) and (catalog is not None or any(own[index] for index in hung)),
            interrupted=interrupted,
        )


def _close_after(catalog: Catalog, threads: list[threading.Thread]) -> None:
    """Close `catalog` from a background thread once every one of `threads` has ended."""

    def close_when_done() -> None:
        for thread in threads:
            thread.join()
        catalog.close()

    threading.Thread(target=close_when_done, name="stress-close-after-hang", daemon=True).start()


class _Control:
    """The process run's `ProcessControl`: what a scenario's driver may do while it runs."""

    def __init__(self, run: _ProcessRun, rng: random.Random) -> None:
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


class _ProcessRun(_Run):
    def run(self) -> _Outcome:
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
            ready_by = time.monotonic() + STARTUP_TIMEOUT
            while self.ready < self.clients and self.conns and time.monotonic() < ready_by:
                self._pump(0.05)
            self.start = self.start_at.value = time.monotonic()
            self.deadline = self.start + self.duration
            self.go.set()
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
                hard_stop = time.monotonic() + WATCHDOG_GRACE
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
        return _Outcome(
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

        A client gets `WATCHDOG_GRACE` past the deadline, or past the moment it reported ready if
        that came later, and one still starting gets `STARTUP_TIMEOUT` from its spawn: a
        replacement for a killed client, spawned near the deadline on a loaded machine, is still
        importing and opening its catalog (seconds of CPU) when the deadline passes. That is a
        slow start, bounded as the first clients' start is, not a hang.
        """
        limit = self.deadline + WATCHDOG_GRACE
        for slot in self.conns:
            ready = self.ready_at.get(slot)
            if ready is None:
                limit = max(limit, self.spawned_at[slot] + STARTUP_TIMEOUT)
            else:
                limit = max(limit, ready + WATCHDOG_GRACE)
        return limit

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
        go.wait(STARTUP_TIMEOUT)
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
            _run_client(scenario, ctx)
        finally:
            if catalog is not None:
                catalog.close()
            ctx.recorder.metrics["rss_warm"], ctx.recorder.metrics["rss_end"] = probe.finish()
    sender.send(("final", ctx.recorder))
    sender.close()
