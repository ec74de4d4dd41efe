"""Recording and pacing in `ClientContext`: counts, per-second series, warm-up, open-model load.

Time is a fake clock advanced by the operations themselves, so every assertion is exact and no
test depends on how fast the machine is.
"""

from __future__ import annotations

import pickle
import time
from typing import Any

import pytest

from metafuse.errors import BusyError, ConflictError
from metafuse.stress import client as client_module
from metafuse.stress.client import Board, ClientContext, Schedule
from metafuse.stress.config import StressConfig
from metafuse.stress.recorder import Recorder, merge
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY, scenario

MS = 1_000_000
SECOND = 1_000_000_000
START = 1_000 * SECOND  # the fake clock's run start, far from zero like a real monotonic clock


class FakeClock:
    """`monotonic_ns` and `time.sleep` for one test: only operations and sleeps move time."""

    def __init__(self) -> None:
        self.now = START
        self.slept = 0

    def monotonic_ns(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += 1
        self.now += max(1, int(seconds * 1e9))

    def op(self, ns: int, error: Exception | None = None) -> str:
        """An operation that takes `ns` of fake time, then returns or raises `error`."""
        self.now += ns
        if error is not None:
            raise error
        return "done"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(client_module, "monotonic_ns", fake.monotonic_ns)
    monkeypatch.setattr(time, "sleep", fake.sleep)  # the client module calls time.sleep
    return fake


def context(client: int = 0, clients: int = 1, duration: float = 100.0, **options: Any) -> ClientContext:
    return ClientContext(
        client=client,
        clients=clients,
        mode="thread",
        path="unused",
        catalog=None,
        shared={},
        seed=1,
        start=START / 1e9,
        deadline=START / 1e9 + duration,
        record=options.pop("record", True),
        live=[0] * (3 * max(clients, client + 1)),
        gate=None,  # type: ignore[arg-type]  # no scenario here uses rounds
        report=lambda value: None,
        stopped=lambda: False,
        board=Board([0] * Board.SIZE, None),
        **options,
    )


def last_error(ctx: ClientContext) -> Exception | None:
    """`ctx.last_error`, read through a call so that the type checker does not keep a narrowing."""
    return ctx.last_error


def test_every_call_is_counted_and_timed(clock: FakeClock) -> None:
    ctx = context()
    for index in range(1_000):
        assert ctx.call("read", clock.op, 1_000 + index) == ("ok", "done")
    assert ctx.call("write", clock.op, 5 * MS, ConflictError("d", 1, 2)) == ("conflict", None)
    assert isinstance(last_error(ctx), ConflictError)
    assert ctx.call("write", clock.op, 7 * MS, BusyError("locked", 1.0)) == ("busy", None)
    assert ctx.call("write", clock.op, 3 * MS, RuntimeError("boom")) == ("error", None)
    assert ctx.call("write", clock.op, 2 * MS) == ("ok", "done")
    assert last_error(ctx) is None
    assert ctx.last_end - ctx.last_start == pytest.approx(0.002)
    recorder = ctx.recorder
    assert recorder.counts == {
        "read": {"ok": 1_000, "conflict": 0, "busy": 0, "error": 0},
        "write": {"ok": 1, "conflict": 1, "busy": 1, "error": 1},
    }
    reads = recorder.latencies["read"]
    assert (reads.count, reads.min_ns, reads.max_ns) == (1_000, 1_000, 1_999)
    assert reads.mean == pytest.approx(1_499.5e-9)
    assert recorder.latencies["write"].max_ns == 7 * MS
    assert recorder.errors == ["write: RuntimeError: boom"]


def test_live_counters_follow_the_calls(clock: FakeClock) -> None:
    ctx = context()
    for _ in range(3):
        ctx.call("read", clock.op, 100 * MS)
    ctx.call("write", clock.op, 100 * MS, ConflictError("d", 1, 2))
    ctx.publish()
    assert ctx._live == [4, 1, 0]


def test_per_second_series_shows_a_stall_as_a_gap(clock: FakeClock) -> None:
    ctx = context()
    for _ in range(10):  # second 0: ten 50 ms reads
        ctx.call("read", clock.op, 50 * MS)
    ctx.call("read", clock.op, 2_000 * MS)  # a stall: ends in second 2, nothing ends in second 1
    for _ in range(4):
        ctx.call("read", clock.op, 100 * MS)
    rows = ctx.recorder.series(elapsed=3.5)
    assert [(row.second, row.ops) for row in rows] == [(0, 10), (1, 0), (2, 5), (3, 0)]
    assert rows[0].p50_ms == pytest.approx(50.0, rel=1 / 32)
    assert rows[2].p99_ms == pytest.approx(2_000.0, rel=1 / 32)
    assert [row.partial for row in rows] == [False, False, False, True]
    assert ctx.recorder.per_second == [10, 0, 5]


def test_series_without_elapsed_marks_only_the_last_second_partial(clock: FakeClock) -> None:
    ctx = context()
    for _ in range(29):
        ctx.call("read", clock.op, 100 * MS)
    assert [row.partial for row in ctx.recorder.series()] == [False, False, True]


def test_warmup_operations_are_counted_but_not_measured(clock: FakeClock) -> None:
    ctx = context(warmup=1.0)
    for _ in range(9):  # 0-0.9 s: warm-up
        ctx.call("read", clock.op, 100 * MS)
    clock.now += 50 * MS
    ctx.call("read", clock.op, 100 * MS)  # starts at 0.95 s, ends at 1.05 s: still warm-up
    for _ in range(5):  # starts 1.05 s and later: measured
        ctx.call("read", clock.op, 100 * MS)
    ctx.call("read", clock.op, 100 * MS, ConflictError("d", 1, 2))
    recorder = ctx.recorder
    assert recorder.counts["read"] == {"ok": 15, "conflict": 1, "busy": 0, "error": 0}
    assert recorder.measured_counts["read"] == {"ok": 5, "conflict": 1, "busy": 0, "error": 0}
    assert recorder.latencies["read"].count == 6
    rows = recorder.series()
    assert [(row.second, row.ops, row.warmup) for row in rows] == [(0, 0, True), (1, 6, False)]


def test_recording_off_counts_without_timing(clock: FakeClock) -> None:
    ctx = context(record=False)
    for _ in range(20):
        ctx.call("read", clock.op, 100 * MS)
    ctx.call("read", clock.op, 100 * MS, BusyError("locked", 1.0))
    ctx.event("ignored")
    recorder = ctx.recorder
    assert recorder.counts["read"] == {"ok": 20, "conflict": 0, "busy": 1, "error": 0}
    assert recorder.latencies["read"].count == 0
    assert recorder.per_second == [9, 10, 2]
    assert recorder.events == []


def test_longest_conflict_streak_counts_consecutive_conflicts_only(clock: FakeClock) -> None:
    ctx = context()
    conflict = ConflictError("d", 1, 2)
    for error in (conflict, conflict, None, conflict, conflict, conflict, None, conflict):
        ctx.call("write", clock.op, MS, error)
    assert ctx.recorder.longest_conflict_streak == 3


def test_recorders_merge_like_one_recorder_and_stay_small(clock: FakeClock) -> None:
    contexts = [context(client) for client in range(2)]
    whole = context()
    for index in range(5_000):
        latency = (1 + index % 97) * 10_000
        contexts[index % 2].call("read", clock.op, latency)
        clock.now -= latency  # the same operation again, at the same time, for `whole`
        whole.call("read", clock.op, latency)
    merged = merge([pickle.loads(pickle.dumps(ctx.recorder)) for ctx in contexts])
    expected = whole.recorder
    assert merged.counts == expected.counts
    assert merged.latencies["read"].buckets == expected.latencies["read"].buckets
    assert merged.latencies["read"].stddev == pytest.approx(expected.latencies["read"].stddev)
    assert merged.series() == expected.series()
    # 300 s of a fast operation: the size grows with seconds and buckets, not operations.
    recorder = Recorder(client=0)
    for second in range(300):
        recorder.add_many(
            "read", 0, [400 + (i * 37) % 2_000 for i in range(3_000)], second, measured=True, timed=True
        )
    assert len(pickle.dumps(recorder)) < 400_000


def test_schedule_spreads_the_rate_over_clients() -> None:
    schedules = [Schedule(200.0, 4, client, START) for client in range(4)]
    due = sorted(schedule.due(index) for schedule in schedules for index in range(50))
    gaps = {b - a for a, b in zip(due, due[1:])}
    assert max(gaps) - min(gaps) <= 1  # one operation every 5 ms (rounding aside)
    assert min(gaps) >= 5 * MS - 1
    assert due[0] == START


def test_schedule_ramps_the_rate_up_linearly() -> None:
    schedule = Schedule(100.0, 1, 0, START, ramp_up=10.0)
    due = [schedule.due(index) for index in range(1_600)]
    in_ramp = sum(1 for ns in due if ns < START + 10 * SECOND)
    assert in_ramp == 500  # the integral of a rate growing from 0 to 100/s over 10 s
    first_second = sum(1 for ns in due if ns < START + SECOND)
    assert first_second == 5  # 100 * 1^2 / (2 * 10)
    after = [b - a for a, b in zip(due[600:], due[601:])]
    assert all(abs(gap - 10 * MS) <= 1 for gap in after)
    for ns in (START - SECOND, START, START + 3 * SECOND + 7, START + 12 * SECOND):
        index = schedule.first_at_or_after(ns)
        assert schedule.due(index) >= ns
        assert index == 0 or schedule.due(index - 1) < ns


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan"), float("inf")])
def test_schedule_refuses_a_rate_that_is_not_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="rate must be a positive number"):
        Schedule(rate, 1, 0, START)


