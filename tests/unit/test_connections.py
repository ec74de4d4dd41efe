"""Tests for metafuse._connections: one connection per thread, all closed by `close_all`, reaping."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator

import pytest

from metafuse import faults
from metafuse._connections import ConnectionPool, Session, _leaked
from metafuse.errors import CatalogClosedError


class Recorder:
    """A connection factory that remembers every connection it made."""

    def __init__(self) -> None:
        self.made: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def __call__(self) -> sqlite3.Connection:
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        with self._lock:
            self.made.append(conn)
        return conn


def is_closed(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    made = Recorder()
    yield made
    for conn in made.made:
        conn.close()


def in_thread(pool: ConnectionPool) -> Session:
    box: list[Session] = []
    worker = threading.Thread(target=lambda: box.append(pool.session()))
    worker.start()
    worker.join()
    return box[0]


def test_a_thread_reuses_its_session(recorder: Recorder) -> None:
    pool = ConnectionPool("p", recorder)
    first = pool.session()
    assert pool.session() is first
    assert first.owner() is threading.current_thread()
    assert (first.depth, first.marks, first.touched) == (0, [], set())
    assert len(recorder.made) == 1
    assert pool.open_count == 1
    pool.close_all()


def test_each_thread_gets_its_own_connection(recorder: Recorder) -> None:
    pool = ConnectionPool("p", recorder)
    main = pool.session()
    ready = threading.Barrier(4)
    release = threading.Event()
    sessions: list[Session] = []
    lock = threading.Lock()

    def work() -> None:
        session = pool.session()
        with lock:
            sessions.append(session)
        ready.wait(10)
        release.wait(10)

    workers = [threading.Thread(target=work) for _ in range(3)]
    for worker in workers:
        worker.start()
    ready.wait(10)
    try:
        assert pool.open_count == 4  # all three were alive at once, plus the main thread's
        conns = {id(s.conn) for s in sessions} | {id(main.conn)}
        assert len(conns) == 4
    finally:
        release.set()
        for worker in workers:
            worker.join()
    pool.close_all()


def test_close_all_closes_connections_of_other_threads(recorder: Recorder) -> None:
    pool = ConnectionPool("p", recorder)
    pool.session()
    in_thread(pool)
    in_thread(pool)
    assert len(recorder.made) == 3
    pool.close_all()
    assert pool.closed
    assert pool.open_count == 0
    assert all(is_closed(conn) for conn in recorder.made)


def test_close_all_is_idempotent_and_later_sessions_raise(recorder: Recorder) -> None:
    pool = ConnectionPool("/data/c.db", recorder)
    pool.session()
    pool.close_all()
    pool.close_all()
    with pytest.raises(CatalogClosedError) as caught:
        pool.session()
    assert caught.value.path == "/data/c.db"
    with pytest.raises(CatalogClosedError):
        in_thread_error(pool)


def in_thread_error(pool: ConnectionPool) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            pool.session()
        except BaseException as error:
            errors.append(error)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    if errors:
        raise errors[0]


def test_connections_of_finished_threads_are_reaped_when_a_new_one_opens(recorder: Recorder) -> None:
    pool = ConnectionPool("p", recorder)
    pool.session()
    dead = in_thread(pool).conn
    assert pool.open_count == 2  # nothing reaps until a connection is opened
    assert not is_closed(dead)
    fresh = in_thread(pool).conn
    assert is_closed(dead)
    assert pool.open_count == 2  # the main thread's and the newest (its thread has ended too)
    in_thread(pool)
    assert is_closed(fresh)
    assert pool.open_count == 2
    pool.close_all()


def test_connection_leak_fault_leaves_connections_open(recorder: Recorder) -> None:
    pool = ConnectionPool("p", recorder)
    conn = pool.session().conn
    before = len(_leaked)
    try:
        with faults.enabled("connection_leak"):
            pool.close_all()
        assert pool.closed
        assert not is_closed(conn)
        assert pool.open_count == 1
        assert _leaked[before:] == [conn]
    finally:
        del _leaked[before:]
