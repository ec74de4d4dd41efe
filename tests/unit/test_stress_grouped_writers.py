"""The grouped_writers scenario: machines whose writer threads' saves share log entries.

Each client is a catalog of its own on one `log+file://` store, with writer threads whose saves
are grouped into one entry; groups of different clients race for the log's numbers. Clean, every
acknowledged save has a version of its own; with the `unchecked_group` fault (a save of a group
acknowledged though the entry it lost to changed its dataset) versions are acknowledged twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from metafuse.stress.config import StressConfig
from metafuse.stress.result import ScenarioResult
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY
from metafuse.stress.selfcheck import PROBES

SCENARIO = REGISTRY["grouped_writers"]


def _run(mode: str, tmp_path: Path, faults: tuple[str, ...] = ()) -> ScenarioResult:
    config = StressConfig(clients=3, duration=1, mode=mode, seed=3)
    return run_scenario(SCENARIO, config, path=f"log+file://{tmp_path / 'store'}", faults=faults)


def _verdicts(result: ScenarioResult) -> dict[str, tuple[bool, str]]:
    return {invariant.name: (invariant.ok, invariant.detail) for invariant in result.invariants}


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_clean_grouped_saves_keep_one_version_each(mode: str, tmp_path: Path) -> None:
    result = _run(mode, tmp_path)
    assert result.passed, _verdicts(result)
    assert result.metrics["groups"] > 0  # the grouped path ran
    assert result.metrics["acknowledged"] > 0


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_group_save_acknowledged_past_its_failed_check_breaks_the_version_chain(
    mode: str, tmp_path: Path
) -> None:
    result = _run(mode, tmp_path, faults=("unchecked_group",))
    verdicts = _verdicts(result)
    assert not verdicts["version_chain"][0], verdicts
    assert "duplicate versions" in verdicts["version_chain"][1]
    assert verdicts["no_errors"][0], verdicts


def test_the_selfcheck_probe_names_this_scenario_on_a_store() -> None:
    (probe,) = PROBES["unchecked_group"]
    assert probe.scenario == "grouped_writers"
    assert SCENARIO.store_only  # runs on a temporary directory store without --catalog