def _stall_run(clock: FakeClock, ctx: ClientContext) -> None:
    """Operations of 1 ms, except that the 10th takes 200 ms (the planted stall)."""
    count = 0
    while not ctx.should_stop():
        count += 1
        ctx.call("write", clock.op, 200 * MS if count == 10 else MS)


def test_open_model_charges_a_stall_to_every_operation_due_during_it(clock: FakeClock) -> None:
    closed = context(duration=1.0)
    _stall_run(clock, closed)
    clock.now = START
    opened = context(duration=1.0, rate=100.0)
    _stall_run(clock, opened)
    closed_writes, open_writes = closed.recorder.latencies["write"], opened.recorder.latencies["write"]
    # Closed model: one slow operation among 801; only the maximum sees it.
    assert closed_writes.count == 801
    assert closed_writes.max == pytest.approx(0.2)
    assert closed_writes.percentile(99) == pytest.approx(0.001, rel=1 / 64)
    # Open model, 100/s: the 22 operations due during the stall (and while it drained) waited
    # for it, 191 ms down to 2 ms, so the p90 shows it too.
    assert open_writes.count == 100
    assert open_writes.max == pytest.approx(0.2)
    assert open_writes.percentile(90) == pytest.approx(0.110, rel=1 / 64)
    assert opened.recorder.lag.max == pytest.approx(0.190, rel=1 / 64)


