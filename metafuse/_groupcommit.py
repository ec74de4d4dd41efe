"""Group commit: what happens when several threads of one catalog save at once.

Owns the line of writes waiting to commit (`WriteQueue`), the choice of a leader, and the
leader's work: one transaction for the whole group, each write in a SAVEPOINT of its own, and
every write's outcome settled after the shared COMMIT. On a store a group is one log entry,
and a lost race fails only the writes it concerns. It may not run a write's SQL itself (each
write is a body it is given) nor open a transaction except through `Transactions`.
"""

from __future__ import annotations

import builtins
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from . import faults, perturb
from ._connections import ConnectionPool, Session
from ._logcommits import LogCommits
from ._transactions import Held, Transactions
from .errors import BusyError, CatalogError, CatalogFileError, ConflictError, TransactionAbortedError

T = TypeVar("T")


class Write(Generic[T]):
    """One write waiting for a group commit: what to run, and how it ended."""

    __slots__ = ("body", "done", "error", "names", "taken", "value")

    def __init__(self, body: Callable[[Session], T]) -> None:
        self.body = body
        self.taken = False
        """Set (under the queue's lock) when a leader takes this write into its group."""
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None
        self.names: set[str] = set()
        """The datasets this write changed in its group's last transaction (on an object store)."""

    def outcome(self) -> T:
        """The write's result, or its exception raised in the calling thread."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class WriteQueue:
    """The writes of one catalog's threads waiting to be committed as a group, in arrival order."""

    def __init__(self) -> None:
        # An RLock, not a Lock: a Condition asks an RLock whether this thread holds it, but tests
        # a Lock's ownership with acquire(False), which gevent's patched Lock turns into a yield
        # to the hub. The leader notifies while holding the writer lock, so with a Lock every
        # greenlet, a `transaction()` waiting for that lock included, ran behind each group and
        # the waiter could starve into `BusyError`; with an RLock nothing here yields but wait().
        self.changed = threading.Condition(threading.RLock())
        """Guards the fields below; notified whenever the line moves."""
        self.pending: builtins.list[Write[Any]] = []
        self.leading = False
        """Whether a thread has taken the lead and waits for the writer lock."""

    def step_down(self, leader: Write[Any]) -> None:
        """A leader that did not get the writer lock leaves the lead and the line to the next."""
        with self.changed:
            self.leading = False
            self.withdraw(leader)

    def withdraw(self, write: Write[Any]) -> None:
        """Take a write that was not taken into a group out of the line (the condition is held)."""
        if not write.taken and write in self.pending:
            self.pending.remove(write)
        self.changed.notify_all()


