"""One SQLite connection per thread per catalog, opened lazily and all tracked so `close` reaches them.

A connection is only ever used by the thread that owns it, and only while that thread holds its
session's `lock` (taken for one statement, or for a whole transaction). `close_all`, called from
any thread, closes a connection only when it can take that lock without waiting; a connection in
use is closed by its owner the moment it lets go. So closing a catalog under other threads' feet
never closes a connection inside an SQLite call (which can crash the process).

Across `os.fork()` the same locks tell which connections were idle: before the fork every idle
connection is claimed, so no thread of ours is inside SQLite when the child is created; the child
closes those (its copies; the parent keeps its own) and starts with none. A connection that was
busy at the fork is left untouched in the child: its SQLite mutex may be held by a thread that
does not exist there.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from . import faults
from .errors import CatalogClosedError, TransactionAbortedError

FORK_WAIT = 1.0
"""Seconds a fork waits for other threads to finish their current SQLite call or transaction."""


class Session:
    """A thread's connection plus its transaction state (used only by the owning thread)."""

    __slots__ = (
        "aborted",
        "closed",
        "conn",
        "depth",
        "guard",
        "lock",
        "marks",
        "owner",
        "pid",
        "touched",
        "uses",
        "wal_mark",
    )

    def __init__(self, conn: sqlite3.Connection | None) -> None:
        self.conn = conn
        self.owner = weakref.ref(threading.current_thread())
        self.pid = os.getpid()
        self.depth = 0
        self.uses = 0
        self.lock = threading.Lock()
        self.closed = False
        self.aborted: str | None = None
        """Why SQLite (or a fork) ended the open transaction early; every later statement fails."""
        self.marks: list[tuple[str, int]] = []
        self.touched: set[str] = set()
        self.wal_mark: object = None
        self.guard: Any = None  # the catalog's freshness guard, for the open transaction

    def check(self, path: str) -> sqlite3.Connection:
        """Return the connection, or raise if the open transaction was aborted."""
        if self.aborted is not None:
            raise TransactionAbortedError(path, self.aborted)
        assert self.conn is not None
        return self.conn

    def _close(self) -> None:
        if not self.closed and self.conn is not None:
            self.conn.close()
        self.closed = True


