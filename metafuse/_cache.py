"""A bounded LRU of decoded datasets, each entry tagged with the change-slot token it was read under."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

from . import faults
from ._freshness import PENDING, ChangeSlots
from .model import Dataset


class CacheStats(NamedTuple):
    """Counters of one cache since it was created."""

    size: int
    capacity: int
    hits: int
    misses: int
    invalidations: int


class DatasetCache:
    """LRU cache of datasets; thread-safe.

    An entry is returned only while its name's change slot still holds the token the entry was
    read under (see `metafuse._freshness`); a token with PENDING set is never stored. Entries
    keep their slot's offset, so a hit costs one dictionary lookup and one shared-memory load.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[int, int, Dataset]] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._invalidations = 0

    def get(self, name: str, slots: ChangeSlots) -> Dataset | None:
        """Return the cached dataset if its change slot has not moved since it was read."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None:
                offset, token, dataset = entry
                if slots.token_at(offset) == token or faults.active("stale_cache"):
                    self._entries.move_to_end(name)
                    self._hits += 1
                    return dataset
                del self._entries[name]
                self._invalidations += 1
            self._misses += 1
            return None

    def put(self, name: str, offset: int, token: int, dataset: Dataset) -> None:
        """Remember `dataset`, read after loading `token` from the slot at `offset`."""
        if token & PENDING or self.capacity <= 0:
            return
        with self._lock:
            self._entries[name] = (offset, token, dataset)
            self._entries.move_to_end(name)
            if len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def invalidate(self, name: str) -> None:
        """Drop `name`'s entry, if any (after a local write)."""
        with self._lock:
            if self._entries.pop(name, None) is not None:
                self._invalidations += 1

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()

    def stats(self) -> CacheStats:
        """Return the counters as one consistent snapshot."""
        with self._lock:
            return CacheStats(
                len(self._entries), self.capacity, self._hits, self._misses, self._invalidations
            )
