"""tools/bench_ratios.py: benchmark runs compared by their ratio to raw sqlite3 in the same run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_ratios", ROOT / "tools" / "bench_ratios.py")
assert _spec is not None
assert _spec.loader is not None
bench_ratios: Any = importlib.util.module_from_spec(_spec)
sys.modules["bench_ratios"] = bench_ratios
_spec.loader.exec_module(bench_ratios)


def _run(path: Path, means: dict[str, Any]) -> str:
    """Write a pytest-benchmark run: per group (catalog, raw) for one round without a round
    parameter (a run saved before rounds existed), or a list of them, one per round."""
    benchmarks = []
    for group, sides in means.items():
        rounds = sides if isinstance(sides, list) else [sides]
        for index, (catalog, raw) in enumerate(rounds):
            for impl, value in (("catalog", catalog), ("raw_sqlite", raw)):
                params: dict[str, Any] = {"impl": impl}
                if isinstance(sides, list):
                    params["bench_round"] = index
                benchmarks.append(
                    {
                        "group": group,
                        "name": f"test_{group}[r{index}-{impl}]",
                        "params": params,
                        "stats": {"mean": value * 1.5, "median": value},
                    }
                )
    path.write_text(json.dumps({"benchmarks": benchmarks}))
    return str(path)


def _rounds(*ratios: float) -> list[tuple[float, float]]:
    return [(ratio, 1.0) for ratio in ratios]


def test_a_slower_machine_is_not_a_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Twice slower on both sides (another runner): ratios unchanged, exit 0."""
    old = _run(tmp_path / "old.json", {"get": [(2.0, 1.0)] * 3, "save": [(30.0, 10.0)] * 3})
    new = _run(tmp_path / "new.json", {"get": [(4.0, 2.0)] * 3, "save": [(60.0, 20.0)] * 3})
    assert bench_ratios.main([old, new]) == 0
    out = capsys.readouterr().out
    assert "0 of 2 ratios regressed" in out
    assert "2.00x" in out


def test_a_growth_beyond_the_noise_of_the_rounds_is_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every current round above every baseline round, by 30%: regressed (p = 1/252 with 5 + 5)."""
    old = _run(tmp_path / "old.json", {"get": _rounds(2.0, 2.1, 1.9, 2.05, 1.95), "save": _rounds(3, 3, 3)})
    new = _run(tmp_path / "new.json", {"get": _rounds(2.6, 2.7, 2.65, 2.55, 2.62), "save": _rounds(3, 3, 3)})
    assert bench_ratios.main([old, new, "--tolerance", "20%"]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("get "))
    assert row.split()[-3:] == ["+31.0%", "0.004", "REGRESSED"]
    assert "1 of 2 ratios regressed" in out
    assert bench_ratios.main([old, new, "--tolerance", "50%"]) == 0


def test_a_growth_within_the_noise_of_the_rounds_is_inconclusive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The median grew 27%, but the rounds of both runs overlap: inconclusive, not a failure."""
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    old = _run(tmp_path / "old.json", {"create": _rounds(1.0, 2.0, 1.2, 1.8, 1.5)})
    new = _run(tmp_path / "new.json", {"create": _rounds(1.1, 2.6, 1.3, 2.4, 1.9)})
    assert bench_ratios.main([old, new]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[2].endswith("INCONCLUSIVE")
    assert "0 of 1 ratios regressed" in out
    assert "1 inconclusive" in out
    assert "::warning title=benchmark-compare inconclusive::" in out


def test_a_run_without_rounds_cannot_prove_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A baseline saved before rounds existed has one ratio per group: a big growth is inconclusive."""
    old = _run(tmp_path / "old.json", {"get": (2.0, 1.0)})
    new = _run(tmp_path / "new.json", {"get": _rounds(4.0, 4.1, 3.9, 4.2, 4.0)})
    assert bench_ratios.main([old, new]) == 0
    assert "INCONCLUSIVE" in capsys.readouterr().out


def test_the_rank_test_is_exact() -> None:
    """The p-value is the share of all splits of the pooled values with a rank sum at least as large."""
    greater = bench_ratios.mann_whitney_greater
    assert greater([6, 7, 8, 9, 10], [1, 2, 3, 4, 5]) == pytest.approx(1 / 252)
    assert greater([5, 7, 8, 9, 10], [1, 2, 3, 4, 6]) == pytest.approx(2 / 252)
    assert greater([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == 1.0
    assert greater([2.0, 2.0], [2.0, 2.0]) == 1.0  # all tied: no evidence either way
    assert greater([3.0], []) == 1.0


def test_newest_saved_run_is_the_baseline(tmp_path: Path) -> None:
    machine = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    machine.mkdir(parents=True)
    _run(machine / "0001_a.json", {"get": (1.0, 1.0)})
    newest = _run(machine / "0002_b.json", {"get": (2.0, 1.0)})
    (tmp_path / ".benchmarks" / "fixtures").mkdir()
    assert bench_ratios.newest(str(tmp_path / ".benchmarks")) == newest


@pytest.mark.parametrize(
    ("content", "words"),
    [("{", "not JSON"), ('{"x": 1}', "not a pytest-benchmark run"), ('{"benchmarks": []}', "share no")],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, words: str
) -> None:
    good = _run(tmp_path / "good.json", {"get": (2.0, 1.0)})
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert bench_ratios.main([good, str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert words in err


def test_pytest_benchmark_compare_without_the_plugin_names_the_extra() -> None:
    """From the root, `pytest --benchmark-compare` without pytest-benchmark says what to install."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:benchmark",
            "-p",
            "no:cacheprovider",
            "--benchmark-compare",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 4, done.stdout[-1000:]
    assert "unrecognized arguments" not in done.stderr
    assert "pip install -e '.[bench]'" in done.stderr