class GroupCommit:
    """Commits the writes of one catalog's threads together; counts the groups it made.

    `queue` is renewed in a forked child (`after_fork_in_child`): writes queued by the parent's
    threads are the parent's.
    """

    def __init__(self, transactions: Transactions, pool: ConnectionPool, commits: LogCommits | None) -> None:
        self.transactions = transactions
        self.pool = pool
        self.commits = commits
        self.queue = WriteQueue()
        self.group_commits = 0
        """Transactions that committed the writes of several threads at once."""
        self.grouped_writes = 0
        """Writes committed in those transactions."""

    def after_fork_in_child(self) -> None:
        """Give a forked child an empty line of its own."""
        try:
            keep = faults.active("fork_queue")
        except ValueError:  # a bad METAFUSE_FAULTS is reported where faults are used, not in a fork hook
            keep = False
        if not keep:
            self.queue = WriteQueue()

    def run(self, body: Callable[[Session], T]) -> T:
        """Run one write `body` in a transaction, committed together with other threads' writes.

        Threads of this catalog that write at the same time queue here, in arrival order. The
        first in line leads: it waits for the writer lock, then takes every write queued by
        then and commits them in one transaction (one fsync), each in a SAVEPOINT of its own: a
        write that raises (a conflict, say) rolls back alone and raises in its own thread. The
        others wait for their leader to settle them, never for the lock, so while one group
        commits, the next one gathers and its leader waits for the lock. Every write is
        acknowledged only after the shared COMMIT, and a failed COMMIT fails them all. A write
        neither led nor taken within the busy timeout is withdrawn (`BusyError`). Inside an
        explicit `transaction()` block, and with the `torn_write` fault on (it commits
        mid-write), `body` runs alone.

        On an object store the group is one log entry (one PUT). A commit that loses the log
        number to another machine's entry that changed a dataset some writes of the group
        changed fails exactly those writes (`ConflictError`); the others run again in a new
        transaction, as many times as needed, and are acknowledged once their entry is in the log.
        """
        tx = self.transactions
        session = self.pool.session()
        if session.depth or faults.active("torn_write"):
            with tx.transaction(), self.pool.using() as used:
                return body(used)
        if tx.read_only:
            raise CatalogFileError(tx.path, "was opened read-only; writes are refused")
        request: Write[T] = Write(body)
        queue = self.queue
        deadline = time.monotonic() + tx.busy_timeout
        with queue.changed:
            queue.pending.append(request)
            try:
                while not request.taken and (queue.leading or queue.pending[0] is not request):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise BusyError(tx.path, tx.busy_timeout)
                    queue.changed.wait(remaining)
            except BaseException:
                queue.withdraw(request)
                raise
            if not request.taken:
                queue.leading = True
        if request.taken:
            # Another thread leads this write: its outcome is known only once that thread has
            # settled it, after the shared COMMIT (or the rollback of a failed one).
            request.done.wait()
            return request.outcome()
        try:
            acquired = tx.write_lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
        except BaseException:
            queue.step_down(request)
            raise
        if not acquired:
            queue.step_down(request)
            raise BusyError(tx.path, tx.busy_timeout)
        held = Held(tx.write_lock)
        try:
            if perturb.ON:
                perturb.point("group: lead taken -> batch collected")
            with queue.changed:
                batch, queue.pending = queue.pending, []
                for write in batch:
                    write.taken = True
                queue.leading = False
                queue.changed.notify_all()  # the taken stop waiting; the next in line leads
            self._commit_batch(batch, held, request)
        finally:
            held.release()
        request.done.wait()
        return request.outcome()

    def _commit_batch(self, batch: builtins.list[Write[Any]], held: Held, mine: Write[Any]) -> None:
        """Run `batch` in one transaction (the writer lock is held); settle every write's outcome."""
        path = self.transactions.path
        try:
            refused = self.pool.refused(writing=True)
            if refused is not None:
                raise CatalogFileError(path, refused)
            remaining = batch
            while remaining:
                try:
                    self._run_batch(remaining, held)
                except ConflictError as conflict:
                    # On a store, publishing lost to another machine's change of `conflict.name`:
                    # the writes that changed it fail, the others run again.
                    losers = [w for w in remaining if conflict.name in w.names]
                    if self.commits is None or not losers:
                        raise
                    if len(remaining) > 1 and faults.active("unchecked_group"):
                        # The planted bug: one loser keeps what its rolled-back transaction
                        # returned and is acknowledged, though its version check failed.
                        forged = losers.pop(0)
                        remaining = [w for w in remaining if w is not forged]
                    elif len(losers) == len(remaining):
                        raise
                    for write in losers:
                        write.error, write.value = conflict, None
                    remaining = [w for w in remaining if w not in losers]
                    if remaining:
                        held = self.transactions.relock()
                    continue
                if len(remaining) > 1:
                    self.group_commits += 1
                    self.grouped_writes += len(remaining)
                break
        except BaseException as error:
            # An interrupt belongs to the thread it hit; the others' writes were not committed.
            shared = (
                error
                if isinstance(error, Exception)
                else TransactionAbortedError(path, f"the committing thread stopped ({type(error).__name__})")
            )
            for write in batch:
                if write.error is None:
                    write.error = error if write is mine else shared
                    write.value = None
        finally:
            held.release()
            if perturb.ON:
                perturb.point("group: COMMIT -> followers acknowledged")
            for write in batch:
                write.done.set()

    def _run_batch(self, batch: builtins.list[Write[Any]], held: Held) -> None:
        """One transaction of `batch`, each write in a SAVEPOINT of its own (alone: none)."""
        tx = self.transactions
        with self.pool.using() as session, tx.outermost(session, held):
            if len(batch) == 1:
                batch[0].error = None
                batch[0].value = batch[0].body(session)
                batch[0].names = set(session.before)
                return
            for write in batch:
                write.error, write.value = None, None
                changed = set(session.before)
                try:
                    with tx.savepoint(session):
                        write.value = write.body(session)
                except CatalogError as error:
                    if isinstance(error, TransactionAbortedError) or faults.active("group_abort"):
                        raise
                    write.error = error
                write.names = set(session.before) - changed
                if faults.active("early_ack"):
                    write.done.set()  # the bug: the write's thread returns before the COMMIT
