"""benchmarks/objectstore_catalog.py's writers part, run end to end at tiny settings.

The figures docs/benchmarks.md shows come from the same code at 30 s cells and 3 runs; here every
cell runs once for half a second on both moto servers, to prove the script starts both, spreads
its writers over processes, counts each kind of request and judges every target.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_writers_benchmark_reports_both_servers_and_every_target(tmp_path: Path) -> None:
    report = tmp_path / "writers.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "objectstore_catalog.py"),
            "--part=writers",
            "--seconds=0.5",
            "--runs=1",
            "--processes=2",
            f"--json={report}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(report.read_text())
    assert [server["server"] for server in figures["writers"]] == ["single", "threaded"]
    for server in figures["writers"]:
        cells = {row["cell"]: row for row in server["rows"]}
        assert set(cells) == {"own x 1", "own x 50", "same x 1", "same x 50"}
        assert cells["own x 50"]["processes"] == 2
        for row in cells.values():
            assert sum(row["saves"]) > 0, row
            assert row["per_save"]["PUT"] > 0  # the requests were counted
            assert row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
        assert cells["own x 1"]["failures"] == {}  # one writer of its own dataset never fails
    assert done.stdout.count("| 50 own writers' PUTs per acknowledged save <= 1.5 |") == 2
    assert "Writers on moto single-threaded" in done.stdout
    assert "Writers on moto threaded" in done.stdout


def test_a_bad_option_is_one_line_naming_it() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "objectstore_catalog.py"), "--servers=single,fast"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "--servers: fast is not a server" in done.stderr
    assert "Traceback" not in done.stderr
