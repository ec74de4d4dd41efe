"""`metafuse stress` commands, the matrix helpers, and `stress compare`."""

from __future__ import annotations

import json
import re
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
        "settings": {"mode": "thread", "clients": clients, "duration": 5, "rate": None, "seed": 1},
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
        "Reproduce with: METAFUSE_FAULTS=lost_update python3 -m metafuse stress run concurrent_writers" in out
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


# -- output paths, thresholds, CSV and JUnit, grammar, Ctrl-C ----------------------------------------


def _quick(*extra: str) -> list[str]:
    return [
        "stress",
        "run",
        "concurrent_writers",
        "--clients",
        "1",
        "--duration",
        "1",
        "--seed",
        "4",
        "--quiet",
        *extra,
    ]


@pytest.mark.parametrize("option", ["--json", "--csv", "--junit"])
def test_an_output_path_that_is_a_directory_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    assert main(_quick(option, str(tmp_path))) == 2
    captured = capsys.readouterr()
    assert captured.out == "", "nothing ran"
    assert captured.err.count("\n") == 1
    assert option in captured.err
    assert "directory" in captured.err


def test_an_output_path_under_a_file_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert main(_quick("--json", str(blocker / "out" / "r.json"))) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "is not a directory" in captured.err
    assert not (tmp_path / "out").exists()


def test_csv_and_junit_are_written_beside_the_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import csv
    import xml.etree.ElementTree as ET

    paths = {name: tmp_path / "out" / name for name in ("r.json", "r.csv", "r.xml")}
    code = main(
        _quick(
            "--json",
            str(paths["r.json"]),
            "--csv",
            str(paths["r.csv"]),
            "--junit",
            str(paths["r.xml"]),
            "--threshold",
            "write.p99<60s",
            "--threshold",
            "read.count>999999999",
        )
    )
    out = capsys.readouterr().out
    assert code == 4, out
    rows = list(csv.DictReader(paths["r.csv"].read_text().splitlines()))
    assert rows, "a row per complete second and operation"
    assert {row["scenario"] for row in rows} == {"concurrent_writers"}
    # One row per operation kind in each complete second (a 1 s run has at most one).
    assert sorted((int(row["second"]), row["operation"]) for row in rows) == [(0, "read"), (0, "write")]
    assert all(int(row["ops"]) >= int(row["ok"]) + int(row["conflict"]) + int(row["error"]) for row in rows)
    assert all(float(row["p99_ms"]) >= float(row["p50_ms"]) > 0 for row in rows if int(row["ok"]))
    suites = ET.parse(paths["r.xml"]).getroot()
    (suite,) = suites.findall("testsuite")
    cases = suite.findall("testcase")
    document = json.loads(paths["r.json"].read_text())
    (result,) = document["results"]
    assert len(cases) == len(result["invariants"]) + 2
    failed = [case.get("name") for case in cases if case.find("failure") is not None]
    assert failed == ["threshold read.count>999999999"]
    assert "Reproduce with: python3 -m metafuse stress run" in (cases[-1].find("failure").text or "")
    assert suites.get("failures") == "1"
    assert document["passed"] is True
    assert document["thresholds_passed"] is False
    assert [t["passed"] for t in result["thresholds"]] == [True, False]


def test_a_failed_threshold_exits_4_and_a_failed_invariant_still_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from metafuse import faults

    assert main(_quick("--threshold", "write.ok_rate>1000000000/s")) == 4
    out = capsys.readouterr().out
    assert "[FAIL] write.ok_rate>1000000000/s" in out
    assert "THRESHOLD FAILED: concurrent_writers" in out
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
                "--quiet",
                "--threshold",
                "write.ok_rate>1000000000/s",
            ]
        )
    assert code == 1


def test_a_misspelt_threshold_operation_fails_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_quick("--threshold", "wrte.p99<1s")) == 4
    out = capsys.readouterr().out
    assert "Threshold wrte.p99<1s: FAILED, matched no scenario run (operations seen: read, write)" in out


