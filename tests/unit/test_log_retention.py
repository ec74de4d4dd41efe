"""Retention on a catalog in an object store: what goes, what stays, and who notices.

A directory store (`log+file://`) on every Python; the S3 suite runs the same code over HTTP.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from metafuse import Catalog
from metafuse._logcommits import LogCommits
from metafuse.errors import CatalogFileError, ConflictError, StorageError, ValidationError
from metafuse.objectstore import (
    CREATE,
    CommitLog,
    GetResult,
    LocalDirStore,
    LogCorrupt,
    LogForked,
    LogTruncated,
    ObjectMeta,
    PutMode,
    open_store,
)

from ._support import logged, make

DAY = 86400.0


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


def url_of(root: Path) -> str:
    return f"log+file://{root}"


def entries(root: Path) -> list[int]:
    return sorted(int(p.name[:-5]) for p in (root / "log").glob("*.json"))


def snapshots(root: Path) -> list[int]:
    return sorted(int(p.name[:-3]) for p in (root / "snapshots").glob("*.db"))


class CountingStore(LocalDirStore):
    """A directory store that counts HEAD and LIST requests (a real store, only observed)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.heads = self.lists = 0

    def head(self, key: str) -> ObjectMeta:
        self.heads += 1
        return super().head(key)

    def list(self, prefix: str = "", start_after: str = "", limit: int | None = None) -> list[str]:
        self.lists += 1
        return super().list(prefix, start_after, limit)

    def list_meta(
        self, prefix: str = "", start_after: str = "", limit: int | None = None
    ) -> list[ObjectMeta]:
        self.lists += 1
        return super().list_meta(prefix, start_after, limit)


def append_n(log: CommitLog, n: int) -> None:
    for i in range(n):
        log.append({"i": i})


# -- the log ---------------------------------------------------------------------------------


def test_truncate_deletes_a_prefix_and_leaves_a_marker(root: Path) -> None:
    log = CommitLog(LocalDirStore(root), retention=0)
    append_n(log, 6)
    assert log.truncate(below=4) == 3
    assert entries(root) == [4, 5, 6]
    assert (root / "truncated.json").exists()
    assert log.truncate(below=4) == 0  # nothing left to do: idempotent


def test_a_log_without_retention_refuses_to_truncate(root: Path) -> None:
    log = CommitLog(LocalDirStore(root))
    append_n(log, 2)
    with pytest.raises(ValueError, match="no retention"):
        log.truncate(below=2)
    assert entries(root) == [1, 2]


def test_a_reader_whose_entries_were_deleted_is_told_not_misled(root: Path) -> None:
    store = LocalDirStore(root)
    writer, behind = CommitLog(store, retention=0), CommitLog(store, retention=0)
    append_n(writer, 3)
    assert behind.latest(hint=0) == 3
    append_n(writer, 3)
    writer.truncate(below=6)
    # Entry 4 is gone: without the second request, "4 absent" would read as "3 is the end",
    # and a writer would create entry 4 again, forking the history.
    with pytest.raises(LogTruncated) as caught:
        behind.latest(hint=3)
    assert caught.value.sequence == 3
    with pytest.raises(LogTruncated):
        behind.tail(after=3)
    with pytest.raises(LogTruncated):
        behind.latest(hint=0)  # entry 1 absent and the log truncated once: not an empty log
    with pytest.raises(LogTruncated):
        behind.latest(hint=5)  # entry 6 is there, but 5 is not: start again from a snapshot
    assert behind.latest(hint=6) == 6
    assert [e.sequence for e in behind.tail(after=6)] == []


def test_an_empty_log_is_still_empty_with_retention(root: Path) -> None:
    log = CommitLog(LocalDirStore(root), retention=DAY)
    assert log.latest(hint=0) == 0
    assert log.tail(after=0) == []


def test_an_up_to_date_read_is_one_request_with_or_without_retention(root: Path) -> None:
    store = CountingStore(root)
    append_n(CommitLog(store), 2)
    for retention in (None, 0.0, DAY):
        log = CommitLog(store, retention=retention)
        store.heads = store.lists = 0
        for _ in range(3):
            assert not log.moved(2)
            assert log.latest(hint=2) == 2
        assert (store.heads, store.lists) == (0, 6)


