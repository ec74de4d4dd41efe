"""Concurrency tests: conflicts between clients, freshness across threads and processes, locking.

Overlap is made deterministic with events and barriers (never with sleeps), and what overlapped is
recorded and asserted on.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from metafuse import BusyError, Catalog, CatalogClosedError, ConflictError, Dataset, NotFoundError

from ._support import child_cache_then_reread, child_save, make

SPAWN = multiprocessing.get_context("spawn")
TIMEOUT = 60.0


@pytest.fixture
def thread_a() -> Iterator[ThreadPoolExecutor]:
    """One long-lived worker thread: every task submitted runs on the same thread."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="A") as pool:
        yield pool


@pytest.fixture
def thread_b() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="B") as pool:
        yield pool


# -- two clients, one conflict ----------------------------------------------------------------


def test_first_save_wins_and_the_second_conflicts(catalog: Catalog, other: Catalog) -> None:
    catalog.create(make("a", description="v1"))
    read_by_one = catalog.get("a")
    read_by_two = other.get("a")
    assert read_by_one is not None
    assert read_by_two is not None
    assert read_by_one.version == read_by_two.version == 1
    winner = catalog.save(read_by_one.replace(description="client one"), expected_version=1)
    with pytest.raises(ConflictError) as caught:
        other.save(read_by_two.replace(description="client two"), expected_version=1)
    assert (caught.value.name, caught.value.expected, caught.value.actual) == ("a", 1, 2)
    assert other.get("a") == winner
    assert catalog.get("a") == winner
    assert winner.description == "client one"
    assert catalog.version == 2


def test_two_deletes_of_one_version_one_wins(catalog: Catalog, other: Catalog) -> None:
    catalog.create(make("a"))
    catalog.delete("a", expected_version=1)
    with pytest.raises(NotFoundError):
        other.delete("a", expected_version=1)
    assert other.get("a") is None


# -- freshness across threads -----------------------------------------------------------------


def _read_twice(catalog: Catalog, name: str) -> tuple[Dataset | None, bool, int]:
    hits = catalog.stats().cache_hits
    first = catalog.get(name)
    second = catalog.get(name)
    return second, second is first, catalog.stats().cache_hits - hits


@pytest.mark.parametrize("writer_kind", ["same catalog", "other catalog"])
def test_a_thread_sees_a_write_made_by_another_thread(
    catalog: Catalog,
    other: Catalog,
    thread_a: ThreadPoolExecutor,
    thread_b: ThreadPoolExecutor,
    writer_kind: str,
) -> None:
    catalog.create(make("a", description="v1"))
    cached, identical, new_hits = thread_a.submit(_read_twice, catalog, "a").result(TIMEOUT)
    assert cached is not None
    assert identical
    assert new_hits == 1  # the second read came from the cache
    writer = catalog if writer_kind == "same catalog" else other
    saved = thread_b.submit(
        lambda: writer.save(cached.replace(description="written by B"), expected_version=1)
    ).result(TIMEOUT)
    seen = thread_a.submit(catalog.get, "a").result(TIMEOUT)
    assert seen == saved
    assert seen is not None
    assert seen.version == 2
    assert seen.description == "written by B"


def test_a_thread_sees_a_delete_made_by_another_catalog(
    catalog: Catalog, other: Catalog, thread_a: ThreadPoolExecutor, thread_b: ThreadPoolExecutor
) -> None:
    catalog.create(make("a"))
    assert thread_a.submit(_read_twice, catalog, "a").result(TIMEOUT)[2] == 1
    thread_b.submit(other.delete, "a", expected_version=1).result(TIMEOUT)
    assert thread_a.submit(catalog.get, "a").result(TIMEOUT) is None


