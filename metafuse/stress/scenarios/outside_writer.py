"""Extra scenario: a plain `sqlite3` client commits to the catalog while catalog clients read and update.

The outside writer is what a migration script or the `sqlite3` shell does: one transaction that
rewrites a dataset's description and bumps its version, through a connection that is not
MetaFuse's. The catalog's clients keep their caches warm by reading the same datasets over and
over, and some of them `update()` one of the datasets the outside writer also rewrites.

After every other outside write, the outside writer also commits a migration that rewrites
every one of `MIGRATED` datasets in one transaction, and then its client saves a dataset of its
own through its Catalog (`ACCOUNTED`), as a script that migrates and then records the migration
would: that commit accounts for the outside ones at once (a MetaFuse writer that finds `known`
behind bumps the epoch), so accounting lands within a millisecond of the outside commit. Readers
read the migrated datasets one after the other, so the accounting lands while a full-speed
reader is still working through entries from before the migration, one hit's checks after
another, not only when the one hit that meets the first changed dataset happens to be paused.
The other outside writes are accounted for lazily (by an updater's next commit, or a reader once
the mismatch has stood still), so the window in which only the WAL-index check refuses an old
entry stays open too.

Checked online, as in `cache_invalidation_race`: every writer (outside or not) publishes the
newest version it has had acknowledged on the run's shared board, one slot per dataset, after its
commit returned; a reader loads the slot *before* each read, so a read that returns an older
version is stale by definition.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from typing import Any

from ...catalog import Catalog
from ...errors import ConflictError
from ...model import Dataset
from ..client import ClientContext
from ..scenario import RunView, SetupContext, Verdict, inconclusive, scenario
from ._content import recreate, rewrite, tokened

DATASETS = 3
"""Datasets the outside writer rewrites in turn; only the first is also updated through MetaFuse."""
NAMES = tuple(f"stress.outside.{index}" for index in range(DATASETS))
MIGRATED = tuple(f"stress.outside.migrated.{index}" for index in range(12))
"""Datasets that only the outside writer's migrations rewrite, all of them in each one, so they
always share one version (board slot `DATASETS`)."""
MIGRATED_SLOT = DATASETS
"""Board slot of the newest acknowledged version of the `MIGRATED` datasets."""
OUTSIDE_MARK = "-outside-"
"""Part of every token the outside writer commits, so readers can tell they saw one."""
PAUSE = 0.002
"""Seconds writers wait between writes, so readers get cache hits in between."""
LINGER = 0.02
"""Most seconds a lingering reader waits between its rounds of reads (a random share of it)."""
ACCOUNTED = "stress.outside.accounted"
"""The dataset the outside writer's client saves through its Catalog after every other outside
write; no reader reads it."""


def lingers(client: int, updater: bool) -> bool:
    """Whether a reader waits between its rounds: every other reader that does not update.

    The others read at full speed, so a hit that skips its check is seen within microseconds; a
    lingering reader keeps entries made before an outside commit in its cache across the moment
    that commit is accounted for, so an accounting that takes it in without refusing them shows.
    """
    return not updater and client % 2 == 1


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    recreate(catalog, [tokened(name, "v1-initial") for name in (*NAMES, *MIGRATED, ACCOUNTED)])
    backoff = 0.005 * setup.clients * setup.config.backoff_scale
    return {
        "max_attempts": setup.config.max_attempts,
        "backoff": backoff,
        "max_backoff": max(0.05, 8 * backoff),
    }


def outside_write(conn: sqlite3.Connection, name: str, sequence: int) -> int:
    """Bump `name`'s version and rewrite its description in one transaction; return the new version.

    Written as a migration script would write it, knowing only the schema: the description
    becomes `v<new version>-outside-<sequence>`, and the search trigger on the version bump
    refreshes the search index. Returns once COMMIT has returned (the write is acknowledged).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "UPDATE datasets SET description = 'v' || (version + 1) || ? || ?, version = version + 1"
            " WHERE name = ?",
            (OUTSIDE_MARK, str(sequence), name),
        )
        row = conn.execute("SELECT version FROM datasets WHERE name = ?", (name,)).fetchone()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if row is None:
        raise LookupError(f"dataset {name} is missing from the catalog")
    return int(row[0])


