"""What a catalog reports about itself: `CatalogStats`, gathered from the parts that keep the counts.

Owns the shape of `Catalog.stats()` and where each number comes from: the connection pool, the
cache, the update and group-commit counters, the freshness guard and the store. It only reads
those parts' counters; it may not change them, run SQL or talk to the store.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ._cache import DatasetCache
from ._connections import ConnectionPool
from ._groupcommit import GroupCommit
from ._guard import FreshnessGuard
from ._logcommits import LogCommits
from ._replicasync import describe_freshness
from ._updates import Updates


@dataclasses.dataclass(frozen=True)
class CatalogStats:
    """A snapshot of one `Catalog` object's resources and cache counters."""

    path: str
    open_connections: int
    cache_size: int
    cache_capacity: int
    cache_hits: int
    cache_misses: int
    cache_invalidations: int
    cache_freshness: str
    search_backend: str
    pessimistic_updates: int = 0
    """Updates that needed their last attempt, made under the writer lock (see `Catalog.update`)."""
    group_commits: int = 0
    """Transactions that committed the writes of several threads at once (see `Catalog.save`)."""
    grouped_writes: int = 0
    """Writes committed in those transactions: grouped_writes / group_commits is writes per fsync."""
    location: str = ""
    """What the catalog was opened on: `path`, or the object store's URL (`path` is then the replica)."""
    retention_seconds: float | None = None
    """On an object store, how long snapshots and the log entries they cover are kept (see
    `Catalog.open`); None for a local file, and for a store catalog made without one (it keeps all)."""

    def to_dict(self) -> dict[str, Any]:
        """Return the snapshot as plain values."""
        return dataclasses.asdict(self)


def gather(
    path: str,
    location: str,
    search_backend: str,
    guard: FreshnessGuard | None,
    commits: LogCommits | None,
    pool: ConnectionPool,
    cache: DatasetCache,
    updates: Updates,
    writes: GroupCommit,
) -> CatalogStats:
    """The catalog's stats as of now (each counter read once; no lock spans them all)."""
    counts = cache.stats()
    return CatalogStats(
        path=path,
        open_connections=pool.open_count,
        cache_size=counts.size,
        cache_capacity=counts.capacity,
        cache_hits=counts.hits,
        cache_misses=counts.misses,
        cache_invalidations=counts.invalidations,
        cache_freshness=describe_freshness(guard, commits),
        search_backend=search_backend,
        pessimistic_updates=updates.pessimistic_updates,
        group_commits=writes.group_commits,
        grouped_writes=writes.grouped_writes,
        location=location,
        retention_seconds=None if commits is None else commits.log.retention,
    )
