"""`ScenarioResult`: the numbers and verdicts of one scenario run, for people and for JSON.

Owns `ScenarioResult` and the tables built from merged recorders. It holds verdicts and makes none
(the invariants and `thresholds` made them), and touches no catalog or file.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from typing import Any, Optional

from .histogram import Histogram
from .recorder import OUTCOMES, Recorder
from .scenario import InvariantResult
from .thresholds import ThresholdResult

LATENCY_KEYS = ("min", "mean", "stddev", "p50", "p90", "p95", "p99", "p99.9", "max")
"""The latency figures of every operation, in milliseconds, in the order reports show them."""


@dataclasses.dataclass
class ScenarioResult:
    """One run of one scenario. `passed` is True only if every invariant held; `inconclusive`
    when none failed but one could not be judged (too little progress): not passed either."""

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
    thresholds: list[ThresholdResult] = dataclasses.field(default_factory=list)
    """Verdicts of the run's `--threshold`s on this scenario (empty when none were given)."""
    interrupted: bool = False
    """Stopped early by Ctrl-C: the figures cover only the part that ran."""
    series: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """Per complete second of the run: one row per operation (see `series_table`)."""
    per_client: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """One row per client slot: its measured operations by outcome and its retries (see `clients_table`)."""
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Every setting that shapes the run's workload (see `_run_settings.SETTINGS`): what `stress compare`
    checks two runs agree on, and what the reproduce command is built from."""
    scheduled: Optional[int] = None  # noqa: UP045 - Python 3.9 evaluates it in get_type_hints
    """Open model (`--rate`): operations the schedule made due before the run ended (None: closed)."""
    never_started: Optional[int] = None  # noqa: UP045 - as above
    """Open model: scheduled operations no client started, because the run could not keep up (or
    a client was killed or joined late). None under a closed model."""

    @property
    def passed(self) -> bool:
        """Whether every invariant held (an inconclusive one did not)."""
        return all(invariant.ok for invariant in self.invariants)

    @property
    def failed(self) -> bool:
        """Whether some invariant was judged and did not hold."""
        return any(invariant.failed for invariant in self.invariants)

    @property
    def inconclusive(self) -> bool:
        """Whether no invariant failed but some could not be judged (the run made too little progress)."""
        return not self.failed and any(invariant.inconclusive for invariant in self.invariants)

    @property
    def thresholds_passed(self) -> bool:
        """Whether every threshold that applied to this run held (True when there were none)."""
        return all(verdict.passed for verdict in self.thresholds)

    @property
    def throughput(self) -> float:
        """Operations per second over every kind and outcome."""
        return round(sum(float(op["per_sec"]) for op in self.operations.values()), 1)

    def rate(self, outcome: str) -> float:
        """Operations of one outcome (ok, conflict, busy, error) per second, over every kind."""
        return round(self.total(outcome) / self.elapsed, 1) if self.elapsed > 0 else 0.0

    def p99_ms(self) -> float:
        """The worst p99 latency of any operation kind, in milliseconds."""
        return max((float(op["latency_ms"]["p99"]) for op in self.operations.values()), default=0.0)

    def total(self, outcome: str) -> int:
        """Operations of one outcome over every kind."""
        return sum(op[outcome] for op in self.operations.values())

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data."""
        data = dataclasses.asdict(self)
        # A run cut short proved nothing about the part that did not run.
        data["passed"] = self.passed and not self.interrupted
        data["inconclusive"] = self.inconclusive
        data["thresholds_passed"] = self.thresholds_passed
        data["throughput"] = self.throughput
        data["ok_throughput"] = self.rate("ok")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScenarioResult:
        """Rebuild a result from `to_dict` output (as read back from JSON)."""
        values = {field.name: data[field.name] for field in dataclasses.fields(cls) if field.name in data}
        values["invariants"] = [InvariantResult(**item) for item in data.get("invariants", [])]
        values["thresholds"] = [ThresholdResult(**item) for item in data.get("thresholds", [])]
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
            "latency_ms": latency_ms(histogram) if histogram is not None and histogram.count else {},
        }
    return table


def clients_table(recorders: Sequence[Recorder]) -> list[dict[str, Any]]:
    """Return one row per client slot, in slot order: measured operations (started after the
    warm-up) by outcome, their total and the client's retries.

    Built after the run from each client's own record, so it costs the recording path nothing. A
    slot whose process was killed and restarted reports only the incarnations that sent a
    record; a client that sent none has no row.
    """
    rows: dict[int, dict[str, Any]] = {}
    for recorder in recorders:
        row = rows.setdefault(recorder.client, {"client": recorder.client, **dict.fromkeys(OUTCOMES, 0)})
        for stats in recorder.ops.values():
            for name, count in zip(OUTCOMES, stats.measured):
                row[name] += count
        row["retries"] = row.get("retries", 0) + recorder.total_retries
    for row in rows.values():
        row["total"] = sum(row[name] for name in OUTCOMES)
    return [rows[client] for client in sorted(rows)]


def latency_ms(histogram: Histogram) -> dict[str, float]:
    """Return min, mean, stddev, p50, p90, p95, p99, p99.9 and max of `histogram`, in ms.

    Min, mean, stddev and max are exact; percentiles come from the buckets (see `Histogram`).
    """
    figures = histogram.summary_ms()
    return {key: figures[key] for key in LATENCY_KEYS}


SERIES_COLUMNS = ("second", "operation", "ops", "ok", "conflict", "error", "p50_ms", "p99_ms")
"""The columns of a per-second row (`--csv` writes them in this order); None where not measured."""


def series_table(merged: Recorder, elapsed: float) -> list[dict[str, Any]]:
    """Return the run's per-second rows, one per complete second and operation kind.

    A partial second (the last one, cut by the deadline) is left out, so it cannot read as a drop
    in throughput. Counts are of measured operations (after the warm-up); latencies are the p50
    and p99 of the operations that ended in that second.
    """
    return [
        {
            "second": row.second,
            "operation": row.op,
            "ops": row.ops,
            "ok": row.ok,
            "conflict": row.conflict,
            "error": row.error,
            "p50_ms": row.p50_ms,
            "p99_ms": row.p99_ms,
        }
        for row in merged.series(elapsed)
        if not row.partial
    ]


def series_stats(series: list[int], elapsed: float) -> dict[str, Any]:
    """Return the complete seconds of a per-second throughput series, their mean and coefficient
    of variation. A second the run did not cover wholly (the last, cut by the deadline) is left
    out: it would read as a drop in throughput."""
    full = series[: max(1, int(elapsed))]
    mean = statistics.fmean(full) if full else 0.0
    deviation = statistics.pstdev(full) if len(full) > 1 else 0.0
    return {
        "per_second": full,
        "mean_per_sec": round(mean, 1),
        "cov": round(deviation / mean, 4) if mean else 0.0,
    }
