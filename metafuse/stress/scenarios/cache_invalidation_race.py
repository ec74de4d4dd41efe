"""Scenario 4: a third of the clients write one dataset, the rest read it through the cache.

Checked online, in constant memory however long the run: writers publish the newest version
they have had acknowledged on the run's shared board; a reader loads that number *before* each
read, so a read that returns an older version is stale by definition. Every write carries a
token naming the version it will become, in the dataset row and in one of its fields, so a read
whose two tokens differ, or name another version, is torn.

In thread mode every other client opens a Catalog of its own (`catalogs="mixed"`): readers that
share a writer's Catalog see its local invalidation, the others only the cross-catalog freshness
check (change slots, epoch, WAL index), so both paths run in every run, not only when a put
happens to race an invalidation.
"""

from __future__ import annotations

import time
from time import monotonic_ns
from typing import Any

from ...catalog import Catalog
from ...errors import ConflictError
from ...model import Dataset
from ..client import ClientContext
from ..history import record_setup
from ..scenario import RunView, SetupContext, Verdict, inconclusive, scenario
from ._content import recreate, tokened

NAME = "stress.cache_race"
NEWEST_ACKNOWLEDGED = 0  # board slot: the newest version any writer has had acknowledged
READERS_WARMED = 1  # board slot: readers that have made their first read


def _token(version: int, client: int, sequence: int) -> str:
    return f"v{version}-client-{client}-write-{sequence}"


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    invoke = monotonic_ns()
    created = recreate(catalog, [tokened(NAME, _token(1, -1, 0))])
    record_setup(setup.config.history, created, invoke, monotonic_ns())
    return {}


