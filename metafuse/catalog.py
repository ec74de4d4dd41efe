"""`Catalog`: the one entry object. Datasets in one SQLite file, optimistic versions, a fresh cache."""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import math
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from . import _schema, faults, limits, validation
from ._cache import DatasetCache
from ._connections import ConnectionPool, Session
from ._fairlock import FairLock
from ._freshness import open_slots, sidecar_path
from ._guard import FreshnessGuard
from ._logcommits import Change, LogCommits, is_store_url
from ._rows import CHILDREN_AS_JSON, SELECT_DATASET, decode
from ._sqlite_errors import translate
from ._walindex import open_walindex, release_unused
from .errors import (
    BusyError,
    CatalogClosedError,
    CatalogError,
    CatalogFileError,
    CommitUnknownError,
    ConflictError,
    NotFoundError,
    TransactionAbortedError,
    ValidationError,
)
from .model import Dataset

log = logging.getLogger("metafuse.catalog")
T = TypeVar("T")

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


@dataclasses.dataclass(frozen=True)
class CatalogStats:
    """A snapshot of one `Catalog` object's resources and cache counters."""

    path: str
    open_connections: int
    cache_size: int
    cache_capacity: int
    cache_hits: int
    cache_misses: int
    cache_invalidations: int
    cache_freshness: str
    search_backend: str
    pessimistic_updates: int = 0
    """Updates that needed their last attempt, made under the writer lock (see `Catalog.update`)."""
    group_commits: int = 0
    """Transactions that committed the writes of several threads at once (see `Catalog.save`)."""
    grouped_writes: int = 0
    """Writes committed in those transactions: grouped_writes / group_commits is writes per fsync."""
    location: str = ""
    """What the catalog was opened on: `path`, or the object store's URL (`path` is then the replica)."""
    retention_seconds: float | None = None
    """On an object store, how long snapshots and the log entries they cover are kept (see
    `Catalog.open`); None for a local file, and for a store catalog made without one (it keeps all)."""

    def to_dict(self) -> dict[str, Any]:
        """Return the snapshot as plain values."""
        return dataclasses.asdict(self)


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
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)):
            raise ValidationError("busy_timeout", "must be a number of seconds", busy_timeout)
        if not 0 <= busy_timeout <= 3600:
            raise ValidationError("busy_timeout", "must be from 0 to 3600 seconds", busy_timeout)
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
        exists = _schema.check_file(spelled, read_header=first)
        if not exists:
            if read_only:
                raise CatalogFileError(self.path, "does not exist (opened read-only)")
            if not create:
                raise CatalogFileError(self.path, "does not exist")
            _schema.create_atomically(self.path)
        _schema.refuse_hard_links(self.path)
        self._closed = False
        self._pessimistic = 0
        self._queue = _WriteQueue()
        self._group_commits = 0
        self._grouped_writes = 0
        self._pool = ConnectionPool(self.path, self._connect)
        self._write_lock = self._new_write_lock()
        self._guard: FreshnessGuard | None = None
        try:
            with self._sqlite_errors(), self._pool.using() as session:
                conn = session.check(self.path)
                # Schema checks first: a file that is refused must be left byte-for-byte as found.
                self._search_backend = _schema.migrate(conn, self.path, read_only=read_only)
                if not read_only and _journal_mode(conn) != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                if self._commits is not None:
                    self._commits.prepare(conn)
            # Without a writable change-slot file no read could prove itself fresh: no cache.
            self._guard = None if read_only else self._open_guard(spelled)
        except BaseException:
            self._pool.close_all()
            raise
        self._cache = DatasetCache(cache_size if self._guard is not None else 0)
        path = self.path
        self._pool.when_empty(lambda: _schema.unregister(path))
        _catalogs.add(self)

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
        if not isinstance(text, str) or not is_store_url(text):
            store_only = {"max_staleness": max_staleness, "retention": retention}
            store_only["settle_seconds"] = settle_seconds
            for option, value in store_only.items():
                if value is not None:
                    raise ValidationError(option, "applies only to a catalog on an object store", value)
            return cls(text, **options)
        if options.get("read_only"):
            raise ValidationError("read_only", "is not supported for a catalog on an object store", text)
        commits = LogCommits.open(
            text,
            create=bool(options.get("create", True)),
            max_staleness=max_staleness,
            snapshot_every=snapshot_every,
            retention=retention,
            settle_seconds=settle_seconds,
        )
        try:
            return cls(commits.replica_path, **{**options, "create": True}, _commits=commits)
        except BaseException:
            commits.close()
            raise

    @property
    def location(self) -> str:
        """What this catalog was opened on: its file's path, or its object store's URL."""
        return self.path if self._commits is None else self._commits.url

    def _open_guard(self, spelled: str) -> FreshnessGuard | None:
        spelling = faults.active("path_spelling")
        sidecar = sidecar_path(os.path.abspath(spelled) if spelling else self.path)
        slots = open_slots(self.path, sidecar)
        if slots is None:
            return None
        wal = open_walindex(self.path, self._connect)
        return FreshnessGuard(slots, wal, trust_slots_alone=spelling)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            _schema.sqlite_uri(self.path, read_only=self.read_only),
            timeout=self.busy_timeout,
            isolation_level=None,  # transactions are explicit: BEGIN IMMEDIATE for every write
            check_same_thread=False,  # only the owning thread uses it; close() may come from any
            uri=True,
        )
        try:
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        except BaseException:
            conn.close()  # a damaged file can fail here, before the pool tracks the connection
            raise
        return conn

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection this catalog opened, in any thread; idempotent.

        Safe while other threads are inside calls on this catalog: a connection in use is closed
        by its thread when that call ends, and the shared-memory maps go when the last call that
        holds them returns. Every call that starts after `close()` raises `CatalogClosedError`.
        """
        self._closed = True
        guard, self._guard = self._guard, None
        if guard is not None and guard.wal is not None:
            guard.wal.close()
        # A replica's file goes with its catalog: no later open in this process will reuse its
        # `-shm` mapping, and no other connection can take a lock on it once this one is closed.
        unmap = self._commits is not None and guard is not None and not faults.active("close_unguarded")
        # The file stays registered as open in this process until the last connection is really
        # closed (a busy one closes when its call ends): see `_schema.registered`.
        self._pool.close_all()
        self._cache.clear()
        if self._commits is not None:
            self._commits.close()
        if guard is not None and faults.active("close_unguarded"):
            guard.slots.close()  # the bug: unmaps under the feet of calls still reading it
        if unmap:
            # Calls still running hold the guard, so its WAL-index view outlives them; else the
            # view is released now, and unmapped unless a connection of ours still locks the file.
            del guard
            release_unused()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({self.path!r})" if self._commits is None else f"Catalog.open({self.location!r})"

    # -- reads -------------------------------------------------------------------------------

    def get(self, name: str) -> Dataset | None:
        """Return the dataset called `name`, or None. Never older than an acknowledged write."""
        if self._commits is not None:
            self._sync_reads()
        guard = self._guard
        if guard is None and self._closed and not faults.active("close_unguarded"):
            raise CatalogClosedError(self.path)
        if guard is not None and type(name) is str:
            # A cached entry's name was valid when stored: a hit needs no re-validation.
            cached = self._cache.get(name, guard)
            if cached is not None:
                self._note_read(name, cached)
                return cached
        validation.dataset_name(name)
        # Stamp before reading the database: see metafuse._guard.
        stamp = guard.stamp(name) if guard is not None else None
        with self._statement(synced=True) as conn:
            row = conn.execute(SELECT_DATASET + " WHERE d.name = ?", (name,)).fetchone()
        dataset = None if row is None else decode(row)
        self._note_read(name, dataset)
        if dataset is None:
            return None
        if stamp is not None:
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
        clauses: builtins.list[str] = []
        params: builtins.list[Any] = []
        if domain is not None:
            clauses.append("d.domain = ?")
            params.append(validation.domain(domain))
        if owner is not None:
            clauses.append("d.owner = ?")
            params.append(validation.short_text("owner", owner))
        if tag is not None:
            clauses.append("d.id IN (SELECT dataset_id FROM tags WHERE tag = ?)")
            params.append(validation.tag(tag))
        if after is not None:
            clauses.append("d.name > ?")
            params.append(validation.dataset_name(after, "after"))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        params.append(validation.positive_int("limit", limit, limits.PAGE_MAX))
        sql = f"{SELECT_DATASET}{where} ORDER BY d.name LIMIT ?"
        with self._statement(reads_all=True) as conn:
            return [decode(row) for row in conn.execute(sql, params)]

    def search(self, query: str, *, limit: int = 100) -> builtins.list[Dataset]:
        """Return datasets matching `query` (FTS5 syntax) over names, descriptions, fields, tags.

        Best matches first. A query that is not valid FTS5 is searched as plain words instead.
        """
        validation.search_query(query)
        validation.positive_int("limit", limit, limits.PAGE_MAX)
        if self._search_backend != "fts5":
            return self._search_like(query, limit)
        sql = (
            f"{SELECT_DATASET} JOIN (SELECT rowid AS id, rank FROM search_index"
            " WHERE search_index MATCH ? ORDER BY rank LIMIT ?) AS hits ON hits.id = d.id"
            " ORDER BY hits.rank, d.name"
        )
        with self._statement(reads_all=True) as conn:
            try:
                rows = conn.execute(sql, (query, limit)).fetchall()
            except sqlite3.OperationalError as error:
                if translate(error, self.path, self.busy_timeout) is not None:
                    raise  # a lock or file problem, not the query's syntax
                rows = conn.execute(sql, (_as_plain_words(query), limit)).fetchall()
        return [decode(row) for row in rows]

    def _search_like(self, query: str, limit: int) -> builtins.list[Dataset]:
        clauses = []
        params: builtins.list[Any] = []
        for word in query.split():
            pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            clauses.append(
                "(s.name LIKE ? ESCAPE '\\' OR s.description LIKE ? ESCAPE '\\'"
                " OR s.field_names LIKE ? ESCAPE '\\' OR s.tags LIKE ? ESCAPE '\\')"
            )
            params.extend([pattern] * 4)
        sql = (
            f"{SELECT_DATASET} JOIN search_index AS s ON s.rowid = d.id"
            f" WHERE {' AND '.join(clauses)} ORDER BY d.name LIMIT ?"
        )
        with self._statement(reads_all=True) as conn:
            return [decode(row) for row in conn.execute(sql, [*params, limit])]

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
        walk = _UPSTREAM_WALK if direction == "upstream" else _DOWNSTREAM_WALK
        with self._statement(reads_all=True) as conn:
            # One read transaction, so the existence check and the walk see the same snapshot
            # (inside a caller's write transaction, that transaction already is one).
            own = not conn.in_transaction
            if own:
                conn.execute("BEGIN")
            try:
                if conn.execute("SELECT 1 FROM datasets WHERE name = ?", (name,)).fetchone() is None:
                    raise NotFoundError(name)
                rows = conn.execute(walk, {"name": name, "depth": depth}).fetchall()
            finally:
                if own:
                    conn.execute("COMMIT")
        return [LineageEdge(str(down), str(up), int(level)) for down, up, level in rows]

    @property
    def version(self) -> int:
        """The catalog-wide version: the number of writes ever committed to this file.

        On an object store, the number of commits in its log (the sequence of the newest entry
        the replica has applied): the same for every client at the same point of the log,
        whether its replica started from a snapshot or replayed the log.
        """
        with self._statement(reads_all=True) as conn:
            query = _CATALOG_VERSION if self._commits is None else _LOG_POSITION
            return int(conn.execute(query).fetchone()[0])

    @property
    def count(self) -> int:
        """Number of datasets in the catalog."""
        with self._statement(reads_all=True) as conn:
            return int(conn.execute("SELECT count(*) FROM datasets").fetchone()[0])

    def stats(self) -> CatalogStats:
        """Return this object's open connections and cache counters (used to find leaks)."""
        cache = self._cache.stats()
        return CatalogStats(
            path=self.path,
            open_connections=self._pool.open_count,
            cache_size=cache.size,
            cache_capacity=cache.capacity,
            cache_hits=cache.hits,
            cache_misses=cache.misses,
            cache_invalidations=cache.invalidations,
            cache_freshness=self._freshness_description(),
            search_backend=self._search_backend,
            pessimistic_updates=self._pessimistic,
            group_commits=self._group_commits,
            grouped_writes=self._grouped_writes,
            location=self.location,
            retention_seconds=None if self._commits is None else self._commits.log.retention,
        )

    def _freshness_description(self) -> str:
        local = self._guard.description if self._guard is not None else "off"
        commits = self._commits
        if commits is None:
            return local
        if commits.max_staleness is None:
            return f"{local}, after a check of the log's end before every read"
        return f"{local}, after a check of the log's end at most every {commits.max_staleness:g} s"

    def integrity_check(self) -> builtins.list[str]:
        """Run `PRAGMA integrity_check`; `["ok"]` means the file is intact."""
        with self._statement() as conn:
            return [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]

    def checkpoint(self) -> bool:
        """Run a TRUNCATE WAL checkpoint; False if a reader or writer kept it from completing."""
        with self._statement() as conn:
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
        if self.read_only:
            raise CatalogFileError(self.path, "was opened read-only; writes are refused")
        if self._pool.session().depth:
            with self._pool.using() as session, self._savepoint(session):
                yield
            return
        refused = self._pool.refused(writing=True)
        if refused is not None:
            raise CatalogFileError(self.path, refused)
        # Threads of this catalog queue on a lock instead of in SQLite's busy handler, which
        # polls with sleeps of up to 100 ms; other processes still meet the busy handler.
        # Waited for before the session counts as in a call (see metafuse._connections).
        writer_lock = self._write_lock
        if not writer_lock.acquire(timeout=self.busy_timeout):
            log.debug("%s: another thread held the write lock for %g s", self.path, self.busy_timeout)
            raise BusyError(self.path, self.busy_timeout)
        held = _Held(writer_lock)
        try:
            with self._pool.using() as session, self._outermost(session, held):
                yield
        finally:
            held.release()

    @contextlib.contextmanager
    def _savepoint(self, session: Session) -> Iterator[None]:
        conn = session.check(self.path)
        savepoint = f"metafuse_{session.depth}"
        with self._sqlite_errors(session):
            conn.execute(f"SAVEPOINT {savepoint}")
        session.depth += 1
        level = session.depth
        # `depth` counts the blocks the caller's code is inside; it drops before this block's
        # closing statement runs, so `uses > depth` holds whenever SQLite is at work (see
        # metafuse._connections on fork).
        try:
            yield
            self._still_open(session)
            session.depth -= 1
            with self._sqlite_errors(session):
                conn.execute(f"RELEASE {savepoint}")
        except BaseException:
            if session.depth == level:
                session.depth -= 1
            # Roll back only this block, and only if SQLite has not already ended the whole
            # transaction (then `ROLLBACK TO` would fail, and later statements would autocommit).
            if self._transaction_lost(session) is None:
                try:
                    conn.execute(f"ROLLBACK TO {savepoint}")
                    conn.execute(f"RELEASE {savepoint}")
                except sqlite3.Error as error:
                    session.aborted = session.aborted or f"rolling back a savepoint failed: {error}"
            raise

    @contextlib.contextmanager
    def _outermost(self, session: Session, writer_lock: _Held) -> Iterator[None]:
        guard = session.guard = self._guard
        commits = self._commits
        committed = False

        def apply(changes: Iterable[Change]) -> None:
            self._apply_changes(session, conn, changes)

        try:
            try:
                conn = session.check(self.path)
                with self._sqlite_errors(session):
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
                self._still_open(session)
                session.depth = 0
                with self._sqlite_errors(session):
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
            if session.pid == os.getpid():
                self._settle(session, guard, committed)
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
            self._pool.discard(session)

    def _transaction_lost(self, session: Session, cause: str | None = None) -> str | None:
        """Why the open transaction is gone, if SQLite (or a fork) ended it; None while it is open."""
        if session.aborted is None and session.depth:
            try:
                lost = session.conn is not None and not session.closed and not session.conn.in_transaction
            except sqlite3.Error:
                lost = True
            if lost:
                session.aborted = cause or "SQLite rolled it back after an error"
        return session.aborted

    def _still_open(self, session: Session) -> None:
        reason = self._transaction_lost(session)
        if reason is not None:
            raise TransactionAbortedError(self.path, reason)

    def settle(self, error: CommitUnknownError) -> bool:
        """Decide a commit that raised `CommitUnknownError`: True if it committed (exactly once),
        False if it never will. Until then a copy of it may still land, so settle before writing
        the same change again, and within the catalog's retention. Raises `StorageError` while
        the store is still unreachable, and when the retention has deleted the commit's number
        meanwhile (the log can no longer tell; look for the change in the catalog)."""
        if self._commits is None:
            raise ValidationError("error", "only a catalog on an object store has commits to settle", error)
        if self._closed:
            raise CatalogClosedError(self.location)
        return self._commits.settle(error)

    def create(self, dataset: Dataset) -> Dataset:
        """Add a new dataset at version 1 and return it; `ConflictError` if the name exists."""
        return self.create_many([dataset])[0]

    def create_many(self, datasets: Iterable[Dataset]) -> builtins.list[Dataset]:
        """Add many new datasets in one transaction: all of them, or none on any error."""
        checked = [_checked(dataset) for dataset in datasets]
        stamp = _now()
        created: builtins.list[Dataset] = []
        with self.transaction(), self._pool.using() as session, self._sqlite_errors(session):
            conn = session.check(self.path)
            for dataset in checked:
                row = conn.execute(_VERSION_OF, (dataset.name,)).fetchone()
                if row is not None:
                    raise ConflictError(dataset.name, None, row[1])
                self._mark(session, dataset.name, None)
                dataset_id = conn.execute(_INSERT_DATASET, _row_values(dataset, stamp)).lastrowid
                assert dataset_id is not None
                _write_children(conn, dataset_id, dataset)
                conn.execute(_SET_VERSION, (1, stamp.isoformat(), dataset_id))
                created.append(_stored(dataset, 1, stamp))
            if created:
                conn.execute(_BUMP_CATALOG, (len(created), stamp.isoformat()))
        return created

    def save(self, dataset: Dataset, *, expected_version: int) -> Dataset:
        """Replace a dataset if its stored version is `expected_version`; return the new one.

        Raises `ConflictError` (stored version differs) or `NotFoundError` (no such dataset);
        in both cases nothing was written.
        """
        dataset = _checked(dataset)
        validation.version("expected_version", expected_version)
        stamp = _now()
        return self._group_commit(lambda session: self._save_in(session, dataset, expected_version, stamp))

    def _save_in(
        self, session: Session, dataset: Dataset, expected_version: int, stamp: _dt.datetime
    ) -> Dataset:
        """The body of `save`, inside an open write transaction (or a savepoint of one)."""
        with self._sqlite_errors(session):
            conn = session.check(self.path)
            row = conn.execute(_SAVE_ROW, (dataset.name,)).fetchone()
            if row is None:
                raise NotFoundError(dataset.name)
            dataset_id, actual = row[0], row[1]
            children, stored_columns = row[2:5], row[5:]
            if faults.active("lost_update"):
                # The classic bug: "SET version = expected + 1" without "WHERE version = expected".
                actual = expected_version
            if actual != expected_version:
                self._cache.invalidate(dataset.name)  # the conflict proves any cached copy stale
                raise ConflictError(dataset.name, expected_version, actual)
            self._mark(session, dataset.name, actual)
            new_version = actual + 1
            update_sql, update = _changed_columns(dataset, stamp, stored_columns, new_version, dataset_id)
            if faults.active("torn_write"):
                conn.execute(update_sql, update)
                conn.execute("COMMIT")
                conn.execute("BEGIN IMMEDIATE")
                _replace_children(conn, dataset_id, dataset, children)
            else:
                # Children first: the search trigger on the version bump reads them.
                _replace_children(conn, dataset_id, dataset, children)
                conn.execute(update_sql, update)
            conn.execute(_BUMP_CATALOG, (1, stamp.isoformat()))
        return _stored(dataset, new_version, stamp)

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
        _check_delay("backoff", backoff)
        _check_delay("max_backoff", max_backoff)
        attempt = 0
        while True:
            attempt += 1
            if attempt >= max_attempts and not faults.active("unbounded_retry"):
                return self._update_locked(name, change, on_conflict, attempt)
            current = self.get(name)
            if current is None:
                raise NotFoundError(name)
            proposed = _proposed(change(current), name)
            try:
                return self.save(proposed, expected_version=current.version)
            except ConflictError as conflict:
                if on_conflict is not None:
                    on_conflict(conflict, attempt)
                ceiling = min(max_backoff, backoff * 2 ** min(attempt - 1, 30))
                delay = random.uniform(0, ceiling)
                log.debug(
                    "update %s: conflict on attempt %d; retrying in %.1f ms", name, attempt, delay * 1e3
                )
                time.sleep(delay)

    def _update_locked(
        self,
        name: str,
        change: Callable[[Dataset], Dataset],
        on_conflict: Callable[[ConflictError, int], None] | None = None,
        attempt: int = 1,
    ) -> Dataset:
        """The pessimistic attempt: read-change-save under the writer lock, from the database.

        On an object store there is no lock across machines: the attempt reads, changes and
        appends, and if another machine's commit to `name` wins the log number first, it runs
        again on top of that commit. Each repetition means another writer's commit landed, so
        the loop is lock-free (some writer always progresses), not bounded.
        """
        while True:
            try:
                with self.transaction():
                    with self._statement() as conn:
                        row = conn.execute(SELECT_DATASET + " WHERE d.name = ?", (name,)).fetchone()
                    if row is None:
                        raise NotFoundError(name)
                    current = decode(row)
                    stored = self.save(_proposed(change(current), name), expected_version=current.version)
            except ConflictError as conflict:
                if self._commits is None:
                    raise
                if on_conflict is not None:
                    on_conflict(conflict, attempt)
                attempt += 1
                continue
            self._pessimistic += 1
            return stored

    def delete(self, name: str, *, expected_version: int) -> None:
        """Delete a dataset if its stored version is `expected_version`.

        Raises `ConflictError` or `NotFoundError` without deleting anything. Lineage edges that
        other datasets hold to `name` are kept: they name an upstream that no longer exists.
        """
        validation.dataset_name(name)
        validation.version("expected_version", expected_version)
        with self.transaction(), self._pool.using() as session, self._sqlite_errors(session):
            conn = session.check(self.path)
            row = conn.execute(_VERSION_OF, (name,)).fetchone()
            if row is None:
                raise NotFoundError(name)
            if row[1] != expected_version:
                self._cache.invalidate(name)
                raise ConflictError(name, expected_version, row[1])
            self._mark(session, name, row[1])
            self._delete_rows(conn, row[0])
            conn.execute(_BUMP_CATALOG, (1, _now().isoformat()))

    @staticmethod
    def _delete_rows(conn: sqlite3.Connection, dataset_id: int) -> None:
        for table in ("fields", "tags", "lineage", "datasets"):
            column = "id" if table == "datasets" else "dataset_id"
            conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (dataset_id,))

    # -- group commit ------------------------------------------------------------------------

    def _group_commit(self, body: Callable[[Session], T]) -> T:
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
        session = self._pool.session()
        if session.depth or faults.active("torn_write"):
            with self.transaction(), self._pool.using() as used:
                return body(used)
        if self.read_only:
            raise CatalogFileError(self.path, "was opened read-only; writes are refused")
        request: _Write[T] = _Write(body)
        queue = self._queue
        deadline = time.monotonic() + self.busy_timeout
        with queue.changed:
            queue.pending.append(request)
            try:
                while not request.taken and (queue.leading or queue.pending[0] is not request):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise BusyError(self.path, self.busy_timeout)
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
            acquired = self._write_lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
        except BaseException:
            queue.step_down(request)
            raise
        if not acquired:
            queue.step_down(request)
            raise BusyError(self.path, self.busy_timeout)
        held = _Held(self._write_lock)
        try:
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

    def _commit_batch(self, batch: builtins.list[_Write[Any]], held: _Held, mine: _Write[Any]) -> None:
        """Run `batch` in one transaction (the writer lock is held); settle every write's outcome."""
        try:
            refused = self._pool.refused(writing=True)
            if refused is not None:
                raise CatalogFileError(self.path, refused)
            remaining = batch
            while remaining:
                try:
                    self._run_batch(remaining, held)
                except ConflictError as conflict:
                    # On a store, publishing lost to another machine's change of `conflict.name`:
                    # the writes that changed it fail, the others run again.
                    losers = [w for w in remaining if conflict.name in w.names]
                    if self._commits is None or not losers or len(losers) == len(remaining):
                        raise
                    for write in losers:
                        write.error, write.value = conflict, None
                    remaining = [w for w in remaining if w not in losers]
                    held = self._relock()
                    continue
                if len(remaining) > 1:
                    self._group_commits += 1
                    self._grouped_writes += len(remaining)
                break
        except BaseException as error:
            # An interrupt belongs to the thread it hit; the others' writes were not committed.
            shared = (
                error
                if isinstance(error, Exception)
                else TransactionAbortedError(
                    self.path, f"the committing thread stopped ({type(error).__name__})"
                )
            )
            for write in batch:
                if write.error is None:
                    write.error = error if write is mine else shared
                    write.value = None
        finally:
            held.release()
            for write in batch:
                write.done.set()

    def _run_batch(self, batch: builtins.list[_Write[Any]], held: _Held) -> None:
        """One transaction of `batch`, each write in a SAVEPOINT of its own (alone: none)."""
        with self._pool.using() as session, self._outermost(session, held):
            if len(batch) == 1:
                batch[0].error = None
                batch[0].value = batch[0].body(session)
                batch[0].names = set(session.before)
                return
            for write in batch:
                write.error, write.value = None, None
                changed = set(session.before)
                try:
                    with self._savepoint(session):
                        write.value = write.body(session)
                except CatalogError as error:
                    if isinstance(error, TransactionAbortedError):
                        raise
                    write.error = error
                write.names = set(session.before) - changed

    def _relock(self) -> _Held:
        """Take the writer lock again for another transaction of the same group."""
        if not self._write_lock.acquire(timeout=self.busy_timeout):
            raise BusyError(self.path, self.busy_timeout)
        return _Held(self._write_lock)

    # -- internals ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _statement(self, *, synced: bool = False, reads_all: bool = False) -> Iterator[sqlite3.Connection]:
        """This thread's connection, held for one call, with SQLite errors translated.

        On an object store, the replica first catches up with the log (unless `synced`: the
        caller already did), so the read reflects every commit acknowledged before it started;
        a read that `reads_all` datasets (a listing, a search, a count) inside a transaction
        makes that transaction depend on every dataset (see `_note_read`).
        """
        if self._commits is not None and not synced:
            self._sync_reads()
        refused = self._pool.refused(writing=False)
        if refused is not None:
            raise CatalogFileError(self.path, refused)
        with self._pool.using() as session, self._sqlite_errors(session):
            if reads_all and session.depth and self._commits is not None:
                session.read_all = True
            yield session.check(self.path)

    def _note_read(self, name: str, dataset: Dataset | None) -> None:
        """Inside a transaction on an object store, remember that it read `name` (at this version).

        The commit checks the transaction's reads against every entry logged since it began,
        so a transaction whose reads another commit changed raises `ConflictError`: the same
        serializable outcome a catalog file gets from holding its writer lock.
        """
        if self._commits is None:
            return
        session = self._pool.session()
        if session.depth and name not in session.reads:
            session.reads[name] = None if dataset is None else dataset.version

    def _sync_reads(self) -> None:
        """Catch the replica up with the log before a read (not inside this thread's transaction)."""
        assert self._commits is not None
        if self._closed:
            raise CatalogClosedError(self.location)
        if self._pool.session().depth:
            return  # the transaction caught up when it began, and sees its own snapshot
        self._commits.before_read(self._catch_up)

    def _catch_up(self) -> None:
        with self.transaction():
            pass  # `_outermost` applies the log's new entries when the transaction begins

    def _apply_changes(self, session: Session, conn: sqlite3.Connection, changes: Iterable[Change]) -> None:
        """Apply log entries' changes to the replica, inside the open write transaction."""
        for change in changes:
            name = str(change["name"])
            data = change.get("dataset")
            row = conn.execute(_SAVE_ROW, (name,)).fetchone()
            self._mark(session, name, logged=False)
            if data is None:
                if row is not None:
                    self._delete_rows(conn, row[0])
            else:
                dataset = Dataset.from_dict(data)
                stamp = dataset.last_modified or _now()
                if row is None:
                    dataset_id = conn.execute(_INSERT_DATASET, _row_values(dataset, stamp)).lastrowid
                    assert dataset_id is not None
                    _write_children(conn, dataset_id, dataset)
                    conn.execute(_SET_VERSION, (dataset.version, stamp.isoformat(), dataset_id))
                else:
                    _replace_children(conn, row[0], dataset, row[2:5])
                    conn.execute(*_changed_columns(dataset, stamp, row[5:], dataset.version, row[0]))
            conn.execute(_BUMP_CATALOG, (1, _now().isoformat()))

    def _mark(self, session: Session, name: str, before: int | None = None, *, logged: bool = True) -> None:
        """Note that the open transaction changes `name` (whose version was `before` it)."""
        if logged and self._commits is not None and name not in session.before:
            session.before[name] = before
        if name in session.touched:
            return
        session.touched.add(name)
        guard = session.guard
        if guard is not None:
            session.marks.append((name, guard.slots.begin(name)))

    def _settle(self, session: Session, guard: FreshnessGuard | None, committed: bool) -> None:
        """After the outermost commit or rollback: publish fresh slot tokens, drop local entries."""
        try:
            if guard is not None:
                # Account for the commit first: until then every hit misses; the slots of the
                # names written stay PENDING a moment longer, which only those names pay for.
                conn = None if session.closed else session.conn
                with self._sqlite_errors():
                    guard.writer_done(conn, session.wal_mark, committed=committed)
                for name, mark in session.marks:
                    guard.slots.finish(name, mark)
        finally:
            if not faults.active("stale_cache"):
                for name in session.touched:
                    self._cache.invalidate(name)
            session.marks.clear()
            session.touched.clear()
            session.before.clear()
            session.reads.clear()
            session.read_all = False
            session.wal_mark = None
            session.guard = None

    @contextlib.contextmanager
    def _sqlite_errors(self, session: Session | None = None) -> Iterator[None]:
        """Turn every `sqlite3` error into a `CatalogError`; note a transaction SQLite ended."""
        try:
            yield
        except sqlite3.Error as error:
            if session is not None:
                self._transaction_lost(session, cause=f"{error}")
            translated = translate(error, self.path, self.busy_timeout)
            if translated is None:
                translated = CatalogFileError(
                    self.path, f"SQLite failed unexpectedly ({type(error).__name__}: {error})"
                )
            log.debug("%s: %s", self.path, translated)
            raise translated from error

    def _new_write_lock(self) -> threading.Lock | FairLock:
        # On an object store the lock is held across network round trips: first come, first
        # served, so a thread retrying a lost commit cannot starve its neighbours.
        return FairLock() if self._commits is not None else threading.Lock()

    def _after_fork_in_child(self) -> None:
        self._write_lock = self._new_write_lock()
        self._queue = _WriteQueue()  # writes queued by the parent's threads are the parent's
        self._cache._after_fork()


