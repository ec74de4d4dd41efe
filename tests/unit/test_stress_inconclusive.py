"""Invariants that need progress say INCONCLUSIVE, never FAIL, when a run made none; and still fail
on the bugs they are there to catch.

A run "with no progress" is the real scenario, setup and invariants included, whose clients do
nothing at all (what an overloaded machine does to them in the extreme).
"""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from metafuse import Catalog
from metafuse.cli import main
from metafuse.stress.client import ClientContext
from metafuse.stress.config import StressConfig
from metafuse.stress.recorder import Recorder
from metafuse.stress.report import format_result, results_document
from metafuse.stress.result import ScenarioResult
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY, InvariantResult, RunView
from metafuse.stress.selfcheck import failed_invariants

PROGRESS_INVARIANTS = {
    "cache_invalidation_race": ("versions_advanced",),
    "connection_cleanup": ("datasets_readable", "connections_closed", "fds_restored"),
    "optimistic_lock_resolution": ("every_client_succeeds", "no_lost_update", "attempts_bounded"),
    "concurrent_writers": ("writes_succeeded", "conflicts_detected"),
    "stalled_writer": ("stalls_refused",),
}
"""For each scenario, the invariants that need some progress to be judged."""


def _idle(ctx: ClientContext) -> None:
    """A client that does nothing: the run makes no progress at all."""


def _idle_run(name: str, *, mode: str = "thread") -> ScenarioResult:
    idle = dataclasses.replace(REGISTRY[name], client=_idle)
    return run_scenario(idle, StressConfig(clients=3, duration=1, mode=mode, seed=3))


@pytest.mark.parametrize("name", sorted(PROGRESS_INVARIANTS))
def test_no_progress_is_inconclusive_never_a_failure(name: str) -> None:
    result = _idle_run(name)
    verdicts = {invariant.name: invariant for invariant in result.invariants}
    for invariant in PROGRESS_INVARIANTS[name]:
        verdict = verdicts[invariant]
        assert verdict.inconclusive, (invariant, verdict.detail)
        assert not verdict.ok
        assert not verdict.failed
        assert "too little progress" in verdict.detail
    assert not result.failed, [i for i in result.invariants if i.failed]
    assert result.inconclusive
    assert not result.passed
    assert failed_invariants(result) == set()


def test_versions_advanced_fails_on_a_stale_cache() -> None:
    """With readers reading after acknowledged writes, one version seen is a failure, not a lack of
    progress (the stale_cache bug)."""
    scenario = REGISTRY["cache_invalidation_race"]
    result = run_scenario(scenario, StressConfig(clients=3, duration=1, seed=3), faults=("stale_cache",))
    verdict = next(i for i in result.invariants if i.name == "versions_advanced")
    assert verdict.failed, verdict.detail
    assert result.metrics["unique_versions"] == 1
    clean = run_scenario(scenario, StressConfig(clients=3, duration=1, seed=3))
    assert next(i for i in clean.invariants if i.name == "versions_advanced").ok


def test_datasets_readable_fails_when_a_created_dataset_is_missing(tmp_path: Path) -> None:
    """A created (acknowledged) dataset that cannot be read is a failure, whatever the progress."""
    check = next(i for i in REGISTRY["connection_cleanup"].invariants if i.name == "datasets_readable").check
    recorder = Recorder(client=0)
    recorder.events.append(("stress.cleanup.0.gone",))
    with Catalog(tmp_path / "catalog.db") as catalog:
        view = RunView(
            scenario="connection_cleanup",
            mode="thread",
            clients=1,
            duration=1,
            seed=0,
            shared={},
            recorders=[recorder],
            merged=recorder,
            reports=[],
            catalog=catalog,
            elapsed=1.0,
            hung=[],
            crashed=[],
            killed=[],
            fd_before=0,
            fd_after=0,
        )
        ok, detail = check(view)
    assert ok is False
    assert detail == "1 created, 1 unreadable"


def _inconclusive_result() -> ScenarioResult:
    return ScenarioResult(
        scenario="connection_cleanup",
        title="connection cleanup",
        mode="thread",
        clients=2,
        duration=1,
        elapsed=1.0,
        seed=7,
        operations={},
        retries={"operations_retried": 0, "total_retries": 0, "longest_conflict_streak": 0},
        metrics={},
        invariants=[
            InvariantResult("no_errors", "no operation failed", True, "0 errors"),
            InvariantResult("datasets_readable", "readable", False, "0 created: too little progress", True),
        ],
        errors=[],
        faults=[],
        command="python -m metafuse stress run connection_cleanup --seed 7",
    )


def test_the_text_report_and_json_say_inconclusive() -> None:
    result = _inconclusive_result()
    text = format_result(result)
    assert "[INCONCLUSIVE] datasets_readable: 0 created: too little progress" in text
    assert "INCONCLUSIVE: connection_cleanup (thread, seed 7)" in text
    assert "Reproduce with: python -m metafuse stress run connection_cleanup --seed 7" in text
    document = results_document([result])
    assert document["passed"] is False
    assert document["inconclusive"] is True
    item = document["results"][0]
    assert item["inconclusive"] is True
    assert item["invariants"][1]["inconclusive"] is True
    again = ScenarioResult.from_dict(json.loads(json.dumps(item)))
    assert again.inconclusive
    assert not again.failed


def test_a_failure_beside_an_inconclusive_invariant_is_a_failure() -> None:
    result = _inconclusive_result()
    result.invariants.append(InvariantResult("integrity_ok", "ok", False, "damaged"))
    assert result.failed
    assert not result.inconclusive
    assert "FAILED: connection_cleanup" in format_result(result)
    assert results_document([result])["inconclusive"] is False


@pytest.fixture
def idle_scenario() -> Iterator[str]:
    """connection_cleanup with clients that do nothing, registered for the CLI as `idle_cleanup`."""
    name = "idle_cleanup"
    REGISTRY[name] = dataclasses.replace(REGISTRY["connection_cleanup"], name=name, client=_idle)
    yield name
    del REGISTRY[name]


def test_the_cli_exits_5_and_every_output_says_inconclusive(
    idle_scenario: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report, junit = tmp_path / "run.json", tmp_path / "run.xml"
    argv = ["stress", "run", idle_scenario, "--clients", "2", "--duration", "1", "--seed", "1", "--quiet"]
    status = main([*argv, "--json", str(report), "--junit", str(junit)])
    out, err = capsys.readouterr()
    assert status == 5, out + err
    assert "[INCONCLUSIVE] datasets_readable" in out
    assert f"INCONCLUSIVE: {idle_scenario} (thread, seed 1)" in out
    assert "INCONCLUSIVE (too little progress to judge every invariant)" in err
    document = json.loads(report.read_text())
    assert (document["passed"], document["inconclusive"]) == (False, True)
    suites = ET.parse(junit).getroot()
    assert suites.get("failures") == "0"
    assert suites.get("skipped") == "3"  # datasets_readable, connections_closed, fds_restored
    skipped = suites.findall(".//testcase/skipped")
    assert {case.get("message", "").split(":")[0] for case in skipped} == {"inconclusive"}
