"""The process watchdog counts a client's grace from its start, not from the run's deadline.

A replacement for a killed client that is still starting (importing, opening its catalog: seconds
on a loaded machine) when the deadline passes is slow, not hung. This module's import is made
slow in client processes, so a replacement spawned near the deadline is still starting after
the (shortened) grace has run out.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from metafuse.stress import _watchdog
from metafuse.stress.client import ClientContext
from metafuse.stress.config import StressConfig
from metafuse.stress.control import ProcessControl
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY, RunView, Verdict, scenario

SLOW_START = "METAFUSE_TEST_SLOW_START"
"""Seconds a client process spends importing this module (unset: none)."""

if os.environ.get(SLOW_START) and multiprocessing.parent_process() is not None:
    time.sleep(float(os.environ[SLOW_START]))


def _count(ctx: ClientContext) -> None:
    """Count at least once, then until the deadline (a replacement started late still counts)."""
    while True:
        ctx.call("noop", time.sleep, 0.005)
        if ctx.should_stop():
            return


def _replace_late(control: ProcessControl) -> None:
    """Kill and replace client 0 once, late in the run."""
    if not control.state.get("done") and control.elapsed >= 0.7 * control.duration:
        control.kill_and_replace(0)
        control.state["done"] = True


LATE = REGISTRY.get("test_replace_late") or scenario(
    "test_replace_late", title="replace late", summary="a client is replaced near the deadline"
)(_count)
LATE.driver = _replace_late


if "replaced" not in {i.name for i in LATE.invariants}:

    @LATE.invariant("replaced", "client 0 was killed and replaced during the run")
    def _replaced(run: RunView) -> Verdict:
        return run.killed == [0], f"killed: {run.killed}"


def test_a_replacement_still_starting_at_the_deadline_is_not_hung(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    grace = 1.0
    monkeypatch.setattr(_watchdog, "WATCHDOG_GRACE", grace)
    monkeypatch.setenv(SLOW_START, str(3 * grace))  # every client starts slower than the grace
    config = StressConfig(clients=2, duration=1, mode="process", seed=1)
    result = run_scenario(LATE, config, path=str(tmp_path / "catalog.db"))
    verdicts = {i.name: (i.ok, i.detail) for i in result.invariants}
    assert verdicts["replaced"][0], verdicts["replaced"]
    assert verdicts["clients_finished"][0], verdicts["clients_finished"]
