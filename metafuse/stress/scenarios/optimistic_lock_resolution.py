"""Scenario 3: in rounds, every client increments one counter through `Catalog.update` at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections import Counter
from typing import Any

from ...catalog import Catalog
from ...errors import ConflictError
from ...model import Dataset
from ..client import ClientContext
from ..scenario import RunView, SetupContext, Verdict, scenario
from ._content import recreate, tokened

NAME = "stress.counter"
BACKOFF = 0.002
"""Base of the full-jitter backoff window (seconds), whatever the number of clients."""
MAX_BACKOFF = 0.05
"""Largest backoff window (seconds)."""
_LOCKSTEP_GRACE = 5.0


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    recreate(catalog, [tokened(NAME, "counter").replace(row_count=0)])
    # A small constant: the bound no longer rests on the backoff. Update's last attempt runs
    # under the writer lock and cannot conflict, so every update succeeds within max_attempts
    # however many clients contend; backoff only spaces the optimistic attempts.
    shared: dict[str, Any] = {
        "backoff": BACKOFF * setup.config.backoff_scale,
        "max_attempts": setup.config.max_attempts,
        "max_backoff": MAX_BACKOFF * setup.config.backoff_scale,
    }
    if setup.config.lockstep:
        shared["lockstep"] = _lockstep_primitives(setup.clients)
    return shared


def _lockstep_primitives(clients: int) -> dict[str, Any]:
    # Spawn-context objects work between threads and reach spawned client processes in their
    # job. One barrier per attempt level k = 1..clients, for the clients - k + 1 updates that
    # make an attempt k in a round (every optimistic level has exactly one winner).
    context = multiprocessing.get_context("spawn")
    return {
        "levels": [context.Barrier(clients - level) for level in range(clients)],
        "probe_lock": context.Lock(),
    }


class Lockstep:
    """Makes every optimistic attempt of a round conflict by construction (selfcheck's setting).

    All updates still making an attempt of level k meet twice: after the conflict that ended
    their attempt k - 1 (so no save of that level is still in flight), and inside `change`, after
    their read and before their save, when the attempt is optimistic. They have then all read the
    same version, so exactly one save wins and every other one conflicts. An attempt is
    optimistic when the writer lock is free inside `change` (probed with a zero-timeout `BEGIN
    IMMEDIATE`, one prober at a time): the locked last attempt holds it, and waiting there would
    only stall the others, who queue for that lock. A barrier that times out breaks, and the run
    goes on without lockstep at that level; `broken` counts such waits.
    """

    def __init__(self, ctx: ClientContext, primitives: dict[str, Any]) -> None:
        self._levels = primitives["levels"]
        self._probe_lock = primitives["probe_lock"]
        self._ctx = ctx
        self._probe = sqlite3.connect(ctx.path, timeout=0, isolation_level=None)
        self.broken = 0

    def writer_lock_free(self) -> bool:
        """Return whether no connection holds the catalog's writer lock right now."""
        with self._probe_lock:
            try:
                self._probe.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return False
            self._probe.execute("ROLLBACK")
            return True

    def meet(self, level: int) -> None:
        """Wait until every update making an attempt of `level` this round has arrived."""
        if level > len(self._levels):
            return
        timeout = max(0.0, self._ctx.deadline - time.monotonic()) + _LOCKSTEP_GRACE
        try:
            self._levels[level - 1].wait(timeout)
        except threading.BrokenBarrierError:
            self.broken += 1

    def close(self) -> None:
        """Close the probe's connection."""
        self._probe.close()


def _increment(dataset: Dataset) -> Dataset:
    return dataset.replace(row_count=(dataset.row_count or 0) + 1)


@scenario(
    "optimistic_lock_resolution",
    title="optimistic lock resolution",
    summary="In rounds, all clients update one counter at once with bounded, jittered retries.",
    setup=_setup,
)
def optimistic_lock_resolution(ctx: ClientContext) -> None:
    """Each round: wait for everyone, then increment the counter within the attempt bound (5)."""
    conflicts: list[int] = []
    attempts_seen: Counter[int] = Counter()  # attempts per update -> updates (constant memory)
    failures: Counter[str] = Counter()
    ctx.recorder.metrics.update(attempts=attempts_seen, failures=failures)
    lockstep = Lockstep(ctx, ctx.shared["lockstep"]) if "lockstep" in ctx.shared else None

    def note(_: ConflictError, attempt: int) -> None:
        conflicts.append(attempt)
        if lockstep is not None:
            lockstep.meet(attempt + 1)

    def change(dataset: Dataset) -> Dataset:
        if lockstep is not None and lockstep.writer_lock_free():
            lockstep.meet(len(conflicts) + 1)
        return _increment(dataset)

    try:
        while ctx.next_round():
            conflicts.clear()
            outcome, _ = ctx.call(
                "update",
                ctx.catalog.update,
                NAME,
                change,
                max_attempts=ctx.shared["max_attempts"],
                backoff=ctx.shared["backoff"],
                max_backoff=ctx.shared["max_backoff"],
                on_conflict=note,
            )
            attempts_seen[len(conflicts) + (1 if outcome == "ok" else 0)] += 1
            if outcome != "ok":
                failures[outcome] += 1
            ctx.recorder.retried(len(conflicts))
    finally:
        if lockstep is not None:
            lockstep.close()
            ctx.recorder.metrics["lockstep_broken"] = lockstep.broken


SCENARIO = optimistic_lock_resolution


def _merged(run: RunView, key: str) -> Counter[Any]:
    total: Counter[Any] = Counter()
    for recorder in run.recorders:
        total.update(recorder.metrics.get(key, {}))
    return total


def _updates(run: RunView) -> int:
    return sum(_merged(run, "attempts").values())


@optimistic_lock_resolution.invariant(
    "every_client_succeeds", "every client's update succeeded in every round"
)
def _every_client_succeeds(run: RunView) -> Verdict:
    failed = _merged(run, "failures")
    if not _updates(run):
        return False, "no round completed"
    rounds = _updates(run) // max(1, run.clients)
    return not failed, f"{rounds} rounds; failures: {dict(failed) or 'none'}"


@optimistic_lock_resolution.invariant("no_lost_update", "the counter equals the number of successful updates")
def _no_lost_update(run: RunView) -> Verdict:
    successes = _updates(run) - sum(_merged(run, "failures").values())
    stored = run.catalog.get(NAME)
    counter = stored.row_count if stored is not None else None
    return counter == successes, f"counter {counter}, successful updates {successes}"


@optimistic_lock_resolution.invariant(
    "attempts_bounded", "no update made more attempts than its max_attempts (5)"
)
def _attempts_bounded(run: RunView) -> Verdict:
    bound = run.shared["max_attempts"]
    most = max(_merged(run, "attempts"), default=0)
    return most <= bound, f"most attempts by one update: {most} (bound {bound})"


def _metrics(run: RunView) -> dict[str, Any]:
    histogram = _merged(run, "attempts")
    metrics = {
        "rounds": _updates(run) // max(1, run.clients),
        "attempts_histogram": {str(k): histogram[k] for k in sorted(histogram)},
        "conflicts": run.merged.total_retries,
        # Updates that succeeded on their last allowed attempt: the one run under the lock.
        "pessimistic_updates": histogram[run.shared["max_attempts"]],
    }
    if "lockstep" in run.shared:
        metrics["lockstep_broken"] = run.metric_sum("lockstep_broken")
    return metrics


def _headline(result: dict[str, Any]) -> list[tuple[str, Any]]:
    update = result["operations"].get("update", {})
    metrics = result["metrics"]
    return [
        ("Rounds", metrics.get("rounds", 0)),
        ("Successful updates", update.get("ok", 0)),
        ("Conflicts (retried)", metrics.get("conflicts", 0)),
        ("Pessimistic updates (locked last attempt)", metrics.get("pessimistic_updates", 0)),
        ("Attempts histogram", metrics.get("attempts_histogram", {})),
        ("Errors", update.get("error", 0)),
    ]


optimistic_lock_resolution.metrics = _metrics
optimistic_lock_resolution.headline = _headline
