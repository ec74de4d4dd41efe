"""The commit log's protocol, driven step by step through a store that fails on cue.

Every ambiguous or failed write is scripted, so each test pins down one branch of the protocol:
a commit acknowledged exactly when it landed, never twice, and "unknown" rather than "failed"
while it may still land. The same log against real servers and threads is in tests/s3.
"""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import pytest

from metafuse.errors import ConflictError
from metafuse.objectstore import (
    CREATE,
    AlreadyExists,
    AmbiguousWrite,
    AppendContended,
    CommitLog,
    CommitUnknown,
    GetResult,
    LocalDirStore,
    LogCorrupt,
    LogEntry,
    ObjectMeta,
    ObjectStore,
    PutMode,
    StoreUnavailable,
)
from metafuse.objectstore._entries import encode_entry


class ScriptedStore(ObjectStore):
    """A `LocalDirStore` whose next puts and reads fail as scripted; counts every call.

    Put actions: "ok", "lost_before" (another writer's `before_put` hook runs, then the put is
    sent), "ambiguous_before" (not applied, reported ambiguous), "ambiguous_after" (applied,
    reported ambiguous), "unavailable" (not applied, reported unavailable).
    """

    def __init__(self, root: Path) -> None:
        self.inner = LocalDirStore(root)
        self.url = self.inner.url
        self.puts: list[str] = []
        self.failing_reads = 0
        self.before_put: Callable[[str], None] | None = None
        self.calls: Counter[str] = Counter()

    def _read_gate(self, what: str) -> None:
        self.calls[what] += 1
        if self.failing_reads:
            self.failing_reads -= 1
            raise StoreUnavailable(what, "scripted")

    def get(self, key: str) -> GetResult:
        self._read_gate("get")
        return self.inner.get(key)

    def head(self, key: str) -> ObjectMeta:
        self._read_gate("head")
        return self.inner.head(key)

    def list(self, prefix: str = "", start_after: str = "", limit: int | None = None) -> builtins.list[str]:
        self._read_gate("list")
        return self.inner.list(prefix, start_after, limit)

    def list_meta(
        self, prefix: str = "", start_after: str = "", limit: int | None = None
    ) -> builtins.list[ObjectMeta]:
        self._read_gate("list_meta")
        return self.inner.list_meta(prefix, start_after, limit)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def put(self, key: str, data: bytes, mode: PutMode) -> str:
        self.calls["put"] += 1
        action = self.puts.pop(0) if self.puts else "ok"
        if action == "lost_before" and self.before_put is not None:
            self.before_put(key)
        if action == "ambiguous_before":
            raise AmbiguousWrite(key, str(mode), "scripted, not applied")
        if action == "unavailable":
            raise StoreUnavailable(f"put {key}", "scripted")
        tag = self.inner.put(key, data, mode)
        if action == "ambiguous_after":
            raise AmbiguousWrite(key, str(mode), "scripted, applied")
        return tag


@pytest.fixture
def store(tmp_path: Path) -> ScriptedStore:
    return ScriptedStore(tmp_path / "store")


def make_log(store: ObjectStore, **options: float) -> CommitLog:
    return CommitLog(store, "cat", sleep=lambda seconds: None, **options)  # type: ignore[arg-type]


def other_writer(store: ScriptedStore) -> Callable[[str], None]:
    """A `before_put` hook: another client appends one entry first (through the inner store)."""
    other = make_log(store.inner)

    def hook(key: str) -> None:
        other.append({"by": "other"})

    return hook


def commit_ids(log: CommitLog) -> list[str]:
    return [entry.commit_id for entry in log.tail()]


def test_sequences_start_at_one_and_tail_returns_payloads(store: ScriptedStore) -> None:
    log = make_log(store)
    assert log.latest() == 0
    results = [log.append({"n": n}) for n in range(3)]
    assert [r.sequence for r in results] == [1, 2, 3]
    assert [(e.sequence, e.payload) for e in log.tail()] == [(1, {"n": 0}), (2, {"n": 1}), (3, {"n": 2})]
    assert [e.sequence for e in log.tail(after=2)] == [3]
    assert store.inner.list("cat/log/")[0] == "cat/log/00000000000000000001.json"