def test_thresholds_from_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    limits = tmp_path / "limits.toml"
    limits.write_text('thresholds = ["write.p99<60s", "errors<1"]\n')
    assert main(_quick("--thresholds", str(limits))) == 0
    out = capsys.readouterr().out
    assert "[ok  ] write.p99<60s" in out
    assert "[ok  ] errors<1" in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--threshold", "read.p99<fast"], "--threshold"),
        (["--rate", "0"], "--rate"),
        (["--rate", "-5"], "--rate"),
        (["--warmup", "-1"], "--warmup"),
        (["--ramp-up", "x"], "--ramp-up"),
        (["--warmup", "1"], "shorter than the run"),
        (["--progress", "0"], "--progress"),
        (["--catalog", ""], "--catalog"),
    ],
)
def test_bad_run_options_are_one_line_before_anything_runs(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(_quick(*argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert words in captured.err


def test_reports_count_in_good_grammar(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["stress", "run", "optimistic_lock_resolution", "--clients", "1", "--duration", "1", "--quiet"])
        == 0
    )
    out = capsys.readouterr().out
    assert "stress test: 1 client, 1s duration" in out
    assert "1 clients" not in out
    assert "the 1 client finished" in out
    assert "The scenario passed." in out
    assert "All 1 scenarios" not in out
    (line,) = [line for line in out.splitlines() if "Attempts histogram" in line]
    assert "{" not in line
    assert "'" not in line
    assert line.strip().startswith("Attempts histogram: 1: ")


def test_the_header_shows_the_load_model() -> None:
    from metafuse.stress.report import announce

    assert announce("x", 4, 10, "thread") == "Running x stress test: 4 clients, 10s duration"
    assert announce("x", 1, 10, "process", rate=250.0, ramp_up=2.0, warmup=1.5) == (
        "Running x stress test: 1 process client, 10s duration, open model at 250 ops/s, ramp-up 2s,"
        " first 1.5s excluded as warm-up"
    )


def test_the_report_shows_every_latency_figure_and_ok_throughput(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_quick()) == 0
    out = capsys.readouterr().out
    (header,) = [line for line in out.splitlines() if line.strip().startswith("Latency (ms)")]
    assert header.split()[2:] == ["min", "mean", "stddev", "p50", "p90", "p95", "p99", "p99.9", "max"]
    assert "(ok " in out
    assert "conflicts" in out


def test_compare_on_a_result_missing_a_key_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_document(_result())))
    broken = _result()
    del broken["mode"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_document(broken)))
    assert main(["stress", "compare", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "'mode'" in err
    assert str(bad) in err


def test_a_negative_tolerance_gets_a_real_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_document(_result())))
    assert main(["stress", "compare", str(path), str(path), "--tolerance", "-5%"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot be negative" in err
    assert "expected one argument" not in err


def test_matrix_refuses_duplicate_client_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert matrix.main(["--clients", "1,4,1", "--durations", "1"]) == 2
    assert "more than once" in capsys.readouterr().err
    assert matrix.main(["--clients", "50,80", "--durations", "1"]) == 2
    assert "clamped" in capsys.readouterr().err


def test_matrix_summary_names_each_failed_invariant_with_its_command() -> None:
    from metafuse import faults

    with faults.enabled("lost_update"):
        result = run_scenario(REGISTRY["concurrent_writers"], StressConfig(clients=3, duration=1, seed=8))
    markdown = matrix.summary_markdown([result], {})
    assert "Failed invariants" in markdown
    assert "`version_chain`" in markdown
    assert (
        "METAFUSE_FAULTS=lost_update python3 -m metafuse stress run concurrent_writers --clients 3"
        in markdown
    )


def test_ctrl_c_prints_a_partial_summary_writes_the_json_and_exits_130(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    target = tmp_path / "partial.json"
    root = Path(__file__).parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFUSE_", "STRESS_TEST_"))}
    env["PYTHONPATH"] = str(root)
    # A user's Ctrl-C reaches a process that handles SIGINT. A test run started where SIGINT is
    # ignored (a background job of a non-interactive shell) would pass that on to the child,
    # which would then never see the signal: the child restores Python's handler first.
    argv = [
        sys.executable,
        "-c",
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler);"
        " sys.argv[0] = 'metafuse'; runpy.run_module('metafuse', run_name='__main__')",
        "stress",
        "run",
        "concurrent_writers",
        "optimistic_lock_resolution",
        "--clients",
        "2",
        "--duration",
        "60",
        "--progress",
        "0.2",
        "--json",
        str(target),
    ]
    with subprocess.Popen(
        argv, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as child:
        assert child.stderr is not None
        # Interrupt once a progress line counts a conflict: a write has completed by then (the
        # first writes race by construction), whatever the machine's load.
        for line in child.stderr:
            conflicts = re.search(r", ([\d,]+) conflicts?,", line)
            if line.startswith("progress:") and conflicts and conflicts.group(1) != "0":
                break
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "Traceback" not in err
    assert "INTERRUPTED: concurrent_writers" in out
    assert "Running optimistic" not in out, "the run stops at the interrupted scenario"
    assert "Interrupted after 1 scenario of 2" in err
    document = json.loads(target.read_text())
    assert document["interrupted"] is True
    assert document["passed"] is False
    (result,) = document["results"]
    assert result["interrupted"] is True
    assert 0 < result["elapsed"] < 60
    assert result["operations"]["write"]["total"] > 0


def test_the_reproduce_command_carries_every_setting_of_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shlex

    from metafuse.cli import build_parser

    thresholds = tmp_path / "limits.toml"
    thresholds.write_text('thresholds = ["read.count>999999999"]\n')
    catalog = tmp_path / "stressed.db"
    target = tmp_path / "out.json"
    code = main(
        [
            "stress",
            "run",
            "concurrent_writers",
            "--clients",
            "2",
            "--duration",
            "2",
            "--seed",
            "3",
            "--catalog",
            str(catalog),
            "--synchronous",
            "NORMAL",
            "--rate",
            "40",
            "--ramp-up",
            "0.5",
            "--warmup",
            "0.25",
            "--thresholds",
            str(thresholds),
            "--threshold",
            "write.p99<60s",
            "--perturb",
            "11",
            "--catalogs",
            "per-client",
            "--quiet",
            "--json",
            str(target),
        ]
    )
    out = capsys.readouterr().out
    assert code == 4, out
    (line,) = [line for line in out.splitlines() if line.startswith("Reproduce with: ")]
    words = shlex.split(line[len("Reproduce with: ") :])
    assert words[:3] == ["python3", "-m", "metafuse"]
    args = build_parser().parse_args(words[3:])
    assert args.scenarios == ["concurrent_writers"]
    assert (args.clients, args.duration, args.seed, args.mode) == (2, 2, 3, "thread")
    assert args.stress_catalog == str(catalog)
    assert args.synchronous == "NORMAL"
    assert (args.rate, args.ramp_up, args.warmup) == (40.0, 0.5, 0.25)
    assert args.thresholds == str(thresholds)
    assert args.threshold == ["write.p99<60s"]
    assert (args.perturb, args.catalogs) == ("seed=11,p=0.1", "per-client")
    (result,) = json.loads(target.read_text())["results"]
    assert result["settings"] | {"catalog_path": None} == {
        "mode": "thread",
        "clients": 2,
        "duration": 2,
        "seed": 3,
        "rate": 40.0,
        "ramp_up": 0.5,
        "warmup": 0.25,
        "catalog": "file",
        "catalog_path": None,
        "synchronous": "NORMAL",
        "kills": None,
        "faults": [],
        "history": False,
        "max_attempts": 5,
        "backoff_scale": 1.0,
        "lockstep": False,
        "perturb": "seed=11,p=0.1",
        "catalogs": "per-client",
    }
    assert result["settings"]["catalog_path"] == str(catalog)


def test_an_object_store_catalog_is_in_the_reproduce_command() -> None:
    from metafuse.stress.report import reproduce_command

    url = "s3://bucket/prefix?endpoint_url=http://127.0.0.1:9000&region=us-east-1"
    result = ScenarioResult.from_dict(
        _result()
        | {
            "title": "t",
            "elapsed": 5.0,
            "seed": 7,
            "retries": {},
            "metrics": {},
            "errors": [],
            "faults": ["stale_cache"],
            "settings": {"catalog": "s3", "catalog_path": url, "kills": 9, "rate": 12.5},
        }
    )
    command = reproduce_command(result)
    assert command.startswith("METAFUSE_FAULTS=stale_cache python3 -m metafuse stress run concurrent_writers")
    assert f"--catalog '{url}'" in command
    assert "--kills 9" in command
    assert "--rate 12.5" in command


def _with_settings(result: dict[str, Any], **settings: Any) -> dict[str, Any]:
    return result | {"settings": {**result["settings"], **settings}}


def test_compare_refuses_runs_whose_settings_differ(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline, current = tmp_path / "base.json", tmp_path / "cur.json"
    baseline.write_text(json.dumps(_document(_result(rate=100))))
    current.write_text(json.dumps(_document(_with_settings(_result(rate=10), rate=200.0, warmup=1.0))))
    assert main(["stress", "compare", str(baseline), str(current)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert "rate none -> 200.0" in err
    assert "warmup none -> 1.0" in err
    assert "--allow-different-settings" in err
    code = main(["stress", "compare", str(baseline), str(current), "--allow-different-settings"])
    assert code == 1  # compared: the throughput drop is a regression
    out = capsys.readouterr().out
    assert "REGRESSED" in out
    assert out.startswith("settings differ: concurrent_writers thread 4 clients 5s: rate none -> 200.0")


def test_compare_accepts_another_seed_and_another_catalog_path(tmp_path: Path) -> None:
    baseline, current = tmp_path / "base.json", tmp_path / "cur.json"
    baseline.write_text(json.dumps(_document(_with_settings(_result(), catalog_path="/a.db", seed=1))))
    current.write_text(json.dumps(_document(_with_settings(_result(), catalog_path="/b.db", seed=2))))
    assert main(["stress", "compare", str(baseline), str(current)]) == 0


def test_compare_refuses_a_file_that_records_no_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _result()
    del old["settings"]
    baseline, current = tmp_path / "base.json", tmp_path / "cur.json"
    baseline.write_text(json.dumps(_document(old)))
    current.write_text(json.dumps(_document(_result())))
    assert main(["stress", "compare", str(baseline), str(current)]) == 2
    assert "settings not recorded in the baseline file" in capsys.readouterr().err


def test_an_interrupted_run_never_reads_as_passed() -> None:
    result = ScenarioResult.from_dict(
        _result()
        | {
            "title": "t",
            "elapsed": 1.0,
            "seed": 1,
            "retries": {},
            "metrics": {},
            "errors": [],
            "faults": [],
            "operations": {},
        }
    )
    assert results_document([result])["passed"] is True
    result.interrupted = True
    document = results_document([result])
    assert (document["passed"], document["interrupted"]) == (False, True)
    assert document["results"][0]["passed"] is False
    # Interrupted before the next scenario's clients started: no result says so, the run does.
    result.interrupted = False
    document = results_document([result], interrupted=True)
    assert (document["passed"], document["interrupted"]) == (False, True)


def test_plural_counts_in_good_grammar() -> None:
    from metafuse.stress.report import plural

    assert [plural(1, "bug"), plural(2, "bug"), plural(0, "bug")] == ["1 bug", "2 bugs", "0 bugs"]
    assert [plural(1, "retry"), plural(3, "retry"), plural(2, "key")] == ["1 retry", "3 retries", "2 keys"]


@pytest.mark.slow
def test_selfcheck_counts_in_good_grammar(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["stress", "selfcheck", "--bug", "lost_update", "--mode", "thread", "--duration", "1"]
    main([*argv, "--clients", "2", "--quiet"])
    assert "Self-check: 1 bug x 1 mode, 1s runs" in capsys.readouterr().out


def test_compare_counts_in_good_grammar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline, current = tmp_path / "base.json", tmp_path / "cur.json"
    baseline.write_text(json.dumps(_document(_result(rate=100))))
    current.write_text(json.dumps(_document(_result(rate=10))))
    assert main(["stress", "compare", str(baseline), str(current)]) == 1
    assert "\n1 regression beyond 20% tolerance\n" in capsys.readouterr().out
