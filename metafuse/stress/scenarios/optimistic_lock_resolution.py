"""Scenario 3: in rounds, every client increments one counter through `Catalog.update` at once."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ...catalog import Catalog
from ...errors import ConflictError
from ...model import Dataset
from ..client import ClientContext
from ..scenario import RunView, SetupContext, Verdict, scenario
from ._content import recreate, tokened

NAME = "stress.counter"


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    recreate(catalog, [tokened(NAME, "counter").replace(row_count=0)])
    # Full-jitter windows must be wide enough for every client to get a turn within the
    # attempt bound: they grow with the number of clients contending each round.
    # 10 ms per client: at 2 ms one update in 2,500 ran out of attempts at 50 clients on a
    # loaded machine, and at 4 ms 6 in 23,200 did in a 300 s soak on an overloaded one.
    backoff = 0.01 * setup.clients * setup.config.backoff_scale
    return {
        "backoff": backoff,
        "max_backoff": max(0.05, 16 * backoff),
        "max_attempts": setup.config.max_attempts,
    }


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

    def note(_: ConflictError, attempt: int) -> None:
        conflicts.append(attempt)

    while ctx.next_round():
        conflicts.clear()
        outcome, _ = ctx.call(
            "update",
            ctx.catalog.update,
            NAME,
            _increment,
            max_attempts=ctx.shared["max_attempts"],
            backoff=ctx.shared["backoff"],
            max_backoff=ctx.shared["max_backoff"],
            on_conflict=note,
        )
        attempts_seen[len(conflicts) + (1 if outcome == "ok" else 0)] += 1
        if outcome != "ok":
            failures[outcome] += 1
        ctx.recorder.retried(len(conflicts))


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
    return {
        "rounds": _updates(run) // max(1, run.clients),
        "attempts_histogram": {str(k): histogram[k] for k in sorted(histogram)},
        "conflicts": run.merged.total_retries,
    }


def _headline(result: dict[str, Any]) -> list[tuple[str, Any]]:
    update = result["operations"].get("update", {})
    metrics = result["metrics"]
    return [
        ("Rounds", metrics.get("rounds", 0)),
        ("Successful updates", update.get("ok", 0)),
        ("Conflicts (retried)", metrics.get("conflicts", 0)),
        ("Attempts histogram", metrics.get("attempts_histogram", {})),
        ("Errors", update.get("error", 0)),
    ]


optimistic_lock_resolution.metrics = _metrics
optimistic_lock_resolution.headline = _headline
