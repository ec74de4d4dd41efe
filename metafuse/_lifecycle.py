"""How a catalog lives and dies: opening it, its freshness guard, `close()`, and `os.fork()`.

Owns how a catalog is opened (its file made if allowed, its store's commits, each connection
to it), whether it is open (`Lifetime.closed`), the freshness guard it reads through while
open, what closing releases and in which order, and the registry of open catalogs that a forked
child renews. It may not run a dataset's SQL, begin a transaction, or decide what a write
changes; the parts that do are told to renew themselves through `ForkAware`.
"""

from __future__ import annotations

import os
import sqlite3
import weakref
from collections.abc import Callable, Mapping
from typing import Protocol

from . import _schema, faults, perturb
from ._cache import DatasetCache
from ._connections import ConnectionPool, native_call
from ._freshness import open_slots, sidecar_path
from ._guard import FreshnessGuard
from ._logcommits import LogCommits, is_store_url
from ._sqlite_errors import Translated
from ._walindex import open_walindex, release_unused
from .errors import CatalogFileError, ValidationError


class ForkAware(Protocol):
    """An object whose locks and queues belong to the process that made them."""

    def _after_fork_in_child(self) -> None: ...


class Lifetime:
    """One catalog's open/closed state and its freshness guard (None: no cache can be trusted).

    `closed` only ever goes from False to True; `guard` is set once while opening and dropped
    by `close()`. Both are plain attributes read without a lock: a call that read the guard
    before `close()` keeps using that object, which stays valid until the call drops it.
    """

    def __init__(self) -> None:
        self.closed = False
        self.guard: FreshnessGuard | None = None

    def start(
        self,
        pool: ConnectionPool,
        path: str,
        spelled: str,
        connect: Callable[[], sqlite3.Connection],
        *,
        busy_timeout: float,
        read_only: bool,
        commits: LogCommits | None,
    ) -> str:
        """Check and migrate the schema of the file `path`, switch it to WAL, open the guard.

        Returns the search backend. `connect` opens a connection (the guard's WAL-index view).

        On any error every connection `pool` opened is closed before it propagates.
        """
        try:
            with Translated(path, busy_timeout), pool.using() as session:
                conn = session.check(path)
                # Schema checks first: a file that is refused must be left byte-for-byte as found.
                search_backend = _schema.migrate(conn, path, read_only=read_only)
                if not read_only and _journal_mode(conn) != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                if commits is not None:
                    commits.prepare(conn)
            # Without a writable change-slot file no read could prove itself fresh: no cache.
            self.guard = None if read_only else open_guard(path, spelled, connect)
        except BaseException:
            pool.close_all()
            raise
        return search_backend

    def close(self, pool: ConnectionPool, cache: DatasetCache, commits: LogCommits | None) -> None:
        """Close the catalog: the guard, every connection, the cache and the store's client."""
        self.closed = True
        guard, self.guard = self.guard, None
        if guard is not None and guard.wal is not None:
            with native_call():
                guard.wal.close()
        if perturb.ON:
            perturb.point("close: closed flag set -> connections closed")
        # A replica's file goes with its catalog: no later open in this process will reuse its
        # `-shm` mapping, and no other connection can take a lock on it once this one is closed.
        unmap = commits is not None and guard is not None and not faults.active("close_unguarded")
        # The file stays registered as open in this process until the last connection is really
        # closed (a busy one closes when its call ends): see `_schema.registered`.
        pool.close_all()
        cache.clear()
        if commits is not None:
            commits.close()
        if guard is not None and faults.active("close_unguarded"):
            guard.slots.close()  # the bug: unmaps under the feet of calls still reading it
        if unmap:
            # Calls still running hold the guard, so its WAL-index view outlives them; else the
            # view is released now, and unmapped unless a connection of ours still locks the file.
            del guard
            release_unused()


def connect(path: str, *, read_only: bool, busy_timeout: float, synchronous: str) -> sqlite3.Connection:
    """A new connection to the catalog file `path`, as every connection of a catalog is made.

    Transactions are explicit (`BEGIN IMMEDIATE` for every write), the connection may be closed
    from any thread (only its owning thread uses it otherwise), and `synchronous` is set.
    """
    with native_call():  # opening takes SQLite's process-wide mutexes: a fork waits for it
        conn = sqlite3.connect(
            _schema.sqlite_uri(path, read_only=read_only),
            timeout=busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            uri=True,
        )
        try:
            conn.execute(f"PRAGMA synchronous = {synchronous}")
        except BaseException:
            conn.close()  # a damaged file can fail here, before the pool tracks the connection
            raise
    return conn


def open_commits(
    target: str,
    options: Mapping[str, object],
    *,
    max_staleness: float | None,
    snapshot_every: int,
    retention: float | None,
    settle_seconds: float | None,
) -> LogCommits | None:
    """The object-store side of `Catalog.open(target, **options)`: None when `target` is a
    file (refusing the options only a store takes), else the store's `LogCommits`, opened."""
    if not isinstance(target, str) or not is_store_url(target):  # bytes: the path check refuses them
        store_only = {"max_staleness": max_staleness, "retention": retention}
        store_only["settle_seconds"] = settle_seconds
        for option, value in store_only.items():
            if value is not None:
                raise ValidationError(option, "applies only to a catalog on an object store", value)
        return None
    if options.get("read_only"):
        raise ValidationError("read_only", "is not supported for a catalog on an object store", target)
    return LogCommits.open(
        target,
        create=bool(options.get("create", True)),
        max_staleness=max_staleness,
        snapshot_every=snapshot_every,
        retention=retention,
        settle_seconds=settle_seconds,
    )


def open_file(path: str, spelled: str, first: bool, *, read_only: bool, create: bool) -> None:
    """Make sure the catalog file `path` (opened as `spelled`) exists, creating it if allowed."""
    exists = _schema.check_file(spelled, read_header=first)
    if not exists:
        if read_only:
            raise CatalogFileError(path, "does not exist (opened read-only)")
        if not create:
            raise CatalogFileError(path, "does not exist")
        _schema.create_atomically(path)
    _schema.refuse_hard_links(path)


def _journal_mode(conn: sqlite3.Connection) -> str:
    return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()


def open_guard(path: str, spelled: str, connect: Callable[[], sqlite3.Connection]) -> FreshnessGuard | None:
    """The freshness guard of the catalog file `path` (opened as `spelled`); None if it cannot be had."""
    spelling = faults.active("path_spelling")
    sidecar = sidecar_path(os.path.abspath(spelled) if spelling else path)
    slots = open_slots(path, sidecar)
    if slots is None:
        return None
    with native_call():  # its own connection opens SQLite's shared memory
        wal = open_walindex(path, connect)
    return FreshnessGuard(slots, wal, trust_slots_alone=spelling)


_catalogs: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def register(catalog: ForkAware) -> None:
    """Renew `catalog` in a forked child for as long as it lives."""
    _catalogs.add(catalog)


def _after_fork_in_child() -> None:
    try:
        unsafe = faults.active("fork_unsafe")
    except ValueError:
        unsafe = False
    if not unsafe:
        for catalog in list(_catalogs):
            catalog._after_fork_in_child()
    if perturb.ON:
        perturb.point("fork: child renewed -> child runs")


os.register_at_fork(after_in_child=_after_fork_in_child)
