"""The latency histogram: exact min/max/mean/stddev, percentiles within 1/64, bounded size, exact merge."""

from __future__ import annotations

import math
import pickle
import random
import statistics
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metafuse.stress.histogram import COARSE_BITS, Batch, Histogram


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


@given(st.lists(st.integers(min_value=0, max_value=10**11), min_size=1, max_size=300))
def test_exact_statistics_and_percentiles_within_one_sixty_fourth(samples: list[int]) -> None:
    histogram = Histogram()
    for sample in samples:
        histogram.add_ns(sample)
    ordered = sorted(samples)
    assert histogram.count == len(samples)
    assert histogram.min == min(samples) / 1e9
    assert histogram.max == max(samples) / 1e9
    assert histogram.mean == pytest.approx(statistics.fmean(samples) / 1e9)
    assert histogram.stddev == pytest.approx(statistics.pstdev(samples) / 1e9, rel=1e-9, abs=1e-15)
    for q in (0, 1, 50, 90, 95, 99, 99.9, 100):
        exact = ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1] if q else ordered[0]
        assert histogram.percentile(q) * 1e9 == pytest.approx(exact, rel=1 / 64, abs=1e-6)


@given(st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=300))
def test_a_batch_adds_what_single_samples_add(samples: list[int]) -> None:
    one_by_one, batched = Histogram(), Histogram()
    for sample in samples:
        one_by_one.add_ns(sample)
    batched.add_batch(Batch(Counter(samples)))
    assert batched.to_dict() == one_by_one.to_dict()
    coarse, coarse_batched = Histogram(COARSE_BITS), Histogram(COARSE_BITS)
    for sample in samples:
        coarse.add_ns(sample)
    coarse_batched.add_batch(Batch(Counter(samples)))
    assert coarse_batched.to_dict() == coarse.to_dict()


@given(st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=300))
def test_coarse_percentiles_are_within_one_thirty_second(samples: list[int]) -> None:
    histogram = Histogram(COARSE_BITS)
    for sample in samples:
        histogram.add_ns(sample)
    ordered = sorted(samples)
    for q in (50, 99):
        exact = ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]
        assert histogram.percentile(q) * 1e9 == pytest.approx(exact, rel=1 / 32, abs=1e-6)


@pytest.mark.parametrize("q", [-1, 100.5, float("nan")])
def test_percentile_outside_zero_to_hundred_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match="from 0 to 100"):
        Histogram().percentile(q)


def test_histograms_of_different_resolution_do_not_merge() -> None:
    with pytest.raises(ValueError, match="cannot merge"):
        Histogram().merge(Histogram(COARSE_BITS))


def test_summary_has_every_statistic_in_milliseconds() -> None:
    histogram = Histogram()
    for ms in range(1, 1001):
        histogram.add(ms / 1e3)
    summary = histogram.summary_ms()
    assert list(summary) == ["min", "mean", "stddev", "p50", "p90", "p95", "p99", "p99.9", "max"]
    assert summary["min"] == 1.0
    assert summary["max"] == 1000.0
    assert summary["mean"] == pytest.approx(500.5)
    assert summary["p99.9"] == pytest.approx(999.0, rel=1 / 64)


def test_round_trip_and_pickle_keep_everything() -> None:
    histogram = Histogram()
    for ns in (5, 70, 12_345, 9_999_999):
        histogram.add_ns(ns)
    assert Histogram.from_dict(histogram.to_dict()).to_dict() == histogram.to_dict()
    assert pickle.loads(pickle.dumps(histogram)).to_dict() == histogram.to_dict()
