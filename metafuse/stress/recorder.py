"""What one client saw: outcome counts, latency histograms, a per-second series, retries and events.

Owns `Recorder`, its parts (`Tally`, `OpStats`, `SecondRow`) and `merge`. Plain data: it takes no
lock (one client owns each record), touches no catalog, knows nothing of threads, processes or
pipes, and imports only `histogram`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from .histogram import COARSE_BITS, Batch, Histogram

OUTCOMES = ("ok", "conflict", "busy", "error")
"""How an operation can end: done, refused by a version check, lock timeout, anything else."""
OK, CONFLICT, BUSY, ERROR = range(4)
MAX_ERROR_SAMPLES = 20


class Tally:
    """One operation kind in one run second: counts per outcome and a coarse latency histogram."""

    __slots__ = ("counts", "histogram")

    def __init__(self) -> None:
        self.counts = [0, 0, 0, 0]
        self.histogram = Histogram(COARSE_BITS)

    def merge(self, other: Tally) -> None:
        """Add `other`'s counts and latencies to these."""
        for index, count in enumerate(other.counts):
            self.counts[index] += count
        self.histogram.merge(other.histogram)


class OpStats:
    """One operation kind over a run.

    `counts` holds every operation, warm-up included (invariants judge those too); `measured`
    only those that started after the warm-up, which is what `histogram` (latencies) and
    `seconds` (the per-second series, keyed by the run second an operation ended in) describe.
    """

    __slots__ = ("counts", "histogram", "measured", "seconds")

    def __init__(self) -> None:
        self.counts = [0, 0, 0, 0]
        self.measured = [0, 0, 0, 0]
        self.histogram = Histogram()
        self.seconds: dict[int, Tally] = {}

    def tally(self, second: int) -> Tally:
        """The tally of run second `second`, created when first needed."""
        tally = self.seconds.get(second)
        if tally is None:
            tally = self.seconds[second] = Tally()
        return tally

    def merge(self, other: OpStats) -> None:
        """Add `other`'s counts, latencies and series to these."""
        for index in range(len(OUTCOMES)):
            self.counts[index] += other.counts[index]
            self.measured[index] += other.measured[index]
        self.histogram.merge(other.histogram)
        for second, tally in other.seconds.items():
            self.tally(second).merge(tally)


