"""One SQLite connection per thread per catalog, opened lazily and all tracked so `close` reaches them."""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Callable

from . import faults
from .errors import CatalogClosedError


class Session:
    """A thread's connection plus its transaction state (used only by the owning thread)."""

    __slots__ = ("conn", "depth", "marks", "owner", "touched")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.owner = weakref.ref(threading.current_thread())
        self.depth = 0
        self.marks: list[tuple[str, int]] = []
        self.touched: set[str] = set()


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
        _pools.add(self)

    def session(self) -> Session:
        """Return the calling thread's session, opening its connection on first use."""
        if self._closed:
            raise CatalogClosedError(self._path)
        session: Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._open_session()
        return session

    def _open_session(self) -> Session:
        with self._lock:
            if self._closed:
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
            else:
                session.conn.close()
        self._sessions = alive

    @property
    def open_count(self) -> int:
        """Number of connections currently open."""
        with self._lock:
            return len(self._sessions)

    @property
    def closed(self) -> bool:
        """Whether `close_all` has run."""
        return self._closed

    def close_all(self) -> None:
        """Close every connection (also those of other threads); idempotent."""
        with self._lock:
            self._closed = True
            if faults.active("connection_leak"):
                _leaked.extend(session.conn for session in self._sessions)
                return
            for session in self._sessions:
                session.conn.close()
            self._sessions = []

    def _forget_after_fork(self) -> None:
        # SQLite connections must not be used across fork(); the child starts with none, and
        # leaves the parent's to the parent (closing them here could disturb its locks).
        self._local = threading.local()
        self._sessions = []
        self._lock = threading.Lock()


_pools: weakref.WeakSet[ConnectionPool] = weakref.WeakSet()
_leaked: list[sqlite3.Connection] = []  # keeps leaked connections alive, as a real leak would


def _after_fork_in_child() -> None:
    for pool in list(_pools):
        pool._forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
