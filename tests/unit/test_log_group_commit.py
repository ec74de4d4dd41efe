"""Group commit on a store catalog: saves that wait together are one log entry, and a conflict
at the log fails only the saves that caused it (a directory store; the S3 suite runs the same)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import metafuse._logcommits as logcommits
from metafuse import Catalog, ConflictError, Dataset
from metafuse.objectstore import CommitLog, LocalDirStore, ObjectStore, PutMode

from ._support import make


def url_of(root: Path) -> str:
    return f"log+file://{root}"


def entries(root: Path) -> int:
    return len(list((root / "log").glob("*.json")))


class HookedStore(LocalDirStore):
    """A real directory store that runs `before_log_put` once, before the next log entry's PUT."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.before_log_put: Callable[[], None] | None = None

    def put(self, key: str, data: bytes, mode: PutMode) -> str:
        hook, self.before_log_put = (self.before_log_put, None) if key.startswith("log/") else (None, None)
        if hook is not None:
            hook()
        return super().put(key, data, mode)


@pytest.fixture
def hooked(monkeypatch: pytest.MonkeyPatch) -> list[HookedStore]:
    opened: list[HookedStore] = []

    def open_store(url: str) -> ObjectStore:
        store = HookedStore(url[len("file://") :])
        opened.append(store)
        return store

    monkeypatch.setattr(logcommits, "open_store", open_store)
    return opened


def queued_saves(catalog: Catalog, saves: list[Dataset], versions: list[int]) -> list[Any]:
    """Queue one save per thread behind a transaction that holds the writer lock, then let them go.

    Every save is queued before the lock is released, so one leader takes them all in one group.
    """
    outcomes: list[Any] = [None] * len(saves)
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with catalog.transaction():
            holding.set()
            release.wait(30)

    def save(index: int) -> None:
        try:
            outcomes[index] = catalog.save(saves[index], expected_version=versions[index])
        except ConflictError as error:
            outcomes[index] = error

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    assert holding.wait(30)
    threads += [threading.Thread(target=save, args=(i,)) for i in range(len(saves))]
    for thread in threads[1:]:
        thread.start()
    deadline = time.monotonic() + 30
    while len(catalog._writes.queue.pending) < len(saves) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert len(catalog._writes.queue.pending) == len(saves)
    release.set()
    for thread in threads:
        thread.join(30)
    return outcomes


def test_saves_that_wait_together_are_one_log_entry(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with Catalog.open(url_of(root)) as catalog:
        names = [f"group.d{i}" for i in range(5)]
        for name in names:
            catalog.create(make(name))
        before = entries(root)
        outcomes = queued_saves(catalog, [make(n, row_count=7) for n in names], [1] * 5)
        assert all(isinstance(o, Dataset) and o.version == 2 for o in outcomes), outcomes
        assert entries(root) == before + 1
        assert catalog.stats().group_commits == 1
    with Catalog.open(url_of(root)) as reader:
        assert [reader.get(n).row_count for n in names] == [7] * 5  # type: ignore[union-attr]


def test_a_conflict_at_the_log_fails_only_its_own_saves(tmp_path: Path, hooked: list[HookedStore]) -> None:
    root = tmp_path / "store"
    names = [f"group.d{i}" for i in range(4)]
    with Catalog.open(url_of(root)) as catalog, Catalog.open(url_of(root)) as other:
        for name in names:
            catalog.create(make(name))
        assert other.get("group.d2") is not None
        store = hooked[0]

        def other_machine_saves_d2() -> None:
            current = other.get("group.d2")
            assert current is not None
            other.save(current.replace(description="theirs"), expected_version=current.version)

        # The group's transaction has caught up and checked its versions; then, before its PUT,
        # another machine's change of group.d2 takes the next log number.
        store.before_log_put = other_machine_saves_d2
        outcomes = queued_saves(catalog, [make(n, row_count=3) for n in names], [1] * 4)
        assert isinstance(outcomes[2], ConflictError)
        assert outcomes[2].name == "group.d2"
        assert [o.version for i, o in enumerate(outcomes) if i != 2] == [2, 2, 2]
    with Catalog.open(url_of(root)) as reader:
        rows = {n: reader.get(n) for n in names}
        assert [rows[n].row_count for n in names] == [3, 3, None, 3]  # type: ignore[union-attr]
        assert rows["group.d2"].description == "theirs"  # type: ignore[union-attr]
        ids = [entry.commit_id for entry in CommitLog(LocalDirStore(root)).tail()]
        assert len(ids) == len(set(ids)) == 4 + 1 + 1  # creates, theirs, and one for the group