@dataclasses.dataclass(frozen=True)
class SecondRow:
    """One operation kind in one run second, as the per-second series reports it.

    Counts are of measured operations (started after the warm-up) that ended in that second;
    `p50_ms`/`p99_ms` come from a histogram with 16 buckets per doubling (within 3.1%).
    `partial` marks a second the run did not cover completely (the last one, and any second an
    operation in flight at the deadline ended in); `warmup` one that began inside the warm-up.
    """

    second: int
    op: str
    ops: int
    ok: int
    conflict: int
    busy: int
    error: int
    p50_ms: float
    p99_ms: float
    partial: bool
    warmup: bool

    def to_dict(self) -> dict[str, Any]:
        """Return the row as plain data."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Recorder:
    """One client's record of a run. Owned by one client; merged by the runner afterwards.

    Memory is bounded by the number of operation kinds and run seconds, except `events`, which
    a scenario fills only when an invariant needs the history (see its docs for the cost).
    Picklable: process clients send theirs to the runner when they finish.
    """

    client: int
    ops: dict[str, OpStats] = dataclasses.field(default_factory=dict)
    events: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    operations_retried: int = 0
    total_retries: int = 0
    longest_conflict_streak: int = 0
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    finished: bool = False
    warmup: float = 0.0
    """Seconds at the start of the run whose operations are not measured."""
    lag: Histogram = dataclasses.field(default_factory=Histogram)
    """Open model only: how late each measured operation started against its intended start."""

    def stats(self, op: str) -> OpStats:
        """The statistics of operation kind `op`, created when first needed."""
        stats = self.ops.get(op)
        if stats is None:
            stats = self.ops[op] = OpStats()
        return stats

    def add(self, op: str, outcome: int, ns: int, second: int, measured: bool = True) -> None:
        """Count one operation (`outcome` indexes `OUTCOMES`) that took `ns` and ended in `second`.

        An operation that is not `measured` (it started in the warm-up) is only counted.
        """
        stats = self.stats(op)
        stats.counts[outcome] += 1
        if measured:
            stats.measured[outcome] += 1
            stats.histogram.add_ns(ns)
            tally = stats.tally(second)
            tally.counts[outcome] += 1
            tally.histogram.add_ns(ns)

    def add_many(
        self, op: str, outcome: int, latencies: list[int], second: int, *, measured: bool, timed: bool
    ) -> int:
        """Count a batch of operations of one kind and outcome that ended in run second `second`.

        Their latencies (nanoseconds) go into the histograms when `measured` and `timed`. The
        batch is summarised through a `Counter` first, so a batch of a fast operation costs a C
        loop plus Python work per distinct latency. Returns how many operations were counted.
        """
        if not measured or not timed:
            count = len(latencies)
            stats = self.stats(op)
            stats.counts[outcome] += count
            if measured:
                stats.measured[outcome] += count
                stats.tally(second).counts[outcome] += count
            return count
        batch = Batch(Counter(latencies))
        stats = self.stats(op)
        stats.counts[outcome] += batch.count
        stats.measured[outcome] += batch.count
        stats.histogram.add_batch(batch)
        tally = stats.tally(second)
        tally.counts[outcome] += batch.count
        tally.histogram.add_batch(batch)
        return batch.count

    def count_only(self, op: str, outcome: int) -> None:
        """Count one operation without timing or measuring it."""
        self.stats(op).counts[outcome] += 1

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """Outcome counts per operation kind, by outcome name: every operation, warm-up included."""
        return {op: dict(zip(OUTCOMES, stats.counts)) for op, stats in self.ops.items()}

    @property
    def measured_counts(self) -> dict[str, dict[str, int]]:
        """Outcome counts per operation kind of the operations that started after the warm-up."""
        return {op: dict(zip(OUTCOMES, stats.measured)) for op, stats in self.ops.items()}

    @property
    def latencies(self) -> dict[str, Histogram]:
        """Latency histogram per operation kind (measured operations)."""
        return {op: stats.histogram for op, stats in self.ops.items()}

    @property
    def per_second(self) -> list[int]:
        """Measured operations of every kind per run second (by the second they ended in)."""
        last = max((max(stats.seconds, default=-1) for stats in self.ops.values()), default=-1)
        totals = [0] * (last + 1)
        for stats in self.ops.values():
            for second, tally in stats.seconds.items():
                if second >= 0:
                    totals[second] += sum(tally.counts)
        return totals

    def series(self, elapsed: float | None = None) -> list[SecondRow]:
        """The per-second, per-operation series: one row per run second and operation kind.

        Seconds run from 0 to the last one any operation ended in; a second with no operation of
        a kind gets a row of zeros (a stall shows as a gap, not as a missing line). With `elapsed`
        (the run's measured length in seconds) every second not wholly inside it is `partial`;
        without it only the last second is.
        """
        last = max((max(stats.seconds, default=-1) for stats in self.ops.values()), default=-1)
        if elapsed is not None:
            last = max(last, int(elapsed - 1e-9))
        rows = []
        for second in range(last + 1):
            partial = second + 1 > elapsed + 1e-9 if elapsed is not None else second == last
            for op in sorted(self.ops):
                tally = self.ops[op].seconds.get(second)
                counts = tally.counts if tally is not None else [0, 0, 0, 0]
                histogram = tally.histogram if tally is not None else None
                rows.append(
                    SecondRow(
                        second=second,
                        op=op,
                        ops=sum(counts),
                        ok=counts[OK],
                        conflict=counts[CONFLICT],
                        busy=counts[BUSY],
                        error=counts[ERROR],
                        p50_ms=round(histogram.percentile(50) * 1e3, 4) if histogram else 0.0,
                        p99_ms=round(histogram.percentile(99) * 1e3, 4) if histogram else 0.0,
                        partial=partial,
                        warmup=second < self.warmup,
                    )
                )
        return rows

    def error(self, message: str) -> None:
        """Keep a sample of an unexpected error's message."""
        if len(self.errors) < MAX_ERROR_SAMPLES:
            self.errors.append(message)

    def retried(self, retries: int) -> None:
        """Note that one logical operation needed `retries` extra attempts."""
        if retries > 0:
            self.operations_retried += 1
            self.total_retries += retries

    def conflict_streak(self, length: int) -> None:
        """Note a run of `length` consecutive conflicts of this client (keeps the longest)."""
        if length > self.longest_conflict_streak:
            self.longest_conflict_streak = length

    def total(self, outcome: str | None = None) -> int:
        """Return the number of operations (of one outcome, if given) over every kind."""
        if outcome is None:
            return sum(sum(stats.counts) for stats in self.ops.values())
        index = OUTCOMES.index(outcome)
        return sum(stats.counts[index] for stats in self.ops.values())


def merge(recorders: list[Recorder]) -> Recorder:
    """Return one recorder holding every client's counts, latencies and series.

    Events and metrics are concatenated; the longest conflict streak is the longest of any
    client; the error samples stay capped at `MAX_ERROR_SAMPLES`.
    """
    merged = Recorder(client=-1)
    for recorder in recorders:
        for op, stats in recorder.ops.items():
            merged.stats(op).merge(stats)
        merged.events.extend(recorder.events)
        merged.errors.extend(recorder.errors[: MAX_ERROR_SAMPLES - len(merged.errors)])
        merged.operations_retried += recorder.operations_retried
        merged.total_retries += recorder.total_retries
        merged.longest_conflict_streak = max(merged.longest_conflict_streak, recorder.longest_conflict_streak)
        merged.warmup = max(merged.warmup, recorder.warmup)
        merged.lag.merge(recorder.lag)
    return merged
