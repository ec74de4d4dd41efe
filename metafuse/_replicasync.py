"""The store replica's synchronisation: bringing the local copy up to the log, and what a read saw.

Owns the check a read makes before it runs on a store catalog (`ReplicaSync.before_read`: has
the log moved?), the catch-up that follows, what a transaction read (for the store's
serializability check), and `apply_changes`, which turns log entries into rows of the replica;
and so the connection every read runs on (`ReplicaSync.statement`), on a file as on a store.
It may not decide when a transaction begins or commits (it is handed the way to open one), talk
to the store except through `LogCommits`, or touch a catalog file that is not a replica.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from . import _rowwrites as rows
from ._connections import ConnectionPool, Session
from ._guard import FreshnessGuard
from ._lifecycle import Lifetime
from ._logcommits import Change, LogCommits
from ._rows import SELECT_DATASET, decode
from .errors import CatalogClosedError, CatalogFileError
from .model import Dataset


def apply_changes(conn: sqlite3.Connection, changes: Iterable[Change], mark: Callable[[str], None]) -> None:
    """Apply log entries' changes to the replica, inside the open write transaction.

    `mark(name)` is called for every dataset an entry names, before its rows change.
    """
    for change in changes:
        name = str(change["name"])
        data = change.get("dataset")
        row = conn.execute(rows.SAVE_ROW, (name,)).fetchone()
        mark(name)
        if data is None:
            if row is not None:
                rows.delete_rows(conn, row[0])
        else:
            dataset = Dataset.from_dict(data)
            stamp = dataset.last_modified or rows.now()
            if row is None:
                dataset_id = conn.execute(rows.INSERT_DATASET, rows.row_values(dataset, stamp)).lastrowid
                assert dataset_id is not None
                rows.write_children(conn, dataset_id, dataset)
                conn.execute(rows.SET_VERSION, (dataset.version, stamp.isoformat(), dataset_id))
            else:
                rows.replace_children(conn, row[0], dataset, row[2:5])
                conn.execute(*rows.changed_columns(dataset, stamp, row[5:], dataset.version, row[0]))
        conn.execute(rows.BUMP_CATALOG, (1, rows.now().isoformat()))


def describe_freshness(guard: FreshnessGuard | None, commits: LogCommits | None) -> str:
    """How a read proves itself fresh, in words (`CatalogStats.cache_freshness`)."""
    local = guard.description if guard is not None else "off"
    if commits is None:
        return local
    if commits.max_staleness is None:
        return f"{local}, after a check of the log's end before every read"
    return f"{local}, after a check of the log's end at most every {commits.max_staleness:g} s"


class ReplicaSync:
    """Keeps a store catalog's reads linearizable; hands every catalog's reads their connection.

    Safe under concurrent use: one thread catches up at a time, and threads whose reads began
    before a catch-up began take its result instead of catching up again; what a transaction
    read is kept on the calling thread's own `Session`. The catch-up lock is renewed in a
    forked child (`after_fork_in_child`).
    """

    def __init__(
        self,
        commits: LogCommits | None,
        pool: ConnectionPool,
        lifetime: Lifetime,
        transaction: Callable[[], contextlib.AbstractContextManager[None]],
        errors: Callable[[Session], contextlib.AbstractContextManager[None]],
        path: str,
    ) -> None:
        self.commits = commits
        self.pool = pool
        self.lifetime = lifetime
        self.transaction = transaction
        self.errors = errors
        self.path = path
        self._catching_up = threading.Lock()
        self._caught_up_from = -float("inf")
        """When the last finished catch-up began (monotonic): every entry acknowledged before
        then is applied to the replica."""

    def after_fork_in_child(self) -> None:
        """Give a forked child a catch-up lock of its own (a parent's thread may hold this one)."""
        self._catching_up = threading.Lock()

    @contextlib.contextmanager
    def statement(self, *, synced: bool = False, reads_all: bool = False) -> Iterator[sqlite3.Connection]:
        """This thread's connection, held for one read, with SQLite errors translated.

        On an object store, the replica first catches up with the log (unless `synced`: the
        caller already did), so the read reflects every commit acknowledged before it started;
        a read that `reads_all` datasets (a listing, a search, a count) inside a transaction
        makes that transaction depend on every dataset (see `note_read`). In a forked child
        that may not use the file, `CatalogFileError`.
        """
        if self.commits is not None and not synced:
            self.before_read()
        refused = self.pool.refused(writing=False)
        if refused is not None:
            raise CatalogFileError(self.path, refused)
        with self.pool.using() as session, self.errors(session):
            if reads_all and session.depth and self.commits is not None:
                session.read_all = True
            yield session.check(self.path)

    def read_stored(self, name: str) -> Dataset | None:
        """`name` as the database holds it, never from the cache (`Catalog.update`'s last attempt)."""
        with self.statement() as conn:
            row = conn.execute(SELECT_DATASET + " WHERE d.name = ?", (name,)).fetchone()
        return None if row is None else decode(row)

    def before_read(self) -> None:
        """Catch the replica up with the log before a read (not inside this thread's transaction)."""
        assert self.commits is not None
        if self.lifetime.closed:
            raise CatalogClosedError(self.commits.url)
        if self.pool.session().depth:
            return  # the transaction caught up when it began, and sees its own snapshot
        called = time.monotonic()
        self.commits.before_read(lambda: self.catch_up(called))

    def catch_up(self, called: float = float("inf")) -> None:
        """Apply every entry the log gained before `called` (default: before now).

        Threads that find the log moved queue here; one catches up at a time, and a thread
        that waited while another's catch-up ran, one that began after `called`, is done
        without looking at the log again: that catch-up applied everything acknowledged
        before it began, so before `called`.
        """
        with self._catching_up:
            if self._caught_up_from >= called:
                return
            began = time.monotonic()
            with self.transaction():
                pass  # the outermost transaction applies the log's new entries when it begins
            self._caught_up_from = began

    def note_read(self, name: str, dataset: Dataset | None) -> None:
        """Inside a transaction on an object store, remember that it read `name` (at this version).

        The commit checks the transaction's reads against every entry logged since it began,
        so a transaction whose reads another commit changed raises `ConflictError`: the same
        serializable outcome a catalog file gets from holding its writer lock.
        """
        if self.commits is None:
            return
        session = self.pool.session()
        if session.depth and name not in session.reads:
            session.reads[name] = None if dataset is None else dataset.version