def test_ambiguous_write_that_landed_is_acknowledged_once(store: ScriptedStore) -> None:
    log = make_log(store)
    store.puts = ["ambiguous_after"]
    result = log.append({"n": 1})
    assert (result.sequence, result.attempts) == (1, 1)
    assert commit_ids(log) == [result.commit_id]


def test_ambiguous_write_that_did_not_land_is_sent_again_to_the_same_number(store: ScriptedStore) -> None:
    log = make_log(store)
    store.puts = ["ambiguous_before", "ambiguous_before", "ok"]
    result = log.append({"n": 1})
    assert (result.sequence, result.attempts) == (1, 3)
    assert commit_ids(log) == [result.commit_id]


def test_ambiguous_write_then_the_number_is_taken_moves_on_and_validates(store: ScriptedStore) -> None:
    log = make_log(store)
    store.before_put = other_writer(store)
    store.puts = ["lost_before"]
    seen: list[Sequence[LogEntry]] = []
    result = log.append({"by": "me"}, seen.append, after=0)
    assert result.sequence == 2
    assert [[e.payload for e in lost] for lost in seen] == [[{"by": "other"}]]
    assert [e.payload for e in log.tail()] == [{"by": "other"}, {"by": "me"}]

    # Our put is reported ambiguous (not applied); before the retry another writer takes the
    # number: the append must move on, never land twice, and validate what it lost to.
    store.puts = ["ambiguous_before", "lost_before"]
    result = log.append({"by": "me again"}, seen.append, after=2)
    assert result.sequence == 4
    assert [e.payload for e in seen[-1]] == [{"by": "other"}]
    assert [e.payload for e in log.tail(after=2)] == [{"by": "other"}, {"by": "me again"}]


def test_a_write_reported_ambiguous_then_found_taken_by_our_own_retry_is_ours(store: ScriptedStore) -> None:
    # Applied but reported ambiguous, and the read-back fails: the append sends the entry again,
    # gets AlreadyExists, and must recognise its own commit id rather than call it a lost race.
    log = make_log(store)
    store.puts = ["ambiguous_after"]
    store.failing_reads = 2
    result = log.append({"n": 1}, after=0)
    assert (result.sequence, result.attempts) == (1, 3)
    assert commit_ids(log) == [result.commit_id]


def test_store_away_after_an_ambiguous_write_raises_unknown_not_failure(store: ScriptedStore) -> None:
    log = make_log(store, max_unavailable=3, settle_seconds=0)
    store.puts = ["ambiguous_after"] + ["unavailable"] * 10
    store.failing_reads = 100
    with pytest.raises(CommitUnknown) as caught:
        log.append({"n": 1}, after=0)
    unknown = caught.value
    assert unknown.sequence == 1
    store.puts, store.failing_reads = [], 0
    settled = log.settle(unknown)
    assert settled is not None
    assert settled.sequence == 1
    assert commit_ids(log) == [unknown.commit_id]


def test_settle_lands_a_commit_that_had_not_landed(store: ScriptedStore) -> None:
    log = make_log(store, max_unavailable=2, settle_seconds=0)
    store.puts = ["ambiguous_before"] + ["unavailable"] * 10
    with pytest.raises(CommitUnknown) as caught:
        log.append({"n": 1})
    store.puts = []
    settled = log.settle(caught.value)
    assert settled is not None
    assert commit_ids(log) == [caught.value.commit_id]
    assert log.settle(caught.value) is not None  # settling twice gives the same answer


def test_settle_reports_none_when_another_commit_holds_the_number(store: ScriptedStore) -> None:
    log = make_log(store, max_unavailable=2, settle_seconds=0)
    store.puts = ["ambiguous_before"] + ["unavailable"] * 10
    with pytest.raises(CommitUnknown) as caught:
        log.append({"n": 1})
    store.puts = []
    other_writer(store)("")
    assert log.settle(caught.value) is None
    assert caught.value.commit_id not in commit_ids(log)


def test_store_away_for_writes_never_sent_is_a_plain_failure(store: ScriptedStore) -> None:
    log = make_log(store, max_unavailable=3)
    store.puts = ["unavailable"] * 10
    with pytest.raises(StoreUnavailable):
        log.append({"n": 1})
    assert commit_ids(log) == []


