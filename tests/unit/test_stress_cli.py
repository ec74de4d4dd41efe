"""`metafuse stress` commands, the matrix helpers, and `stress compare`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from metafuse.cli import main
from metafuse.stress import matrix
from metafuse.stress.compare import compare, parse_tolerance
from metafuse.stress.config import StressConfig
from metafuse.stress.report import results_document, write_json
from metafuse.stress.result import ScenarioResult
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY


def _result(
    scenario: str = "concurrent_writers",
    clients: int = 4,
    rate: float = 100.0,
    p99: float = 1.0,
    ok: bool = True,
) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "mode": "thread",
        "clients": clients,
        "duration": 5,
        "throughput": rate,
        "passed": ok,
        "operations": {"write": {"latency_ms": {"p99": p99}}},
    }


def _document(*results: dict[str, Any]) -> dict[str, Any]:
    return {"results": list(results)}


def test_list_names_every_scenario_and_invariant(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stress", "list"]) == 0
    out = capsys.readouterr().out
    for name, scenario in REGISTRY.items():
        if name.startswith("test_"):
            continue
        assert name in out
        for invariant in scenario.invariants:
            assert invariant.name in out


def test_run_prints_the_guide_style_report_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out" / "results.json"
    code = main(
        [
            "stress",
            "run",
            "concurrent_writers",
            "--clients",
            "3",
            "--duration",
            "1",
            "--seed",
            "5",
            "--json",
            str(target),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "Running concurrent writer stress test: 3 clients, 1s duration" in out
    assert "Results:" in out
    assert "Successful writes:" in out
    assert "Conflicts detected:" in out
    assert "Errors: 0" in out
    assert "[ok  ] version_chain" in out
    document = json.loads(target.read_text())
    assert document["passed"] is True
    (result,) = document["results"]
    assert result["seed"] == 5
    assert result["clients"] == 3
    assert set(result["operations"]["write"]["latency_ms"]) >= {"p50", "p95", "p99", "max"}


def test_failed_run_exits_1_and_prints_the_reproduce_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from metafuse import faults

    with faults.enabled("lost_update"):
        code = main(
            [
                "stress",
                "run",
                "concurrent_writers",
                "--clients",
                "3",
                "--duration",
                "1",
                "--seed",
                "9",
                "--quiet",
            ]
        )
    out = capsys.readouterr().out
    assert code == 1
    assert "[FAIL] version_chain" in out
    assert (
        "Reproduce with: METAFUSE_FAULTS=lost_update python -m metafuse stress run concurrent_writers" in out
    )
    assert "--seed 9" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["stress", "run", "no_such_scenario"],
        ["stress", "compare", "missing.json", "missing.json"],
    ],
)
def test_bad_input_exits_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "error" in err


def test_compare_flags_throughput_drop_latency_rise_and_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline, current = tmp_path / "base.json", tmp_path / "cur.json"
    baseline.write_text(json.dumps(_document(_result(rate=100, p99=1.0), _result(clients=8, rate=50))))
    current.write_text(
        json.dumps(_document(_result(rate=85, p99=1.1), _result(clients=8, rate=50, ok=False)))
    )
    assert main(["stress", "compare", str(baseline), str(current), "--tolerance", "20%"]) == 1
    out = capsys.readouterr().out
    assert "8 clients" in out
    assert "REGRESSED" in out
    rows = compare(
        {"k": _result(rate=100, p99=1.0)}, {"k": _result(rate=79, p99=1.3)}, parse_tolerance("20%")
    )
    assert [row.regressed for row in rows] == [True, True, False]
    same = compare({"k": _result()}, {"k": _result(rate=90)}, 0.2)
    assert not any(row.regressed for row in same)


def test_compare_within_tolerance_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_document(_result())))
    assert main(["stress", "compare", str(path), str(path)]) == 0


@pytest.mark.parametrize("text", ["abc", "-5%", "5000%"])
def test_bad_tolerance_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        parse_tolerance(text)


def test_knee_is_where_throughput_stops_growing() -> None:
    def result(clients: int, rate: float) -> ScenarioResult:
        return ScenarioResult(
            "s",
            "s",
            "thread",
            clients,
            5,
            5.0,
            1,
            {
                "op": {
                    "per_sec": rate,
                    "latency_ms": {"p99": 1.0},
                    "ok": 1,
                    "conflict": 0,
                    "busy": 0,
                    "error": 0,
                }
            },
            {},
            {},
            [],
            [],
            [],
        )

    found = matrix.knees([result(1, 100), result(5, 400), result(10, 420), result(20, 300)])
    assert found == {"s thread 5s": 5}
    assert matrix.knees([result(1, 100)]) == {"s thread 5s": None}


def test_matrix_plan_and_run_write_every_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cells = matrix.plan(["a", "b"], ["thread"], [1, 5], [5, 30])
    assert len(cells) == 8
    assert cells[0].duration == 5
    assert cells[-1].duration == 30
    summary = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code = matrix.main(
        [
            "--clients",
            "1,2",
            "--durations",
            "1",
            "--scenarios",
            "concurrent_writers",
            "--output",
            str(tmp_path),
            "--seed",
            "3",
        ]
    )
    assert code == 0
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "concurrent_writers-thread-c1-d1.json",
        "concurrent_writers-thread-c2-d1.json",
        "summary.json",
        "summary.md",
    ]
    assert "| concurrent_writers | thread | 2 | 1 s |" in (folder / "summary.md").read_text()
    assert "Stress matrix" in summary.read_text()


def test_matrix_rejects_garbage_axes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STRESS_MATRIX_CLIENTS", "1,x")
    assert matrix.main([]) == 2
    assert "STRESS_MATRIX_CLIENTS" in capsys.readouterr().err


def test_results_document_round_trips(tmp_path: Path) -> None:
    result = run_scenario(REGISTRY["optimistic_lock_resolution"], StressConfig(clients=2, duration=1, seed=2))
    path = tmp_path / "r.json"
    write_json(str(path), results_document([result]))
    loaded = json.loads(path.read_text())
    assert loaded["results"][0]["metrics"]["rounds"] == result.metrics["rounds"] > 0
    assert not list(tmp_path.glob("*.tmp-*"))
