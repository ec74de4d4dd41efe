"""Proof that the invariants bite: run scenarios with one deliberate bug on, expect a failure.

For every fault hook in `metafuse.faults`, the scenarios named here run briefly with the fault
switched on; the bug counts as caught when one of the invariants named beside it fails. Each
scenario also runs once with no fault under the same settings (the control): those invariants
must hold there, or a "catch" would prove nothing.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable

from .config import StressConfig
from .result import ScenarioResult
from .runner import run_scenario
from .scenario import REGISTRY


@dataclasses.dataclass(frozen=True)
class Probe:
    """One way to catch a bug: a scenario, the invariants that should fail, and run settings."""

    scenario: str
    invariants: tuple[str, ...]
    min_clients: int = 4
    min_duration: int = 1
    backoff_scale: float = 1.0
    max_attempts: int = 5
    lockstep: bool = False
    """Run optimistic_lock_resolution so that every optimistic attempt conflicts by construction."""
    store: bool = False
    """Run on a catalog on an object store (`log+file://` in a temporary directory), not on a file."""


PROBES: dict[str, tuple[Probe, ...]] = {
    "lost_update": (
        Probe("concurrent_writers", ("conflicts_detected", "version_chain", "final_content")),
        Probe("optimistic_lock_resolution", ("no_lost_update",), lockstep=True),
    ),
    "stale_cache": (Probe("cache_invalidation_race", ("no_stale_read",)),),
    "connection_leak": (Probe("connection_cleanup", ("connections_closed", "fds_restored")),),
    "torn_write": (Probe("cache_invalidation_race", ("no_torn_read",)),),
    # In lockstep every optimistic attempt of a round has exactly one winner, so with 4 clients
    # and a bound of 2 the last update of each round needs 4 attempts unless its second one
    # runs under the writer lock, as it must: the bound is exceeded in every round, by design.
    "unbounded_retry": (
        Probe(
            "optimistic_lock_resolution",
            ("attempts_bounded",),
            backoff_scale=0.0,
            max_attempts=2,
            lockstep=True,
        ),
    ),
    "outside_blind": (Probe("outside_writer", ("no_stale_read", "updates_within_bound")),),
    "path_spelling": (Probe("path_aliases", ("no_stale_read",)),),
    "close_unguarded": (Probe("lifecycle", ("closed_refused", "only_closed_errors")),),
    "fork_unsafe": (Probe("lifecycle", ("children_ok",)),),
    # A store-only scenario: it runs on a temporary directory store, where every client's
    # first stall crosses the retention by construction.
    "unchecked_log": (Probe("stalled_writer", ("acknowledged_kept", "stalls_refused")),),
    "trusting_probe": (Probe("store_chaos", ("no_silent_damage", "damage_reported")),),
    # A store-only scenario: every client is a machine whose writer threads share its catalog,
    # so saves are grouped and groups of different clients race for the log's numbers.
    "unchecked_group": (Probe("grouped_writers", ("version_chain",)),),
    # Every client reads both flags of its pair before any of them writes, so without read
    # validation every round of a pair ends with both flags on, by construction. On a file the
    # writer lock keeps the fault from mattering: the probe runs on a store.
    "unvalidated_reads": (Probe("write_skew", ("never_both_on", "serializable"), store=True),),
    # Savers meet at a barrier each round, so groups mix right saves with the wrong one in every run.
    "group_abort": (Probe("group_commit_conflicts", ("passed_checks_committed",)),),
    "early_ack": (Probe("group_commit_conflicts", ("acknowledged_visible",)),),
    # Every fork happens while threads save back to back: the child inherits a busy line.
    "fork_queue": (Probe("fork_writers", ("children_wrote",)),),
}
"""For each fault, the probes expected to catch it."""


@dataclasses.dataclass
class BugVerdict:
    """Whether one bug was caught in one mode, and by which invariants."""

    bug: str
    mode: str
    caught_by: list[str]
    control_failures: list[str]

    @property
    def caught(self) -> bool:
        """True when an invariant failed with the bug on and held in the control run."""
        return bool(self.caught_by) and not self.control_failures


def probe_config(
    probe: Probe, mode: str, *, duration: int, clients: int, seed: int, perturb: str | None = None
) -> StressConfig:
    """Return the run settings of `probe` in `mode`: at least its own clients and duration.

    `perturb` is the run's schedule perturbation (`seed=N,p=P`; None: as the environment has it)."""
    return StressConfig(
        clients=max(clients, probe.min_clients),
        duration=max(duration, probe.min_duration),
        mode=mode,
        seed=seed,
        kills=10,
        backoff_scale=probe.backoff_scale,
        max_attempts=probe.max_attempts,
        lockstep=probe.lockstep,
        perturb=perturb,
    )


