"""What one client saw: outcome counts, latency histograms, retries, conflict streaks and events."""

from __future__ import annotations

import dataclasses
from typing import Any

from .histogram import Histogram

OUTCOMES = ("ok", "conflict", "busy", "error")
"""How an operation can end: done, refused by a version check, lock timeout, anything else."""
OK, CONFLICT, BUSY, ERROR = range(4)
MAX_ERROR_SAMPLES = 20


class OpStats:
    """Counts per outcome (indexed like `OUTCOMES`) and latencies of one operation kind."""

    __slots__ = ("counts", "histogram")

    def __init__(self) -> None:
        self.counts = [0, 0, 0, 0]
        self.histogram = Histogram()

    def merge(self, other: OpStats) -> None:
        """Add `other`'s counts and latencies to these."""
        for index, count in enumerate(other.counts):
            self.counts[index] += count
        self.histogram.merge(other.histogram)


@dataclasses.dataclass
class Recorder:
    """One client's record of a run. Owned by one client; merged by the runner afterwards.

    Memory is bounded by the number of operation kinds and run seconds, except `events`, which
    a scenario fills only when an invariant needs the history (see its docs for the cost).
    """

    client: int
    ops: dict[str, OpStats] = dataclasses.field(default_factory=dict)
    per_second: list[int] = dataclasses.field(default_factory=list)
    events: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    operations_retried: int = 0
    total_retries: int = 0
    conflict_streak: int = 0
    longest_conflict_streak: int = 0
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    finished: bool = False

    def add(self, op: str, outcome: int, ns: int, second: int) -> None:
        """Count one operation (`outcome` indexes `OUTCOMES`), its latency and its run second."""
        stats = self.ops.get(op)
        if stats is None:
            stats = self.ops[op] = OpStats()
        stats.counts[outcome] += 1
        stats.histogram.add_ns(ns)
        try:
            self.per_second[second] += 1
        except IndexError:
            self.per_second.extend([0] * (second + 1 - len(self.per_second)))
            self.per_second[second] += 1
        if outcome == CONFLICT:
            self.conflict_streak += 1
            if self.conflict_streak > self.longest_conflict_streak:
                self.longest_conflict_streak = self.conflict_streak
        elif outcome == OK:
            self.conflict_streak = 0

    def count_only(self, op: str, outcome: int) -> None:
        """Count one operation without timing it (recording switched off)."""
        stats = self.ops.get(op)
        if stats is None:
            stats = self.ops[op] = OpStats()
        stats.counts[outcome] += 1

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """Outcome counts per operation kind, by outcome name."""
        return {op: dict(zip(OUTCOMES, stats.counts)) for op, stats in self.ops.items()}

    @property
    def latencies(self) -> dict[str, Histogram]:
        """Latency histogram per operation kind."""
        return {op: stats.histogram for op, stats in self.ops.items()}

    def error(self, message: str) -> None:
        """Keep a sample of an unexpected error's message."""
        if len(self.errors) < MAX_ERROR_SAMPLES:
            self.errors.append(message)

    def retried(self, retries: int) -> None:
        """Note that one logical operation needed `retries` extra attempts."""
        if retries > 0:
            self.operations_retried += 1
            self.total_retries += retries

    def total(self, outcome: str | None = None) -> int:
        """Return the number of operations (of one outcome, if given) over every kind."""
        if outcome is None:
            return sum(sum(stats.counts) for stats in self.ops.values())
        index = OUTCOMES.index(outcome)
        return sum(stats.counts[index] for stats in self.ops.values())


def merge(recorders: list[Recorder]) -> Recorder:
    """Return one recorder holding every client's counts (events and metrics concatenated)."""
    merged = Recorder(client=-1)
    for recorder in recorders:
        for op, stats in recorder.ops.items():
            merged.ops.setdefault(op, OpStats()).merge(stats)
        for second, count in enumerate(recorder.per_second):
            while len(merged.per_second) <= second:
                merged.per_second.append(0)
            merged.per_second[second] += count
        merged.events.extend(recorder.events)
        merged.errors.extend(recorder.errors[: MAX_ERROR_SAMPLES - len(merged.errors)])
        merged.operations_retried += recorder.operations_retried
        merged.total_retries += recorder.total_retries
        merged.longest_conflict_streak = max(merged.longest_conflict_streak, recorder.longest_conflict_streak)
    return merged