def outside_migration(conn: sqlite3.Connection, names: tuple[str, ...], sequence: int) -> int:
    """Rewrite every one of `names` as `outside_write` does, all in one transaction; return the
    lowest new version among them (they share one when only migrations write them).

    A name missing from the catalog is a `LookupError` naming the names, and nothing is committed.
    """
    marks = ", ".join("?" for _ in names)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "UPDATE datasets SET description = 'v' || (version + 1) || ? || ?, version = version + 1"
            f" WHERE name IN ({marks})",
            (OUTSIDE_MARK, str(sequence), *names),
        )
        lowest, found = conn.execute(
            f"SELECT MIN(version), COUNT(*) FROM datasets WHERE name IN ({marks})", names
        ).fetchone()
        if found != len(set(names)):
            raise LookupError(f"a dataset of the migration ({', '.join(names)}) is missing from the catalog")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return int(lowest)


def roles(client: int, clients: int) -> tuple[bool, bool, bool]:
    """Return (outside writer, updater, reader) for `client` of `clients`.

    Client 0 is the outside writer; about half of the others also update dataset 0; every
    client but the outside writer reads (a lone client does everything).
    """
    outside = client == 0
    updater = not outside and client <= max(1, (clients - 1) // 2)
    reader = not outside or clients == 1
    return outside, updater or clients == 1, reader


def _with_token(client: int, sequence: int) -> Any:
    def change(current: Dataset) -> Dataset:
        return rewrite(current, f"v{current.version + 1}-client-{client}-update-{sequence}")

    return change


@scenario(
    "outside_writer",
    title="outside writer",
    summary="A plain sqlite3 client commits to datasets while catalog clients read them and update one.",
    setup=_setup,
    default_clients=5,
    default_duration=10,
    catalogs="mixed",
    file_only="the outside writer is a raw sqlite3 connection to the file",
)
def outside_writer(ctx: ClientContext) -> None:
    """Client 0 commits through plain sqlite3; the others read with a warm cache, some update."""
    outside, updater, reader = roles(ctx.client, ctx.clients)
    lingering = reader and lingers(ctx.client, updater)
    board = ctx.board
    conn = sqlite3.connect(ctx.path, timeout=30, isolation_level=None) if outside else None
    attempts: Counter[int] = Counter()  # attempts per successful update -> updates
    failures: Counter[str] = Counter()
    sequence = stale = behind = outside_seen = versions_changed = 0
    last: dict[str, int] = {}
    conflicts: list[int] = []

    def note(_: ConflictError, attempt: int) -> None:
        conflicts.append(attempt)

    try:
        while not ctx.should_stop():
            sequence += 1
            if conn is not None:
                index = sequence % DATASETS
                outcome, version = ctx.call("outside_write", outside_write, conn, NAMES[index], sequence)
                if outcome == "ok" and version is not None:
                    board.raise_to(index, version)
                    if sequence % 2 == 0:
                        outcome, version = ctx.call(
                            "outside_write", outside_migration, conn, MIGRATED, sequence
                        )
                        if outcome == "ok" and version is not None:
                            board.raise_to(MIGRATED_SLOT, version)
                        ctx.call("account", ctx.catalog.update, ACCOUNTED, _with_token(ctx.client, sequence))
                time.sleep(PAUSE)
            if updater:
                conflicts.clear()
                outcome, stored = ctx.call(
                    "update",
                    ctx.catalog.update,
                    NAMES[0],
                    _with_token(ctx.client, sequence),
                    max_attempts=ctx.shared["max_attempts"],
                    backoff=ctx.shared["backoff"],
                    max_backoff=ctx.shared["max_backoff"],
                    on_conflict=note,
                )
                ctx.recorder.retried(len(conflicts))
                if outcome == "ok" and stored is not None:
                    attempts[len(conflicts) + 1] += 1
                    board.raise_to(0, stored.version)
                else:
                    failures[outcome] += 1
                # SQLite's busy handler is not fair: an updater looping flat out can starve the
                # outside writer, which waits in it, of the lock.
                time.sleep(PAUSE)
            if reader:
                for index, name in enumerate((*NAMES, *MIGRATED)):
                    newest = board.read(min(index, MIGRATED_SLOT))  # acknowledged before this read starts
                    _, seen = ctx.call("read", ctx.catalog.get, name)
                    if seen is None:
                        continue
                    if seen.version < newest:
                        stale += 1
                        behind = max(behind, newest - seen.version)
                    if last.get(name) != seen.version:
                        last[name] = seen.version
                        versions_changed += 1
                        if OUTSIDE_MARK in (seen.description or ""):
                            outside_seen += 1
                if lingering:
                    time.sleep(ctx.rng.random() * LINGER)
    finally:
        if conn is not None:
            conn.close()
    ctx.recorder.metrics.update(
        stale_reads=stale,
        max_versions_behind=behind,
        outside_versions_seen=outside_seen,
        outside_writes=ctx.recorder.counts.get("outside_write", {}).get("ok", 0),
        attempts=attempts,
        update_failures=failures,
    )


SCENARIO = outside_writer


def _merged(run: RunView, key: str) -> Counter[Any]:
    total: Counter[Any] = Counter()
    for recorder in run.recorders:
        total.update(recorder.metrics.get(key, {}))
    return total


@outside_writer.invariant(
    "no_stale_read",
    "no read returned a version older than a write (outside ones included) acknowledged before it started",
)
def _no_stale_read(run: RunView) -> Verdict:
    return run.no_stale_reads()


@outside_writer.invariant(
    "updates_within_bound", "every update succeeded within its max_attempts, despite the outside writes"
)
def _updates_within_bound(run: RunView) -> Verdict:
    bound = run.shared["max_attempts"]
    attempts = _merged(run, "attempts")
    failures = _merged(run, "update_failures")
    most = max(attempts, default=0)
    if not failures and not attempts:
        return inconclusive("0 updates made: too little progress to judge")
    ok = not failures and most <= bound
    return ok, (
        f"{sum(attempts.values())} updates, most attempts {most} (bound {bound}),"
        f" failures: {dict(failures) or 'none'}"
    )


@outside_writer.invariant(
    "outside_writes_seen", "the outside writer committed and readers saw its writes (the race was exercised)"
)
def _outside_writes_seen(run: RunView) -> Verdict:
    writes = run.metric_sum("outside_writes")
    seen = run.metric_sum("outside_versions_seen")
    if not writes:
        return inconclusive("0 outside writes committed: too little progress to judge")
    return writes > 0 and seen > 0, f"{writes} outside writes, {seen} of their versions seen by readers"


@outside_writer.invariant("no_errors", "no read, update or outside write failed unexpectedly")
def _no_errors(run: RunView) -> Verdict:
    return run.no_unexpected_errors()


def _metrics(run: RunView) -> dict[str, Any]:
    attempts = _merged(run, "attempts")
    return {
        "outside_writes": run.metric_sum("outside_writes"),
        "outside_versions_seen": run.metric_sum("outside_versions_seen"),
        "stale_reads": run.metric_sum("stale_reads"),
        "attempts_histogram": {str(k): attempts[k] for k in sorted(attempts)},
    }


def _headline(result: dict[str, Any]) -> list[tuple[str, Any]]:
    operations = result["operations"]
    metrics = result["metrics"]
    return [
        ("Outside writes", metrics.get("outside_writes", 0)),
        ("Outside versions seen", metrics.get("outside_versions_seen", 0)),
        ("Reads", operations.get("read", {}).get("total", 0)),
        ("Successful updates", operations.get("update", {}).get("ok", 0)),
        ("Update attempts histogram", metrics.get("attempts_histogram", {})),
        ("Stale reads", metrics.get("stale_reads", 0)),
        ("Errors", sum(op.get("error", 0) for op in operations.values())),
    ]


outside_writer.metrics = _metrics
outside_writer.headline = _headline
