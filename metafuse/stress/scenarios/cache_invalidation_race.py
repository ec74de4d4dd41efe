"""Scenario 4: a third of the clients write one dataset, the rest read it through the cache.

History kept: one event per successful write, and one per *run* of consecutive reads that
returned the same object (first and last start time, count). Memory therefore grows with the
number of writes, not reads: about 100 bytes per write.
"""

from __future__ import annotations

import bisect
from typing import Any

from ...catalog import Catalog
from ...errors import ConflictError
from ...model import Dataset
from ..client import ClientContext
from ..scenario import RunView, SetupContext, Verdict, scenario
from ._content import checksum, recreate, tokened

NAME = "stress.cache_race"


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    (created,) = recreate(catalog, [tokened(NAME, "initial")])
    return {"initial": checksum(created)}


def writers_for(clients: int) -> int:
    """How many of `clients` write: a third, at least one."""
    return max(1, clients // 3)


@scenario(
    "cache_invalidation_race",
    title="cache invalidation race",
    summary="A third of the clients write one dataset while the rest read it through the cache.",
    setup=_setup,
    default_duration=15,
)
def cache_invalidation_race(ctx: ClientContext) -> None:
    """Writers save new tokens continuously; readers read and log what they saw, and when."""
    writer = ctx.client < writers_for(ctx.clients)
    reader = not writer or ctx.clients == 1  # a lone client does both
    sequence = 0
    known_version = 1  # setup created version 1
    run: list[Any] | None = None  # [version, checksum, first_start, last_start, count]
    last: Dataset | None = None
    while not ctx.should_stop():
        if writer:
            # Blind writes: the content does not depend on a read, and a conflict says which
            # version to name next, so writers advance whatever the read cache returns.
            sequence += 1
            proposed = tokened(NAME, f"client-{ctx.client}-write-{sequence}")
            outcome, stored = ctx.call("write", ctx.catalog.save, proposed, expected_version=known_version)
            if outcome == "ok" and stored is not None:
                known_version = stored.version
                ctx.event("write", stored.version, checksum(stored), ctx.last_start, ctx.last_end)
            elif isinstance(ctx.last_error, ConflictError) and ctx.last_error.actual is not None:
                known_version = ctx.last_error.actual
        if reader:
            _, seen = ctx.call("read", ctx.catalog.get, NAME)
            if seen is None:
                continue
            if seen is last and run is not None:
                run[3] = ctx.last_start
                run[4] += 1
            else:
                if run is not None:
                    ctx.event("read", ctx.client, *run)
                run = [seen.version, checksum(seen), ctx.last_start, ctx.last_start, 1]
                last = seen
    if run is not None:
        ctx.event("read", ctx.client, *run)


SCENARIO = cache_invalidation_race


class _History:
    def __init__(self, run: RunView) -> None:
        writes = sorted((end, version, digest) for kind, version, digest, _, end in _of(run, "write"))
        self.ack_ends = [end for end, _, _ in writes]
        self.ack_max: list[int] = []
        newest = 1
        for _, version, _ in writes:
            newest = max(newest, version)
            self.ack_max.append(newest)
        self.content = {1: {run.shared["initial"]}}
        for _, version, digest in writes:
            self.content.setdefault(version, set()).add(digest)
        self.reads = [event[2:] for event in run.merged.events if event[0] == "read"]

    def newest_acknowledged_before(self, moment: float) -> int:
        index = bisect.bisect_left(self.ack_ends, moment)
        return self.ack_max[index - 1] if index else 1


def _of(run: RunView, kind: str) -> list[tuple[Any, ...]]:
    return [event for event in run.merged.events if event[0] == kind]


def _stale(run: RunView) -> tuple[int, int]:
    """Return (stale reads found, most versions behind) over every reader."""
    history = _History(run)
    stale = behind = 0
    for version, _, first_start, last_start, count in history.reads:
        newest = history.newest_acknowledged_before(last_start)
        if version < newest:
            # Reads in a run returned the same object; if the first was already stale, all were.
            first_newest = history.newest_acknowledged_before(first_start)
            stale += count if version < first_newest else 1
            behind = max(behind, newest - version)
    return stale, behind


@cache_invalidation_race.invariant(
    "no_stale_read",
    "no read returned a version older than the newest write acknowledged before it started",
)
def _no_stale_read(run: RunView) -> Verdict:
    stale, behind = _stale(run)
    return stale == 0, f"{stale} stale reads, up to {behind} versions behind"


@cache_invalidation_race.invariant("monotonic_reads", "versions seen by each reader never went backwards")
def _monotonic(run: RunView) -> Verdict:
    backwards = 0
    last: dict[int, int] = {}
    for _, client, version, *_ in _of(run, "read"):
        if version < last.get(client, 0):
            backwards += 1
        last[client] = version
    return backwards == 0, f"{backwards} reads went back to an older version"


@cache_invalidation_race.invariant(
    "no_torn_read", "every read's content is exactly the content written for its version"
)
def _no_torn_read(run: RunView) -> Verdict:
    history = _History(run)
    torn = 0
    for version, digest, *_ in history.reads:
        if digest not in history.content.get(version, ()):
            torn += 1
    return torn == 0, f"{torn} runs of reads returned content no writer wrote for that version"


@cache_invalidation_race.invariant(
    "versions_advanced", "readers observed more than one version (the race was exercised)"
)
def _versions_advanced(run: RunView) -> Verdict:
    seen = {event[2] for event in _of(run, "read")}
    return len(seen) > 1, f"{len(seen)} unique versions observed"


@cache_invalidation_race.invariant("no_errors", "no read or write failed unexpectedly")
def _no_errors(run: RunView) -> Verdict:
    errors = run.merged.total("error")
    return errors == 0, f"{errors} errors" + (f", first: {run.merged.errors[0]}" if errors else "")


def _metrics(run: RunView) -> dict[str, Any]:
    stale, behind = _stale(run)
    return {
        "writers": writers_for(run.clients),
        "unique_versions": len({event[2] for event in _of(run, "read")}),
        "stale_reads": stale,
        "max_versions_behind": behind,
        "history_events": len(run.merged.events),
    }


def _headline(result: dict[str, Any]) -> list[tuple[str, Any]]:
    operations = result["operations"]
    metrics = result["metrics"]
    return [
        ("Reads", operations.get("read", {}).get("total", 0)),
        ("Successful writes", operations.get("write", {}).get("ok", 0)),
        ("Unique versions observed", metrics.get("unique_versions", 0)),
        ("Stale reads", metrics.get("stale_reads", 0)),
        ("Errors", sum(op.get("error", 0) for op in operations.values())),
    ]


cache_invalidation_race.metrics = _metrics
cache_invalidation_race.headline = _headline