def test_every_read_after_an_acknowledged_write_is_fresh(catalog: Catalog, other: Catalog) -> None:
    """A writer thread saves N versions; after each acknowledgment, readers must see at least it."""
    catalog.create(make("a"))
    rounds = 30
    acknowledged = threading.Semaphore(0)
    done_reading = threading.Barrier(3)
    stale: list[tuple[int, int]] = []
    lock = threading.Lock()

    def writer() -> None:
        for version in range(1, rounds + 1):
            current = other.get("a")
            assert current is not None
            other.save(current, expected_version=version)
            acknowledged.release()
            acknowledged.release()
            done_reading.wait(TIMEOUT)

    def reader() -> None:
        for version in range(2, rounds + 2):
            assert acknowledged.acquire(timeout=TIMEOUT)
            seen = catalog.get("a")
            assert seen is not None
            if seen.version < version:
                with lock:
                    stale.append((seen.version, version))
            catalog.get("a")  # give the cache a chance to serve the next round stale
            done_reading.wait(TIMEOUT)

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(writer), pool.submit(reader), pool.submit(reader)]
        for future in futures:
            future.result(TIMEOUT)
    assert stale == []
    assert catalog.stats().cache_hits >= rounds  # the second read of every round was a hit


def test_concurrent_updates_lose_nothing(catalog_path: Path, catalog: Catalog, other: Catalog) -> None:
    """Threads of two catalogs increment one counter through `update`; every increment lands."""
    catalog.create(make("counter", row_count=0))
    threads_per_catalog = 3
    increments = 8
    start = threading.Barrier(threads_per_catalog * 2)
    in_flight = 0
    peak = 0
    calls = 0
    conflicts = 0
    lock = threading.Lock()

    def bump(dataset: Dataset) -> Dataset:
        nonlocal in_flight, peak, calls
        with lock:
            calls += 1
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            return dataset.replace(row_count=(dataset.row_count or 0) + 1)
        finally:
            with lock:
                in_flight -= 1

    def on_conflict(error: ConflictError, attempt: int) -> None:
        nonlocal conflicts
        with lock:
            conflicts += 1

    def work(client: Catalog) -> None:
        start.wait(TIMEOUT)
        for _ in range(increments):
            client.update("counter", bump, max_attempts=10_000, backoff=0.0005, on_conflict=on_conflict)

    clients = [catalog, other] * threads_per_catalog
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        for future in [pool.submit(work, client) for client in clients]:
            future.result(TIMEOUT)
    final = other.get("counter")
    total = len(clients) * increments
    assert final is not None
    assert final.row_count == total
    assert final.version == 1 + total
    assert catalog.version == 1 + total
    assert peak >= 1
    assert calls == total + conflicts  # every change either landed or conflicted and was retried


# -- connections per thread ------------------------------------------------------------------


def test_each_thread_gets_its_own_connection_and_close_reaches_them_all(catalog_path: Path) -> None:
    catalog = Catalog(catalog_path)
    catalog.create(make("a"))
    workers = 4
    all_open = threading.Barrier(workers + 1)
    release = threading.Event()

    def read_and_hold() -> None:
        assert catalog.count == 1  # not `get`: a cache hit needs no connection
        all_open.wait(TIMEOUT)
        release.wait(TIMEOUT)

    threads = [threading.Thread(target=read_and_hold) for _ in range(workers)]
    for thread in threads:
        thread.start()
    try:
        all_open.wait(TIMEOUT)
        assert catalog.stats().open_connections == workers + 1
        catalog.close()  # from the main thread, while the other threads are still alive
        assert catalog.stats().open_connections == 0
    finally:
        release.set()
        for thread in threads:
            thread.join()


def test_connections_of_finished_threads_are_reaped(catalog: Catalog) -> None:
    catalog.create(make("a"))
    assert catalog.stats().open_connections == 1
    for _ in range(5):
        worker = threading.Thread(target=catalog.list)
        worker.start()
        worker.join()
        assert catalog.stats().open_connections <= 2
    assert catalog.stats().open_connections == 2  # the main thread's and the last thread's


def test_a_closed_catalog_refuses_other_threads(catalog_path: Path, thread_a: ThreadPoolExecutor) -> None:
    catalog = Catalog(catalog_path)
    thread_a.submit(lambda: catalog.count).result(TIMEOUT)
    catalog.close()
    with pytest.raises(CatalogClosedError):
        thread_a.submit(lambda: catalog.count).result(TIMEOUT)