def writers_for(clients: int) -> int:
    """How many of `clients` write: a third, at least one."""
    return max(1, clients // 3)


def _torn(seen: Dataset) -> bool:
    """Whether the row's token and its field's token disagree, or name another version."""
    field = next((f for f in seen.fields if f.name == "token"), None)
    row_token = seen.description or ""
    return field is None or field.description != row_token or not row_token.startswith(f"v{seen.version}-")


@scenario(
    "cache_invalidation_race",
    title="cache invalidation race",
    summary="A third of the clients write one dataset while the rest read it through the cache.",
    setup=_setup,
    default_duration=15,
    catalogs="mixed",
)
def cache_invalidation_race(ctx: ClientContext) -> None:
    """Writers save new tokens continuously; readers check every read as it returns.

    The first reads come before the first write: each reader reads once and counts itself on
    the board, and writers start only once every reader has (or the run is over). So every
    reader holds a cached copy when the writes begin, and a cache that missed them serves it
    stale at once, in every run, rather than when a read happens to fall between two writes.
    """
    writer = ctx.client < writers_for(ctx.clients)
    reader = not writer or ctx.clients == 1  # a lone client does both
    board = ctx.board
    reads = _Reads(ctx)
    if reader and not writer:
        reads.read()
        board.add(READERS_WARMED)
    if writer:
        readers = ctx.clients - writers_for(ctx.clients)
        while board.read(READERS_WARMED) < readers and not ctx.should_stop():
            time.sleep(0.001)
    known_version = 1  # setup created version 1
    sequence = 0
    first = True
    while first or not ctx.should_stop():
        first = False  # one round at least, however late the warm-up ended
        if writer:
            # Blind writes: the content does not depend on a read, and a conflict says which
            # version to name next, so writers advance whatever the read cache returns.
            sequence += 1
            proposed = tokened(NAME, _token(known_version + 1, ctx.client, sequence))
            outcome, stored = ctx.call("write", ctx.catalog.save, proposed, expected_version=known_version)
            if ctx.history is not None:
                ctx.record("save", NAME, stored, expected=known_version, token=proposed.description)
            if outcome == "ok" and stored is not None:
                known_version = stored.version
                board.raise_to(NEWEST_ACKNOWLEDGED, stored.version)
            elif isinstance(ctx.last_error, ConflictError) and ctx.last_error.actual is not None:
                known_version = ctx.last_error.actual
        if reader:
            reads.read()
    if reader:
        reads.read()  # after the run: every write this client saw acknowledged must show
    ctx.recorder.metrics.update(
        stale_reads=reads.stale,
        max_versions_behind=reads.behind,
        backwards_reads=reads.backwards,
        torn_reads=reads.torn,
        versions_seen=reads.changes + 1 if reads.last is not None else 0,
        reads_after_a_write=reads.after_a_write,
        reader=reader,
    )


class _Reads:
    """One reader's checks, made as each read returns: stale, backwards, torn.

    `after_a_write` counts the reads that started once a write newer than this reader's first
    read had been acknowledged: the reads that had to show a new version.
    """

    def __init__(self, ctx: ClientContext) -> None:
        self.ctx = ctx
        self.stale = self.behind = self.backwards = self.torn = self.changes = 0
        self.after_a_write = 0
        self.first_version: int | None = None
        self.last: Dataset | None = None

    def read(self) -> None:
        """Read the dataset once through the cache and check what came back."""
        ctx = self.ctx
        newest = ctx.board.read(NEWEST_ACKNOWLEDGED)  # acknowledged before this read starts
        _, seen = ctx.call("read", ctx.catalog.get, NAME)
        if ctx.history is not None:
            ctx.record("get", NAME, seen)
        if seen is None:
            return
        if self.first_version is None:
            self.first_version = seen.version
        elif newest > self.first_version:
            self.after_a_write += 1
        if seen.version < newest:
            self.stale += 1
            self.behind = max(self.behind, newest - seen.version)
        last = self.last
        if seen is not last:
            if last is not None:
                if seen.version < last.version:
                    self.backwards += 1
                if seen.version != last.version:
                    self.changes += 1
            if _torn(seen):
                self.torn += 1
            self.last = seen


SCENARIO = cache_invalidation_race


@cache_invalidation_race.invariant(
    "no_stale_read",
    "no read returned a version older than the newest write acknowledged before it started",
)
def _no_stale_read(run: RunView) -> Verdict:
    return run.no_stale_reads()


@cache_invalidation_race.invariant("monotonic_reads", "versions seen by each reader never went backwards")
def _monotonic(run: RunView) -> Verdict:
    backwards = run.metric_sum("backwards_reads")
    return backwards == 0, f"{backwards} reads went back to an older version"


@cache_invalidation_race.invariant(
    "no_torn_read", "every read's content is exactly the content written for its version"
)
def _no_torn_read(run: RunView) -> Verdict:
    torn = run.metric_sum("torn_reads")
    return torn == 0, f"{torn} reads mixed two writes or carried another version's content"


@cache_invalidation_race.invariant(
    "versions_advanced",
    "readers observed more than one version (the race was exercised); inconclusive if no read"
    " followed a write",
)
def _versions_advanced(run: RunView) -> Verdict:
    seen = run.metric_max("versions_seen")
    detail = f"up to {seen} versions observed by one reader"
    if seen <= 1 and not run.metric_sum("reads_after_a_write"):
        writes = run.merged.counts.get("write", {}).get("ok", 0)
        return inconclusive(
            f"{detail}: no read started after a write newer than its reader's first read was"
            f" acknowledged ({writes} writes acknowledged); too little progress to judge"
        )
    return seen > 1, detail


@cache_invalidation_race.invariant("no_errors", "no read or write failed unexpectedly")
def _no_errors(run: RunView) -> Verdict:
    return run.no_unexpected_errors()


def _metrics(run: RunView) -> dict[str, Any]:
    return {
        "writers": writers_for(run.clients),
        "unique_versions": run.metric_max("versions_seen"),
        "stale_reads": run.metric_sum("stale_reads"),
        "max_versions_behind": run.metric_max("max_versions_behind"),
        "torn_reads": run.metric_sum("torn_reads"),
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