def test_a_writer_stalled_past_the_retention_is_not_acknowledged(root: Path) -> None:
    store = LocalDirStore(root)
    stalled, other = CommitLog(store, retention=0), CommitLog(store, retention=0)
    append_n(other, 3)
    position = stalled.tail()[-1]  # applied up to entry 3, then stalls
    append_n(other, 4)  # entries 4 to 7
    other.truncate(below=6)  # a snapshot at 6 is old enough: entries 1 to 5 go
    with pytest.raises(LogForked, match="fell behind the retention"):
        stalled.append({"i": "late"}, after=position.sequence, prev=position.commit_id)
    assert entries(root) == [6, 7]  # its entry 4 was removed again
    assert [e.payload for e in other.tail(after=6)] == [{"i": 3}]


def test_a_writer_that_fills_a_deleted_entry_is_not_acknowledged(root: Path) -> None:
    store = LocalDirStore(root)
    log = CommitLog(store)
    append_n(log, 5)
    third = log.read(3)
    (root / "log" / f"{4:020d}.json").unlink()  # an operator or a lifecycle rule
    with pytest.raises(LogCorrupt, match="hole"):
        log.moved(3)
    with pytest.raises(LogForked, match="follows another commit"):
        log.append({"i": "hole"}, after=3, prev=third.commit_id)
    assert entries(root) == [1, 2, 3, 5]


def test_a_catch_up_refuses_an_entry_that_follows_another_history(root: Path) -> None:
    store = LocalDirStore(root)
    log = CommitLog(store)
    append_n(log, 3)
    with pytest.raises(LogForked, match="two histories"):
        log.tail(after=1, prev="not-the-commit-this-client-applied")
    assert [e.sequence for e in log.tail(after=1, prev=log.read(1).commit_id)] == [2, 3]


# -- the catalog -----------------------------------------------------------------------------


def test_a_new_catalog_records_its_retention_and_it_cannot_change(root: Path) -> None:
    with Catalog.open(url_of(root)):
        pass
    assert (root / "catalog.json").read_text() == '{"format": "metafuse-log/1", "retention_seconds": 86400}\n'
    with Catalog.open(url_of(root), retention=DAY) as again:
        assert again.stats().retention_seconds == DAY
        assert repr(again) == f"Catalog.open({url_of(root)!r})"
    with pytest.raises(ValidationError, match=r"retention.*fixed when the catalog is created.*86400"):
        Catalog.open(url_of(root), retention=60)
    with pytest.raises(ValidationError, match="retention"):
        Catalog.open(url_of(root / "other"), retention=-1)
    assert not (root / "other").exists()
    with pytest.raises(ValidationError, match="applies only to a catalog on an object store"):
        Catalog.open(str(root / "local.db"), retention=60)
    with Catalog.open(url_of(root / "hour"), retention=3600.0):
        pass
    assert json.loads((root / "hour" / "catalog.json").read_text())["retention_seconds"] == 3600
    (root / "hour" / "catalog.json").write_text("garbage")
    with pytest.raises(CatalogFileError, match=r"is not a MetaFuse catalog \(catalog.json is not JSON\)"):
        Catalog.open(url_of(root / "hour"))


def test_expire_keeps_the_newest_old_snapshot_and_everything_after_it(root: Path) -> None:
    with Catalog.open(url_of(root), retention=3600, snapshot_every=5) as catalog:
        for i in range(12):
            catalog.create(make(f"ret.d{i}"))
        assert snapshots(root) == [5, 10]
        assert entries(root) == list(range(1, 13))  # nothing is an hour old yet
        commits = catalog._commits
        assert commits is not None
        assert commits.expire() == (0, 0)
        later = time.time() + 3600
        assert commits.expire(now=later) == (1, 9)
        assert snapshots(root) == [10]
        assert entries(root) == [10, 11, 12]
    with Catalog.open(url_of(root)) as fresh:
        assert sorted(d.name for d in fresh.list()) == sorted(f"ret.d{i}" for i in range(12))


