"""A log-bucketed latency histogram: bounded memory, mergeable, about 3% resolution."""

from __future__ import annotations

from collections.abc import Mapping

_MANTISSA_BITS = 5  # 32 buckets per doubling: each bucket is 1/32 (about 3%) of its value


def _bucket(ns: int) -> int:
    bits = ns.bit_length()
    if bits <= _MANTISSA_BITS + 1:
        return ns  # 0-63 ns: exact
    return (bits << _MANTISSA_BITS) | ((ns >> (bits - _MANTISSA_BITS - 1)) & 31)


def _middle(index: int) -> float:
    """The middle of bucket `index`, in nanoseconds."""
    if index < 64:
        return float(index)
    bits = index >> _MANTISSA_BITS
    shift = bits - _MANTISSA_BITS - 1
    low = (32 + (index & 31)) << shift
    return low + (1 << shift) / 2


class Histogram:
    """Counts latencies in logarithmic buckets; memory grows with their range, not their number.

    Latencies are integer nanoseconds (`add_ns`, from `time.monotonic_ns`) so that recording one
    is a few integer operations. A run of 50 clients for 300 s keeps a few hundred buckets per
    operation kind, however many samples it records. Percentiles are the middle of the bucket
    that holds them (within about 1.6%); the maximum is exact.
    """

    __slots__ = ("buckets", "count", "max_ns", "total_ns")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total_ns = 0
        self.max_ns = 0

    def add_ns(self, ns: int) -> None:
        """Record one latency in nanoseconds."""
        index = _bucket(ns)
        buckets = self.buckets
        buckets[index] = buckets.get(index, 0) + 1
        self.count += 1
        self.total_ns += ns
        if ns > self.max_ns:
            self.max_ns = ns

    def add(self, seconds: float) -> None:
        """Record one latency in seconds."""
        self.add_ns(int(seconds * 1e9))

    @property
    def maximum(self) -> float:
        """The largest latency recorded, in seconds."""
        return self.max_ns / 1e9

    def merge(self, other: Histogram) -> None:
        """Add `other`'s samples to this histogram."""
        for index, count in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + count
        self.count += other.count
        self.total_ns += other.total_ns
        self.max_ns = max(self.max_ns, other.max_ns)

    def percentile(self, fraction: float) -> float:
        """Return the latency (seconds) at `fraction` (0-1) of the samples; 0.0 when empty."""
        if not self.count:
            return 0.0
        rank = max(1, -int(-fraction * self.count // 1))
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return min(_middle(index), self.max_ns) / 1e9
        return self.maximum

    def summary_ms(self) -> dict[str, float]:
        """Return p50/p95/p99/max/mean in milliseconds."""
        mean = self.total_ns / self.count / 1e6 if self.count else 0.0
        return {
            "p50": round(self.percentile(0.50) * 1e3, 4),
            "p95": round(self.percentile(0.95) * 1e3, 4),
            "p99": round(self.percentile(0.99) * 1e3, 4),
            "max": round(self.maximum * 1e3, 4),
            "mean": round(mean, 4),
        }

    def to_dict(self) -> dict[str, object]:
        """Return the histogram as plain data."""
        return {
            "buckets": dict(self.buckets),
            "count": self.count,
            "total_ns": self.total_ns,
            "max_ns": self.max_ns,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Histogram:
        """Rebuild a histogram from `to_dict` output."""
        histogram = cls()
        buckets = data["buckets"]
        assert isinstance(buckets, dict)
        histogram.buckets = {int(k): int(v) for k, v in buckets.items()}
        histogram.count = int(str(data["count"]))
        histogram.total_ns = int(str(data["total_ns"]))
        histogram.max_ns = int(str(data["max_ns"]))
        return histogram
