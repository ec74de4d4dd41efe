"""What a catalog on a store promises when the world misbehaves, on a directory store.

Each test plays one way the world misbehaves (a writer stalled past the retention, a log entry
deleted by hand, a foreign or corrupted snapshot, two transactions in write skew) and checks
that the catalog keeps its promise or fails loudly; the planted faults show that each check is
what stands between the misbehaviour and a silent fork. The S3 suite runs the same over HTTP.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from metafuse import Catalog, Dataset, faults
from metafuse.errors import CatalogError, ConflictError, ForkedHistoryError, StorageError, ValidationError

from ._support import logged, make


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


def url_of(root: Path) -> str:
    return f"log+file://{root}"


def flag(catalog: Catalog, name: str) -> int:
    found = catalog.get(name)
    assert found is not None
    return found.row_count or 0


def set_flag(catalog: Catalog, dataset: Dataset) -> None:
    catalog.save(dataset.replace(row_count=1), expected_version=dataset.version)


def write_skew(first: Catalog, second: Catalog) -> None:
    """Two clients each read both flags and turn on their own only if the other's is off."""
    first.create(make("flag.a", row_count=0))
    first.create(make("flag.b", row_count=0))
    with first.transaction():
        a, b = first.get("flag.a"), first.get("flag.b")
        assert a is not None
        assert b is not None
        assert not b.row_count
        with second.transaction():
            a2, b2 = second.get("flag.a"), second.get("flag.b")
            assert a2 is not None
            assert b2 is not None
            assert not a2.row_count
            set_flag(second, b2)
        set_flag(first, a)


def test_write_skew_on_a_store_is_a_conflict(root: Path) -> None:
    with Catalog.open(url_of(root)) as first, Catalog.open(url_of(root)) as second:
        with pytest.raises(ConflictError) as caught:
            write_skew(first, second)
        assert caught.value.name == "flag.b"
    with Catalog.open(url_of(root)) as reader:
        assert (flag(reader, "flag.a"), flag(reader, "flag.b")) == (0, 1)


def test_without_read_validation_both_transactions_commit(root: Path) -> None:
    with (
        Catalog.open(url_of(root)) as first,
        Catalog.open(url_of(root)) as second,
        faults.enabled("unvalidated_reads"),
    ):
        write_skew(first, second)
    with Catalog.open(url_of(root)) as reader:
        assert (flag(reader, "flag.a"), flag(reader, "flag.b")) == (1, 1)  # the anomaly


def test_a_transaction_that_listed_conflicts_with_any_new_dataset(root: Path) -> None:
    with Catalog.open(url_of(root)) as first, Catalog.open(url_of(root)) as second:
        first.create(make("list.a"))

        def summarise() -> None:
            with first.transaction():
                names = [d.name for d in first.list()]
                second.create(make("list.b"))
                first.create(make("list.summary", description=",".join(names)))

        with pytest.raises(ConflictError) as caught:
            summarise()
        assert caught.value.name == "list.b"
        assert first.get("list.summary") is None


def test_reads_outside_a_transaction_do_not_make_writes_conflict(root: Path) -> None:
    with Catalog.open(url_of(root)) as first, Catalog.open(url_of(root)) as second:
        first.create(make("free.a"))
        first.create(make("free.b"))
        assert first.get("free.b") is not None
        b = second.get("free.b")
        assert b is not None
        second.save(b.replace(row_count=3), expected_version=b.version)
        a = first.get("free.a")
        assert a is not None
        first.save(a.replace(row_count=2), expected_version=a.version)


def stall_past_retention(stalled: Catalog, other: Catalog) -> None:
    """A writer reads, stalls while another commits and the retention deletes what it read after."""
    stalled.create(make("stall.d0"))
    with stalled.transaction():
        current = stalled.get("stall.d0")
        assert current is not None
        for i in range(6):
            other.create(make(f"stall.x{i}"))  # snapshots 2, 4, 6; entries before 6 deleted
        stalled.save(current.replace(row_count=5), expected_version=current.version)


def stalled_and_other(root: Path) -> tuple[Catalog, Catalog]:
    """The stalled writer's catalog (it creates the zero-retention catalog) and another's."""
    stalled = Catalog.open(url_of(root), retention=0, snapshot_every=2)
    return stalled, Catalog.open(url_of(root), snapshot_every=2)


def test_a_writer_stalled_past_the_retention_is_refused_and_nobody_forks(root: Path) -> None:
    stalled, other = stalled_and_other(root)
    with stalled, other, pytest.raises(ForkedHistoryError, match="fell behind the retention"):
        stall_past_retention(stalled, other)
    with Catalog.open(url_of(root)) as fresh:
        assert fresh.count == 7
        assert flag(fresh, "stall.d0") == 0
        fresh.create(make("stall.after"))
    assert sorted(p.name for p in (root / "log").glob("*.json"))[0] == f"{6:020d}.json"