class ConnectionPool:
    """Hands each thread its own connection; `close_all` closes every one, from any thread.

    Connections of threads that have ended are closed the next time any thread opens one, so a
    catalog shared by short-lived threads does not accumulate file handles.
    """

    def __init__(self, path: str, factory: Callable[[], sqlite3.Connection]) -> None:
        self._path = path
        self._factory = factory
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sessions: list[Session] = []
        self._closed = False
        self._claimed: list[Session] = []
        _pools.add(self)

    def session(self) -> Session:
        """Return the calling thread's session, opening its connection on first use."""
        if self._closed and not faults.active("close_unguarded"):
            raise CatalogClosedError(self._path)
        session: Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._open_session()
        return session

    @contextlib.contextmanager
    def using(self) -> Iterator[Session]:
        """Hold the calling thread's session for one statement or one whole transaction (nests)."""
        session = self.session()
        if session.uses == 0:
            session.lock.acquire()
            if self._closed and not faults.active("close_unguarded"):
                session.lock.release()
                self._retire(session)
                raise CatalogClosedError(self._path)
        session.uses += 1
        try:
            yield session
        finally:
            session.uses -= 1
            if session.uses == 0:
                session.lock.release()
                if self._closed:
                    self._retire(session)

    def discard(self, session: Session) -> None:
        """Close and forget a session whose connection is in an unknown state (owner thread only)."""
        with self._lock:
            if session in self._sessions:
                self._sessions.remove(session)
        session._close()
        if getattr(self._local, "session", None) is session:
            del self._local.session

    def _open_session(self) -> Session:
        with self._lock:
            if self._closed and not faults.active("close_unguarded"):
                raise CatalogClosedError(self._path)
            self._reap_finished_threads()
            session = Session(self._factory())
            self._sessions.append(session)
        self._local.session = session
        return session

    def _reap_finished_threads(self) -> None:
        alive = []
        for session in self._sessions:
            thread = session.owner()
            if thread is not None and thread.is_alive():
                alive.append(session)
            elif session.lock.acquire(blocking=False):
                try:
                    session._close()
                finally:
                    session.lock.release()
        self._sessions = alive

    def _retire(self, session: Session) -> None:
        if session.lock.acquire(blocking=False):
            try:
                session._close()
            finally:
                session.lock.release()
            with self._lock:
                if session in self._sessions:
                    self._sessions.remove(session)

    @property
    def open_count(self) -> int:
        """Number of connections currently open."""
        with self._lock:
            return sum(1 for session in self._sessions if not session.closed)

    @property
    def closed(self) -> bool:
        """Whether `close_all` has run."""
        return self._closed

    def close_all(self) -> None:
        """Close every connection not in use now; those in use close when their call ends.

        Idempotent, and safe from any thread while other threads use the catalog.
        """
        with self._lock:
            self._closed = True
            if faults.active("connection_leak"):
                _leaked.extend(session.conn for session in self._sessions if session.conn is not None)
                return
            if faults.active("close_unguarded"):
                for session in self._sessions:
                    session._close()  # the bug: closes connections other threads are using
                self._sessions = []
                return
            busy = []
            for session in self._sessions:
                if session.lock.acquire(blocking=False):
                    try:
                        session._close()
                    finally:
                        session.lock.release()
                else:
                    busy.append(session)  # its owner closes it when its call ends
            self._sessions = busy

    # -- fork ---------------------------------------------------------------------------------

    def _before_fork(self) -> None:
        me = threading.current_thread()
        deadline = time.monotonic() + FORK_WAIT
        self._lock.acquire()
        claimed = []
        for session in self._sessions:
            if session.owner() is me and session.uses:
                continue  # the forking thread's own call: handled in the child
            if session.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                claimed.append(session)
        self._claimed = claimed

    def _after_fork_in_parent(self) -> None:
        for session in self._claimed:
            session.lock.release()
        self._claimed = []
        self._lock.release()

    def _after_fork_in_child(self) -> None:
        # SQLite connections must not be used across fork(). Idle ones (claimed before the fork)
        # are closed here, which only touches this process's copies; busy ones are left alone.
        claimed = self._claimed
        own: Session | None = getattr(self._local, "session", None)
        for session in claimed:
            with contextlib.suppress(sqlite3.Error):
                session._close()
        self._claimed = []
        self._sessions = []
        self._lock = threading.Lock()
        self._local = threading.local()
        if own is not None and own.depth:
            # The forking thread was inside a transaction: in the child its block must fail,
            # never go on in autocommit or commit the parent's transaction.
            placeholder = Session(None)
            placeholder.depth = own.depth
            placeholder.uses = own.uses
            placeholder.aborted = "the process forked inside this transaction; the child cannot continue it"
            placeholder.closed = True
            self._local.session = placeholder


_pools: weakref.WeakSet[ConnectionPool] = weakref.WeakSet()
_leaked: list[sqlite3.Connection] = []  # keeps leaked connections alive, as a real leak would


_forking: list[ConnectionPool] = []  # the pools prepared by _before_fork, in that order


def _fork_unsafe() -> bool:
    try:
        return faults.active("fork_unsafe")
    except ValueError:  # a bad METAFUSE_FAULTS is reported where faults are used, not in a fork hook
        return False


def _before_fork() -> None:
    if _fork_unsafe():
        return
    _forking[:] = list(_pools)
    for pool in _forking:
        pool._before_fork()


def _after_fork_in_parent() -> None:
    for pool in _forking:
        pool._after_fork_in_parent()
    _forking.clear()


def _after_fork_in_child() -> None:
    for pool in _forking:
        pool._after_fork_in_child()
    _forking.clear()


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)