def test_open_model_stops_when_nothing_more_is_due_before_the_deadline(clock: FakeClock) -> None:
    ctx = context(duration=1.0, rate=10.0)
    calls = 0
    while not ctx.should_stop():
        ctx.call("read", clock.op, MS)
        calls += 1
    assert calls == 10
    assert clock.now < START + SECOND


def test_open_model_latency_counts_from_the_intended_start(clock: FakeClock) -> None:
    ctx = context(rate=10.0)
    clock.now = START + 250 * MS  # the client is 250 ms late for its first operation
    ctx.call("read", clock.op, MS)
    assert ctx.recorder.latencies["read"].max_ns == 251 * MS
    assert ctx.last_start == pytest.approx((START + 250 * MS) / 1e9)


def test_late_joining_client_starts_at_the_current_point_of_the_schedule(clock: FakeClock) -> None:
    clock.now = START + 5 * SECOND  # a replacement process starting mid-run
    ctx = context(rate=10.0)
    ctx.call("read", clock.op, MS)
    # Only what fell due in the last 100 ms is owed, not a backlog of 50 operations.
    assert ctx.recorder.latencies["read"].max_ns == 101 * MS


def test_closed_model_ramp_up_starts_clients_one_after_another(clock: FakeClock) -> None:
    starts = []
    for client in range(4):
        clock.now = START
        ctx = context(client=client, clients=4, ramp_up=2.0)
        ctx.call("read", clock.op, MS)
        ctx.call("read", clock.op, MS)
        starts.append((ctx.recorder.latencies["read"].max_ns, clock.now - START))
    assert [ready for _, ready in starts] == [2 * MS, 502 * MS, 1_002 * MS, 1_502 * MS]
    assert all(latency == MS for latency, _ in starts)  # waiting to join is not latency


def test_open_model_warmup_excludes_operations_due_in_it(clock: FakeClock) -> None:
    ctx = context(rate=10.0, warmup=0.5, duration=1.0)
    while not ctx.should_stop():
        ctx.call("read", clock.op, MS)
    assert ctx.recorder.counts["read"]["ok"] == 10
    assert ctx.recorder.measured_counts["read"]["ok"] == 5


def _paced_noop(ctx: ClientContext) -> None:
    while not ctx.should_stop():
        ctx.call("noop", int)


PACED = REGISTRY.get("test_paced_noop") or scenario(
    "test_paced_noop", title="paced no-op", summary="clients call a no-op as fast as allowed"
)(_paced_noop)


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_runner_passes_rate_and_warmup_to_every_client(mode: str) -> None:
    config = StressConfig(clients=2, duration=1, mode=mode, seed=1, rate=40.0, warmup=0.5)
    result = run_scenario(PACED, config)
    assert result.passed
    noop = result.operations["noop"]
    # Unpaced, a no-op runs hundreds of thousands of times a second; paced, 40 are due.
    assert 0 < noop["total"] <= 40


def test_an_operation_woken_early_by_a_stop_is_timed_from_its_real_start(clock: FakeClock) -> None:
    # A stop request (or the deadline) ends the wait for an operation's intended start early;
    # timing it from the intended start, still in the future, gave negative latencies.
    ctx = context(rate=1.0)
    ctx.call("read", clock.op, MS)  # due at the start
    ctx._stopped = lambda: True
    ctx.call("write", clock.op, MS)  # due a second later, started at once
    assert ctx.recorder.latencies["write"].min_ns == MS
    assert ctx.recorder.latencies["write"].max_ns == MS
