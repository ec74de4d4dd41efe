"""Runs one scenario: setup, clients as threads or spawned processes, a watchdog, then invariants.

Owns `run_scenario`: the catalog (a temporary one by default), the faults and perturbation of the
run, the hand-over to `ThreadRun` or `ProcessRun`, and the assembly of the `ScenarioResult` from
`_run_verdicts`. How clients start and are watched lives in `_thread_run` and `_process_run`.

It evaluates no invariant itself (`_run_verdicts` does). Of the catalog's private modules it imports
only `_logcommits`, for the store-URL test and the replica root it sets for the run and restores
after it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import random
import shutil
import tempfile

from .. import faults as fault_hooks
from .. import perturb as perturbation
from .._logcommits import REPLICA_ROOT_ENV, is_store_url
from ..catalog import Catalog
from . import history as op_history
from . import scenarios as _builtin  # noqa: F401 - registers the built-in scenarios by name
from ._process_run import ProcessRun
from ._run_settings import run_settings, scheduled_operations
from ._run_verdicts import clients_finished, evaluate, linearizable, memory, scenario_metrics
from ._thread_run import ThreadRun
from .config import StressConfig
from .progress import Progress
from .recorder import merge
from .resources import catalog_fds, count_open_fds
from .result import ScenarioResult, clients_table, operations_table, series_table
from .scenario import RunView, Scenario, SetupContext

log = logging.getLogger("metafuse.stress")


def run_scenario(
    scenario: Scenario,
    config: StressConfig,
    *,
    path: str | None = None,
    faults: tuple[str, ...] = (),
    progress: bool | float = False,
) -> ScenarioResult:
    """Run `scenario` once and return its result; never hangs past duration + the watchdog's cap.

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
            run_class = ProcessRun if mode == "process" else ThreadRun
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
                verdicts = [clients_finished(view)]
                verdicts += [evaluate(invariant, view) for invariant in scenario.invariants]
                if checked_history is not None:
                    verdicts.append(linearizable(checked_history))
                metrics = scenario_metrics(scenario, view)
                metrics.update(memory(mode, outcome))
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
