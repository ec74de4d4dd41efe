"""`Catalog.open(url)`: the same catalog API on an object store, once on a directory and once on S3.

Each `Catalog.open` keeps its own replica and talks to the others only through the store, as
separate machines would; two of them in one test stand for two machines.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from metafuse import Catalog, Dataset, Field
from metafuse.errors import CatalogFileError, ConflictError, NotFoundError, ValidationError
from metafuse.objectstore import CommitLog, open_store

from ._support import S3Location


@pytest.fixture(params=["dir", "s3"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh catalog URL: `log+file://` on a directory, and `s3://` (moto or METAFUSE_S3_TEST_URL)."""
    if request.param == "dir":
        return f"log+file://{tmp_path / 'store'}"
    location: S3Location = request.getfixturevalue("s3_location")
    return location.url()


@pytest.fixture
def machines(url: str) -> Iterator[tuple[Catalog, Catalog]]:
    """Two clients of one catalog, each with its own replica."""
    first = Catalog.open(url)
    second = Catalog.open(url)
    yield first, second
    first.close()
    second.close()


def _dataset(name: str, **changes: object) -> Dataset:
    return Dataset(name=name, uri=f"s3://data/{name}", fields=[Field("id", "int64")]).replace(**changes)


def _store_of(url: str) -> str:
    return url[len("log+") :] if url.startswith("log+") else url


def _log_entries(url: str) -> list[dict[str, object]]:
    with open_store(_store_of(url)) as store:
        return [entry.payload for entry in CommitLog(store).tail()]


def _bump(dataset: Dataset) -> Dataset:
    return dataset.replace(row_count=(dataset.row_count or 0) + 1)


def test_a_write_on_one_machine_is_read_on_the_other_at_once(machines: tuple[Catalog, Catalog]) -> None:
    a, b = machines
    created = a.create(_dataset("sales.orders", description="first"))
    assert b.get("sales.orders") == created  # b now caches version 1
    saved = a.save(created.replace(description="second"), expected_version=1)
    assert saved.version == 2
    assert b.get("sales.orders") == saved  # linearizable: never the cached version 1
    assert [d.name for d in b.search("second")] == ["sales.orders"]
    assert [d.name for d in b.list()] == ["sales.orders"]


def test_a_stale_expected_version_is_a_conflict_across_machines(machines: tuple[Catalog, Catalog]) -> None:
    a, b = machines
    a.create(_dataset("sales.orders"))
    b.save(_dataset("sales.orders", description="b"), expected_version=1)
    with pytest.raises(ConflictError) as caught:
        a.save(_dataset("sales.orders", description="a"), expected_version=1)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    with pytest.raises(ConflictError):
        b.create(_dataset("sales.orders"))
    assert a.get("sales.orders").description == "b"  # type: ignore[union-attr]


