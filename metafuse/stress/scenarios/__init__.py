"""The built-in scenarios; importing this package registers them in `REGISTRY`.

It declares no scenario itself and imports nothing of the catalog: each scenario module does.
"""

from __future__ import annotations

from . import (
    cache_invalidation_race,
    concurrent_writers,
    connection_cleanup,
    fork_writers,
    group_commit_conflicts,
    grouped_writers,
    held_races,
    kill_writers,
    lifecycle,
    optimistic_lock_resolution,
    outside_writer,
    path_aliases,
    read_heavy_workload,
    stalled_writer,
    store_chaos,
    write_skew,
)

CORE = (
    concurrent_writers.SCENARIO.name,
    read_heavy_workload.SCENARIO.name,
    optimistic_lock_resolution.SCENARIO.name,
    cache_invalidation_race.SCENARIO.name,
    connection_cleanup.SCENARIO.name,
)
"""The five scenarios of the user guide, in its order."""

__all__ = [
    "CORE",
    "cache_invalidation_race",
    "concurrent_writers",
    "connection_cleanup",
    "fork_writers",
    "group_commit_conflicts",
    "grouped_writers",
    "held_races",
    "kill_writers",
    "lifecycle",
    "optimistic_lock_resolution",
    "outside_writer",
    "path_aliases",
    "read_heavy_workload",
    "stalled_writer",
    "store_chaos",
    "write_skew",
]
