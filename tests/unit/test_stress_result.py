"""Tests for metafuse.stress.result: per-second figures keep complete seconds only."""

from __future__ import annotations

import pytest

from metafuse.stress.result import series_stats


def test_a_partial_last_second_is_left_out_of_the_series_and_its_figures() -> None:
    # 3.4 s of run: seconds 0-2 are complete; the fourth is cut by the deadline and would read
    # as a drop in throughput.
    figures = series_stats([100, 110, 90, 20], elapsed=3.4)
    assert figures["per_second"] == [100, 110, 90]
    assert figures["mean_per_sec"] == 100.0
    assert figures["cov"] == pytest.approx(0.0816, abs=1e-4)


def test_a_run_shorter_than_a_second_keeps_its_one_second() -> None:
    assert series_stats([42], elapsed=0.5)["per_second"] == [42]
