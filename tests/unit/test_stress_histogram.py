"""The latency histogram: percentiles within a bucket's width, bounded size, exact merge."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metafuse.stress.histogram import Histogram


def test_empty_histogram_reports_zero() -> None:
    assert Histogram().percentile(99) == 0.0
    assert Histogram().summary_ms()["p50"] == 0.0


@given(st.lists(st.floats(min_value=1e-6, max_value=10.0), min_size=1, max_size=300))
def test_percentiles_are_within_three_percent(samples: list[float]) -> None:
    histogram = Histogram()
    for sample in samples:
        histogram.add(sample)
    ordered = sorted(samples)
    for fraction in (0.5, 0.95, 0.99, 1.0):
        exact = ordered[max(1, math.ceil(fraction * len(ordered))) - 1]
        got = histogram.percentile(fraction * 100)
        assert exact * 0.97 <= got <= exact * 1.03 + 1e-9
    assert histogram.maximum == pytest.approx(max(samples), abs=1e-9)  # kept in whole ns


def test_memory_is_bounded_by_range_not_samples() -> None:
    rng = random.Random(3)
    histogram = Histogram()
    for _ in range(200_000):
        histogram.add(10 ** rng.uniform(-6, 1))  # 1 us to 10 s
    assert histogram.count == 200_000
    assert len(histogram.buckets) <= 32 * 24


def test_merge_equals_adding_everything_to_one() -> None:
    rng = random.Random(5)
    samples = [rng.expovariate(1000) for _ in range(5000)]
    whole, left, right = Histogram(), Histogram(), Histogram()
    for index, sample in enumerate(samples):
        whole.add(sample)
        (left if index % 2 else right).add(sample)
    left.merge(right)
    assert left.buckets == whole.buckets
    assert left.count == whole.count
    assert Histogram.from_dict(left.to_dict()).buckets == whole.buckets