def test_validate_raising_abandons_the_commit(store: ScriptedStore) -> None:
    log = make_log(store)
    other_writer(store)("")

    def conflict(lost: Sequence[LogEntry]) -> None:
        raise ConflictError("sales.orders", 1, 2)

    with pytest.raises(ConflictError):
        log.append({"by": "me"}, conflict, after=0)
    assert [e.payload for e in log.tail()] == [{"by": "other"}]


def test_after_hands_every_newer_entry_to_validate(store: ScriptedStore) -> None:
    log = make_log(store)
    for _ in range(3):
        other_writer(store)("")
    seen: list[int] = []
    result = log.append({"by": "me"}, lambda lost: seen.extend(e.sequence for e in lost), after=1)
    assert seen == [2, 3]
    assert result.sequence == 4


def test_losing_too_many_numbers_in_a_row_is_contention(store: ScriptedStore) -> None:
    log = make_log(store, max_races=2)
    store.before_put = other_writer(store)
    store.puts = ["lost_before"] * 5
    with pytest.raises(AppendContended) as caught:
        log.append({"by": "me"}, after=0)
    assert caught.value.commit_id not in commit_ids(log)


def test_an_up_to_date_read_costs_one_list(store: ScriptedStore) -> None:
    log = make_log(store)
    log.append({"n": 1})
    store.calls.clear()
    assert log.latest() == 1
    assert not log.moved(1)
    assert store.calls == Counter({"list": 2})


def test_latest_jumps_to_the_end_with_one_list_when_behind(store: ScriptedStore) -> None:
    log = make_log(store)
    for _ in range(5):
        other_writer(store)("")
    store.calls.clear()
    assert log.latest() == 5
    assert store.calls == Counter({"list": 1})
    assert log.known_end == 5


def test_tail_refuses_a_gap_and_stray_keys(store: ScriptedStore) -> None:
    log = make_log(store)
    store.inner.put(log.key(1), encode_entry(1, "a", {}), CREATE)
    store.inner.put(log.key(3), encode_entry(3, "c", {}), CREATE)
    with pytest.raises(LogCorrupt, match="hole"):
        log.tail()
    store.inner.put("cat/log/stray.json", b"{}", CREATE)
    with pytest.raises(LogCorrupt, match="stray"):
        log.tail(after=3)


@pytest.mark.parametrize(
    ("data", "problem"),
    [(b"not json", "not JSON"), (b"[]", "not a JSON object"), (b'{"sequence": 1}', "needs an integer")],
)
def test_a_malformed_entry_is_named(store: ScriptedStore, data: bytes, problem: str) -> None:
    log = make_log(store)
    store.inner.put(log.key(1), data, CREATE)
    with pytest.raises(LogCorrupt, match=problem) as caught:
        log.read(1)
    assert caught.value.key == log.key(1)


def test_an_entry_under_the_wrong_number_is_corrupt(store: ScriptedStore) -> None:
    log = make_log(store)
    store.inner.put(log.key(1), encode_entry(7, "x", {}), CREATE)
    with pytest.raises(LogCorrupt, match="holds sequence 7"):
        log.read(1)


def test_already_exists_is_not_swallowed_outside_the_log(store: ScriptedStore) -> None:
    store.put("k", b"1", CREATE)
    with pytest.raises(AlreadyExists):
        store.put("k", b"2", CREATE)


def test_a_lost_race_reads_what_it_lost_to_and_lands_after_it(store: ScriptedStore) -> None:
    log = make_log(store)
    for _ in range(4):
        other_writer(store)("")
    store.calls.clear()
    result = log.append({"by": "me"}, after=1)
    assert result.sequence == 5
    # The put that lost, entry 1 (for its commit id), entries 2 to 4 and the absent 5, the
    # put that won, and the placement check's listing.
    assert store.calls == Counter({"put": 2, "get": 5, "list": 1})


def test_without_a_validator_an_ambiguous_write_lost_to_another_moves_on_once(store: ScriptedStore) -> None:
    log = make_log(store)
    store.before_put = other_writer(store)
    store.puts = ["ambiguous_before", "lost_before"]
    result = log.append({"by": "me"}, after=0)
    assert result.sequence == 2
    assert [e.payload for e in log.tail()] == [{"by": "other"}, {"by": "me"}]


