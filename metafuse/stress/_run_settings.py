"""A run's settings: what `ScenarioResult.settings` records, and what they make of the clients.

Owns `SETTINGS`, how a run's settings are derived from its configuration, how thread-mode clients
get their catalog, and an open-model run's schedule count. Pure functions of the configuration:
opens, starts and judges nothing.
"""

from __future__ import annotations

from typing import Any

from .._logcommits import is_store_url
from .client import Schedule
from .config import StressConfig
from .scenario import Scenario

SETTINGS = (
    "mode",
    "clients",
    "duration",
    "seed",
    "rate",
    "ramp_up",
    "warmup",
    "catalog",
    "catalog_path",
    "synchronous",
    "kills",
    "faults",
    "history",
    "max_attempts",
    "backoff_scale",
    "lockstep",
    "perturb",
    "catalogs",
)
"""The keys of `ScenarioResult.settings`: every setting that changes what a run's clients do.
`catalog` is its kind (temporary file, file, s3, log+file); `catalog_path` the file or URL a
user named (None for a temporary file); `kills` is None for a scenario that kills nothing;
`perturb` the schedule perturbation (`seed=N,p=P`, None: off); `catalogs` how thread-mode
clients got their Catalog (None in process mode and for scenarios whose clients open their own)."""


def run_settings(
    scenario: Scenario,
    config: StressConfig,
    path: str | None,
    *,
    mode: str,
    clients: int,
    duration: int,
    faults: tuple[str, ...],
) -> dict[str, Any]:
    """Return the settings (`SETTINGS`, in that order) of `scenario` run with `config` on `path`."""
    if path is None:
        kind = "temporary file"
    elif is_store_url(path):
        kind = path.split(":", 1)[0]
    else:
        kind = "file"
    return {
        "mode": mode,
        "clients": clients,
        "duration": duration,
        "seed": config.seed,
        "rate": config.rate,
        "ramp_up": config.ramp_up,
        "warmup": config.warmup,
        "catalog": kind,
        "catalog_path": path,
        "synchronous": config.synchronous,
        "kills": config.kills if scenario.driver is not None else None,
        "faults": sorted(faults),
        "history": config.history is not None,
        "max_attempts": config.max_attempts,
        "backoff_scale": config.backoff_scale,
        "lockstep": config.lockstep,
        "perturb": config.perturb,
        "catalogs": catalogs_shape(scenario, config) if mode == "thread" else None,
    }


def catalogs_shape(scenario: Scenario, config: StressConfig) -> str | None:
    """How thread-mode clients of `scenario` get their Catalog (`config.CATALOGS`), or None when
    the scenario's clients open their own. A scenario that needs `own_catalogs` keeps them."""
    if not scenario.shared_catalog:
        return None
    if scenario.own_catalogs:
        return scenario.catalogs
    return config.catalogs or scenario.catalogs


def own_catalog(shape: str | None, client: int) -> bool:
    """Whether thread-mode `client` opens a Catalog of its own under `shape` (mixed: odd clients)."""
    return shape == "per-client" or (shape == "mixed" and client % 2 == 1)


def scheduled_operations(config: StressConfig, clients: int, elapsed: float) -> int:
    """Return how many operations an open-model run's schedule made due in its first `elapsed`
    seconds, over all `clients` (each client's share, as `Schedule` spaces it)."""
    assert config.rate is not None
    end = int(elapsed * 1e9)
    return sum(
        Schedule(config.rate, clients, client, 0, config.ramp_up).first_at_or_after(end)
        for client in range(clients)
    )
