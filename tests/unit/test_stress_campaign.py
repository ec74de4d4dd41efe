"""The false-alarm campaign's bookkeeping, budget, hogs and command line, on tiny runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from metafuse.stress import campaign
from metafuse.stress.campaign import CpuHog, Tally, plan, run_campaign
from metafuse.stress.result import ScenarioResult
from metafuse.stress.scenario import InvariantResult
from metafuse.stress.selfcheck import PROBES, Probe


def _result(scenario: str, *failed: str, mode: str = "thread", seed: int = 1) -> ScenarioResult:
    invariants = [
        InvariantResult(name, "promise", name not in failed, f"{name} detail") for name in ("a", "b")
    ]
    return ScenarioResult(
        scenario=scenario,
        title=scenario,
        mode=mode,
        clients=2,
        duration=1,
        elapsed=1.0,
        seed=seed,
        operations={},
        retries={},
        metrics={},
        invariants=invariants,
        errors=[],
        faults=[],
    )


def test_tally_counts_clean_runs_and_keeps_each_false_failure_with_its_command() -> None:
    tally = Tally()
    assert tally.record_clean(_result("s1"), "cmd-1")
    assert not tally.record_clean(_result("s2", "a", "b", seed=9), "cmd-2")
    assert tally.clean_runs == 1
    assert tally.runs == 2
    assert [(f.scenario, f.invariant, f.detail, f.command, f.seed) for f in tally.false_failures] == [
        ("s2", "a", "a detail", "cmd-2", 9),
        ("s2", "b", "b detail", "cmd-2", 9),
    ]
    assert not tally.passed
    assert "reproduce: cmd-2" in tally.summary()


def test_tally_rates_each_probe_and_fails_on_a_single_miss() -> None:
    tally = Tally()
    probe = Probe("s1", ("b",))
    assert tally.record_fault("bug", probe, _result("s1", "b"), "caught-cmd")
    assert tally.passed
    assert not tally.record_fault("bug", probe, _result("s1", "a"), "missed-cmd")
    (detection,) = tally.to_dict()["detection"]
    assert (detection["runs"], detection["caught"], detection["rate"]) == (2, 1, 0.5)
    assert detection["missed"] == ["missed-cmd"]
    assert not tally.passed


def test_a_clean_run_that_raises_is_a_false_failure() -> None:
    tally = Tally()
    tally.record_crash("s1", "process", 3, "RuntimeError: boom", "cmd")
    assert tally.runs == 1
    assert tally.false_failures[0].detail == "RuntimeError: boom"
    assert not tally.passed


def test_plan_runs_a_process_only_scenario_once_per_round_then_every_probe() -> None:
    items = list(
        plan(
            ["read_heavy_workload", "kill_writers"],
            ["thread", "process"],
            ["connection_leak"],
            runs=2,
            duration=1,
            clients=2,
            seed=1,
        )
    )
    clean = [(item.scenario.name, item.config.mode) for item in items if item.fault is None]
    assert clean == 2 * [
        ("read_heavy_workload", "thread"),
        ("read_heavy_workload", "process"),
        ("kill_writers", "process"),
    ]
    probes = [(item.fault, item.config.mode) for item in items if item.fault is not None]
    assert probes == 2 * [("connection_leak", "thread"), ("connection_leak", "process")]
    assert len({item.config.seed for item in items if item.fault is None}) == 6


def test_the_budget_stops_the_campaign_between_runs() -> None:
    tally = Tally()
    items = plan(["read_heavy_workload"], ["thread"], [], runs=5, duration=1, clients=1, seed=1)
    assert run_campaign(items, budget=0.5, tally=tally) == 1  # the first run alone outlasts it
    assert tally.runs == 1


def test_cpu_hogs_run_until_stopped_and_end_by_themselves() -> None:
    with CpuHog(2, time.time() + 600) as hog:
        assert hog.alive() == 2
    assert hog.alive() == 0
    expired = CpuHog(1, time.time() - 1)
    with expired:
        proc = expired._procs[0]
        assert proc.wait(30) == 0  # its loop ended on its own


def test_campaign_on_a_tiny_budget_writes_its_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "campaign.json"
    code = campaign.main(
        [
            "--runs=1",
            "--duration=1",
            "--clients=2",
            "--modes=thread",
            "--scenarios=read_heavy_workload",
            "--faults=connection_leak",
            "--hogs=1",
            f"--json={out}",
            "--seed=3",
        ]
    )
    assert code == 0, capsys.readouterr().out
    document = json.loads(out.read_text())
    assert (document["runs"], document["clean_runs"], document["false_failures"]) == (1, 1, [])
    (detection,) = document["detection"]
    assert (detection["fault"], detection["runs"], detection["caught"]) == ("connection_leak", 1, 1)
    assert document["settings"]["cpu_hogs"] == 1
    assert "PASSED" in capsys.readouterr().out
    assert set(PROBES) >= {"connection_leak"}


def test_an_unknown_scenario_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        campaign.main(["--scenarios=nope"])
    assert raised.value.code == 2
    assert "unknown scenario 'nope'" in capsys.readouterr().err


def test_runs_in_worker_processes_are_counted_like_the_others() -> None:
    tally = Tally()
    items = plan(
        ["read_heavy_workload"], ["thread"], ["connection_leak"], runs=1, duration=1, clients=2, seed=4
    )
    lines: list[str] = []
    assert run_campaign(items, budget=300, tally=tally, jobs=2, on_run=lines.append) == 2
    assert (tally.runs, tally.clean_runs, tally.false_failures) == (1, 1, [])
    assert [(d.fault, d.runs, d.caught) for d in tally.detections.values()] == [("connection_leak", 1, 1)]
    assert len(lines) == 2
