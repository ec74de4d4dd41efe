"""`ScenarioResult`: the numbers and verdicts of one scenario run, for people and for JSON."""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

from .recorder import Recorder
from .scenario import InvariantResult


@dataclasses.dataclass
class ScenarioResult:
    """One run of one scenario. `passed` is True only if every invariant held."""

    scenario: str
    title: str
    mode: str
    clients: int
    duration: int
    elapsed: float
    seed: int
    operations: dict[str, dict[str, Any]]
    retries: dict[str, int]
    metrics: dict[str, Any]
    invariants: list[InvariantResult]
    errors: list[str]
    faults: list[str]
    command: str = ""

    @property
    def passed(self) -> bool:
        """Whether every invariant held."""
        return all(invariant.ok for invariant in self.invariants)

    @property
    def throughput(self) -> float:
        """Operations per second over every kind and outcome."""
        return round(sum(float(op["per_sec"]) for op in self.operations.values()), 1)

    def p99_ms(self) -> float:
        """The worst p99 latency of any operation kind, in milliseconds."""
        return max((float(op["latency_ms"]["p99"]) for op in self.operations.values()), default=0.0)

    def total(self, outcome: str) -> int:
        """Operations of one outcome over every kind."""
        return sum(op[outcome] for op in self.operations.values())

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data."""
        data = dataclasses.asdict(self)
        data["passed"] = self.passed
        data["throughput"] = self.throughput
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScenarioResult:
        """Rebuild a result from `to_dict` output (as read back from JSON)."""
        values = {field.name: data[field.name] for field in dataclasses.fields(cls) if field.name in data}
        values["invariants"] = [InvariantResult(**item) for item in data.get("invariants", [])]
        return cls(**values)


def operations_table(merged: Recorder, elapsed: float) -> dict[str, dict[str, Any]]:
    """Return counts, throughput and latency percentiles per operation kind."""
    table: dict[str, dict[str, Any]] = {}
    for op, counts in sorted(merged.counts.items()):
        total = sum(counts.values())
        histogram = merged.latencies.get(op)
        table[op] = {
            **counts,
            "total": total,
            "per_sec": round(total / elapsed, 1) if elapsed > 0 else 0.0,
            "ok_per_sec": round(counts["ok"] / elapsed, 1) if elapsed > 0 else 0.0,
            "latency_ms": histogram.summary_ms() if histogram is not None else {},
        }
    return table


def series_stats(series: list[int]) -> dict[str, Any]:
    """Return a per-second throughput series with its mean and coefficient of variation.

    The last second is partial and left out of the mean and variation.
    """
    full = series[:-1] if len(series) > 1 else series
    mean = statistics.fmean(full) if full else 0.0
    deviation = statistics.pstdev(full) if len(full) > 1 else 0.0
    return {
        "per_second": series,
        "mean_per_sec": round(mean, 1),
        "cov": round(deviation / mean, 4) if mean else 0.0,
    }
