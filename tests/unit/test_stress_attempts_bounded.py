"""optimistic_lock_resolution.attempts_bounded checks what each kind of catalog promises.

On a catalog file no update makes more than max_attempts attempts. On an object store the last
attempt cannot hold a lock across machines, so an update may go past the bound, but only through
the pessimistic attempt and only when another client's newer commit won. Both versions must
catch the `unbounded_retry` bug (an update that never falls back to the pessimistic attempt).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from metafuse import Catalog
from metafuse.stress.config import StressConfig
from metafuse.stress.recorder import Recorder
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY, RunView
from metafuse.stress.selfcheck import PROBES, failed_invariants, probe_config

SCENARIO = REGISTRY["optimistic_lock_resolution"]
CHECK = next(i for i in SCENARIO.invariants if i.name == "attempts_bounded").check


def _view(catalog: Catalog, *, store: bool, clients: int, metrics: list[dict[str, Any]]) -> RunView:
    recorders = []
    for client, values in enumerate(metrics):
        recorder = Recorder(client=client)
        recorder.metrics.update(values)
        recorders.append(recorder)
    return RunView(
        scenario=SCENARIO.name,
        mode="process",
        clients=clients,
        duration=2,
        seed=5,
        shared={"max_attempts": 5, "store": store},
        recorders=recorders,
        merged=recorders[0],
        reports=[],
        catalog=catalog,
        elapsed=2.0,
        hung=[],
        crashed=[],
        killed=[],
        fd_before=0,
        fd_after=0,
    )


def _six_attempts(pessimistic: int, unexplained: list[str] | None = None) -> list[dict[str, Any]]:
    """Client 0 made one update of 6 attempts, through the pessimistic attempt (or not)."""
    return [
        {
            "attempts": Counter({6: 1, 1: 3}),
            "reached_bound": 1,
            "pessimistic": {"100:1": pessimistic},
            "unexplained_repeats": unexplained or [],
        },
        {"attempts": Counter({1: 4}), "pessimistic": {"101:1": 0}},
    ]


def test_a_file_keeps_the_bound_exactly(tmp_path: Path) -> None:
    with Catalog(tmp_path / "catalog.db") as catalog:
        ok, detail = CHECK(_view(catalog, store=False, clients=6, metrics=_six_attempts(1)))
    assert ok is False
    assert detail == "most attempts by one update: 6 (bound 5)"


def test_a_store_may_pass_the_bound_lock_free(tmp_path: Path) -> None:
    """The run the issue reports (6 attempts, bound 5, 6 clients, process mode on log+file://)."""
    with Catalog(tmp_path / "catalog.db") as catalog:
        ok, detail = CHECK(_view(catalog, store=True, clients=6, metrics=_six_attempts(1)))
    assert ok is True, detail
    assert "most attempts by one update: 6 (bound 5, lock-free past it: at most 10 with 6 clients)" in detail


@pytest.mark.parametrize(
    ("pessimistic", "unexplained", "clients", "words"),
    [
        (0, None, 6, "1 updates reached attempt 5 but 0 ran the pessimistic attempt"),
        (
            1,
            ["attempt 5: dataset 'stress.counter' is at version 3, not the expected 3"],
            6,
            "without a newer",
        ),
        (1, None, 1, "more than 5 attempts"),
    ],
)
def test_a_store_past_the_bound_without_its_promise_fails(
    tmp_path: Path, pessimistic: int, unexplained: list[str] | None, clients: int, words: str
) -> None:
    with Catalog(tmp_path / "catalog.db") as catalog:
        ok, detail = CHECK(
            _view(catalog, store=True, clients=clients, metrics=_six_attempts(pessimistic, unexplained))
        )
    assert ok is False
    assert words in detail


@pytest.mark.parametrize("mode", ["thread", pytest.param("process", marks=pytest.mark.slow)])
@pytest.mark.parametrize("where", ["file", "store"])
def test_selfcheck_probe_catches_unbounded_retry(tmp_path: Path, where: str, mode: str) -> None:
    """selfcheck's probe (lockstep, bound 2, 4 clients) on a file and on `log+file://`: the control
    holds, the bug fails attempts_bounded."""
    probe = PROBES["unbounded_retry"][0]
    config = probe_config(probe, mode, duration=1, clients=4, seed=5)
    results = {}
    for label, faults in (("control", ()), ("bug", ("unbounded_retry",))):
        path = f"log+file://{tmp_path / label}" if where == "store" else str(tmp_path / f"{label}.db")
        results[label] = run_scenario(SCENARIO, config, path=path, faults=faults)
    control, bug = results["control"], results["bug"]
    assert control.metrics["rounds"] > 0
    assert bug.metrics["rounds"] > 0
    assert "attempts_bounded" not in failed_invariants(control), control.invariants
    assert not control.failed, control.invariants
    assert "attempts_bounded" in failed_invariants(bug), bug.invariants
    assert control.metrics["lockstep_broken"] == 0


@pytest.mark.slow
def test_a_store_run_with_the_default_bound_passes(tmp_path: Path) -> None:
    """Many clients on a store in process mode: updates may pass the bound, and the invariant holds."""
    config = StressConfig(clients=6, duration=2, mode="process", seed=5)
    result = run_scenario(SCENARIO, config, path=f"log+file://{tmp_path / 'store'}")
    bounded = next(i for i in result.invariants if i.name == "attempts_bounded")
    assert bounded.ok, bounded.detail
    assert bounded.detail.startswith("object store: ")
