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


def _run(path: Path, means: dict[str, tuple[float, float]]) -> str:
    benchmarks = []
    for group, (catalog, raw) in means.items():
        for impl, mean in (("catalog", catalog), ("raw_sqlite", raw)):
            benchmarks.append(
                {
                    "group": group,
                    "name": f"test_{group}[{impl}]",
                    "params": {"impl": impl},
                    "stats": {"mean": mean},
                }
            )
    path.write_text(json.dumps({"benchmarks": benchmarks}))
    return str(path)


def test_a_slower_machine_is_not_a_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Twice slower on both sides (another runner): ratios unchanged, exit 0."""
    old = _run(tmp_path / "old.json", {"get": (2.0, 1.0), "save": (30.0, 10.0)})
    new = _run(tmp_path / "new.json", {"get": (4.0, 2.0), "save": (60.0, 20.0)})
    assert bench_ratios.main([old, new]) == 0
    out = capsys.readouterr().out
    assert "0 of 2 ratios grew" in out
    assert "2.00x" in out


def test_the_catalog_getting_slower_than_sqlite_is_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _run(tmp_path / "old.json", {"get": (2.0, 1.0), "save": (30.0, 10.0)})
    new = _run(tmp_path / "new.json", {"get": (2.6, 1.0), "save": (30.0, 10.0)})
    assert bench_ratios.main([old, new, "--tolerance", "20%"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSED" in out
    assert "+30.0%" in out
    assert bench_ratios.main([old, new, "--tolerance", "50%"]) == 0


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