def run_selfcheck(
    modes: tuple[str, ...],
    *,
    duration: int,
    clients: int,
    seed: int,
    bugs: tuple[str, ...] = tuple(PROBES),
    on_result: Callable[[BugVerdict], None] | None = None,
) -> list[BugVerdict]:
    """Run every probe of every bug in every mode; return one verdict per bug and mode."""
    verdicts = []
    for mode in modes:
        controls: dict[tuple[str, int, int, str], set[str]] = {}
        for bug in bugs:
            caught_by: list[str] = []
            control_failures: list[str] = []
            for probe in PROBES[bug]:
                config = probe_config(probe, mode, duration=duration, clients=clients, seed=seed)
                key = (probe.scenario, config.clients or 0, config.duration or 0, str(probe))
                if key not in controls:
                    controls[key] = failed_invariants(run_probe(probe, config))
                failed = failed_invariants(run_probe(probe, config, faults=(bug,)))
                caught_by += [f"{probe.scenario}.{name}" for name in probe.invariants if name in failed]
                control_failures += [
                    f"{probe.scenario}.{name}" for name in probe.invariants if name in controls[key]
                ]
            verdict = BugVerdict(bug, mode, caught_by, control_failures)
            verdicts.append(verdict)
            if on_result is not None:
                on_result(verdict)
    return verdicts


def run_probe(probe: Probe, config: StressConfig, *, faults: tuple[str, ...] = ()) -> ScenarioResult:
    """Run the scenario of `probe` once, on a fresh catalog of the kind the probe names."""
    if not probe.store:
        return run_scenario(REGISTRY[probe.scenario], config, faults=faults)
    with tempfile.TemporaryDirectory(prefix="metafuse-selfcheck-store-") as workdir:
        url = f"log+file://{os.path.join(workdir, 'store')}"
        return run_scenario(REGISTRY[probe.scenario], config, path=url, faults=faults)


def failed_invariants(result: ScenarioResult) -> set[str]:
    """Return the names of the invariants that failed in `result` (an inconclusive one did not)."""
    return {invariant.name for invariant in result.invariants if invariant.failed}


# -- histories ---------------------------------------------------------------------------------

HISTORY_PROBES: dict[str, str] = {
    "lost_update": "concurrent_writers",
    "stale_cache": "cache_invalidation_race",
    "torn_write": "cache_invalidation_race",
}
"""For each fault that corrupts data, the scenario whose recorded history it must make non-linearizable."""


@dataclasses.dataclass
class HistoryVerdict:
    """Whether a bug's recorded history failed the linearizability check while the control passed."""

    bug: str
    mode: str
    scenario: str
    operations: int
    failing_keys: list[str]
    control_failing_keys: list[str]
    example: str = ""

    @property
    def caught(self) -> bool:
        """True when some key's history is not linearizable with the bug on, and every key is without."""
        return bool(self.failing_keys) and not self.control_failing_keys


def run_history_probe(
    bug: str,
    mode: str,
    *,
    duration: int,
    clients: int,
    seed: int,
    controls: dict[tuple[str, str], list[str]] | None = None,
) -> HistoryVerdict:
    """Run the scenario of `bug` with a history, with the bug on and off, and check both histories.

    `controls` caches the control run's failing keys by (scenario, mode), so bugs sharing a
    scenario share one control run.
    """
    # Imported here to keep this probe's section self-contained.
    from .history import read_history  # noqa: PLC0415
    from .linearizability import check  # noqa: PLC0415

    name = HISTORY_PROBES[bug]
    controls = {} if controls is None else controls
    with tempfile.TemporaryDirectory(prefix="metafuse-history-") as workdir:

        def failing(faults: tuple[str, ...]) -> tuple[int, list[str], str]:
            path = os.path.join(workdir, f"{'-'.join(faults) or 'control'}.jsonl")
            config = StressConfig(
                clients=max(clients, 4), duration=max(duration, 1), mode=mode, seed=seed, history=path
            )
            run_scenario(REGISTRY[name], config, faults=faults)
            operations = read_history(path)
            bad = [result for result in check(operations) if result.linearizable is not True]
            example = ""
            if bad and bad[0].counterexample is not None:
                example = bad[0].counterexample.describe(min(op.invoke for op in operations))[0]
            return len(operations), [result.key for result in bad], example

        if (name, mode) not in controls:
            controls[(name, mode)] = failing(())[1]
        operations, keys, example = failing((bug,))
    return HistoryVerdict(bug, mode, name, operations, keys, controls[(name, mode)], example)
