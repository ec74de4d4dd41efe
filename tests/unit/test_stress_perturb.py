"""A run's perturbation reaches every client, threads and processes, and its catalogs have the shape asked."""

from __future__ import annotations

import os
from typing import Any

import pytest

from metafuse import perturb
from metafuse.stress.client import ClientContext
from metafuse.stress.config import StressConfig
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY, RunView, Verdict, scenario

_seen: list[tuple[int, str, int]] = []


def _observe(ctx: ClientContext) -> None:
    """Report what this client sees: its perturbation settings and which Catalog object it has."""
    ctx.report((ctx.client, str(perturb.current()), id(ctx.catalog)))
    ctx.call("get", ctx.catalog.get, "stress.absent")


OBSERVE = REGISTRY.get("test_observe") or scenario(
    "test_observe", title="observe", summary="every client reports its perturbation and catalog"
)(_observe)


@OBSERVE.invariant("reported", "every client reported what it saw")
def _reported(run: RunView) -> Verdict:
    _seen[:] = sorted(tuple(value) for value in run.reports)
    return len(_seen) == run.clients, f"{len(_seen)} reports"


def _run(**settings: Any) -> list[tuple[int, str, int]]:
    _seen.clear()
    result = run_scenario(OBSERVE, StressConfig(duration=1, seed=1, **settings))
    assert result.passed, result.invariants
    return list(_seen)


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_runs_perturbation_reaches_every_client_and_ends_with_the_run(mode: str) -> None:
    before = os.environ.get(perturb.ENV_VAR)
    seen = _run(clients=3, mode=mode, perturb="seed=3,p=0.5")
    assert [text for _, text, _ in seen] == ["seed=3,p=0.5"] * 3
    assert perturb.current() is None
    assert os.environ.get(perturb.ENV_VAR) == before


def test_without_perturbation_no_client_perturbs() -> None:
    assert [text for _, text, _ in _run(clients=2, mode="thread")] == ["None"] * 2


@pytest.mark.parametrize(
    ("shape", "groups"),
    [("shared", [[0, 1, 2, 3]]), ("per-client", [[0], [1], [2], [3]]), ("mixed", [[0, 2], [1], [3]])],
)
def test_thread_clients_get_the_catalogs_asked_for(shape: str, groups: list[list[int]]) -> None:
    seen = _run(clients=4, mode="thread", catalogs=shape)
    by_catalog: dict[int, list[int]] = {}
    for client, _, catalog in seen:
        by_catalog.setdefault(catalog, []).append(client)
    assert sorted(by_catalog.values()) == groups


def test_the_cache_race_probe_mixes_shared_and_own_catalogs() -> None:
    assert REGISTRY["cache_invalidation_race"].catalogs == "mixed"