class _Write(Generic[T]):
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


class _WriteQueue:
    """The writes of one catalog's threads waiting to be committed as a group, in arrival order."""

    def __init__(self) -> None:
        # An RLock, not a Lock: a Condition asks an RLock whether this thread holds it, but tests
        # a Lock's ownership with acquire(False), which gevent's patched Lock turns into a yield
        # to the hub. The leader notifies while holding the writer lock, so with a Lock every
        # greenlet, a `transaction()` waiting for that lock included, ran behind each group and
        # the waiter could starve into `BusyError`; with an RLock nothing here yields but wait().
        self.changed = threading.Condition(threading.RLock())
        """Guards the fields below; notified whenever the line moves."""
        self.pending: builtins.list[_Write[Any]] = []
        self.leading = False
        """Whether a thread has taken the lead and waits for the writer lock."""

    def step_down(self, leader: _Write[Any]) -> None:
        """A leader that did not get the writer lock leaves the lead and the line to the next."""
        with self.changed:
            self.leading = False
            self.withdraw(leader)

    def withdraw(self, write: _Write[Any]) -> None:
        """Take a write that was not taken into a group out of the line (the condition is held)."""
        if not write.taken and write in self.pending:
            self.pending.remove(write)
        self.changed.notify_all()


class _Held:
    """The writer lock as held by one transaction: released once, by whichever path gets there first."""

    def __init__(self, lock: threading.Lock | FairLock) -> None:
        self._lock: threading.Lock | FairLock | None = lock

    def release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()


