"""Group commit: saves that queue for the writer lock commit together, each judged alone.

Every test makes the group happen rather than hoping for it: the main thread holds the writer
lock in an explicit transaction while the writer threads queue behind it, and lets go only once
all of them are queued; the first thread to get the lock then commits everything queued.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from metafuse import Catalog, Dataset, _groupcommit
from metafuse.errors import CatalogError, ConflictError

from ._support import make

NAMES = [f"group.set_{index}" for index in range(4)]


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    with Catalog(tmp_path / "catalog.db") as opened:
        opened.create_many(make(name) for name in NAMES)
        yield opened


def _queued(catalog: Catalog, count: int) -> None:
    """Wait (without a time limit that could pass) until `count` writes are queued."""
    deadline = time.monotonic() + 60
    while len(catalog._writes.queue.pending) < count:
        assert time.monotonic() < deadline, "the writer threads never queued"
        time.sleep(0.001)


def _in_one_group(catalog: Catalog, writes: list[Callable[[], Dataset]]) -> list[Any]:
    """Run `writes` in threads queued behind a held writer lock; return each result or exception."""
    outcomes: list[Any] = [None] * len(writes)

    def run(index: int) -> None:
        try:
            outcomes[index] = writes[index]()
        except CatalogError as error:
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(writes))]
    with catalog.transaction():  # holds the writer lock while the writes queue
        for thread in threads:
            thread.start()
        _queued(catalog, len(writes))
    for thread in threads:
        thread.join()
    return outcomes


def _save(catalog: Catalog, name: str, expected: int, description: str) -> Callable[[], Dataset]:
    return lambda: catalog.save(make(name, description=description), expected_version=expected)


def test_queued_saves_commit_in_one_transaction(catalog: Catalog) -> None:
    outcomes = _in_one_group(catalog, [_save(catalog, name, 1, "grouped") for name in NAMES])
    assert [stored.version for stored in outcomes] == [2, 2, 2, 2]
    stats = catalog.stats()
    assert (stats.group_commits, stats.grouped_writes) == (1, 4)
    assert {catalog.get(name).description for name in NAMES} == {"grouped"}  # type: ignore[union-attr]
    assert catalog.version == len(NAMES) + len(NAMES)  # the creates, then one per save


def test_a_conflict_fails_only_its_own_save(catalog: Catalog) -> None:
    writes = [_save(catalog, name, 1, "grouped") for name in NAMES]
    writes[2] = _save(catalog, NAMES[2], 7, "stale")  # names a version that is not stored
    outcomes = _in_one_group(catalog, writes)
    assert isinstance(outcomes[2], ConflictError)
    assert (outcomes[2].expected, outcomes[2].actual) == (7, 1)
    assert [outcomes[i].version for i in (0, 1, 3)] == [2, 2, 2]
    assert catalog.get(NAMES[2]).version == 1  # type: ignore[union-attr]
    assert catalog.stats().grouped_writes == 4


def test_two_saves_of_one_dataset_in_a_group_are_checked_in_turn(catalog: Catalog) -> None:
    outcomes = _in_one_group(
        catalog, [_save(catalog, NAMES[0], 1, "first"), _save(catalog, NAMES[0], 1, "second")]
    )
    won = [o for o in outcomes if isinstance(o, Dataset)]
    lost = [o for o in outcomes if isinstance(o, ConflictError)]
    assert len(won) == 1
    assert len(lost) == 1
    assert (lost[0].expected, lost[0].actual) == (1, 2)
    assert catalog.get(NAMES[0]) == won[0]


def _refuse_commits(catalog: Catalog) -> threading.Event:
    """Make COMMIT fail on every connection the catalog opens from now on, while the event is set.

    A real SQLite failure at COMMIT (an authorizer that denies it), on the writer threads only:
    their connections are opened after this, the test thread's already was.
    """
    refuse_commit = threading.Event()

    def deny(action: int, arg1: str | None, *_: object) -> int:
        if refuse_commit.is_set() and action == sqlite3.SQLITE_TRANSACTION and arg1 == "COMMIT":
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    factory = catalog._pool._factory

    def connect_refusing_commit() -> sqlite3.Connection:
        conn = factory()
        conn.set_authorizer(deny)
        return conn

    catalog._pool._factory = connect_refusing_commit
    refuse_commit.set()
    return refuse_commit


def test_a_failed_commit_fails_every_save_in_the_group(catalog: Catalog) -> None:
    refuse_commit = _refuse_commits(catalog)
    outcomes = _in_one_group(catalog, [_save(catalog, name, 1, "lost") for name in NAMES])
    assert all(isinstance(outcome, CatalogError) for outcome in outcomes), outcomes
    assert len({type(outcome) for outcome in outcomes}) == 1
    refuse_commit.clear()
    assert {catalog.get(name).version for name in NAMES} == {1}  # type: ignore[union-attr]
    assert catalog.stats().group_commits == 0


def test_writes_inside_an_explicit_transaction_are_not_grouped(catalog: Catalog) -> None:
    with catalog.transaction():
        for name in NAMES:
            catalog.save(make(name, description="block"), expected_version=1)
    stats = catalog.stats()
    assert (stats.group_commits, stats.grouped_writes) == (0, 0)
    assert catalog.version == len(NAMES) + len(NAMES)


def test_a_save_waiting_past_the_busy_timeout_is_withdrawn(tmp_path: Path) -> None:
    with Catalog(tmp_path / "busy.db", busy_timeout=0.05) as catalog:
        catalog.create(make("busy.one"))
        errors: list[BaseException] = []

        def write() -> None:
            try:
                catalog.save(make("busy.one", description="late"), expected_version=1)
            except CatalogError as error:
                errors.append(error)

        with catalog.transaction():
            thread = threading.Thread(target=write)
            thread.start()
            thread.join()
        assert [type(error).__name__ for error in errors] == ["BusyError"]
        assert catalog._writes.queue.pending == []
        assert catalog.get("busy.one").version == 1  # type: ignore[union-attr]


class _WatchedEvent(threading.Event):
    """A `threading.Event` that counts the threads that have started waiting on it."""

    waiting = 0
    waiting_lock = threading.Lock()

    def wait(self, timeout: float | None = None) -> bool:
        with _WatchedEvent.waiting_lock:
            _WatchedEvent.waiting += 1
        return super().wait(timeout)


def test_a_waiting_writer_never_reads_an_outcome_its_leader_has_not_settled(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The leader settles its group's outcomes after the shared COMMIT, or after rolling back a
    # failed one. Here the COMMIT fails, and the leader is held before settling until the other
    # writer of its group waits for its outcome: that writer must report the failure, not the
    # value its save had computed before the COMMIT.
    monkeypatch.setattr(_WatchedEvent, "waiting", 0)
    monkeypatch.setattr(_groupcommit, "threading", _ThreadingWithWatchedEvents())
    settle = catalog._accounting.settle
    main = threading.current_thread()
    follower_waits = threading.Event()

    def held_back_settle(*args: Any) -> None:
        if threading.current_thread() is not main:
            deadline = time.monotonic() + 30
            while _WatchedEvent.waiting < 1 and time.monotonic() < deadline:
                time.sleep(0.001)
            if _WatchedEvent.waiting >= 1:
                follower_waits.set()
        settle(*args)

    monkeypatch.setattr(catalog._accounting, "settle", held_back_settle)
    refuse_commit = _refuse_commits(catalog)
    outcomes = _in_one_group(catalog, [_save(catalog, name, 1, "lost") for name in NAMES[:2]])
    refuse_commit.clear()
    assert follower_waits.is_set()
    assert all(isinstance(outcome, CatalogError) for outcome in outcomes), outcomes
    assert {catalog.get(name).version for name in NAMES} == {1}  # type: ignore[union-attr]


class _ThreadingWithWatchedEvents:
    """The `threading` module as the catalog sees it, with `Event` replaced by `_WatchedEvent`."""

    Event = _WatchedEvent

    def __getattr__(self, name: str) -> Any:
        return getattr(threading, name)
