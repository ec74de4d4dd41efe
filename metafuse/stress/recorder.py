"""What one client saw: outcome counts, latency histograms, retries, conflict streaks and events."""

from __future__ import annotations

import dataclasses
from typing import Any

from .histogram import Histogram

OUTCOMES = ("ok", "conflict", "busy", "error")
"""How an operation can end: done, refused by a version check, lock timeout, anything else."""
MAX_ERROR_SAMPLES = 20


@dataclasses.dataclass
class Recorder:
    """One client's record of a run. Owned by one client; merged by the runner afterwards.

    Memory is bounded by the number of operation kinds and run seconds, except `events`, which
    a scenario fills only when an invariant needs the history (see its docs for the cost).
    """

    client: int
    counts: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    latencies: dict[str, Histogram] = dataclasses.field(default_factory=dict)
    per_second: list[int] = dataclasses.field(default_factory=list)
    events: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    operations_retried: int = 0
    total_retries: int = 0
    conflict_streak: int = 0
    longest_conflict_streak: int = 0
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    finished: bool = False

    def add(self, op: str, outcome: str, seconds: float, second: int) -> None:
        """Count one operation, its latency, and the run second it finished in."""
        counts = self.counts.get(op)
        if counts is None:
            counts = self.counts[op] = dict.fromkeys(OUTCOMES, 0)
            self.latencies[op] = Histogram()
        counts[outcome] += 1
        self.latencies[op].add(seconds)
        per_second = self.per_second
        while len(per_second) <= second:
            per_second.append(0)
        per_second[second] += 1
        if outcome == "conflict":
            self.conflict_streak += 1
            self.longest_conflict_streak = max(self.longest_conflict_streak, self.conflict_streak)
        elif outcome == "ok":
            self.conflict_streak = 0

    def count_only(self, op: str, outcome: str) -> None:
        """Count one operation without timing it (recording switched off)."""
        counts = self.counts.get(op)
        if counts is None:
            counts = self.counts[op] = dict.fromkeys(OUTCOMES, 0)
        counts[outcome] += 1

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
            return sum(sum(counts.values()) for counts in self.counts.values())
        return sum(counts[outcome] for counts in self.counts.values())


def merge(recorders: list[Recorder]) -> Recorder:
    """Return one recorder holding every client's counts (events and metrics concatenated)."""
    merged = Recorder(client=-1)
    for recorder in recorders:
        for op, counts in recorder.counts.items():
            target = merged.counts.setdefault(op, dict.fromkeys(OUTCOMES, 0))
            for outcome, count in counts.items():
                target[outcome] += count
        for op, histogram in recorder.latencies.items():
            merged.latencies.setdefault(op, Histogram()).merge(histogram)
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
