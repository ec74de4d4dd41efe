"""`Catalog.open("log+file:///dir")` on every supported Python: the store seam without S3.

The full contract runs in tests/s3 (on a directory and on S3); these are the core paths, kept
here so that `nox -s tests` checks them on every Python, not only where moto is installed.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from metafuse import Catalog
from metafuse.errors import BusyError, ConflictError
from metafuse.objectstore import CommitLog, open_store

from ._support import make


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"log+file://{tmp_path / 'store'}"


def test_two_clients_see_each_other_and_conflict(url: str) -> None:
    with Catalog.open(url) as a, Catalog.open(url) as b:
        a.create(make("dir.one"))
        assert b.get("dir.one").version == 1  # type: ignore[union-attr]
        b.save(make("dir.one", description="b"), expected_version=1)
        assert a.get("dir.one").description == "b"  # type: ignore[union-attr]
        with pytest.raises(ConflictError):
            a.save(make("dir.one", description="a"), expected_version=1)
        assert a.stats().open_connections >= 1


def test_threads_of_two_clients_lose_no_update(url: str) -> None:
    with Catalog.open(url) as a, Catalog.open(url) as b:
        a.create(make("dir.counter", row_count=0))

        errors: list[BaseException] = []

        def bump(catalog: Catalog) -> None:
            try:
                for _ in range(10):
                    catalog.update("dir.counter", lambda d: d.replace(row_count=(d.row_count or 0) + 1))
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=bump, args=(c,)) for c in (a, b, a, b)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert b.get("dir.counter").row_count == 40  # type: ignore[union-attr]


def test_a_commit_is_one_entry_of_the_change(url: str, tmp_path: Path) -> None:
    with Catalog.open(url) as catalog:
        catalog.create_many(make(f"dir.set_{i}") for i in range(50))
        catalog.update("dir.set_3", lambda d: d.replace(description="changed"))
    with open_store(str(tmp_path / "store")) as store:
        entries = CommitLog(store).tail()
    assert len(entries) == 2
    assert [change["name"] for change in entries[1].payload["changes"]] == ["dir.set_3"]
    assert entries[1].payload["changes"][0]["expected"] == 1


def test_a_new_client_starts_from_a_snapshot(url: str) -> None:
    with Catalog.open(url, snapshot_every=3) as writer:
        writer.create(make("dir.snap", row_count=0))
        for _ in range(4):
            writer.update("dir.snap", lambda d: d.replace(row_count=(d.row_count or 0) + 1))
    with Catalog.open(url) as reader:
        assert reader._commits is not None
        assert reader._commits.bootstrapped_from == 3
        assert reader.get("dir.snap").row_count == 4  # type: ignore[union-attr]


def test_a_commit_that_loses_the_log_past_its_bound_is_busy_and_not_written(url: str) -> None:
    with Catalog.open(url) as a, Catalog.open(url) as b:
        a.create_many([make("dir.mine"), make("dir.theirs")])
        b.get("dir.theirs")
        assert a._commits is not None
        a._commits.log.max_wait = 0.0  # the first lost number is already past the bound

        def late_save() -> None:
            with a.transaction():
                a.save(make("dir.mine", description="late"), expected_version=1)
                b.save(make("dir.theirs", description="first"), expected_version=1)

        with pytest.raises(BusyError, match=r"other writers won 1 log numbers in a row") as caught:
            late_save()
        assert url in str(caught.value)
        assert b.get("dir.mine").description != "late"  # type: ignore[union-attr]
        assert a.get("dir.mine").version == 1  # type: ignore[union-attr]
