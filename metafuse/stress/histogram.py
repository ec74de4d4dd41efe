"""A log-bucketed latency histogram: bounded memory, mergeable, percentiles within 1.6%.

Bucketing: a latency of `ns` nanoseconds with `b = ns.bit_length()` falls in the bucket of its
top `bits + 1` binary digits (`bits` = 5 by default): 32 buckets per doubling, each 1/32 to 1/64
of its values wide. A percentile is the middle of the bucket that holds it, so it is within
1/64 (1.6%) of the true sample, relative; values below 64 ns are kept exactly. Per-second
histograms use `bits=4` (16 buckets per doubling, within 1/32 = 3.1%). `min`, `max`, `mean`,
`stddev` and `count` are exact: they come from sums, not buckets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

FINE_BITS = 5
"""Mantissa bits of a run-wide histogram: 32 buckets per doubling, percentiles within 1/64."""
COARSE_BITS = 4
"""Mantissa bits of a per-second histogram: 16 buckets per doubling, percentiles within 1/32."""


def bucket(ns: int, bits: int = FINE_BITS) -> int:
    """The index of the bucket holding `ns` (a non-negative integer) at `bits` of mantissa."""
    width = ns.bit_length()
    if width <= bits + 1:
        return ns  # small values: exact
    return (width << bits) | ((ns >> (width - bits - 1)) & ((1 << bits) - 1))


def coarsen(index: int) -> int:
    """The `COARSE_BITS` bucket that contains the `FINE_BITS` bucket `index`."""
    if index < 1 << (FINE_BITS + 1):
        return bucket(index, COARSE_BITS)  # the fine index is the value itself
    return ((index >> FINE_BITS) << COARSE_BITS) | ((index & 31) >> (FINE_BITS - COARSE_BITS))


def middle(index: int, bits: int = FINE_BITS) -> float:
    """The middle of bucket `index` at `bits` of mantissa, in nanoseconds."""
    if index < 1 << (bits + 1):
        return float(index)
    width = index >> bits
    shift = width - bits - 1
    low = ((1 << bits) + (index & ((1 << bits) - 1))) << shift
    return low + (1 << shift) / 2


class Batch:
    """Latencies gathered off the recording path, summarised once: buckets and exact sums.

    Built from `{latency_ns: how many}` (a `collections.Counter` of raw latencies, which
    collapses the many equal nanosecond values of a fast operation in C), so the Python work
    is per distinct value, not per sample.
    """

    __slots__ = ("buckets", "count", "max_ns", "min_ns", "total_ns", "total_sq_ns")

    def __init__(self, values: Mapping[int, int]) -> None:
        buckets: dict[int, int] = {}
        total = squares = count = 0
        for ns, times in values.items():
            width = ns.bit_length()
            index = ns if width <= FINE_BITS + 1 else (width << FINE_BITS) | ((ns >> (width - 6)) & 31)
            buckets[index] = buckets.get(index, 0) + times
            count += times
            total += ns * times
            squares += ns * ns * times
        self.buckets = buckets
        self.count = count
        self.total_ns = total
        self.total_sq_ns = squares
        self.min_ns = min(values) if values else 0
        self.max_ns = max(values) if values else 0


class Histogram:
    """Counts latencies in logarithmic buckets; memory grows with their range, not their number.

    Latencies are integer nanoseconds (`add_ns`, from `time.monotonic_ns`). A run of 50
    clients for 300 s keeps a few hundred buckets per operation kind, however many samples it
    records. Not thread-safe: one client owns one histogram; the runner merges them afterwards.
    Picklable and small (a dict of bucket counts and five integers).
    """

    __slots__ = ("bits", "buckets", "count", "max_ns", "min_ns", "total_ns", "total_sq_ns")

    def __init__(self, bits: int = FINE_BITS) -> None:
        self.bits = bits
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total_ns = 0
        self.total_sq_ns = 0
        self.min_ns = 0
        self.max_ns = 0

    def add_ns(self, ns: int) -> None:
        """Record one latency in nanoseconds (negative values count as 0)."""
        ns = max(ns, 0)
        index = bucket(ns, self.bits)
        buckets = self.buckets
        buckets[index] = buckets.get(index, 0) + 1
        if not self.count or ns < self.min_ns:
            self.min_ns = ns
        if ns > self.max_ns:
            self.max_ns = ns
        self.count += 1
        self.total_ns += ns
        self.total_sq_ns += ns * ns

    def add(self, seconds: float) -> None:
        """Record one latency in seconds."""
        self.add_ns(int(seconds * 1e9))

    def add_batch(self, batch: Batch) -> None:
        """Add a summarised batch of latencies (`Batch`), at this histogram's resolution."""
        if not batch.count:
            return
        buckets = self.buckets
        if self.bits == FINE_BITS:
            for index, times in batch.buckets.items():
                buckets[index] = buckets.get(index, 0) + times
        else:
            for fine, times in batch.buckets.items():
                index = coarsen(fine)
                buckets[index] = buckets.get(index, 0) + times
        self._add_sums(batch.count, batch.total_ns, batch.total_sq_ns, batch.min_ns, batch.max_ns)

    def _add_sums(self, count: int, total: int, squares: int, low: int, high: int) -> None:
        if not self.count or low < self.min_ns:
            self.min_ns = low
        self.max_ns = max(self.max_ns, high)
        self.count += count
        self.total_ns += total
        self.total_sq_ns += squares

    def merge(self, other: Histogram) -> None:
        """Add `other`'s samples to this histogram (both must have the same resolution)."""
        if other.bits != self.bits:
            raise ValueError(f"cannot merge a {other.bits}-bit histogram into a {self.bits}-bit one")
        if not other.count:
            return
        for index, times in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + times
        self._add_sums(other.count, other.total_ns, other.total_sq_ns, other.min_ns, other.max_ns)

    @property
    def min(self) -> float:
        """The smallest latency recorded, in seconds (exact; 0.0 when empty)."""
        return self.min_ns / 1e9

    @property
    def max(self) -> float:
        """The largest latency recorded, in seconds (exact; 0.0 when empty)."""
        return self.max_ns / 1e9

    @property
    def maximum(self) -> float:
        """The largest latency recorded, in seconds (the same as `max`)."""
        return self.max_ns / 1e9

    @property
    def mean(self) -> float:
        """The mean latency in seconds (exact; 0.0 when empty)."""
        return self.total_ns / self.count / 1e9 if self.count else 0.0

    @property
    def stddev(self) -> float:
        """The population standard deviation of the latencies, in seconds (0.0 below 2 samples)."""
        if self.count < 2:
            return 0.0
        # Integer sums keep this exact until the final division and square root.
        variance = (self.total_sq_ns * self.count - self.total_ns * self.total_ns) / (self.count * self.count)
        return math.sqrt(max(variance, 0.0)) / 1e9

    def percentile(self, q: float) -> float:
        """Return the latency (seconds) that `q` percent (0-100) of the samples do not exceed.

        Nearest rank: the smallest bucket whose cumulative count reaches `ceil(q/100 * count)`,
        reported as its middle clamped to the exact min and max. Within 1/64 (1.6%) of the true
        sample for the default resolution; `percentile(100)` is the exact maximum, `percentile(0)`
        the exact minimum. 0.0 when empty.
        """
        if not 0 <= q <= 100:  # also refuses NaN
            raise ValueError(f"percentile must be from 0 to 100, not {q}")
        if not self.count:
            return 0.0
        if q == 0:
            return self.min
        rank = max(1, math.ceil(q * self.count / 100 - 1e-9))
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return min(max(middle(index, self.bits), self.min_ns), self.max_ns) / 1e9
        return self.max

    def summary_ms(self) -> dict[str, float]:
        """Return min/mean/stddev/p50/p90/p95/p99/p99.9/max in milliseconds (rounded to 0.1 us)."""
        values = {
            "min": self.min,
            "mean": self.mean,
            "stddev": self.stddev,
            "p50": self.percentile(50),
            "p90": self.percentile(90),
            "p95": self.percentile(95),
            "p99": self.percentile(99),
            "p99.9": self.percentile(99.9),
            "max": self.max,
        }
        return {name: round(value * 1e3, 4) for name, value in values.items()}

    def to_dict(self) -> dict[str, object]:
        """Return the histogram as plain data."""
        return {
            "bits": self.bits,
            "buckets": dict(self.buckets),
            "count": self.count,
            "total_ns": self.total_ns,
            "total_sq_ns": self.total_sq_ns,
            "min_ns": self.min_ns,
            "max_ns": self.max_ns,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Histogram:
        """Rebuild a histogram from `to_dict` output (older output without min/sq sums too)."""
        histogram = cls(int(str(data.get("bits", FINE_BITS))))
        buckets = data["buckets"]
        if not isinstance(buckets, dict):
            raise ValueError("histogram data: 'buckets' must be a mapping")
        histogram.buckets = {int(k): int(v) for k, v in buckets.items()}
        histogram.count = int(str(data["count"]))
        histogram.total_ns = int(str(data["total_ns"]))
        histogram.total_sq_ns = int(str(data.get("total_sq_ns", 0)))
        histogram.min_ns = int(str(data.get("min_ns", 0)))
        histogram.max_ns = int(str(data["max_ns"]))
        return histogram
