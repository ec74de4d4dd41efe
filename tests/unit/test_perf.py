"""benchmarks/perf.py: every target declared once across its groups, and the runner refusing a group
whose samples do not match what it declares. Nothing here measures: the groups are not set up."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load() -> Any:
    sys.path.insert(0, str(BENCHMARKS))  # perf.py imports _perf, _bigcatalog and group_commit beside it
    try:
        spec = importlib.util.spec_from_file_location("perf_runner", BENCHMARKS / "perf.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


perf = _load()
Group: Any = perf.Group


def test_every_target_is_declared_once_across_the_groups() -> None:
    keys = [target.key for group in perf.GROUPS for target in group.TARGETS]
    assert len(keys) == len(set(keys)), keys
    expected = {"1", "2", "3", "4", "7a", "7b", "7c", "7d", "7e", "5a", "5b", "5c", "5d", "5e", "5f", "5g"}
    assert set(keys) == expected  # target 6 is measured once, after the rounds (harness)
    assert len({group.name for group in perf.GROUPS}) == len(perf.GROUPS)


def _group(measured: Mapping[str, float]) -> Any:
    target = perf.Target("x", "x >= 1", "/s", "raw x", lambda value, ratio: ratio >= 1.0)

    class One(Group):  # type: ignore[misc]
        name = "one"
        TARGETS = (target,)

        def __init__(self) -> None:
            """Sets nothing up, so needs no `Scratch`."""

        def measure(self, round_index: int) -> dict[str, Any]:
            return {key: perf.Sample(value, 1.0) for key, value in measured.items()}

    return One()


def test_the_runner_collects_each_declared_target_every_round() -> None:
    samples = perf.run_rounds([_group({"x": 2.0})], 3)
    assert [sample.measured for sample in samples["x"]] == [2.0, 2.0, 2.0]
    row = perf.summarise(_group({}).TARGETS[0], samples["x"])
    assert (row.ratio, row.met) == (2.0, True)


@pytest.mark.parametrize("measured", [{}, {"x": 1.0, "y": 1.0}, {"y": 1.0}])
def test_the_runner_refuses_a_group_that_measures_other_targets_than_it_declares(
    measured: dict[str, float],
) -> None:
    with pytest.raises(RuntimeError, match=r"one: measured .* declares \['x'\]"):
        perf.run_rounds([_group(measured)], 1)


def test_the_table_keeps_its_columns_and_indented_lines() -> None:
    row = perf.summarise(_group({}).TARGETS[0], [perf.Sample(3.0, 2.0), perf.Sample(5.0, 2.0)])
    lines = perf.table([row]).splitlines()
    assert lines[0].split() == ["#", "Target", "Measured", "Raw", "baseline", "Ratio", "min-max", "Result"]
    assert lines[2].split() == ["x", "x", ">=", "1", "4/s", "2/s", "2x", "1.5-2.5", "met"]
    assert lines[3].strip() == "baseline: raw x"
    assert lines[4].strip() == "per-round ratios 1.5, 2.5"
