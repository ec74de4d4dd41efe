"""Thresholds: parsing with units, evaluation per scenario and operation, the TOML file, misspellings."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from metafuse.errors import ValidationError
from metafuse.stress import thresholds
from metafuse.stress.thresholds import evaluate, load_file, parse, unmatched


def _op(total: int, ok: int, conflict: int = 0, error: int = 0, p99: float = 1.0) -> dict[str, Any]:
    latency = dict.fromkeys(thresholds.LATENCY_METRICS, p99 / 2)
    latency.update({"p99": p99, "max": p99 * 2})
    return {"total": total, "ok": ok, "conflict": conflict, "busy": 0, "error": error, "latency_ms": latency}


OPERATIONS = {"read": _op(1000, 1000, p99=0.5), "write": _op(400, 200, conflict=180, error=20, p99=12.0)}


@pytest.mark.parametrize(
    ("text", "operation", "metric", "compare", "limit"),
    [
        ("read.p99<5ms", "read", "p99", "<", 5.0),
        ("read.p99<5", "read", "p99", "<", 5.0),
        ("read.p99.9 <= 1.5s", "read", "p99.9", "<=", 1500.0),
        ("write.max<250us", "write", "max", "<", 0.25),
        ("write.ok_rate>100/s", "write", "ok_rate", ">", 100.0),
        ("conflict_ratio<0.5", None, "conflict_ratio", "<", 0.5),
        ("error_ratio<=5%", None, "error_ratio", "<=", 0.05),
        ("errors<1", None, "errors", "<", 1.0),
        ("p99>=2ms", None, "p99", ">=", 2.0),
    ],
)
def test_parse_reads_metric_operation_and_units(
    text: str, operation: str | None, metric: str, compare: str, limit: float
) -> None:
    threshold = parse(text)
    assert (threshold.operation, threshold.metric, threshold.compare) == (operation, metric, compare)
    assert threshold.limit == pytest.approx(limit)


def test_a_scenario_prefix_limits_a_threshold_to_that_scenario() -> None:
    threshold = parse("concurrent_writers:write.p99<5ms")
    assert threshold.scenario == "concurrent_writers"
    assert evaluate([threshold], "other", OPERATIONS, 10.0) == []
    assert len(evaluate([threshold], "concurrent_writers", OPERATIONS, 10.0)) == 1


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("read.p99", "read.p99<5ms"),
        ("read.p99<fast", "read.p99<5ms"),
        ("read.p99<5/s", "latency"),
        ("write.ok_rate>100ms", "rate"),
        ("conflict_ratio<5ms", "ratio"),
        ("errors<1%", "count"),
        ("read.p42<5ms", "unknown metric"),
        ("read.speed>5", "unknown metric"),
        ("", "read.p99<5ms"),
    ],
)
def test_a_bad_threshold_is_one_clear_error(text: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse(text)
    assert "--threshold" in str(info.value)
    assert words in str(info.value)


def test_evaluate_passes_and_fails_with_the_figures() -> None:
    checks = [parse(t) for t in ("read.p99<1ms", "write.p99<5ms", "write.ok_rate>10/s", "conflict_ratio<0.1")]
    verdicts = {v.threshold: v for v in evaluate(checks, "s", OPERATIONS, 10.0)}
    assert verdicts["read.p99<1ms"].passed
    assert verdicts["read.p99<1ms"].actual == 0.5
    assert not verdicts["write.p99<5ms"].passed
    assert verdicts["write.p99<5ms"].detail == "12 ms (limit < 5 ms)"
    assert verdicts["write.ok_rate>10/s"].passed
    assert verdicts["write.ok_rate>10/s"].actual == 20.0
    assert not verdicts["conflict_ratio<0.1"].passed
    assert verdicts["conflict_ratio<0.1"].actual == pytest.approx(180 / 1400, abs=1e-4)
    assert verdicts["conflict_ratio<0.1"].detail.startswith("12.9%")


def test_without_an_operation_latency_is_the_worst_and_rates_add_up() -> None:
    worst, rate = evaluate([parse("p99<10ms"), parse("rate>0/s")], "s", OPERATIONS, 10.0)
    assert (worst.actual, worst.passed) == (12.0, False)
    assert rate.actual == 140.0


def test_a_threshold_that_matches_no_run_fails_naming_what_was_seen() -> None:
    checks = [parse("reed.p99<1ms"), parse("read.p99<1ms")]
    verdicts = evaluate(checks, "s", OPERATIONS, 10.0)
    missing = unmatched(checks, verdicts, OPERATIONS)
    assert [v.threshold for v in missing] == ["reed.p99<1ms"]
    assert not missing[0].passed
    assert "operations seen: read, write" in missing[0].detail


def test_thresholds_from_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "limits.toml"
    path.write_text('# CI limits\nthresholds = [\n  "read.p99<5ms",  # reads\n  "conflict_ratio<0.5",\n]\n')
    assert [t.text for t in load_file(str(path))] == ["read.p99<5ms", "conflict_ratio<0.5"]


def test_the_subset_reader_for_old_pythons_agrees_and_refuses_more(tmp_path: Path) -> None:
    text = '# CI limits\nthresholds = [\n  "read.p99<5ms",\n  "conflict_ratio<0.5",\n]\n'
    assert thresholds._read_subset(text, "f") == ["read.p99<5ms", "conflict_ratio<0.5"]
    with pytest.raises(ValidationError, match=r"before 3\.11"):
        thresholds._read_subset('[limits]\nread = "p99<5ms"\n', "f")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("thresholds = [", "not valid TOML"),
        ('thresholds = "read.p99<5ms"', "must hold thresholds"),
        ('limits = ["read.p99<5ms"]', "unknown key 'limits'"),
        ('thresholds = ["read.p99<fast"]', "read.p99<fast"),
    ],
)
def test_a_bad_toml_file_is_one_clear_error_naming_it(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "limits.toml"
    path.write_text(content)
    with pytest.raises(ValidationError) as info:
        load_file(str(path))
    assert str(path) in str(info.value)
    if sys.version_info < (3, 11) and "fast" not in content:
        # Without tomllib, anything but the one accepted shape gets the subset's own message.
        words = 'only thresholds = ["...", ...]'
    assert words in str(info.value)


def test_a_missing_toml_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot be read"):
        load_file(str(tmp_path / "nope.toml"))


def test_a_small_limit_and_figure_keep_their_significant_digits() -> None:
    (verdict,) = evaluate([parse("read.p99<0.0001ms")], "s", OPERATIONS, 10.0)
    assert verdict.detail == "0.5 ms (limit < 0.0001 ms)"
    (verdict,) = evaluate([parse("read.p99<250ns")], "s", {"read": _op(1, 1, p99=0.00012345)}, 10.0)
    assert verdict.detail == "0.000123 ms (limit < 0.00025 ms)"