def test_racing_writes_to_different_datasets_all_succeed(machines: tuple[Catalog, Catalog], url: str) -> None:
    a, b = machines
    names = [f"team.set_{i}" for i in range(10)]
    for name in names:
        a.create(_dataset(name))
    errors: list[BaseException] = []

    def write(catalog: Catalog, mine: list[str]) -> None:
        try:
            for round_ in range(5):
                for name in mine:
                    catalog.save(_dataset(name, row_count=round_), expected_version=round_ + 1)
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=write, args=(a, names[:5])),
        threading.Thread(target=write, args=(b, names[5:])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []  # a lost log number is not a conflict unless the winner touched the dataset
    assert {d.name: d.version for d in b.list(limit=100)} == dict.fromkeys(names, 6)
    assert len(_log_entries(url)) == 10 + 50


def test_concurrent_updates_of_one_dataset_lose_nothing(machines: tuple[Catalog, Catalog]) -> None:
    a, b = machines
    a.create(_dataset("shared.counter", row_count=0))

    errors: list[BaseException] = []

    def bump(catalog: Catalog) -> None:
        try:
            for _ in range(15):
                catalog.update("shared.counter", _bump, max_attempts=3, backoff=0.0)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=bump, args=(c,)) for c in (a, b, a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = b.get("shared.counter")
    assert final is not None
    assert final.row_count == 60
    assert final.version == 61


def test_a_one_field_change_moves_bytes_of_the_change_not_of_the_catalog(url: str) -> None:
    with Catalog.open(url) as catalog:
        catalog.create_many(
            _dataset(f"big.set_{i}", fields=[Field(f"c{j}", "string") for j in range(20)]) for i in range(300)
        )
        catalog.update("big.set_7", lambda d: d.replace(description="one field"))
    entries = _log_entries(url)
    last = json.dumps(entries[-1])
    assert len(entries) == 2
    assert '"big.set_7"' in last
    assert "big.set_8" not in last
    assert len(last.encode()) < 10_000


def test_deletes_replicate(machines: tuple[Catalog, Catalog]) -> None:
    a, b = machines
    a.create(_dataset("tmp.scratch", upstream=["raw.events"]))
    assert [e.upstream for e in b.lineage("tmp.scratch")] == ["raw.events"]
    b.delete("tmp.scratch", expected_version=1)
    assert a.get("tmp.scratch") is None
    with pytest.raises(NotFoundError):
        a.delete("tmp.scratch", expected_version=1)
    assert a.count == b.count == 0


def test_a_failed_transaction_appends_nothing(machines: tuple[Catalog, Catalog], url: str) -> None:
    a, b = machines
    a.create(_dataset("x.one"))

    def block() -> None:
        with a.transaction():
            a.create(_dataset("x.two"))
            a.create(_dataset("x.one"))  # exists: the whole block rolls back

    with pytest.raises(ConflictError):
        block()
    assert b.get("x.two") is None
    assert len(_log_entries(url)) == 1


def test_new_clients_start_from_the_newest_snapshot(url: str) -> None:
    with Catalog.open(url, snapshot_every=5) as writer:
        writer.create(_dataset("snap.a", row_count=0))
        for _ in range(11):
            writer.update("snap.a", _bump)
    with open_store(_store_of(url)) as store:
        snapshots = list(store.list("snapshots/"))
    assert snapshots == [f"snapshots/{n:020d}.db" for n in (5, 10)]
    with Catalog.open(url) as reader:
        assert reader._commits is not None
        assert reader._commits.bootstrapped_from == 10
        assert reader.get("snap.a").row_count == 11  # type: ignore[union-attr]
        assert reader.integrity_check() == ["ok"]


def test_retention_removes_what_an_old_snapshot_covers_by_the_stores_clock(url: str) -> None:
    with Catalog.open(url, retention=0, snapshot_every=4) as writer, Catalog.open(url) as behind:
        writer.create(_dataset("keep.a", row_count=0))
        assert behind.get("keep.a").row_count == 0  # type: ignore[union-attr]
        for _ in range(8):
            writer.update("keep.a", _bump)  # entries 2 to 9: snapshots 4 and 8
        with open_store(_store_of(url)) as store:
            assert store.list("snapshots/") == [f"snapshots/{8:020d}.db"]
            assert store.list("log/") == [f"log/{n:020d}.json" for n in (8, 9)]
            age = time.time() - store.head(f"snapshots/{8:020d}.db").modified
            assert -60 < age < 60  # the store's clock, as S3 Last-Modified reports it
        assert behind.get("keep.a").row_count == 8  # type: ignore[union-attr]  # restarted from snapshot 8
        behind.update("keep.a", _bump)
        assert writer.get("keep.a").row_count == 9  # type: ignore[union-attr]
        assert [p["changes"][0]["dataset"]["row_count"] for p in _log_entries_after(url, 9)] == [9]  # type: ignore[index]


def _log_entries_after(url: str, after: int) -> list[dict[str, object]]:
    with open_store(_store_of(url)) as store:
        return [entry.payload for entry in CommitLog(store, retention=0).tail(after)]


def test_max_staleness_is_an_explicit_opt_in(machines: tuple[Catalog, Catalog], url: str) -> None:
    a, _ = machines
    a.create(_dataset("lazy.one"))
    with Catalog.open(url, max_staleness=3600) as lazy:
        assert lazy.get("lazy.one").version == 1  # type: ignore[union-attr]
        a.save(_dataset("lazy.one"), expected_version=1)
        assert lazy.get("lazy.one").version == 1  # type: ignore[union-attr]  # allowed: opted in
        lazy.create(_dataset("lazy.two"))  # a write always catches up first
        assert lazy.get("lazy.one").version == 2  # type: ignore[union-attr]


def test_opening_a_missing_catalog_without_create_is_refused(url: str) -> None:
    with pytest.raises(CatalogFileError, match="does not exist"):
        Catalog.open(url, create=False)
    Catalog.open(url).close()
    Catalog.open(url, create=False).close()


def test_local_paths_open_exactly_as_before(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    with Catalog.open(path) as catalog:
        assert catalog.path == str(path)
        assert catalog.location == str(path)
    with pytest.raises(ValidationError, match="max_staleness"):
        Catalog.open(path, max_staleness=1.0)


def _process_client(url: str, updates: int) -> None:
    with Catalog.open(url) as catalog:
        for _ in range(updates):
            catalog.update("proc.counter", _bump, max_attempts=3, backoff=0.0)


def test_process_clients_each_with_a_replica_lose_nothing(url: str) -> None:
    with Catalog.open(url) as catalog:
        catalog.create(_dataset("proc.counter", row_count=0))
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_process_client, args=(url, 10)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    with Catalog.open(url) as catalog:
        assert catalog.get("proc.counter").row_count == 30  # type: ignore[union-attr]
