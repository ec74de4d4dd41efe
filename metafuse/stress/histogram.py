"""A log-bucketed latency histogram: bounded memory, mergeable, about 2% resolution."""

from __future__ import annotations

import math
from collections.abc import Mapping

_STEPS_PER_DOUBLING = 32  # bucket width: 2**(1/32) - 1, about 2.2%


class Histogram:
    """Counts latencies (seconds) in logarithmic buckets; memory grows with range, not samples.

    A run of 50 clients for 300 s keeps a few hundred buckets per operation, however many
    samples it records. Percentiles are exact to a bucket's width; the maximum is exact.
    """

    __slots__ = ("buckets", "count", "maximum", "total")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.maximum = 0.0

    def add(self, seconds: float) -> None:
        """Record one latency."""
        micros = seconds * 1e6
        index = int(math.log2(micros) * _STEPS_PER_DOUBLING) if micros > 1.0 else 0
        self.buckets[index] = self.buckets.get(index, 0) + 1
        self.count += 1
        self.total += seconds
        self.maximum = max(self.maximum, seconds)

    def merge(self, other: Histogram) -> None:
        """Add `other`'s samples to this histogram."""
        for index, count in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + count
        self.count += other.count
        self.total += other.total
        self.maximum = max(self.maximum, other.maximum)

    def percentile(self, fraction: float) -> float:
        """Return the latency (seconds) at `fraction` (0-1) of the samples; 0.0 when empty."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(fraction * self.count))
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                upper = 2 ** ((index + 1) / _STEPS_PER_DOUBLING) / 1e6
                return min(upper, self.maximum)
        return self.maximum

    def summary_ms(self) -> dict[str, float]:
        """Return p50/p95/p99/max/mean in milliseconds."""
        mean = self.total / self.count if self.count else 0.0
        return {
            "p50": round(self.percentile(0.50) * 1e3, 4),
            "p95": round(self.percentile(0.95) * 1e3, 4),
            "p99": round(self.percentile(0.99) * 1e3, 4),
            "max": round(self.maximum * 1e3, 4),
            "mean": round(mean * 1e3, 4),
        }

    def to_dict(self) -> dict[str, object]:
        """Return the histogram as plain data."""
        return {
            "buckets": dict(self.buckets),
            "count": self.count,
            "total": self.total,
            "maximum": self.maximum,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Histogram:
        """Rebuild a histogram from `to_dict` output."""
        histogram = cls()
        buckets = data["buckets"]
        assert isinstance(buckets, dict)
        histogram.buckets = {int(k): int(v) for k, v in buckets.items()}
        histogram.count = int(str(data["count"]))
        histogram.total = float(str(data["total"]))
        histogram.maximum = float(str(data["maximum"]))
        return histogram
