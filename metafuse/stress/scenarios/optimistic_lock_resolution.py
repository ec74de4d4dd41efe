"""Scenario 3: in rounds, every client increments one counter through `Catalog.update` at once.

What `attempts_bounded` checks depends on where the catalog lives, as `Catalog.update` promises:
on a catalog file the last attempt holds the writer lock, so no update makes more than
`max_attempts` attempts. On an object store no lock spans machines: from its `max_attempts`-th
attempt on, an update runs the pessimistic attempt (a fresh read, the change and the append in one
transaction), repeated only when another writer's commit to the dataset won the log position.
Rounds start together (a barrier), so each other client commits at most once while an update
runs: no update makes more than `max_attempts - 1 + clients` attempts.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
import time
from collections import Counter
from typing import Any

from ..._logcommits import is_store_url
from ...catalog import Catalog
from ...errors import ConflictError
from ...model import Dataset
from ..client import ClientContext
from ..scenario import RunView, SetupContext, Verdict, inconclusive, scenario
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
        "store": is_store_url(setup.path),
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

    On an object store there is no writer lock to probe: attempts before `max_attempts` are the
    optimistic ones, and the levels up to `max_attempts` are met. Past it the pessimistic attempts
    race lock-free, so how many of them conflict is not known in advance and no barrier can wait
    for them.
    """

    def __init__(self, ctx: ClientContext, primitives: dict[str, Any]) -> None:
        self._levels = primitives["levels"]
        self._probe_lock = primitives["probe_lock"]
        self._ctx = ctx
        self._store_bound: int | None = ctx.shared["max_attempts"] if ctx.shared.get("store") else None
        self._probe = (
            None
            if self._store_bound is not None
            else sqlite3.connect(ctx.path, timeout=0, isolation_level=None)
        )
        self.broken = 0

    def optimistic(self, attempt: int) -> bool:
        """Return whether `attempt` of an update is an optimistic one (see the class docstring)."""
        if self._store_bound is not None:
            return attempt < self._store_bound
        return self.writer_lock_free()

    def writer_lock_free(self) -> bool:
        """Return whether no connection holds the catalog's writer lock right now."""
        if self._probe is None:
            return False
        with self._probe_lock:
            try:
                self._probe.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return False
            self._probe.execute("ROLLBACK")
            return True

    def meet(self, level: int) -> None:
        """Wait until every update making an attempt of `level` this round has arrived."""
        if level > len(self._levels) or (self._store_bound is not None and level > self._store_bound):
            return
        timeout = max(0.0, self._ctx.deadline - time.monotonic()) + _LOCKSTEP_GRACE
        try:
            self._levels[level - 1].wait(timeout)
        except threading.BrokenBarrierError:
            self.broken += 1

    def close(self) -> None:
        """Close the probe's connection."""
        if self._probe is not None:
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
    # Conflicts at or past the bound whose winner was not a newer commit (lock-free progress
    # means each such repetition lost to another writer's commit).
    unexplained: list[str] = []
    ctx.recorder.metrics.update(attempts=attempts_seen, failures=failures, unexplained_repeats=unexplained)
    lockstep = Lockstep(ctx, ctx.shared["lockstep"]) if "lockstep" in ctx.shared else None
    bound = ctx.shared["max_attempts"]

    def note(conflict: ConflictError, attempt: int) -> None:
        conflicts.append(attempt)
        if attempt >= bound and not (
            conflict.expected is not None
            and conflict.actual is not None
            and conflict.actual > conflict.expected
        ):
            unexplained.append(f"attempt {attempt}: {conflict}")
        if lockstep is not None:
            lockstep.meet(attempt + 1)

    def change(dataset: Dataset) -> Dataset:
        if lockstep is not None and lockstep.optimistic(len(conflicts) + 1):
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
            made = len(conflicts) + (1 if outcome == "ok" else 0)
            attempts_seen[made] += 1
            if outcome == "ok" and made >= bound:
                ctx.recorder.metrics["reached_bound"] = ctx.recorder.metrics.get("reached_bound", 0) + 1
            if outcome != "ok":
                failures[outcome] += 1
            ctx.recorder.retried(len(conflicts))
    finally:
        if lockstep is not None:
            lockstep.close()
            ctx.recorder.metrics["lockstep_broken"] = lockstep.broken
        if ctx.catalog is not None:
            # Clients of one thread-mode run share a catalog: keyed, so it is counted once.
            key = f"{os.getpid()}:{id(ctx.catalog)}"
            ctx.recorder.metrics["pessimistic"] = {key: ctx.catalog.stats().pessimistic_updates}


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
        return inconclusive("no round completed: too little progress to judge")
    rounds = _updates(run) // max(1, run.clients)
    return not failed, f"{rounds} rounds; failures: {dict(failed) or 'none'}"


@optimistic_lock_resolution.invariant("no_lost_update", "the counter equals the number of successful updates")
def _no_lost_update(run: RunView) -> Verdict:
    successes = _updates(run) - sum(_merged(run, "failures").values())
    stored = run.catalog.get(NAME)
    counter = stored.row_count if stored is not None else None
    detail = f"counter {counter}, successful updates {successes}"
    if not _updates(run) and counter == 0:
        return inconclusive(f"{detail}: no round completed, too little progress to judge")
    return counter == successes, detail


@optimistic_lock_resolution.invariant(
    "attempts_bounded",
    "no update made more attempts than its max_attempts (5); on an object store, more only lock-free",
)
def _attempts_bounded(run: RunView) -> Verdict:
    bound = run.shared["max_attempts"]
    attempts = _merged(run, "attempts")
    most = max(attempts, default=0)
    detail = f"most attempts by one update: {most} (bound {bound})"
    if not attempts:
        return inconclusive("no update was made: too little progress to judge")
    if not run.shared.get("store"):
        return most <= bound, detail
    return _store_attempts(run, attempts, most, bound)


def _store_attempts(run: RunView, attempts: Counter[int], most: int, bound: int) -> Verdict:
    """What an object store promises (see the module docstring), from the clients' records."""
    # Updates that succeeded at or past their bound must be the pessimistic ones, one each.
    reached = run.metric_sum("reached_bound")
    pessimistic: dict[str, int] = {}
    for recorder in run.recorders:
        for key, value in recorder.metrics.get("pessimistic", {}).items():
            pessimistic[key] = max(pessimistic.get(key, 0), int(value))
    ran = sum(pessimistic.values())
    unexplained = [
        item for recorder in run.recorders for item in recorder.metrics.get("unexplained_repeats", [])
    ]
    limit = bound - 1 + run.clients
    problems = []
    if ran != reached:
        problems.append(f"{reached} updates reached attempt {bound} but {ran} ran the pessimistic attempt")
    if unexplained:
        problems.append(
            f"{len(unexplained)} repeats past the bound without a newer commit, first: {unexplained[0]}"
        )
    if most > limit:
        problems.append(f"more than {limit} attempts")
    detail = (
        f"object store: most attempts by one update: {most} (bound {bound}, lock-free past it: at most"
        f" {limit} with {run.clients} clients); {reached} updates reached the bound, {ran} pessimistic"
    )
    return not problems, "; ".join([detail, *problems])


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