def test_a_catalog_made_without_retention_deletes_nothing(root: Path) -> None:
    store = open_store(f"file://{root}")
    store.put("catalog.json", b'{"format": "metafuse-log/1"}\n', CREATE)
    with Catalog.open(url_of(root), snapshot_every=2) as catalog:
        assert catalog.stats().retention_seconds is None
        for i in range(5):
            catalog.create(make(f"old.d{i}"))
        assert catalog._commits is not None
        assert catalog._commits.expire(now=time.time() + 10 * DAY) == (0, 0)
    assert entries(root) == [1, 2, 3, 4, 5]
    assert snapshots(root) == [2, 4]


def test_a_replica_behind_the_retention_restarts_from_a_snapshot(root: Path) -> None:
    url = url_of(root)
    with Catalog.open(url, retention=0, snapshot_every=4) as writer, Catalog.open(url) as behind:
        writer.create(make("ret.kept", description="v1"))
        writer.create(make("ret.dropped"))
        assert behind.get("ret.kept").description == "v1"  # type: ignore[union-attr]
        assert behind.get("ret.dropped") is not None  # both cached now
        writer.save(make("ret.kept", description="v2"), expected_version=1)
        writer.delete("ret.dropped", expected_version=1)  # entry 4: a snapshot, then every entry below 4 goes
        for i in range(5):
            writer.create(make(f"ret.n{i}"))  # entries 5 to 9; snapshot 8 removes entries below 8
        assert entries(root) == [8, 9]
        # The replica stopped at entry 2; entry 3 is gone. It must not read "2 is the end".
        assert behind.get("ret.kept").description == "v2"  # type: ignore[union-attr]
        assert behind.get("ret.dropped") is None
        assert sorted(d.name for d in behind.list()) == sorted(d.name for d in writer.list())
        with pytest.raises(ConflictError):
            behind.save(make("ret.kept", description="stale"), expected_version=1)
        behind.create(make("ret.from_behind"))
        assert entries(root) == [8, 9, 10]  # appended at the end, not in the deleted range
        assert writer.get("ret.from_behind") is not None


def leave_behind(writer: Catalog, behind: Catalog, prefix: str, more: int) -> None:
    """Create `<prefix>.a`, read it through `behind` (its replica then stops at that entry), and
    make `more` commits through `writer` without `behind` looking."""
    writer.create(make(f"{prefix}.a"))
    assert behind.get(f"{prefix}.a") is not None
    for i in range(more):
        writer.create(make(f"{prefix}.w{i}"))


def test_a_restart_from_a_snapshot_at_the_end_of_the_log(root: Path) -> None:
    url = url_of(root)
    with Catalog.open(url, retention=0, snapshot_every=3) as writer, Catalog.open(url) as behind:
        leave_behind(writer, behind, "end", 5)  # entries 2 to 6; snapshot 6 removes entries below 6
        assert entries(root) == [6]
        assert snapshots(root) == [6]
        # The newest snapshot is the log's last entry: nothing to apply after the restart.
        assert sorted(d.name for d in behind.list()) == sorted(d.name for d in writer.list())
        assert behind._commits is not None
        behind.create(make("end.after"))
        assert entries(root) == [6, 7]


def test_a_writer_behind_the_retention_does_not_fork_the_log(root: Path) -> None:
    url = url_of(root)
    with Catalog.open(url, retention=0, snapshot_every=3) as writer, Catalog.open(url) as behind:
        leave_behind(writer, behind, "fork", 6)  # entries 2 to 7; snapshot 6 removes entries below 6
        assert entries(root) == [6, 7]
        behind.update("fork.a", lambda d: d.replace(description="from behind"))
        assert entries(root) == [6, 7, 8]
        log = CommitLog(open_store(f"file://{root}"))
        assert [c["name"] for c in log.read(8).payload["changes"]] == ["fork.a"]
        assert writer.get("fork.a").description == "from behind"  # type: ignore[union-attr]