# -- busy -------------------------------------------------------------------------------------


def test_a_writer_waiting_on_another_thread_of_the_same_catalog_times_out_busy(
    catalog_path: Path, thread_a: ThreadPoolExecutor
) -> None:
    with Catalog(catalog_path, busy_timeout=0.05) as catalog:
        inside = threading.Event()
        leave = threading.Event()

        def hold_the_write_lock() -> None:
            with catalog.transaction():
                catalog.create(make("held"))
                inside.set()
                leave.wait(TIMEOUT)

        holder = thread_a.submit(hold_the_write_lock)
        assert inside.wait(TIMEOUT)
        try:
            with pytest.raises(BusyError) as caught:
                catalog.create(make("b"))
            assert (caught.value.path, caught.value.timeout) == (str(catalog_path), 0.05)
        finally:
            leave.set()
        holder.result(TIMEOUT)
        assert catalog.get("held") is not None
        assert catalog.get("b") is None
        assert catalog.create(make("b")).version == 1


def test_a_writer_blocked_by_another_connection_times_out_busy(catalog_path: Path) -> None:
    with Catalog(catalog_path, busy_timeout=0) as catalog:
        stored = catalog.create(make("a"))
        blocker = sqlite3.connect(catalog_path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            with pytest.raises(BusyError) as caught:
                catalog.save(stored, expected_version=1)
            assert caught.value.path == str(catalog_path)
            assert caught.value.timeout == 0
            assert catalog.get("a") == stored  # reads still work while a writer holds the lock
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert catalog.save(stored, expected_version=1).version == 2


def test_writers_of_one_catalog_queue_instead_of_overlapping(catalog: Catalog) -> None:
    in_transaction = 0
    peak = 0
    lock = threading.Lock()
    start = threading.Barrier(4)

    def write(index: int) -> None:
        nonlocal in_transaction, peak
        start.wait(TIMEOUT)
        for round_ in range(5):
            with catalog.transaction():
                with lock:
                    in_transaction += 1
                    peak = max(peak, in_transaction)
                catalog.create(make(f"t{index}r{round_}"))
                with lock:
                    in_transaction -= 1

    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(write, i) for i in range(4)]:
            future.result(TIMEOUT)
    assert peak == 1
    assert catalog.count == 20


# -- freshness across processes ---------------------------------------------------------------


def _get(queue: Any) -> Any:
    message = queue.get(timeout=TIMEOUT)
    assert message[0] != "error", message[1]
    return message


def test_a_process_sees_a_write_made_by_a_child_process(catalog: Catalog, catalog_path: Path) -> None:
    catalog.create(make("a", description="parent"))
    first = catalog.get("a")
    assert catalog.get("a") is first
    hits = catalog.stats().cache_hits
    assert hits == 1
    result = SPAWN.Queue()
    child = SPAWN.Process(target=child_save, args=(str(catalog_path), "a", "child", result))
    child.start()
    try:
        assert _get(result) == ("saved", 2)
    finally:
        child.join(TIMEOUT)
    assert child.exitcode == 0
    seen = catalog.get("a")
    assert seen is not None
    assert (seen.version, seen.description) == (2, "child")
    assert catalog.stats().cache_hits == hits  # the cached copy was refused


def test_a_child_process_sees_a_write_made_by_the_parent(catalog: Catalog, catalog_path: Path) -> None:
    stored = catalog.create(make("a", description="before"))
    result = SPAWN.Queue()
    go = SPAWN.Event()
    child = SPAWN.Process(target=child_cache_then_reread, args=(str(catalog_path), "a", result, go))
    child.start()
    try:
        kind, version, second_is_first, child_hits = _get(result)
        assert (kind, version) == ("cached", 1)
        assert second_is_first  # the child really holds a cached copy
        assert child_hits == 1
        catalog.save(stored.replace(description="after"), expected_version=1)
        go.set()
        assert _get(result) == ("reread", 2, "after")
    finally:
        go.set()
        child.join(TIMEOUT)
    assert child.exitcode == 0
