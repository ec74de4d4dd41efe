"""Tests for the stress HTML report (metafuse.stress.html_report) and the --html options.

The page itself is checked here as text, without a browser; tests/browser loads it in Chromium.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from metafuse.cli import main
from metafuse.stress import campaign, html_report, matrix
from metafuse.stress.config import StressConfig
from metafuse.stress.recorder import CONFLICT, OK, Recorder
from metafuse.stress.report import environment
from metafuse.stress.result import ScenarioResult, clients_table
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY, InvariantResult
from metafuse.stress.thresholds import ThresholdResult

HOSTILE = '<img src=x onerror="alert(1)">&amp;'


def _result(
    seconds: int = 5, clients: int = 4, ops: tuple[str, ...] = ("read", "write"), **changes: Any
) -> ScenarioResult:
    series = [
        {
            "second": second,
            "operation": op,
            "ops": 100 + second + 10 * index,
            "ok": 90 + second,
            "conflict": 10,
            "error": 0,
            "p50_ms": 0.5 + index,
            "p99_ms": 5.0 + (200.0 if second == seconds // 2 else 0.0),
        }
        for second in range(seconds)
        for index, op in enumerate(ops)
    ]
    values: dict[str, Any] = {
        "scenario": "concurrent_writers",
        "title": "concurrent writer",
        "mode": "thread",
        "clients": clients,
        "duration": seconds,
        "elapsed": float(seconds),
        "seed": 7,
        "operations": {
            op: {
                "ok": 900,
                "conflict": 100,
                "busy": 0,
                "error": 0,
                "total": 1000,
                "per_sec": 200.0,
                "ok_per_sec": 180.0,
                "latency_ms": dict.fromkeys(
                    ("min", "mean", "stddev", "p50", "p90", "p95", "p99", "p99.9", "max"), 1.5
                ),
            }
            for op in ops
        },
        "retries": {"operations_retried": 3, "total_retries": 4, "longest_conflict_streak": 2},
        "metrics": {"successful_writes": 900},
        "invariants": [
            InvariantResult("clients_finished", "every client finished", True, "all clients finished"),
            InvariantResult(
                "version_chain", "versions 2, 3, ... with no gap", True, "every chain is complete"
            ),
        ],
        "errors": [],
        "faults": [],
        "command": "python -m metafuse stress run concurrent_writers --seed 7",
        "series": series,
        "per_client": [
            {
                "client": c,
                "ok": 200 + c,
                "conflict": 20,
                "busy": 0,
                "error": 0,
                "retries": 1,
                "total": 220 + c,
            }
            for c in range(clients)
        ],
    }
    values.update(changes)
    return ScenarioResult(**values)


def _page(*results: ScenarioResult, **options: Any) -> str:
    return html_report.run_report(list(results), environment=environment(), **options)


def _svgs(page: str) -> dict[str, ET.Element]:
    """Every chart of the page, parsed (so each is well-formed XML), by its id."""
    charts = {}
    for text in re.findall(r"<svg .*?</svg>", page, flags=re.S):
        root = ET.fromstring(text)
        charts[root.get("id", "")] = root
    return charts


def test_the_page_reads_in_order_verdict_invariants_charts_clients_history_settings_command() -> None:
    page = _page(_result())
    order = [
        'id="verdict"',
        "<h3>Invariants</h3>",
        "version_chain",
        "<h3>Over the run",
        "Throughput per operation",
        "Latency per operation",
        "<h3>Per operation</h3>",
        "<h3>Per client</h3>",
        "<h3>Conflicts and retries</h3>",
        "<h3>History check</h3>",
        "<h3>Settings</h3>",
        "<h3>Reproduce</h3>",
        "<h2>Environment</h2>",
    ]
    positions = [page.find(marker) for marker in order]
    assert -1 not in positions, [m for m, p in zip(order, positions) if p == -1]
    assert positions == sorted(positions)
    assert ">PASSED<" in page
    assert "python -m metafuse stress run concurrent_writers --seed 7" in page


def test_the_charts_carry_the_runs_numbers() -> None:
    charts = _svgs(_page(_result()))
    throughput = {
        p.get("data-series"): p for p in charts["run-0-throughput"].iter("{http://www.w3.org/2000/svg}path")
    }
    # read does 100 + second ops per second, write 110 + second: peaks in second 4.
    assert throughput["read"].get("data-peak") == "104"
    assert throughput["write"].get("data-peak") == "114"
    assert throughput["all operations"].get("data-peak") == "218"
    latency = {
        p.get("data-series"): p for p in charts["run-0-latency"].iter("{http://www.w3.org/2000/svg}path")
    }
    assert latency["read p99"].get("data-peak") == "205"
    assert latency["write p50"].get("data-peak") == "1.5"
    bars = [
        g for g in charts["run-0-clients"].iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "bar"
    ]
    assert [g.get("data-total") for g in bars] == ["220", "221", "222", "223"]
    assert "ops per client: min 220, median 222, max 223" in _page(_result())


def test_a_failed_invariant_makes_the_verdict_failed_and_is_marked() -> None:
    failed = _result(
        invariants=[InvariantResult("version_chain", "no gap", False, "dataset d0: versions [1, 2, 2]")]
    )
    page = _page(failed, _result())
    assert re.search(r'class="verdict bad" id="verdict">FAILED<', page)
    assert '<td class="bad">FAIL</td>' in page
    assert "dataset d0: versions [1, 2, 2]" in page
    assert "<title>FAILED: Stress run</title>" in page


def test_a_threshold_that_matched_no_run_fails_the_page() -> None:
    unmatched = ThresholdResult("nosuch.p99<5ms", "*", False, None, "matched no operation; saw read, write")
    page = _page(_result(), unmatched=[unmatched])
    assert re.search(r'id="verdict">THRESHOLD FAILED<', page)
    assert '<p class="alert">Threshold <b>nosuch.p99&lt;5ms</b> FAILED:' in page
    assert "FAILED: matched no operation; saw read, write</p>" in page


def test_everything_from_a_run_is_escaped() -> None:
    hostile = _result(
        title=HOSTILE,
        command=f"python -m metafuse stress run {HOSTILE}",
        invariants=[InvariantResult(HOSTILE, HOSTILE, False, HOSTILE)],
        errors=[HOSTILE],
        metrics={HOSTILE: HOSTILE},
        operations={HOSTILE: _result().operations["read"]},
        series=[{**row, "operation": HOSTILE} for row in _result().series if row["operation"] == "read"],
    )
    page = _page(hostile, title=HOSTILE)
    assert "<img" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;amp;" in page
    _svgs(page)  # the charts stay well-formed


def test_the_page_needs_no_network_and_follows_the_colour_scheme() -> None:
    page = _page(_result())
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert "@import" not in page
    assert "url(" not in page
    assert "default-src 'none'" in page, "a Content-Security-Policy forbids every fetch"
    assert "@media (prefers-color-scheme:dark)" in page
    assert "color-scheme:light dark" in page


def test_fifty_clients_for_300_seconds_stay_small() -> None:
    result = _result(seconds=300, clients=50, ops=("create", "read", "write", "list"))
    page = _page(result)
    assert len(page.encode()) < 200_000, len(page.encode())
    charts = _svgs(page)
    for name in ("run-0-throughput", "run-0-latency", "run-0-conflicts"):
        for path in charts[name].iter("{http://www.w3.org/2000/svg}path"):
            assert path.get("d", "").count("L") + 1 <= 150
    assert charts["run-0-clients"].get("data-bars") == "50"
    assert "per 2-second interval" in page
    # The 200 ms spike of second 150 is kept by the worst-latency aggregation.
    latency = {
        p.get("data-series"): p for p in charts["run-0-latency"].iter("{http://www.w3.org/2000/svg}path")
    }
    assert latency["write p99"].get("data-peak") == "205"


def test_a_run_without_series_or_clients_says_so() -> None:
    page = _page(_result(series=[], per_client=[], interrupted=True))
    assert "No complete second was measured." in page
    assert "No client sent a record." in page
    assert ">INTERRUPTED<" in page


def test_clients_table_adds_up_each_slots_incarnations_measured_operations() -> None:
    first, second, other = Recorder(client=0), Recorder(client=0), Recorder(client=1)
    first.add("write", OK, 1000, 0)
    first.add("write", CONFLICT, 1000, 0)
    first.add("write", OK, 1000, 0, measured=False)  # warm-up: counted for invariants, not measured
    first.retried(2)
    second.add("read", OK, 10, 1)
    other.add("read", OK, 10, 1)
    rows = clients_table([other, first, second])
    assert rows == [
        {"client": 0, "ok": 2, "conflict": 1, "busy": 0, "error": 0, "retries": 2, "total": 3},
        {"client": 1, "ok": 1, "conflict": 0, "busy": 0, "error": 0, "retries": 0, "total": 1},
    ]


def test_a_real_runs_clients_add_up_to_its_operations() -> None:
    config = StressConfig(clients=3, duration=1, mode="thread", seed=11)
    result = run_scenario(REGISTRY["concurrent_writers"], config)
    assert [row["client"] for row in result.per_client] == [0, 1, 2]
    assert sum(row["total"] for row in result.per_client) == sum(
        op["total"] for op in result.operations.values()
    )
    assert sum(row["retries"] for row in result.per_client) == result.retries["total_retries"]


def test_a_non_linearizable_history_is_shown_with_the_operations_that_prove_it(tmp_path: Path) -> None:
    history = tmp_path / "h.jsonl"
    config = StressConfig(clients=4, duration=1, mode="thread", seed=3, history=str(history))
    result = run_scenario(REGISTRY["concurrent_writers"], config, faults=("lost_update",))
    checked = html_report.check_history_file(str(history))
    assert checked["linearizable"] is False
    assert checked["failures"], "the lost update leaves some key non-linearizable"
    page = _page(result, histories={"concurrent_writers": checked})
    assert "NOT linearizable" in page
    assert "the operations that prove it" in page
    assert "cannot linearize client" in page
    assert "longest linearizable prefix" in page


def test_stress_run_html_writes_the_report_of_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out" / "report.html"
    results = tmp_path / "r.json"
    argv = ["stress", "run", "concurrent_writers", "--clients", "2", "--duration", "1", "--seed", "5"]
    code = main([*argv, "--quiet", "--html", str(target), "--json", str(results)])
    assert code == 0
    assert f"HTML report written to {target}" in capsys.readouterr().out
    page = target.read_text(encoding="utf-8")
    (result,) = json.loads(results.read_text())["results"]
    assert f"seed {result['seed']}" in page
    assert f"{result['throughput']:,.1f}" in page
    assert "No history was recorded" in page
    charts = _svgs(page)
    assert charts["run-0-clients"].get("data-bars") == "2"


def test_an_html_path_that_is_a_directory_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["stress", "run", "concurrent_writers", "--duration", "1", "--quiet", "--html", str(tmp_path)]
    )
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == "", "nothing ran"
    assert captured.err.count("\n") == 1
    assert "--html" in captured.err
    assert "directory" in captured.err


def test_compare_html_marks_the_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def document(rate: float) -> dict[str, Any]:
        return {
            "results": [
                {
                    "scenario": "concurrent_writers",
                    "mode": "thread",
                    "clients": 4,
                    "duration": 5,
                    "throughput": rate,
                    "passed": True,
                    "operations": {"write": {"latency_ms": {"p99": 1.0}}},
                    "settings": {"mode": "thread", "clients": 4, "duration": 5, "rate": None},
                }
            ]
        }

    old, new, page = tmp_path / "old.json", tmp_path / "new.json", tmp_path / "c.html"
    old.write_text(json.dumps(document(1000.0)))
    new.write_text(json.dumps(document(500.0)))
    assert main(["stress", "compare", str(old), str(new), "--html", str(page)]) == 1
    text = page.read_text(encoding="utf-8")
    assert ">REGRESSED<" in text
    assert "-50.0%" in text
    bars = [
        g.get("data-total") for g in _svgs(text)["compare-throughput"].iter("{http://www.w3.org/2000/svg}g")
    ]
    assert bars == ["1000", "500"]


def test_matrix_html_has_the_sweep_and_every_cell(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "m.html"
    argv = ["--clients", "1,2", "--durations", "1", "--scenarios", "concurrent_writers", "--seed", "3"]
    assert matrix.main([*argv, "--output", str(tmp_path), "--html", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    curve = _svgs(text)["matrix-throughput"]
    (line,) = curve.iter("{http://www.w3.org/2000/svg}path")
    assert line.get("data-series") == "concurrent_writers thread 1s"
    assert 'id="run-0"' in text
    assert 'id="run-1"' in text


@pytest.mark.slow
def test_selfcheck_html_lists_each_bug_and_its_history_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "s.html"
    argv = ["stress", "selfcheck", "--mode", "thread", "--bug", "lost_update", "--duration", "1"]
    assert main([*argv, "--seed", "2", "--html", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    assert ">PASSED<" in text
    assert "caught by concurrent_writers." in text
    assert "history: caught:" in text


def test_campaign_html_shows_detection_and_false_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "fa.html"
    argv = ["--runs", "1", "--duration", "1", "--clients", "2", "--modes", "thread", "--hogs", "0"]
    argv += ["--scenarios", "concurrent_writers", "--faults", "lost_update", "--seed", "4"]
    code = campaign.main([*argv, "--json", str(tmp_path / "fa.json"), "--html", str(page)])
    text = page.read_text(encoding="utf-8")
    document = json.loads((tmp_path / "fa.json").read_text())
    assert code == (0 if document["passed"] else 1)
    assert "False-alarm campaign" in text
    assert f"clean runs: {document['clean_runs']} of" in text
    for detection in document["detection"]:
        assert f"<td>{detection['fault']}</td><td>{detection['scenario']}</td>" in text


def test_a_campaign_html_path_that_cannot_be_written_is_refused_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        campaign.main(["--hogs", "0", "--html", str(tmp_path)])
    assert stopped.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "", "no run started"
    assert captured.err.count("\n") == 1
    assert "--html" in captured.err


def test_faults_are_named_in_the_report() -> None:
    page = _page(_result(faults=["lost_update"]))
    assert "faults on: lost_update" in page