def test_readers_behind_the_retention_never_see_a_stale_or_missing_dataset(root: Path) -> None:
    url = url_of(root)
    stop = threading.Event()
    errors: list[str] = []
    with Catalog.open(url, retention=0, snapshot_every=3) as writer:
        writer.create(make("race.counter", row_count=0))

        def read(catalog: Catalog) -> None:
            seen = 0
            while not stop.is_set():
                dataset = catalog.get("race.counter")
                if dataset is None or (dataset.row_count or 0) < seen:
                    errors.append(f"read {dataset} after row_count {seen}")
                    return
                seen = dataset.row_count or 0

        with Catalog.open(url) as reader:
            thread = threading.Thread(target=read, args=(reader,))
            thread.start()
            try:
                for i in range(1, 40):
                    writer.update("race.counter", lambda d: d.replace(row_count=(d.row_count or 0) + 1))
                    assert reader.get("race.counter").row_count == i  # type: ignore[union-attr]
            finally:
                stop.set()
                thread.join()
    assert errors == []


def test_a_snapshot_that_vanishes_mid_bootstrap_is_listed_again(root: Path) -> None:
    with Catalog.open(url_of(root), retention=0, snapshot_every=2) as writer:
        for i in range(4):
            writer.create(make(f"boot.d{i}"))
    assert snapshots(root) == [4]  # snapshot 2 was removed once snapshot 4 existed
    store = open_store(f"file://{root}")
    listings: list[list[str]] = []
    real_list = store.list

    def stale_then_real(prefix: str = "", start_after: str = "") -> list[str]:
        keys = real_list(prefix, start_after)
        if prefix == "snapshots/" and not listings:
            keys = [f"snapshots/{2:020d}.db"]  # what a listing made before the removal said
        listings.append(keys)
        return keys

    store.list = stale_then_real  # type: ignore[method-assign]
    commits = LogCommits(
        url_of(root), store, replica_dir=str(root.parent), max_staleness=None, snapshot_every=2
    )
    found = commits.snapshots.download_newest(str(root.parent / "boot.db"))
    assert found is not None
    assert found[0] == 4
    assert len(listings) == 2


def test_a_failed_expire_does_not_fail_the_write(root: Path) -> None:
    with (
        logged("metafuse.logcommits") as records,
        Catalog.open(url_of(root), retention=0, snapshot_every=2) as catalog,
    ):
        commits = catalog._commits
        assert commits is not None

        def refuse(key: str) -> None:
            raise StorageError(key, "delete refused")

        commits.store.delete = refuse  # type: ignore[method-assign]
        for i in range(4):
            catalog.create(make(f"fail.d{i}"))
        assert catalog.get("fail.d3") is not None
    assert any("retention pass after entry" in r.getMessage() for r in records)
    assert entries(root) == [1, 2, 3, 4]


