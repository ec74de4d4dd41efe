"""How a write becomes a commit: the writer lock, `BEGIN IMMEDIATE`, SAVEPOINTs, COMMIT or ROLLBACK.

Owns one catalog's writer lock and the life of a write transaction on the calling thread's
connection: the outermost block (with the store's hooks at its two edges, `LogCommits.begin`
and `LogCommits.publish`), nested blocks as SAVEPOINTs, rolling back on any exception, noticing
when SQLite ended the transaction itself, and translating SQLite's errors; and running a
write's SQL (`write`, `in_session`) with the marker that accounts for what it changes. The file
and store paths share every step here; only the two hooks differ. It may not decide what a
write changes (callers hand in their SQL as a body), batch writes of several threads (see
`_groupcommit`), or touch the cache except through `CommitAccounting`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from . import faults, perturb
from ._accounting import CommitAccounting, Marker
from ._connections import ConnectionPool, Session
from ._fairlock import FairLock
from ._lifecycle import Lifetime
from ._logcommits import Change, LogCommits
from ._replicasync import apply_changes
from ._sqlite_errors import Translated
from .errors import BusyError, CatalogFileError, TransactionAbortedError

log = logging.getLogger("metafuse.catalog")

T = TypeVar("T")


class Held:
    """The writer lock as held by one transaction: released once, by whichever path gets there first."""

    def __init__(self, lock: threading.Lock | FairLock) -> None:
        self._lock: threading.Lock | FairLock | None = lock

    def release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()


@dataclasses.dataclass(eq=False)
class Transactions:
    """The write transactions of one catalog; each thread's run on that thread's own connection.

    Threads of the catalog queue on `write_lock` (not in SQLite's busy handler) for the
    outermost block; other processes meet SQLite's lock. `write_lock` is renewed in a forked
    child (`after_fork_in_child`): a lock held by a parent's thread would never be released.
    """

    path: str
    busy_timeout: float
    read_only: bool
    pool: ConnectionPool
    commits: LogCommits | None
    lifetime: Lifetime
    accounting: CommitAccounting
    write_lock: threading.Lock | FairLock = dataclasses.field(init=False)
    translated: Translated = dataclasses.field(init=False)
    """The translator of SQLite's errors for blocks outside a transaction (see `errors`)."""

    def __post_init__(self) -> None:
        self.write_lock = self._new_write_lock()
        self.translated = Translated(self.path, self.busy_timeout)

    def _new_write_lock(self) -> threading.Lock | FairLock:
        # On an object store the lock is held across network round trips: first come, first
        # served, so a thread retrying a lost commit cannot starve its neighbours.
        return FairLock() if self.commits is not None else threading.Lock()

    def after_fork_in_child(self) -> None:
        """Give a forked child a writer lock of its own."""
        self.write_lock = self._new_write_lock()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """`Catalog.transaction`: the outermost block under the writer lock, inner ones as SAVEPOINTs."""
        if self.read_only:
            raise CatalogFileError(self.path, "was opened read-only; writes are refused")
        if self.pool.session().depth:
            with self.pool.using() as session, self.savepoint(session):
                yield
            return
        refused = self.pool.refused(writing=True)
        if refused is not None:
            raise CatalogFileError(self.path, refused)
        # Threads of this catalog queue on a lock instead of in SQLite's busy handler, which
        # polls with sleeps of up to 100 ms; other processes still meet the busy handler.
        # Waited for before the session counts as in a call (see metafuse._connections).
        writer_lock = self.write_lock
        if not writer_lock.acquire(timeout=self.busy_timeout):
            log.debug("%s: another thread held the write lock for %g s", self.path, self.busy_timeout)
            raise BusyError(self.path, self.busy_timeout)
        held = Held(writer_lock)
        try:
            with self.pool.using() as session, self.outermost(session, held):
                yield
        finally:
            held.release()

    def relock(self) -> Held:
        """Take the writer lock again for another transaction (`BusyError` after the busy timeout)."""
        if not self.write_lock.acquire(timeout=self.busy_timeout):
            raise BusyError(self.path, self.busy_timeout)
        return Held(self.write_lock)

    @contextlib.contextmanager
    def savepoint(self, session: Session) -> Iterator[None]:
        """A nested block of the open transaction: rolled back alone if it raises."""
        conn = session.check(self.path)
        savepoint = f"metafuse_{session.depth}"
        with self.errors(session):
            conn.execute(f"SAVEPOINT {savepoint}")
        session.depth += 1
        level = session.depth
        # `depth` counts the blocks the caller's code is inside; it drops before this block's
        # closing statement runs, so `uses > depth` holds whenever SQLite is at work (see
        # metafuse._connections on fork).
        try:
            yield
            self.still_open(session)
            session.depth -= 1
            with self.errors(session):
                conn.execute(f"RELEASE {savepoint}")
        except BaseException:
            if session.depth == level:
                session.depth -= 1
            # Roll back only this block, and only if SQLite has not already ended the whole
            # transaction (then `ROLLBACK TO` would fail, and later statements would autocommit).
            if self.lost(session) is None:
                try:
                    conn.execute(f"ROLLBACK TO {savepoint}")
                    conn.execute(f"RELEASE {savepoint}")
                except sqlite3.Error as error:
                    session.aborted = session.aborted or f"rolling back a savepoint failed: {error}"
            raise

    @contextlib.contextmanager
    def outermost(self, session: Session, writer_lock: Held) -> Iterator[None]:
        """The outermost block, the writer lock held: BEGIN IMMEDIATE ... COMMIT, then settle.

        The lock is released as soon as the transaction ended, before its accounting.
        """
        guard = session.guard = self.lifetime.guard
        commits = self.commits
        committed = False

        def apply(changes: Iterable[Change]) -> None:
            apply_changes(conn, changes, lambda name: self.accounting.mark(session, name, logged=False))

        try:
            try:
                conn = session.check(self.path)
                with self.errors(session):
                    conn.execute("BEGIN IMMEDIATE")
                    if guard is not None:
                        session.wal_mark = guard.writer_mark(conn)
                    if commits is not None:
                        commits.begin(conn, apply)
                session.depth = 1
                if faults.active("stall") and random.random() < 0.01:
                    time.sleep(0.2)
                yield
                if session.pid != os.getpid():
                    raise TransactionAbortedError(self.path, "the process forked inside this transaction")
                self.still_open(session)
                session.depth = 0
                if perturb.ON:
                    perturb.point("commit: changes made -> COMMIT")
                with self.errors(session):
                    if commits is not None:
                        commits.publish(conn, session.before, apply, session.reads, session.read_all)
                    conn.execute("COMMIT")
                    if commits is not None:
                        commits.settled_position(conn)
                committed = True
            except BaseException:
                session.depth = 0
                if session.pid == os.getpid():
                    self._roll_back(session)
                raise
            finally:
                session.depth = 0
                session.aborted = None
                writer_lock.release()
        finally:
            # Outside the writer lock: the next writer need not wait for these system calls,
            # and `ChangeSlots.finish` leaves a slot alone once a newer writer has marked it.
            if perturb.ON:
                perturb.point("commit: COMMIT -> accounted")
            if session.pid == os.getpid():
                self.accounting.settle(session, guard, committed)
            if committed and commits is not None:
                commits.committed()

    def _roll_back(self, session: Session) -> None:
        conn = session.conn
        if conn is None or session.closed:
            return
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            # The connection's state is unknown: close it (which rolls back) and use a new one.
            self.pool.discard(session)

    def lost(self, session: Session, cause: str | None = None) -> str | None:
        """Why the open transaction is gone, if SQLite (or a fork) ended it; None while it is open."""
        if session.aborted is None and session.depth:
            try:
                gone = session.conn is not None and not session.closed and not session.conn.in_transaction
            except sqlite3.Error:
                gone = True
            if gone:
                session.aborted = cause or "SQLite rolled it back after an error"
        return session.aborted

    def still_open(self, session: Session) -> None:
        """Raise `TransactionAbortedError` if SQLite ended the open transaction."""
        reason = self.lost(session)
        if reason is not None:
            raise TransactionAbortedError(self.path, reason)

    def errors(self, session: Session | None = None) -> Translated:
        """Turn every `sqlite3` error into a `CatalogError`; note a transaction SQLite ended.

        Only a session inside a transaction has one to note (`lost` leaves any other alone), so
        every other block, a read's above all, shares one translator and allocates nothing.
        """
        if session is None or not session.depth:
            return self.translated
        return Translated(self.path, self.busy_timeout, functools.partial(self._note_lost, session))

    def _note_lost(self, session: Session, error: sqlite3.Error) -> None:
        self.lost(session, cause=f"{error}")

    def write(self, body: Callable[[sqlite3.Connection, Marker], T]) -> T:
        """Run a write's SQL, `body(conn, mark)`, in a transaction of its own (a SAVEPOINT of the
        calling thread's open one), SQLite's errors translated; see `in_session`."""
        with self.transaction(), self.pool.using() as session:
            return self.in_session(session, body)

    def in_session(self, session: Session, body: Callable[[sqlite3.Connection, Marker], T]) -> T:
        """Run `body(conn, mark)` in `session`'s open transaction, SQLite's errors translated.

        `mark(name, version_before)` must be called before the body changes a dataset's rows
        (`CommitAccounting.mark`): that is what makes the commit drop cached copies everywhere.
        """
        with self.errors(session):
            return body(session.check(self.path), self.accounting.marker(session))
