"""Freshness accounting of a commit: which datasets a transaction changed, and telling the cache.

Owns the bookkeeping a write transaction keeps on its `Session` (`touched`, `marks`, `before`)
and what happens to it when the outermost transaction ends: the change slots of the datasets it
wrote get fresh tokens, and this process's cached copies of them are dropped. It may not begin,
commit or roll back a transaction, take the writer lock, or run a dataset's SQL.
"""

from __future__ import annotations

from collections.abc import Callable

from . import faults, perturb
from ._cache import DatasetCache
from ._connections import Session
from ._guard import FreshnessGuard
from ._sqlite_errors import Translated

Marker = Callable[[str, "int | None"], None]
"""How a write's SQL reports a dataset it is about to change, with its version before."""


class CommitAccounting:
    """Marks the datasets an open transaction changes, and settles them when it ends.

    One per catalog; each call works on the calling thread's own `Session`, so threads share
    nothing here but the cache (which is thread-safe).
    """

    def __init__(self, cache: DatasetCache, *, on_store: bool, path: str, busy_timeout: float) -> None:
        self.cache = cache
        self.on_store = on_store
        self.path = path
        self.busy_timeout = busy_timeout

    def mark(self, session: Session, name: str, before: int | None = None, *, logged: bool = True) -> None:
        """Note that the open transaction changes `name` (whose version was `before` it).

        On a store a `logged` change also goes into the transaction's log entry; a change
        applied from the log (`logged=False`) is only accounted for.
        """
        if logged and self.on_store and name not in session.before:
            session.before[name] = before
        if name in session.touched:
            return
        session.touched.add(name)
        guard = session.guard
        if guard is not None:
            session.marks.append((name, guard.slots.begin(name)))

    def marker(self, session: Session) -> Marker:
        """How row writes in `session`'s open transaction report each dataset they change."""
        return lambda name, before: self.mark(session, name, before)

    def settle(self, session: Session, guard: FreshnessGuard | None, committed: bool) -> None:
        """After the outermost commit or rollback: publish fresh slot tokens, drop local entries."""
        try:
            if guard is not None:
                # Account for the commit first: until then every hit misses; the slots of the
                # names written stay PENDING a moment longer, which only those names pay for.
                conn = None if session.closed else session.conn
                with Translated(self.path, self.busy_timeout):
                    guard.writer_done(conn, session.wal_mark, committed=committed)
                if perturb.ON:
                    perturb.point("settle: known accounted -> slots finished")
                for name, mark in session.marks:
                    guard.slots.finish(name, mark)
        finally:
            if not faults.active("stale_cache"):
                for name in session.touched:
                    self.cache.invalidate(name)
            session.marks.clear()
            session.touched.clear()
            session.before.clear()
            session.reads.clear()
            session.read_all = False
            session.wal_mark = None
            session.guard = None
