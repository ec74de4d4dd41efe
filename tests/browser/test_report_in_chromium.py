"""The stress HTML report in a real browser: headless Chromium (Debian's `chromium` package).

`nox -s report` runs these; the unit suite does not (it needs no browser). A missing Chromium is
a failure here, never a skip. Each test makes its report from a real short run, loads it with
`--dump-dom` (the DOM after the page's script ran) and checks that every chart was laid out with
the run's own numbers, that the page wrote nothing to the console, and keeps a screenshot under
.stress/browser/ for people (CI uploads it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / ".stress" / "browser"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)
"""Offline, no first-run work, and the page's console messages on stderr (as `CONSOLE` lines)."""
DARK, LIGHT = "--blink-settings=preferredColorScheme=0", "--blink-settings=preferredColorScheme=1"


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium binary; a failure, not a skip, when it is missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed (Debian: apt-get install -y chromium)")
    return found


def _browse(chromium: str, page: Path, *extra: str) -> tuple[str, list[str]]:
    """Load `page` in a fresh profile; return the DOM after its script ran and its console lines."""
    with tempfile.TemporaryDirectory(prefix="metafuse-chromium-") as profile:
        completed = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert completed.returncode == 0, completed.stderr[-2000:]
    console = [line for line in completed.stderr.splitlines() if ":CONSOLE" in line]
    return completed.stdout, console


def _stress_run(
    tmp: Path, name: str, *extra: str, env: dict[str, str] | None = None
) -> tuple[Path, dict[str, Any]]:
    """Run a short real stress run with --html and --json; return the page and the JSON result."""
    page, results = OUT / f"{name}.html", tmp / f"{name}.json"
    words = ["concurrent_writers", "--clients", "4", "--duration", "2", "--seed", "21", "--quiet"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "metafuse",
            "stress",
            "run",
            *words,
            "--json",
            str(results),
            "--html",
            str(page),
            *extra,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert page.exists(), f"stress run wrote no {page}"
    (result,) = json.loads(results.read_text(encoding="utf-8"))["results"]
    return page, result


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    return tmp_path_factory.mktemp("report")


def _charts(dom: str) -> dict[str, str]:
    """Each chart's opening tag in the rendered DOM, by id."""
    return {m.group(1): m.group(0) for m in re.finditer(r'<svg class="chart" id="([^"]+)"[^>]*>', dom)}


def _attribute(tag: str, name: str) -> str:
    found = re.search(rf'\b{name}="([^"]*)"', tag)
    assert found is not None, f"no {name} in {tag[:200]}"
    return found.group(1)


def test_a_clean_runs_report_renders_its_charts_with_the_runs_numbers(chromium: str, tmp: Path) -> None:
    page, result = _stress_run(tmp, "clean")
    dom, console = _browse(chromium, page, "--dump-dom", LIGHT)
    assert console == [], f"the page logged: {console}"
    charts = _charts(dom)
    assert set(charts) == {"run-0-throughput", "run-0-latency", "run-0-conflicts", "run-0-clients"}
    assert re.search(r'data-charts-rendered="4"', dom), "the page's script ran over every chart"
    for name, tag in charts.items():
        assert int(_attribute(tag, "data-rendered-width")) > 300, f"{name} was laid out"
        assert int(_attribute(tag, "data-rendered-marks")) > 0, f"{name} drew something"
    # The throughput chart's peaks are the run's own per-second counts.
    for op in ("read", "write"):
        peak = max(row["ops"] for row in result["series"] if row["operation"] == op)
        line = re.search(rf'<path class="line [^"]*" data-series="{op}" data-peak="([^"]+)"', dom)
        assert line is not None, f"no {op} line"
        assert float(line.group(1)) == peak
    clients = charts["run-0-clients"]
    assert _attribute(clients, "data-bars") == "4"
    totals = [float(t) for t in re.findall(r'<g class="bar" data-label="\d+" data-total="([^"]+)"', dom)]
    assert totals == [float(row["total"]) for row in result["per_client"]]
    assert f"{result['throughput']:,.1f}" in dom
    assert ">PASSED<" in dom
    subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp / 'profile-shot'}",
            LIGHT,
            "--window-size=1280,2400",
            f"--screenshot={OUT / 'clean.png'}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert (OUT / "clean.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failed_runs_report_shows_the_failure_and_its_proof_in_both_colour_schemes(
    chromium: str, tmp: Path
) -> None:
    page, result = _stress_run(
        tmp, "failed", "--history", str(tmp / "failed.jsonl"), env={"METAFUSE_FAULTS": "lost_update"}
    )
    assert result["passed"] is False
    light, console = _browse(chromium, page, "--dump-dom", LIGHT)
    assert console == [], f"the page logged: {console}"
    dark, console = _browse(chromium, page, "--dump-dom", DARK)
    assert console == [], f"the page logged: {console}"
    assert ">FAILED<" in light
    assert "NOT linearizable" in light
    assert "cannot linearize client" in light, "the operations that prove the failure are shown"
    assert "METAFUSE_FAULTS=lost_update python3 -m metafuse stress run concurrent_writers" in light
    backgrounds = {_attribute(dom.split(">", 2)[1], "data-background") for dom in (light, dark)}
    assert backgrounds == {"rgb(255, 255, 255)", "rgb(13, 17, 23)"}, "each scheme gets its own colours"
    for dom in (light, dark):
        text, _, badge = _attribute(dom.split(">", 2)[1], "data-verdict-colours").partition(" on ")
        assert text == "rgb(255, 255, 255)", "the verdict is written in white"
        assert badge not in (text, "rgba(0, 0, 0, 0)"), "on a coloured badge"
    for scheme, flag in (("light", LIGHT), ("dark", DARK)):
        shot = OUT / f"failed-{scheme}.png"
        subprocess.run(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={tmp / f'profile-{scheme}'}",
                flag,
                "--window-size=1280,3000",
                f"--screenshot={shot}",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_console_check_notices_a_page_that_logs(chromium: str, tmp: Path) -> None:
    """The `console == []` checks above can fail: a page that logs an error is caught."""
    noisy = tmp / "noisy.html"
    noisy.write_text("<!DOCTYPE html><title>x</title><script>console.error('boom'); missing();</script>")
    _, console = _browse(chromium, noisy, "--dump-dom")
    assert any("boom" in line for line in console)
    assert any("missing is not defined" in line for line in console)