def test_a_listing_that_missed_an_entry_written_meanwhile_is_taken_again(tmp_path: Path) -> None:
    # S3 listings are not atomic snapshots: an entry created while one runs may be missed
    # while a later one is listed. That is no hole, and the catch-up lists again.
    class Missing(LocalDirStore):
        dropped = 0

        def list(
            self, prefix: str = "", start_after: str = "", limit: int | None = None
        ) -> builtins.list[str]:
            keys = super().list(prefix, start_after, limit)
            if not self.dropped and len(keys) > 2:
                self.dropped += 1
                del keys[1]
            return keys

    store = Missing(tmp_path / "store")
    log = CommitLog(store)
    for n in range(4):
        log.append({"n": n})
    assert [e.payload["n"] for e in log.tail()] == [0, 1, 2, 3]
    assert store.dropped == 1


class Clock:
    """A clock that moves only when the log sleeps: pauses are recorded, not waited out."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def time(self) -> float:
        return self.now


def clocked_log(store: ObjectStore, clock: Clock, **options: float) -> CommitLog:
    return CommitLog(store, "cat", sleep=clock.sleep, clock=clock.time, **options)  # type: ignore[arg-type]


def test_one_lost_race_retries_at_once_and_reads_only_what_it_lost_to(store: ScriptedStore) -> None:
    clock = Clock()
    log = clocked_log(store, clock)
    first = log.append({"n": 0})
    store.before_put = other_writer(store)
    store.puts = ["lost_before"]
    store.calls.clear()
    result = log.append({"by": "me"}, after=1, prev=first.commit_id)
    assert result.sequence == 3
    assert clock.pauses == []
    # PUT 2 (lost), GET 2 and GET 3 (absent: the end), PUT 3, one LIST for the placement.
    assert store.calls == Counter({"put": 2, "get": 2, "list": 1})


def test_a_writer_that_keeps_losing_pauses_with_bounded_growing_jitter(store: ScriptedStore) -> None:
    clock = Clock()
    log = clocked_log(store, clock, backoff=0.01, race_backoff_cap=0.05)
    store.before_put = other_writer(store)
    store.puts = ["lost_before"] * 8
    result = log.append({"by": "me"}, after=0)
    assert result.attempts == 9
    assert len(clock.pauses) == 7  # none after the first loss, one after each later one
    assert all(0.01 <= pause <= 0.05 for pause in clock.pauses)
    assert max(clock.pauses) > 0.01


def test_race_pause_is_decorrelated_jitter_within_base_and_cap() -> None:
    import random

    from metafuse.objectstore.log import race_pause

    rng = random.Random(7)
    previous = 0.0
    seen = []
    for _ in range(200):
        pause = race_pause(previous, 0.01, 0.2, rng)
        assert 0.01 <= pause <= min(0.2, max(0.01, previous * 3))
        seen.append(pause)
        previous = pause
    assert max(seen) > 0.1  # it grows when losing goes on


def test_an_append_that_keeps_losing_gives_up_at_its_deadline_with_nothing_written(
    store: ScriptedStore,
) -> None:
    clock = Clock()
    log = clocked_log(store, clock, backoff=0.5, race_backoff_cap=1.0, max_wait=3.0)
    store.before_put = other_writer(store)
    store.puts = ["lost_before"] * 100
    with pytest.raises(AppendContended) as caught:
        log.append({"by": "me"}, after=0)
    assert caught.value.waited >= 3.0
    assert clock.now <= 3.0 + 1e-9  # no pause runs past the deadline
    assert caught.value.commit_id not in commit_ids(log)
    assert "in 3.0 s" in str(caught.value)


def test_since_costs_one_list_whether_or_not_the_log_moved(store: ScriptedStore) -> None:
    log = make_log(store)
    log.append({"n": 1})
    store.calls.clear()
    assert log.since(1) == []
    assert store.calls == Counter({"list": 1})
    other_writer(store)("")
    store.calls.clear()
    assert [e.sequence for e in log.since(1)] == [2]
    assert store.calls == Counter({"list": 1, "get": 1})
