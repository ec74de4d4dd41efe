"""`Catalog`: the one entry object. Datasets in one SQLite file, optimistic versions, a fresh cache.

Owns the public verbs and their arguments: each verb validates what it is given and hands the
work to the module that owns it (`_transactions`, `_groupcommit`, `_rowwrites`, `_queries`,
`_updates`, `_replicasync`, `_lifecycle`, `_stats`), wiring those parts together when a
catalog opens.
It may not hold the logic of those parts: no transaction steps, no row SQL, no commit
accounting here; and no module below it imports it.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import functools
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import _queries as queries
from . import _rowwrites as rows
from . import _schema, faults, limits, perturb, validation
from . import _updates as updates
from ._accounting import CommitAccounting, Marker
from ._cache import DatasetCache
from ._connections import ConnectionPool
from ._groupcommit import GroupCommit
from ._lifecycle import Lifetime, connect, open_commits, open_file, register
from ._logcommits import LogCommits
from ._replicasync import ReplicaSync
from ._rows import SELECT_DATASET, decode
from ._stats import CatalogStats, gather
from ._transactions import Transactions
from .errors import (
    CatalogClosedError,
    CommitUnknownError,
    ConflictError,
    ValidationError,
)
from .model import Dataset

log = logging.getLogger("metafuse.catalog")

DEFAULT_PATH = "metafuse_catalog.db"
"""Catalog file used when no path is given (the CLI also honours `$METAFUSE_CATALOG`)."""
SYNCHRONOUS_MODES = ("FULL", "NORMAL")
"""Accepted durability settings: FULL (default) survives power loss; NORMAL survives crashes."""


@dataclasses.dataclass(frozen=True)
class LineageEdge:
    """`downstream` is derived from `upstream`; `depth` counts edges from the dataset asked about."""

    downstream: str
    upstream: str
    depth: int


class Catalog:
    """A data catalog stored in one SQLite file, safe to share between threads and processes.

    Guarantees under concurrent use:
    - Every write runs in one `BEGIN IMMEDIATE` transaction; readers never see half of one.
    - A write names the version it read; if the stored version differs it raises
      `ConflictError` and writes nothing, so no update is silently lost.
    - A read that starts after a write was acknowledged (its call returned), in any thread or
      any process, returns that write or a newer one, cached or not.
      This covers writes through MetaFuse and commits by any other SQLite client of the file
      (see docs/architecture.md, "Freshness").
    - Each thread gets its own connection, opened on first use; `close()` closes all of them,
      from any thread, even while other threads are inside a call: those calls finish or raise
      `CatalogClosedError`, and every later call raises it.
    - After `os.fork()` the child may keep using an inherited Catalog (it opens new connections).

    The path is resolved once, at open (relative paths, `..` and symlinks): `path` is the file
    itself, so every spelling of it shares one set of connections' files and change slots.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_PATH,
        *,
        cache_size: int = 1024,
        busy_timeout: float = 5.0,
        synchronous: str = "FULL",
        read_only: bool = False,
        create: bool = True,
        _commits: LogCommits | None = None,
    ) -> None:
        spelled = os.fspath(path)
        self._commits = _commits
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValidationError("cache_size", "must be a whole number >= 0", cache_size)
        validation.seconds("busy_timeout", busy_timeout)
        mode = str(synchronous).upper()
        if mode not in SYNCHRONOUS_MODES:
            raise ValidationError("synchronous", f"must be one of {SYNCHRONOUS_MODES}", synchronous)
        self.busy_timeout = float(busy_timeout)
        self.synchronous = mode
        self.read_only = read_only
        _schema.check_path_text(spelled)
        self.path = os.path.realpath(spelled)
        with _schema.registered(self.path) as first:
            self._open(spelled, first, read_only=read_only, create=create, cache_size=cache_size)

    def _open(self, spelled: str, first: bool, *, read_only: bool, create: bool, cache_size: int) -> None:
        open_file(self.path, spelled, first, read_only=read_only, create=create)
        self._life = Lifetime()
        connector = functools.partial(
            connect,
            self.path,
            read_only=read_only,
            busy_timeout=self.busy_timeout,
            synchronous=self.synchronous,
        )
        self._pool = ConnectionPool(self.path, connector)
        self._search_backend = self._life.start(
            self._pool,
            self.path,
            spelled,
            connector,
            busy_timeout=self.busy_timeout,
            read_only=read_only,
            commits=self._commits,
        )
        self._cache = DatasetCache(cache_size if self._life.guard is not None else 0)
        self._accounting = CommitAccounting(
            self._cache, on_store=self._commits is not None, path=self.path, busy_timeout=self.busy_timeout
        )
        self._transactions = Transactions(
            self.path, self.busy_timeout, read_only, self._pool, self._commits, self._life, self._accounting
        )
        self._writes = GroupCommit(self._transactions, self._pool, self._commits)
        self._replica = ReplicaSync(
            self._commits,
            self._pool,
            self._life,
            self._transactions.transaction,
            self._transactions.errors,
            self.path,
        )
        self._updates = updates.Updates(
            transaction=self._transactions.transaction, on_store=self._commits is not None
        )
        path = self.path
        self._pool.when_empty(lambda: _schema.unregister(path))
        register(self)

    @classmethod
    def open(
        cls,
        target: str | os.PathLike[str] = DEFAULT_PATH,
        *,
        max_staleness: float | None = None,
        snapshot_every: int = 100,
        retention: float | None = None,
        settle_seconds: float | None = None,
        **options: Any,
    ) -> Catalog:
        """Open a catalog file, or a catalog on an object store; both have this same API.

        `target` is a path (exactly as `Catalog(path)`), `s3://bucket/prefix?endpoint_url=...`
        (needs the `metafuse[s3]` extra) or `log+file:///directory` (a directory used as the
        store). On a store, commits go to a log of immutable objects and reads come from a
        private local replica (see docs/object-store.md). Reads are linearizable: each one first
        asks the store whether the log moved (one LIST). `max_staleness=seconds` skips that
        question while the last answer is younger, for reads that may be that much behind.
        A snapshot of the catalog is uploaded every `snapshot_every` commits. `retention`
        (seconds, fixed when the catalog is created; default a day) is how long snapshots and
        log entries a newer snapshot covers are kept before they are deleted. A commit whose
        write got no definite answer is sent again for `settle_seconds` (default 60) before it
        raises `CommitUnknownError` (see `settle`).
        """
        text = os.fspath(target)
        commits = open_commits(
            text,
            options,
            max_staleness=max_staleness,
            snapshot_every=snapshot_every,
            retention=retention,
            settle_seconds=settle_seconds,
        )
        if commits is None:
            return cls(text, **options)
        try:
            return cls(commits.replica_path, **{**options, "create": True}, _commits=commits)
        except BaseException:
            commits.close()
            raise

    @property
    def location(self) -> str:
        """What this catalog was opened on: its file's path, or its object store's URL."""
        return self.path if self._commits is None else self._commits.url

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection this catalog opened, in any thread; idempotent.

        Safe while other threads are inside calls on this catalog: a connection in use is closed
        by its thread when that call ends, and the shared-memory maps go when the last call that
        holds them returns. Every call that starts after `close()` raises `CatalogClosedError`.
        """
        self._life.close(self._pool, self._cache, self._commits)

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({self.path!r})" if self._commits is None else f"Catalog.open({self.location!r})"

    # -- reads -------------------------------------------------------------------------------

    def get(self, name: str) -> Dataset | None:
        """Return the dataset called `name`, or None. Never older than an acknowledged write."""
        on_store = self._commits is not None
        if on_store:
            self._replica.before_read()
        guard = self._life.guard
        if guard is None and self._life.closed and not faults.active("close_unguarded"):
            raise CatalogClosedError(self.path)
        if guard is not None and type(name) is str:
            # A cached entry's name was valid when stored: a hit needs no re-validation.
            cached = self._cache.get(name, guard)
            if cached is not None:
                if on_store:
                    self._replica.note_read(name, cached)
                return cached
        validation.dataset_name(name)
        # Stamp before reading the database: see metafuse._guard.
        stamp = guard.stamp(name) if guard is not None else None
        if perturb.ON:
            perturb.point("read: stamp loaded -> database read")
        with self._replica.statement(synced=True) as conn:
            row = conn.execute(SELECT_DATASET + " WHERE d.name = ?", (name,)).fetchone()
        dataset = None if row is None else decode(row)
        if on_store:
            self._replica.note_read(name, dataset)
        if dataset is None:
            return None
        if stamp is not None:
            if perturb.ON:
                perturb.point("read: database read -> cached")
            offset, token, epoch = stamp
            self._cache.put(name, offset, token, dataset, epoch)
        return dataset

    def list(
        self,
        *,
        domain: str | None = None,
        owner: str | None = None,
        tag: str | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> builtins.list[Dataset]:
        """Return up to `limit` datasets ordered by name, filtered; pass the last name as `after`."""
        sql, params = queries.listing(
            None if domain is None else validation.domain(domain),
            None if owner is None else validation.short_text("owner", owner),
            None if tag is None else validation.tag(tag),
            None if after is None else validation.dataset_name(after, "after"),
            validation.positive_int("limit", limit, limits.PAGE_MAX),
        )
        with self._replica.statement(reads_all=True) as conn:
            return [decode(row) for row in conn.execute(sql, params)]

    def search(self, query: str, *, limit: int = 100) -> builtins.list[Dataset]:
        """Return datasets matching `query` (FTS5 syntax) over names, descriptions, fields, tags.

        Best matches first. A query that is not valid FTS5 is searched as plain words instead.
        """
        validation.search_query(query)
        validation.positive_int("limit", limit, limits.PAGE_MAX)
        with self._replica.statement(reads_all=True) as conn:
            if self._search_backend != "fts5":
                return queries.search_like(conn, query, limit)
            return queries.search_fts5(conn, query, limit, self.path, self.busy_timeout)

    def lineage(
        self, name: str, *, direction: str = "upstream", depth: int = 3
    ) -> builtins.list[LineageEdge]:
        """Return the lineage edges within `depth` steps of `name`, nearest first.

        `direction` is "upstream" (what `name` is derived from) or "downstream" (what is derived
        from it). Upstream names need not be datasets in this catalog; cycles are walked once.
        """
        validation.dataset_name(name)
        validation.positive_int("depth", depth, limits.LINEAGE_DEPTH_MAX)
        if direction not in ("upstream", "downstream"):
            raise ValidationError("direction", "must be 'upstream' or 'downstream'", direction)
        with self._replica.statement(reads_all=True) as conn:
            edges = queries.lineage(conn, name, direction, depth)
        return [LineageEdge(*edge) for edge in edges]

    @property
    def version(self) -> int:
        """The catalog-wide version: the number of writes ever committed to this file.

        On an object store, the number of commits in its log (the sequence of the newest entry
        the replica has applied): the same for every client at the same point of the log,
        whether its replica started from a snapshot or replayed the log.
        """
        with self._replica.statement(reads_all=True) as conn:
            query = queries.CATALOG_VERSION if self._commits is None else queries.LOG_POSITION
            return int(conn.execute(query).fetchone()[0])

    @property
    def count(self) -> int:
        """Number of datasets in the catalog."""
        with self._replica.statement(reads_all=True) as conn:
            return int(conn.execute("SELECT count(*) FROM datasets").fetchone()[0])

    def stats(self) -> CatalogStats:
        """Return this object's open connections and cache counters (used to find leaks)."""
        return gather(
            self.path,
            self.location,
            self._search_backend,
            self._life.guard,
            self._commits,
            self._pool,
            self._cache,
            self._updates,
            self._writes,
        )

    def integrity_check(self) -> builtins.list[str]:
        """Run `PRAGMA integrity_check`; `["ok"]` means the file is intact."""
        with self._replica.statement() as conn:
            return [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]

    def checkpoint(self) -> bool:
        """Run a TRUNCATE WAL checkpoint; False if a reader or writer kept it from completing."""
        with self._replica.statement() as conn:
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        return int(busy) == 0

    # -- writes ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one atomic transaction; nested blocks become SAVEPOINTs.

        The outermost block starts with `BEGIN IMMEDIATE` and commits at its end; any exception
        rolls back its own block and propagates. Writes inside are visible to other connections
        only after the outermost block commits.

        All or nothing under every error: when SQLite itself ends the transaction early (a full
        disk, an I/O error), every later statement in the block raises `TransactionAbortedError`
        and so does the end of the outermost block, even if the caller caught the first error;
        nothing of the block is committed.
        """
        with self._transactions.transaction():
            yield

    def settle(self, error: CommitUnknownError) -> bool:
        """Decide a commit that raised `CommitUnknownError`: True if it committed (exactly once),
        False if it never will. Until then a copy of it may still land, so settle before writing
        the same change again, and within the catalog's retention. Raises `StorageError` while
        the store is still unreachable, and when the retention has deleted the commit's number
        meanwhile (the log can no longer tell; look for the change in the catalog)."""
        if self._commits is None:
            raise ValidationError("error", "only a catalog on an object store has commits to settle", error)
        if self._life.closed:
            raise CatalogClosedError(self.location)
        return self._commits.settle(error)

    def create(self, dataset: Dataset) -> Dataset:
        """Add a new dataset at version 1 and return it; `ConflictError` if the name exists."""
        return self.create_many([dataset])[0]

    def create_many(self, datasets: Iterable[Dataset]) -> builtins.list[Dataset]:
        """Add many new datasets in one transaction: all of them, or none on any error."""
        checked = [_checked(dataset) for dataset in datasets]
        stamp = rows.now()
        return self._transactions.write(lambda conn, mark: rows.insert_new(conn, checked, stamp, mark))

    def save(self, dataset: Dataset, *, expected_version: int) -> Dataset:
        """Replace a dataset if its stored version is `expected_version`; return the new one.

        Raises `ConflictError` (stored version differs) or `NotFoundError` (no such dataset);
        in both cases nothing was written.
        """
        dataset = _checked(dataset)
        validation.version("expected_version", expected_version)
        stamp = rows.now()

        def replace(conn: sqlite3.Connection, mark: Marker) -> Dataset:
            return rows.replace(conn, dataset, expected_version, stamp, mark, self._cache.invalidate)

        return self._writes.run(lambda session: self._transactions.in_session(session, replace))

    def update(
        self,
        name: str,
        change: Callable[[Dataset], Dataset],
        *,
        max_attempts: int = 5,
        backoff: float = 0.002,
        max_backoff: float = 0.1,
        on_conflict: Callable[[ConflictError, int], None] | None = None,
    ) -> Dataset:
        """Read, apply `change`, save with the version read; succeed within `max_attempts` attempts.

        Attempts 1 to max_attempts-1 are optimistic: read (possibly from the cache), `change`,
        save with the version read. After each conflict `on_conflict(error, attempt)` is called
        and the update sleeps a uniformly random time in
        [0, min(max_backoff, backoff * 2**(attempt-1))] ("full jitter"). The last attempt is
        pessimistic: it reads, changes and saves inside one write transaction (`BEGIN IMMEDIATE`),
        where no other writer can intervene, so it cannot conflict. On a catalog file the update
        therefore succeeds within `max_attempts` attempts whenever the writer lock can be had
        within the busy timeout (else `BusyError`). `change` must be quick (on the last attempt it
        runs holding the writer lock), must return a dataset with the same name, and may be called
        several times.

        On an object store no lock spans machines, so the bound is not kept: the pessimistic
        attempt reads the dataset fresh from the log, changes it and appends in one transaction,
        and when another writer's commit to `name` wins the log position first it calls
        `on_conflict` and runs again at once, on top of that commit. Each repetition past
        `max_attempts` therefore means another writer's newer commit to `name` landed while this
        attempt ran: the update is lock-free (some writer always progresses) and makes at most
        `max_attempts + n` attempts, `n` being the commits to `name` by other writers that land
        during its pessimistic attempts.
        """
        validation.positive_int("max_attempts", max_attempts, 1_000_000)
        validation.seconds("backoff", backoff)
        validation.seconds("max_backoff", max_backoff)
        return self._updates.run(
            name,
            change,
            (max_attempts, backoff, max_backoff),
            on_conflict,
            read=self.get,
            read_stored=self._replica.read_stored,
            save=lambda dataset, expected: self.save(dataset, expected_version=expected),
        )

    def delete(self, name: str, *, expected_version: int) -> None:
        """Delete a dataset if its stored version is `expected_version`.

        Raises `ConflictError` or `NotFoundError` without deleting anything. Lineage edges that
        other datasets hold to `name` are kept: they name an upstream that no longer exists.
        """
        validation.dataset_name(name)
        validation.version("expected_version", expected_version)
        self._transactions.write(
            lambda conn, mark: rows.remove(conn, name, expected_version, mark, self._cache.invalidate)
        )

    # -- internals ---------------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        self._transactions.after_fork_in_child()
        self._writes.after_fork_in_child()  # writes queued by the parent's threads are the parent's
        self._replica.after_fork_in_child()
        self._cache._after_fork()


def _checked(dataset: Dataset) -> Dataset:
    if not isinstance(dataset, Dataset):
        raise ValidationError("dataset", "must be a metafuse.Dataset", dataset)
    return dataset
