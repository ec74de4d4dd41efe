"""Histories from many hosts: clock bounds from round trips, widening, merging, one verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from metafuse.stress import distributed
from metafuse.stress.distributed import ClockOffset, Part
from metafuse.stress.history import HistoryFileError, Operation, format_line, read_history

MS = 1_000_000


def _lines(*operations: Operation) -> bytes:
    return "".join(format_line(op) for op in operations).encode()


def _setup(token: str = "t0") -> Operation:
    return Operation(-1, "create", "k", "ok", 0, 1, token=token, version=1)


def test_chunks_are_bounded_and_join_back() -> None:
    data = bytes(range(256)) * 10
    pieces = distributed.chunks(data, 1000)
    assert [len(piece) for piece in pieces] == [1000, 1000, 560]
    assert b"".join(pieces) == data
    assert distributed.chunks(b"") == [b""]
    with pytest.raises(ValueError, match="at least 1 byte"):
        distributed.chunks(data, 0)


def test_the_shortest_round_trip_bounds_the_offset() -> None:
    # The remote clock is 5 s behind; the second probe is the quickest (2 ms there and back).
    probes = [(100 * MS, 110 * MS - 5_000 * MS, 120 * MS), (200 * MS, 201 * MS - 5_000 * MS, 202 * MS)]
    clock = ClockOffset.from_probes(probes)
    assert clock == ClockOffset(5_000 * MS, 1 * MS)
    with pytest.raises(ValueError, match="no clock probe"):
        ClockOffset.from_probes([])
    with pytest.raises(ValueError, match="before it was sent"):
        ClockOffset.from_probes([(10, 0, 9)])


def test_an_interval_moves_onto_the_collector_clock_widened_both_ways() -> None:
    op = Operation(3, "get", "k", "not_found", 10 * MS, 12 * MS)
    moved = ClockOffset(100 * MS, 2 * MS).to_collector(op)
    assert (moved.invoke, moved.ret) == (108 * MS, 114 * MS)
    assert ClockOffset(-50 * MS, 0).to_collector(op).invoke == 0  # clamped: the format has no negatives


def test_skew_within_the_bound_raises_no_false_alarm() -> None:
    # Host A saves at [10, 11] ms on the true clock; host B, whose clock runs 3 ms ahead, reads
    # the new value at true [11.5, 12] ms. Without B's offset the read would seem to come first.
    save = Operation(1, "save", "k", "ok", 10 * MS, 11 * MS, token="t1", version=2, expected=1)
    read = Operation(2, "get", "k", "ok", 14 * MS + MS // 2, 15 * MS, token="t1", version=2)
    exact = Part("setup", _lines(_setup()), distributed.EXACT)
    a = Part("a", _lines(save), distributed.EXACT)
    unmeasured = distributed.merge([exact, a, Part("b", _lines(read), ClockOffset(-10 * MS, 0))])
    assert distributed.judge(unmeasured).status == distributed.NOT_LINEARIZABLE
    # Measured as 2 ms behind +/- 1.5 ms (the truth, -3 ms, is within the bound): judged right.
    measured = distributed.merge([exact, a, Part("b", _lines(read), ClockOffset(-2 * MS, 3 * MS // 2))])
    verdict = distributed.judge(measured, bound_ns=3 * MS // 2)
    assert verdict.status == distributed.LINEARIZABLE
    assert "clocks bound +/- 1.500 ms" in list(verdict.lines())[-1]


def _judge(*operations: Operation, bound_ns: int = 0) -> distributed.Verdict:
    parts = [
        Part("setup", _lines(_setup()), distributed.EXACT),
        Part("w", _lines(*operations), distributed.EXACT),
    ]
    return distributed.judge(distributed.merge(parts), bound_ns=bound_ns)


def test_a_lost_update_fails_the_version_chain_with_both_writes() -> None:
    first = Operation(1, "save", "k", "ok", 10 * MS, 11 * MS, token="a", version=2, expected=1)
    second = Operation(2, "save", "k", "ok", 20 * MS, 21 * MS, token="b", version=2, expected=1)
    verdict = _judge(first, second)
    assert verdict.status == distributed.NOT_LINEARIZABLE
    lines = list(verdict.lines())
    assert lines[:3] == [
        "k: version_chain FAILED: two writes were both acknowledged as v2",
        "  client 1: k save(expected=1, token='a') -> ok v2 [0.010000s, 0.011000s], line 2",
        "  client 2: k save(expected=1, token='b') -> ok v2 [0.020000s, 0.021000s], line 3",
    ]
    assert "linearizability not searched" in lines[-1]


def test_a_stale_read_fails_unless_the_clock_bound_makes_it_concurrent() -> None:
    save = Operation(1, "save", "k", "ok", 10 * MS, 11 * MS, token="a", version=2, expected=1)
    read = Operation(2, "get", "k", "ok", 12 * MS, 13 * MS, token="t0", version=1)
    verdict = _judge(save, read)
    assert verdict.status == distributed.NOT_LINEARIZABLE
    assert next(verdict.lines()) == "k: no_stale_read FAILED: a read returned v1 after v2 was acknowledged"
    # The same two operations 1 ms apart, merged as if from hosts 0.5 ms apart each way: the
    # widened intervals overlap, so the read may have come first and nothing is claimed.
    widened = [ClockOffset(0, MS // 2).to_collector(op) for op in (save, read)]
    assert distributed.invariants(widened) == []


def test_a_torn_read_fails() -> None:
    read = Operation(2, "get", "k", "ok", 12 * MS, 13 * MS, token="t0 | a", version=1)
    assert (
        next(_judge(read).lines())
        == "k: no_torn_read FAILED: a read saw the row and fields of different writes"
    )


def test_what_the_invariants_miss_the_linearizability_search_catches() -> None:
    # v2 read with a token no write of v2 wrote: no duplicate version, nothing stale or torn.
    save = Operation(1, "save", "k", "ok", 10 * MS, 11 * MS, token="a", version=2, expected=1)
    read = Operation(2, "get", "k", "ok", 12 * MS, 13 * MS, token="b", version=2)
    verdict = _judge(save, read)
    assert verdict.status == distributed.NOT_LINEARIZABLE
    assert next(verdict.lines()) == "k: NOT LINEARIZABLE (3 operations)"
    assert "cannot linearize client 2: k get() -> ok v2 token='b'" in "\n".join(verdict.lines())


def test_a_missing_history_makes_the_verdict_inconclusive_never_a_failure() -> None:
    # The writer's history was lost: the read of its token cannot be explained, but that is
    # the missing history's doing, not the catalog's.
    read = Operation(2, "get", "k", "ok", 30 * MS, 31 * MS, token="unseen", version=2)
    operations = distributed.merge(
        [Part("setup", _lines(_setup()), distributed.EXACT), Part("r", _lines(read), distributed.EXACT)]
    )
    verdict = distributed.judge(operations, missing=["worker 1 (node)"])
    assert verdict.status == distributed.INCONCLUSIVE
    assert list(verdict.lines())[-1] == (
        "[metafuse] verdict: no history arrived from worker 1 (node); its operations are unknown"
    )


def test_a_bad_line_names_its_host() -> None:
    with pytest.raises(HistoryFileError, match=r"history from worker 2:1: not a JSON object"):
        distributed.merge([Part("worker 2", b"{oops\n", distributed.EXACT)])


def test_the_merged_file_is_a_history_check_history_reads(tmp_path: Path) -> None:
    operations = distributed.merge([Part("setup", _lines(_setup()), distributed.EXACT)])
    distributed.write(str(tmp_path / "merged.jsonl"), operations)
    assert [op.token for op in read_history(str(tmp_path / "merged.jsonl"))] == ["t0"]


def test_a_run_in_which_no_client_recorded_anything_is_inconclusive() -> None:
    verdict = distributed.judge(distributed.merge([Part("setup", _lines(_setup()), distributed.EXACT)]))
    assert verdict.status == distributed.INCONCLUSIVE
    assert (
        list(verdict.lines())[-1]
        == "[metafuse] verdict: no client operation was recorded: nothing was tested"
    )


def test_a_clock_measured_twice_is_bounded_by_both_measurements() -> None:
    start, end = ClockOffset(10 * MS, 1 * MS), ClockOffset(11 * MS, 1 * MS)
    assert start.agrees(end)
    assert start.spanning(end) == ClockOffset(10 * MS + MS // 2, 3 * MS // 2)
    # A clock that stepped 5 ms during the run: the two bounds do not overlap (reported), and
    # the operations are widened to cover both, so the step cannot raise a false alarm.
    stepped = ClockOffset(15 * MS, 1 * MS)
    assert not start.agrees(stepped)
    assert start.spanning(stepped) == ClockOffset(12 * MS + MS // 2, 7 * MS // 2)


def _clean_run() -> list[Operation]:
    save = Operation(1, "save", "k", "ok", 10 * MS, 11 * MS, token="a", version=2, expected=1)
    read = Operation(2, "get", "k", "ok", 12 * MS, 13 * MS, token="a", version=2)
    return distributed.merge([Part("all", _lines(_setup(), save, read), distributed.EXACT)])


def test_a_passing_run_that_did_less_work_than_asked_is_inconclusive() -> None:
    # Two users were each asked for 50 calls, one made them: the history is linearizable, but
    # too little of it to believe a pass.
    verdict = distributed.judge(_clean_run(), work=distributed.Work(quota=50, users=2, finished=1))
    assert verdict.status == distributed.INCONCLUSIVE
    assert list(verdict.lines())[-1] == (
        "[metafuse] verdict: too little work to pass: 1 of 2 users made their 50 calls"
        " (2 calls recorded of 100 asked) before the test stopped"
    )
    done = distributed.judge(_clean_run(), work=distributed.Work(quota=50, users=2, finished=2))
    assert done.status == distributed.LINEARIZABLE
    assert not any("too little work" in line for line in done.lines())


def test_a_failure_found_in_too_little_work_still_fails() -> None:
    first = Operation(1, "save", "k", "ok", 10 * MS, 11 * MS, token="a", version=2, expected=1)
    second = Operation(2, "save", "k", "ok", 20 * MS, 21 * MS, token="b", version=2, expected=1)
    operations = distributed.merge([Part("all", _lines(_setup(), first, second), distributed.EXACT)])
    verdict = distributed.judge(operations, work=distributed.Work(quota=50, users=2, finished=0))
    assert verdict.status == distributed.NOT_LINEARIZABLE


def test_without_a_quota_the_work_is_always_done() -> None:
    assert distributed.NO_QUOTA.done
    assert distributed.Work(quota=0, users=8, finished=0).done
    assert not distributed.Work(quota=1, users=0, finished=0).done
