"""`FreshnessGuard`: decides whether a cached read may be served, for every writer there is.

Two mechanisms, both read from shared memory on a cache hit (no system call, no lock):

1. Change slots (`metafuse._freshness`): every MetaFuse writer marks the slot of each dataset it
   changes, so a cached entry is refused as soon as its own dataset may have changed.
2. Outside commits: a commit that marked no slot (the `sqlite3` shell, another SQLite library, a
   process that could not open the slot file) still rewrites SQLite's WAL-index header
   (`metafuse._walindex`). The slot file's `known` field holds that header as it stood after the
   last commit the slots account for. A hit requires `header == known`; otherwise something
   committed that no slot may show, and the read goes to the database.

`known` moves forward only under the slot file's lock, in two ways:
- a MetaFuse writer, after its COMMIT, sets it to the header it reads then, *if* it can prove that
  nothing but its own commit happened since the header it read inside its write transaction: the
  `known` field still equals that earlier header, and its connection's `PRAGMA data_version`
  (which changes only for commits by *other* connections) did not change;
- otherwise (anyone, a reader too once a mismatch has stood still for `SETTLE` seconds) it first
  increments the `epoch`, then sets `known` to the current header. Every cache entry is stamped
  with the epoch loaded before its database read, so the bump refuses every entry that could
  predate the unaccounted commit.
A hit therefore needs: slot token unchanged, epoch unchanged, header equal to `known`.
"""

from __future__ import annotations

import sqlite3
import time

from . import faults, perturb
from ._freshness import ChangeSlots, slot_of
from ._walindex import WalIndex

SETTLE = 0.02
"""Seconds a header mismatch must stand still before a reader accounts for it (bumping the epoch):
long enough that a MetaFuse writer between its COMMIT and its own accounting is not pre-empted."""

Stamp = tuple[int, int, int]
"""(slot offset, slot token, epoch) loaded before a database read."""


class FreshnessGuard:
    """The change slots and WAL-index view of one open catalog (shared by its threads)."""

    def __init__(self, slots: ChangeSlots, wal: WalIndex | None, *, trust_slots_alone: bool = False) -> None:
        self.slots = slots
        self.wal = wal
        self._blind = trust_slots_alone or wal is None
        self._mismatch: tuple[bytes, float] | None = None
        if not self._blind:
            self._account_outside()

    @property
    def description(self) -> str:
        """How freshness is checked, for `stats()`."""
        return "shared-memory slots" if self._blind else "shared-memory slots + WAL index"

    # -- readers ------------------------------------------------------------------------------

    def valid(self, offset: int, token: int, epoch: int) -> bool:
        """Whether a cached entry stamped (offset, token, epoch) still shows the database.

        Load order matters: accounting for an outside commit stores the new epoch *before* the new
        `known`, so a hit loads `known` (and the header) *before* the epoch. Loaded the other way
        round, a hit could see the old epoch and then the new `known`, and serve an entry from
        before the commit that `known` already includes.
        """
        if not self._blind and not faults.active("outside_blind"):
            assert self.wal is not None
            if self.wal.header() != self.slots.known():
                return False
            if perturb.ON:
                perturb.point("hit: known checked -> slot and epoch checked")
        return self.slots.valid(offset, token, epoch)

    def stamp(self, name: str) -> Stamp:
        """Load what a read of `name` must be stamped with, before it reads the database.

        Storing a read made while an outside commit is unaccounted for is safe: no hit is served
        until `known` catches up with the header, and catching up with an unaccounted commit bumps
        the epoch this read was stamped with.
        """
        slots = self.slots
        offset = slot_of(name)
        token = slots.token_at(offset)
        if perturb.ON:
            perturb.point("stamp: token loaded -> epoch loaded")
        epoch = slots.epoch
        if not self._blind and not faults.active("outside_blind"):
            assert self.wal is not None
            header = self.wal.header()
            if header != slots.known():
                self._settle_mismatch(header)
        return offset, token, epoch

    def _settle_mismatch(self, header: bytes) -> None:
        now = time.monotonic()
        seen = self._mismatch
        if seen is None or seen[0] != header:
            self._mismatch = (header, now)
        elif now - seen[1] >= SETTLE:
            self._mismatch = None
            self._account_outside()

    def _account_outside(self) -> None:
        assert self.wal is not None
        with self.slots.locked():
            header = self.wal.header()
            if header != self.slots.known():
                self.slots.account(header, bump=True)

    # -- writers ------------------------------------------------------------------------------

    def writer_mark(self, conn: sqlite3.Connection) -> tuple[bytes, int] | None:
        """Inside a write transaction, before any change: what `writer_done` compares against."""
        if self._blind:
            return None
        assert self.wal is not None
        return self.wal.header(), int(conn.execute("PRAGMA data_version").fetchone()[0])

    def writer_done(self, conn: sqlite3.Connection | None, mark: object, *, committed: bool) -> None:
        """After COMMIT (or a failed one): account for this commit, or bump the epoch if unsure."""
        if self._blind or not isinstance(mark, tuple):
            return
        assert self.wal is not None
        before, version = mark
        with self.slots.locked():
            header = self.wal.header()
            if header == before:
                return  # nothing committed at all (a rollback, or nothing to write)
            if perturb.ON:
                perturb.point("settle: header read -> known accounted")
            alone = (
                committed
                and conn is not None
                and self.slots.known() == before
                and int(conn.execute("PRAGMA data_version").fetchone()[0]) == version
            )
            self.slots.account(header, bump=not alone)

    def replaced(self) -> bool:
        """Whether the slot file was deleted, replaced or truncated since it was opened."""
        return self.slots.replaced()