class ConcurrencyCountingStore(LocalDirStore):
    """A directory store that records how many GETs were in flight at once (a real store, observed).

    Until two GETs have overlapped, each waits (up to 10 s) for a second to start, so a reader
    that does overlap its GETs shows it however the threads are scheduled.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.in_flight = 0
        self.most = 0
        self._count = threading.Lock()
        self.overlapped = threading.Event()

    def get(self, key: str) -> GetResult:
        with self._count:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            if self.in_flight >= 2:
                self.overlapped.set()
        try:
            self.overlapped.wait(10)
            return super().get(key)
        finally:
            with self._count:
                self.in_flight -= 1


def test_a_catch_up_reads_entries_several_at_a_time_and_keeps_their_order(root: Path) -> None:
    append_n(CommitLog(LocalDirStore(root)), 20)
    store = ConcurrencyCountingStore(root)
    log = CommitLog(store, read_workers=4)
    assert [entry.payload["i"] for entry in log.tail(after=3)] == list(range(3, 20))
    assert 2 <= store.most <= 4
    one = ConcurrencyCountingStore(root)
    one.overlapped.set()  # nothing to wait for: one worker reads one entry at a time
    assert [entry.sequence for entry in CommitLog(one, read_workers=1).tail()] == list(range(1, 21))
    assert one.most == 1


def test_an_entry_gone_mid_catch_up_is_truncation_or_corruption(root: Path) -> None:
    append_n(CommitLog(LocalDirStore(root)), 6)
    store = LocalDirStore(root)
    real_list = store.list

    def listing_then_delete(prefix: str = "", start_after: str = "", limit: int | None = None) -> list[str]:
        keys = real_list(prefix, start_after, limit)
        if limit is None:  # the catch-up's listing, not the probe's
            (root / "log" / f"{doomed[0]:020d}.json").unlink()  # gone between the LIST and its GET
        return keys

    store.list = listing_then_delete  # type: ignore[method-assign]
    doomed = [6]
    with pytest.raises(LogCorrupt, match="vanished"):
        CommitLog(store).tail(after=2)  # a log that is never truncated: deleted by hand
    doomed[0] = 5
    with pytest.raises(LogTruncated):
        CommitLog(store, retention=0).tail(after=2)  # the retention may be deleting: a snapshot


def test_a_retention_pass_takes_every_snapshots_time_from_one_listing(root: Path) -> None:
    with Catalog.open(url_of(root), snapshot_every=1) as writer:
        for i in range(6):
            writer.create(make(f"cost.d{i}"))
    assert len(snapshots(root)) == 6  # a day's retention: all kept
    store = CountingStore(root)
    commits = LogCommits(
        url_of(root), store, replica_dir=str(root.parent), max_staleness=None, snapshot_every=1
    )
    commits.log.retention = DAY
    assert commits.expire() == (0, 0)
    assert store.heads == 0
    assert store.lists == 1
    assert commits.expire(now=time.time() + 2 * DAY) == (5, 5)
    assert snapshots(root) == [6]


class AfterPut(LocalDirStore):
    """A directory store that runs `after_put` once, right after the next log entry's PUT lands."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.after_put: Callable[[], None] | None = None

    def put(self, key: str, data: bytes, mode: PutMode) -> str:
        tag = super().put(key, data, mode)
        hook, self.after_put = (self.after_put, None) if key.startswith("log/") else (None, None)
        if hook is not None:
            hook()
        return tag


def test_a_commit_whose_predecessor_the_retention_deletes_after_it_landed_is_acknowledged(root: Path) -> None:
    # The writer's entry 4 lands; before it checks where, another client builds on it and the
    # retention deletes what came before. The entry is in the history: never refused, never removed.
    other = CommitLog(LocalDirStore(root), retention=0)
    append_n(other, 3)
    store = AfterPut(root)
    writer = CommitLog(store, retention=0)
    third = writer.read(3)

    def others_move_on() -> None:
        other.append({"i": "after"}, after=4, prev=other.read(4).commit_id)
        other.truncate(below=4)

    store.after_put = others_move_on
    result = writer.append({"i": "mine"}, after=3, prev=third.commit_id)
    assert result.sequence == 4
    assert entries(root) == [4, 5]
    assert other.read(4).commit_id == result.commit_id


def test_the_newest_entry_is_acknowledged_even_when_all_before_it_are_deleted(root: Path) -> None:
    other = CommitLog(LocalDirStore(root), retention=0)
    append_n(other, 3)
    store = AfterPut(root)
    writer = CommitLog(store, retention=0)
    store.after_put = lambda: other.truncate(below=4)
    result = writer.append({"i": "mine"}, after=3, prev=writer.read(3).commit_id)
    assert result.sequence == 4
    assert entries(root) == [4]


