"""One SQLite connection per thread per catalog, opened lazily and all tracked so `close` reaches them.

A connection is only ever used by the thread that owns it, and only while that thread holds its
session's `lock` (taken for one call, or for a whole transaction). `close_all`, called from any
thread, closes a connection only when it can take that lock without waiting; a connection in use
is closed by its owner the moment it lets go. So closing a catalog under other threads' feet never
closes a connection inside an SQLite call (which can crash the process).

Across `os.fork()`: a fork first waits (up to `FORK_WAIT`) until no other thread is inside a
catalog call or transaction, or inside SQLite opening or closing a connection (`native_call`),
holding back new ones at a gate. The child never closes its copies of the connections: it
abandons them (kept referenced in `_orphans`, so no finaliser closes them either) and opens new
ones. Closing runs SQLite code on per-file state (its mutexes on the file and its `-shm`) that a
thread of the parent outside any call the fork waits for (a connection of the application's own,
a finaliser) may have held at the fork, and would then wait forever. What abandoning costs: the
child keeps their descriptors, and SQLite, which keeps one lock record per file for all of a
process's connections, still counts them as holding the file's shared and `-shm` locks, so the
child's new connections would not take those locks for real (a fork does not pass locks on), and
other processes would not see the child once its parent closed the file: the child takes them
itself (`_forklocks`, as its parent held them at the fork) and holds them for its life, as SQLite
believes it does, or refuses the file if another process took it over meanwhile. A child whose
parent's thread held such a mutex at the fork still hangs at its own first call on that file (every
connection of a process to one file shares that state); only the fork and its hooks are safe then.
A connection that was inside a call or an open transaction at the fork also makes the child refuse
that file (writes, or every call if a call was in flight) with a `CatalogFileError` that says why:
SQLite's record of that call or transaction cannot be cleared in the child.
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

from . import _forklocks, faults, perturb
from .errors import CatalogClosedError, TransactionAbortedError

FORK_WAIT = 3.0
"""Seconds a fork waits for other threads to finish their current SQLite call or transaction."""


class Session:
    """A thread's connection plus its transaction state (used only by the owning thread)."""

    __slots__ = (
        "aborted",
        "before",
        "closed",
        "conn",
        "depth",
        "guard",
        "lock",
        "marks",
        "owner",
        "pid",
        "read_all",
        "reads",
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
        self.before: dict[str, int | None] = {}
        """Datasets the open transaction changed, with their versions before it (object-store commits)."""
        self.reads: dict[str, int | None] = {}
        """Datasets the open transaction read, with the versions it saw (object-store validation)."""
        self.read_all = False
        """Whether the open transaction ran a listing, search or count (it depends on every dataset)."""
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
            with native_call():
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
        self._on_empty: Callable[[], None] | None = None
        _pools.add(self)

    def when_empty(self, callback: Callable[[], None]) -> None:
        """Call `callback` once, when the pool is closed and its last connection really is."""
        self._on_empty = callback

    def _maybe_empty(self) -> None:
        # Called with self._lock held.
        if self._closed and not self._sessions and self._on_empty is not None:
            callback, self._on_empty = self._on_empty, None
            callback()

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
        if _gate.pending and session.uses == 0:
            _gate.wait()
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
                self._maybe_empty()

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
            self._maybe_empty()

    # -- fork ---------------------------------------------------------------------------------

    def _busy_elsewhere(self) -> bool:
        me = threading.current_thread()
        return any(session.uses and session.owner() is not me for session in self._sessions)

    def _before_fork(self, deadline: float) -> None:
        while self._busy_elsewhere() and time.monotonic() < deadline:
            if perturb.ON:
                perturb.point("fork: call in flight -> waited out")
            time.sleep(0.001)

    def _after_fork_in_child(self) -> None:
        own: Session | None = getattr(self._local, "session", None)
        for session in self._sessions:
            # Never closed here, idle or not: closing runs SQLite code on state (its per-file
            # mutexes) that a parent thread outside any session call may have held at the fork.
            _orphans.append(session)  # kept alive, so no finaliser closes it either
            if session.uses == 0:
                continue
            if session.uses > session.depth:
                refuse(self._path, "any", "another thread was inside an SQLite call on it")
            else:
                refuse(self._path, "writes", "another thread had a transaction open on it")
        # SQLite still counts the abandoned connections' locks as held (the pool's, and the
        # catalog's WAL-index view, which stays open when the threads that had sessions ended):
        # take for real whatever the parent held at the fork.
        problem = _forklocks.take_over(self._path)
        if problem is not None:
            refuse(self._path, "any", f"another process was taking the file over ({problem})")
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

    def refused(self, writing: bool) -> str | None:
        """Why this process may not use the file (after a fork), or None."""
        kind_reason = _refused.get(self._path)
        if kind_reason is None:
            return None
        kind, reason = kind_reason
        if kind == "any" or writing:
            return (
                f"this process was forked while {reason}; SQLite's lock state for it cannot be"
                f" cleared in the child, so {'it' if kind == 'any' else 'writing'} is refused here"
                " (fork when no call or transaction is open, or start the process with spawn)"
            )
        return None


_refused: dict[str, tuple[str, str]] = {}
"""Files a forked child may not use: path -> ("writes" or "any", why)."""


def refuse(path: str, kind: str, reason: str) -> None:
    """Record that this (forked) process may not write (or use at all) the catalog at `path`."""
    if _refused.get(path, ("writes", ""))[0] != "any":
        _refused[path] = (kind, reason)


_pools: weakref.WeakSet[ConnectionPool] = weakref.WeakSet()
_leaked: list[sqlite3.Connection] = []  # keeps leaked connections alive, as a real leak would
_orphans: list[Session] = []  # a forked child's copies of connections that were inside SQLite


def _fork_unsafe() -> bool:
    try:
        return faults.active("fork_unsafe")
    except ValueError:  # a bad METAFUSE_FAULTS is reported where faults are used, not in a fork hook
        return False


class _ForkGate:
    """Holds new catalog calls back while a fork waits for the calls in flight to end."""

    def __init__(self) -> None:
        self.pending = False
        self._done = threading.Condition()

    def wait(self) -> None:
        with self._done:
            self._done.wait_for(lambda: not self.pending, timeout=FORK_WAIT)

    def close(self) -> None:
        with self._done:
            self.pending = False
            self._done.notify_all()


_gate = _ForkGate()


class _NativeCalls:
    """Counts threads inside SQLite outside any session call: opening or closing a connection.

    Opening and closing take SQLite's process-wide mutexes (its list of open files, the shared
    memory of a WAL database) with the GIL released. A fork while another thread holds one leaves
    the child's copy locked for good, and the child's next connection waits on it forever, so a
    fork waits for these calls too, holding new ones back until it is done.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._local = threading.local()
        self.count = 0
        self.forking = False

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        with self._cond:
            if not depth:  # a thread already inside is waited for, never held back
                self._cond.wait_for(lambda: not self.forking, timeout=FORK_WAIT)
            self.count += 1
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            with self._cond:
                self.count -= 1
                self._cond.notify_all()

    def hold(self, deadline: float) -> None:
        """Hold new calls back and wait (until `deadline`) for those in flight."""
        with self._cond:
            self.forking = True
            self._cond.wait_for(lambda: not self.count, timeout=max(0.0, deadline - time.monotonic()))

    def release(self) -> None:
        with self._cond:
            self.forking = False
            self._cond.notify_all()


_native = _NativeCalls()


def native_call() -> contextlib.AbstractContextManager[None]:
    """Mark the calling thread as inside SQLite outside a session call (opening or closing a
    connection, or a connection of its own): a fork waits until it is out."""
    return _native.entered()


def _before_fork() -> None:
    if perturb.ON:
        perturb.point("fork: before -> calls drained")
    if _fork_unsafe():
        return
    _gate.pending = True
    deadline = time.monotonic() + FORK_WAIT
    for pool in list(_pools):
        pool._before_fork(deadline)
    _native.hold(deadline)
    _forklocks.record([pool._path for pool in list(_pools)])


def _after_fork_in_parent() -> None:
    _native.release()
    _gate.close()
    if perturb.ON:
        perturb.point("fork: parent resumed -> parent runs")


def _after_fork_in_child() -> None:
    global _gate, _native
    _gate = _ForkGate()
    _native = _NativeCalls()
    if _fork_unsafe():
        return
    for pool in list(_pools):
        pool._after_fork_in_child()


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)