def test_without_the_placement_check_a_stalled_writer_loses_an_acknowledged_write(root: Path) -> None:
    stalled, other = stalled_and_other(root)
    with stalled, other, Catalog.open(url_of(root)) as fresh:
        with faults.enabled("unchecked_log"):
            stall_past_retention(stalled, other)  # the save was acknowledged ...
        assert flag(fresh, "stall.d0") == 0  # ... at a deleted number nobody else reads
        assert flag(other, "stall.d0") == 0


def test_a_deleted_log_entry_is_met_loudly_and_never_filled(root: Path) -> None:
    with Catalog.open(url_of(root)) as writer, Catalog.open(url_of(root)) as reader:
        writer.create(make("hole.d0"))
        assert reader.get("hole.d0") is not None
        writer.create(make("hole.d1"))
        writer.create(make("hole.d2"))
        (root / "log" / f"{2:020d}.json").unlink()  # an operator, a lifecycle rule
        # The catalog keeps a day (the default retention): a gap may be the retention at work,
        # so the reader starts again from a snapshot, and none covers the missing entry.
        with pytest.raises(StorageError, match="gone and no newer snapshot holds them"):
            reader.get("hole.d2")
        with pytest.raises(StorageError, match="gone and no newer snapshot holds them"):
            reader.create(make("hole.d3"))
    assert not (root / "log" / f"{2:020d}.json").exists()


def test_a_foreign_object_among_the_snapshots_is_ignored(root: Path) -> None:
    with Catalog.open(url_of(root), retention=0, snapshot_every=2) as writer:
        writer.create(make("foreign.d0"))
        writer.create(make("foreign.d1"))
        (root / "snapshots" / "backup.db").write_bytes(b"a copy someone kept")
        writer.create(make("foreign.d2"))
        writer.create(make("foreign.d3"))  # snapshot 4, and a retention pass
    assert sorted(p.name for p in (root / "snapshots").iterdir()) == ["00000000000000000004.db", "backup.db"]
    with Catalog.open(url_of(root)) as fresh:
        assert fresh.count == 4


def test_a_corrupted_snapshot_falls_back_to_an_older_one_or_the_log(root: Path) -> None:
    with Catalog.open(url_of(root), snapshot_every=2) as writer:
        for i in range(4):
            writer.create(make(f"bad.d{i}"))
    newest = root / "snapshots" / f"{4:020d}.db"
    newest.write_bytes(b"\0" * 4096)
    with logged("metafuse.logcommits") as records, Catalog.open(url_of(root)) as fresh:
        assert fresh.count == 4
        assert fresh._commits is not None
        assert fresh._commits.bootstrapped_from == 2
    assert any(f"snapshots/{4:020d}.db passed over" in record.getMessage() for record in records)
    (root / "snapshots" / f"{2:020d}.db").write_bytes(b"SQLite format 3\0 but not really")
    with Catalog.open(url_of(root)) as fresh:
        assert fresh.count == 4
        assert fresh._commits is not None
        assert fresh._commits.bootstrapped_from == 0


def test_settle_belongs_to_a_store_and_to_its_own_errors(root: Path, tmp_path: Path) -> None:
    from metafuse.errors import CommitUnknownError

    error = CommitUnknownError("elsewhere", "may have landed", None)
    with Catalog(tmp_path / "file.db") as local, pytest.raises(ValidationError, match="object store"):
        local.settle(error)
    with Catalog.open(url_of(root)) as store, pytest.raises(ValidationError, match="CommitUnknownError"):
        store.settle(error)


def test_settle_seconds_is_checked_and_store_only(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="settle_seconds"):
        Catalog.open(url_of(root), settle_seconds=-1)
    with pytest.raises(ValidationError, match="object store"):
        Catalog.open(str(tmp_path / "file.db"), settle_seconds=5)
    assert issubclass(ValidationError, CatalogError)


def test_clients_at_the_same_point_of_the_log_agree_on_the_version(root: Path) -> None:
    with Catalog.open(url_of(root), snapshot_every=3) as writer:
        for i in range(4):
            writer.create(make(f"version.d{i}"))
        updated = writer.update("version.d0", lambda d: d.replace(row_count=1))
        assert updated.version == 2
        with Catalog.open(url_of(root)) as fresh:  # starts from snapshot 3, replays 4 and 5
            assert fresh._commits is not None
            assert fresh._commits.bootstrapped_from == 3
            assert fresh.version == writer.version == 5


def test_a_retention_that_is_not_a_number_is_refused(root: Path) -> None:
    with Catalog.open(url_of(root)):
        pass
    (root / "catalog.json").write_text('{"format": "metafuse-log/1", "retention_seconds": NaN}\n')
    with pytest.raises(CatalogError, match="invalid retention_seconds: nan"):
        Catalog.open(url_of(root))