_catalogs: weakref.WeakSet[Catalog] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    try:
        unsafe = faults.active("fork_unsafe")
    except ValueError:
        unsafe = False
    if not unsafe:
        for catalog in list(_catalogs):
            catalog._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _check_delay(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(what, "must be a finite number of seconds", value)
    if not 0 <= value <= 3600:
        raise ValidationError(what, "must be from 0 to 3600 seconds", value)
    return float(value)


def _proposed(proposed: object, name: str) -> Dataset:
    if not isinstance(proposed, Dataset):
        raise ValidationError("update change", "must return a Dataset", proposed)
    if proposed.name != name:
        raise ValidationError("update change", "must not rename the dataset", proposed.name)
    return proposed


def _journal_mode(conn: sqlite3.Connection) -> str:
    return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()


def _checked(dataset: Dataset) -> Dataset:
    if not isinstance(dataset, Dataset):
        raise ValidationError("dataset", "must be a metafuse.Dataset", dataset)
    return dataset


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _stored(dataset: Dataset, version: int, stamp: _dt.datetime) -> Dataset:
    stored = object.__new__(Dataset)
    for field in dataclasses.fields(Dataset):
        object.__setattr__(stored, field.name, getattr(dataset, field.name))
    object.__setattr__(stored, "version", version)
    object.__setattr__(stored, "last_modified", stamp)
    return stored


def _row_values(dataset: Dataset, stamp: _dt.datetime) -> tuple[Any, ...]:
    return (
        dataset.name,
        dataset.uri,
        dataset.format,
        dataset.description,
        dataset.owner,
        dataset.domain,
        json.dumps(list(dataset.partitions)),
        dataset.size_bytes,
        dataset.row_count,
        stamp.isoformat(),
    )


_CHILDREN = ("fields", "tags", "lineage")
_COLUMNS = ("uri", "format", "description", "owner", "domain", "partitions", "size_bytes", "row_count")
"""The dataset row's own columns, in `_row_values` order after the name."""


def _changed_columns(
    dataset: Dataset, stamp: _dt.datetime, stored: tuple[Any, ...], version: int, dataset_id: int
) -> tuple[str, tuple[Any, ...]]:
    """The UPDATE of a save: only the columns whose values differ, plus the stamp and version.

    An UPDATE rewrites the index entries of every column it assigns, changed or not, so
    assigning only what changed keeps a save from rewriting the owner and domain indexes.
    """
    values = _row_values(dataset, stamp)[1:]
    changed = [(column, new) for column, new, old in zip(_COLUMNS, values, stored) if new != old]
    assignments = "".join(f"{column} = ?, " for column, _ in changed)
    sql = f"UPDATE datasets SET {assignments}last_modified = ?, version = ? WHERE id = ?"
    return sql, (*(new for _, new in changed), values[-1], version, dataset_id)


def _child_rows(dataset: Dataset) -> tuple[list[Any], list[Any], list[Any]]:
    """Return fields, tags and upstream names shaped as `CHILDREN_AS_JSON` decodes them."""
    fields = [[f.name, f.data_type, int(f.nullable), f.description] for f in dataset.fields]
    return fields, list(dataset.tags), list(dataset.upstream)


def _write_children(
    conn: sqlite3.Connection, dataset_id: int, dataset: Dataset, tables: tuple[str, ...] = _CHILDREN
) -> None:
    fields, tags, upstream = _child_rows(dataset)
    if "fields" in tables and fields:
        conn.executemany(
            "INSERT INTO fields (dataset_id, position, name, data_type, nullable, description)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(dataset_id, position, *field) for position, field in enumerate(fields)],
        )
    if "tags" in tables and tags:
        conn.executemany(
            "INSERT INTO tags (dataset_id, position, tag) VALUES (?, ?, ?)",
            [(dataset_id, position, tag) for position, tag in enumerate(tags)],
        )
    if "lineage" in tables and upstream:
        conn.executemany(
            "INSERT INTO lineage (dataset_id, position, upstream) VALUES (?, ?, ?)",
            [(dataset_id, position, parent) for position, parent in enumerate(upstream)],
        )


def _replace_children(
    conn: sqlite3.Connection, dataset_id: int, dataset: Dataset, stored: tuple[str, str, str]
) -> None:
    """Rewrite only the child tables whose rows differ from what is stored (JSON arrays)."""
    wanted = _child_rows(dataset)
    changed = tuple(table for table, new, old in zip(_CHILDREN, wanted, stored) if new != json.loads(old))
    for table in changed:
        conn.execute(f"DELETE FROM {table} WHERE dataset_id = ?", (dataset_id,))
    _write_children(conn, dataset_id, dataset, changed)


def _as_plain_words(query: str) -> str:
    # NUL ends an FTS5 string early ("unterminated string"): it separates words instead.
    words = query.replace("\x00", " ").split()
    return " ".join('"' + word.replace('"', '""') + '"' for word in words) or '""'


_CATALOG_VERSION = "SELECT version FROM catalog_meta WHERE id = 1"
_LOG_POSITION = "SELECT sequence FROM log_position WHERE id = 1"
_VERSION_OF = "SELECT id, version FROM datasets WHERE name = ?"
_INSERT_DATASET = (
    "INSERT INTO datasets (name, uri, format, description, owner, domain, partitions,"
    " size_bytes, row_count, last_modified, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
)
_SAVE_ROW = (
    f"SELECT d.id, d.version, {CHILDREN_AS_JSON}, {', '.join('d.' + column for column in _COLUMNS)}"
    " FROM datasets AS d WHERE d.name = ?"
)
_SET_VERSION = "UPDATE datasets SET version = ?, last_modified = ? WHERE id = ?"
_BUMP_CATALOG = "UPDATE catalog_meta SET version = version + ?, last_modified = ? WHERE id = 1"
_UPSTREAM_WALK = """
WITH RECURSIVE walk (downstream, upstream, depth) AS (
    SELECT d.name, l.upstream, 1 FROM datasets AS d JOIN lineage AS l ON l.dataset_id = d.id
     WHERE d.name = :name
    UNION
    SELECT w.upstream, l.upstream, w.depth + 1
      FROM walk AS w JOIN datasets AS d ON d.name = w.upstream
      JOIN lineage AS l ON l.dataset_id = d.id
     WHERE w.depth < :depth
)
SELECT downstream, upstream, min(depth) FROM walk GROUP BY downstream, upstream
 ORDER BY 3, 1, 2
"""
_DOWNSTREAM_WALK = """
WITH RECURSIVE walk (downstream, upstream, depth) AS (
    SELECT d.name, l.upstream, 1 FROM lineage AS l JOIN datasets AS d ON d.id = l.dataset_id
     WHERE l.upstream = :name
    UNION
    SELECT d.name, l.upstream, w.depth + 1
      FROM walk AS w JOIN lineage AS l ON l.upstream = w.downstream
      JOIN datasets AS d ON d.id = l.dataset_id
     WHERE w.depth < :depth
)
SELECT downstream, upstream, min(depth) FROM walk GROUP BY downstream, upstream
 ORDER BY 3, 1, 2
"""