def test_two_writers_stalled_at_one_entry_cannot_vouch_for_each_other(root: Path) -> None:
    # Both applied entry 3, then stalled past the retention. The first refills the deleted
    # entry 4; the second loses 4 to it, finds 5 absent (deleted too) and refills 5 naming it.
    # Checked before the second's entry is removed, the first finds entry 5 naming it: 5 must
    # not count as the history, since 6, written before either, names another entry 5.
    other = CommitLog(LocalDirStore(root), retention=0)
    append_n(other, 3)
    first_store, second_store = AfterPut(root), AfterPut(root)
    first, second = CommitLog(first_store, retention=0), CommitLog(second_store, retention=0)
    third = first.read(3)
    append_n(other, 4)  # entries 4 to 7
    other.truncate(below=6)  # a snapshot at 6 is old enough: entries 1 to 5 go
    second_landed, first_checked = threading.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    def second_appends() -> None:
        try:
            outcomes["second"] = second.append({"i": "second"}, after=3, prev=third.commit_id).sequence
        except LogForked as refused:
            outcomes["second"] = refused

    def second_waits_for_the_first_check() -> None:
        second_landed.set()
        first_checked.wait()

    def first_lets_the_second_land() -> None:
        second_thread.start()
        assert second_landed.wait(timeout=60), "the second writer never refilled entry 5"
        outcomes["named"] = other.read(5).prev == other.read(4).commit_id  # the second's, naming ours

    second_thread = threading.Thread(target=second_appends, name="second-writer")
    second_store.after_put = second_waits_for_the_first_check
    first_store.after_put = first_lets_the_second_land
    try:
        with pytest.raises(LogForked, match="fell behind the retention"):
            first.append({"i": "first"}, after=3, prev=third.commit_id)
    finally:
        first_checked.set()
        if second_thread.ident is not None:
            second_thread.join()
    assert outcomes["named"] is True
    assert isinstance(outcomes["second"], LogForked)
    assert entries(root) == [6, 7]  # both refills removed again
    assert [other.read(n).payload for n in (6, 7)] == [{"i": 2}, {"i": 3}]  # untouched


def test_a_snapshot_named_past_the_logs_end_never_makes_the_retention_delete_the_log(root: Path) -> None:
    with Catalog.open(url_of(root), retention=0, snapshot_every=2) as writer:
        writer.create(make("bogus.d0"))
        writer.create(make("bogus.d1"))
        (root / "snapshots" / f"{100:020d}.db").write_bytes(b"not a snapshot at all")
        writer.create(make("bogus.d2"))
        writer.create(make("bogus.d3"))  # snapshot 4, and a retention pass
    assert entries(root) == [4]
    assert f"{4:020d}.db" in [p.name for p in (root / "snapshots").iterdir()]
    with Catalog.open(url_of(root)) as fresh:
        assert fresh.count == 4


def test_an_unsound_object_at_a_snapshots_name_is_replaced_by_the_snapshot(root: Path) -> None:
    with Catalog.open(url_of(root), retention=0, snapshot_every=2) as writer:
        writer.create(make("taken.d0"))
        writer.create(make("taken.d1"))
        (root / "snapshots" / f"{4:020d}.db").write_bytes(b"squatting on the next snapshot's name")
        writer.create(make("taken.d2"))
        writer.create(make("taken.d3"))  # snapshot 4 meets the squatter, replaces it
    with Catalog.open(url_of(root)) as fresh:
        assert fresh.count == 4
        assert fresh._commits is not None
        assert fresh._commits.bootstrapped_from == 4


def test_a_log_removed_whole_is_an_error_for_a_new_client_not_an_empty_catalog(root: Path) -> None:
    with Catalog.open(url_of(root), retention=0, snapshot_every=2) as writer:
        for i in range(4):
            writer.create(make(f"wiped.d{i}"))
    assert (root / "truncated.json").exists()
    for folder in ("log", "snapshots"):
        for item in (root / folder).iterdir():
            item.unlink()
    with pytest.raises(StorageError, match="gone"), Catalog.open(url_of(root)) as fresh:
        fresh.count  # noqa: B018 - the read is the test


def test_a_snapshot_of_another_history_is_passed_over(root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    for where, prefix in ((root, "real"), (elsewhere, "other")):
        with Catalog.open(url_of(where), snapshot_every=2) as writer:
            for i in range(4):
                writer.create(make(f"{prefix}.d{i}"))
    # A backup of another catalog restored over this one's newest snapshot: same position,
    # sound, but another history.
    (root / "snapshots" / f"{4:020d}.db").write_bytes((elsewhere / "snapshots" / f"{4:020d}.db").read_bytes())
    with Catalog.open(url_of(root)) as fresh:
        assert fresh.get("real.d3") is not None
        assert fresh.get("other.d0") is None
        assert fresh._commits is not None
        assert fresh._commits.bootstrapped_from == 2
