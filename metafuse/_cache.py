"""A bounded cache of decoded datasets whose hits take no lock: CLOCK (second-chance) eviction.

Each entry is stamped with what its database read was checked against (slot offset, slot token,
epoch: see `metafuse._guard`), and is served only while the guard says that stamp still holds.
"""

from __future__ import annotations

import threading
from typing import NamedTuple, Protocol

from . import faults, perturb
from ._freshness import PENDING
from .model import Dataset


class CacheStats(NamedTuple):
    """Counters of one cache since it was created (hits and misses are approximate under threads)."""

    size: int
    capacity: int
    hits: int
    misses: int
    invalidations: int


class Validator(Protocol):
    """What decides whether a stamped entry may still be served."""

    def valid(self, offset: int, token: int, epoch: int) -> bool:
        """Whether an entry read under this stamp still shows the database."""
        ...


class _Entry:
    __slots__ = ("dataset", "epoch", "offset", "referenced", "token")

    def __init__(self, offset: int, token: int, epoch: int, dataset: Dataset) -> None:
        self.offset = offset
        self.token = token
        self.epoch = epoch
        self.dataset = dataset
        self.referenced = False


class DatasetCache:
    """Cache of datasets, safe under concurrent use; a hit takes no lock and makes no system call.

    Why a lock-free hit is never stale: an entry's stamp is fixed when it is made and the hit checks
    that stamp against shared memory at the moment of the hit; `put`, `invalidate` and eviction only
    replace or remove whole entries in a dict (one atomic step each under the GIL), so a hit sees
    either an old entry, whose own stamp still has to pass the check, or a new one. Usage bits and
    counters are updated without the lock: a lost update of either costs a little accuracy of
    eviction order or of `stats()`, never a stale read.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()  # put, invalidate and eviction only
        self._hits = 0
        self._misses = 0
        self._invalidations = 0

    def get(self, name: str, guard: Validator) -> Dataset | None:
        """Return the cached dataset if its stamp still holds; None (a miss) otherwise."""
        entry = self._entries.get(name)
        if entry is not None:
            if perturb.ON:
                perturb.point("hit: entry found -> validated")
            if guard.valid(entry.offset, entry.token, entry.epoch) or faults.active("stale_cache"):
                if perturb.ON:
                    perturb.point("hit: validated -> served")
                entry.referenced = True
                self._hits += 1
                return entry.dataset
            self._drop(name, entry)
        self._misses += 1
        return None

    def put(self, name: str, offset: int, token: int, dataset: Dataset, epoch: int = 0) -> None:
        """Remember `dataset`, read after loading `token` (slot at `offset`) and `epoch`."""
        if token & PENDING or self.capacity <= 0:
            return
        entry = _Entry(offset, token, epoch, dataset)
        with self._lock:
            if name not in self._entries and len(self._entries) >= self.capacity:
                self._evict_one()
            self._entries[name] = entry

    def invalidate(self, name: str) -> None:
        """Drop `name`'s entry, if any (after a local write, or a conflict proved it stale)."""
        with self._lock:
            if self._entries.pop(name, None) is not None:
                self._invalidations += 1

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()

    def stats(self) -> CacheStats:
        """Return the counters (size exact; hits and misses approximate under concurrent use)."""
        with self._lock:
            return CacheStats(
                len(self._entries), self.capacity, self._hits, self._misses, self._invalidations
            )

    def _drop(self, name: str, entry: _Entry) -> None:
        with self._lock:
            if self._entries.get(name) is entry:  # not a newer entry put meanwhile
                del self._entries[name]
                self._invalidations += 1

    def _evict_one(self) -> None:
        # CLOCK: walk from the oldest insertion; a referenced entry gets a second chance (its bit
        # cleared, moved to the back), the first unreferenced one goes. Ends within two passes.
        entries = self._entries
        for _ in range(2 * len(entries)):
            name = next(iter(entries))
            entry = entries[name]
            if entry.referenced:
                entry.referenced = False
                del entries[name]
                entries[name] = entry
            else:
                del entries[name]
                return
        entries.pop(next(iter(entries)))

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
