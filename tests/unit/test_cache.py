"""Tests for metafuse._cache and for the catalog actually using it: hits, LRU, tokens, capacity 0."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from metafuse import Catalog, Dataset, faults
from metafuse._cache import CacheStats, DatasetCache
from metafuse._freshness import PENDING, ChangeSlots, slot_of

from ._support import make

A = Dataset(name="a", uri="s3://a")
B = Dataset(name="b", uri="s3://b")
C = Dataset(name="c", uri="s3://c")


@pytest.fixture
def slots(tmp_path: Path) -> Iterator[ChangeSlots]:
    opened = ChangeSlots(str(tmp_path / "c.db-mfgen"))
    yield opened
    opened.close()


def write(slots: ChangeSlots, name: str) -> None:
    """Play a committed write to `name`: its slot moves to a fresh token."""
    slots.finish(name, slots.begin(name))


def put(cache: DatasetCache, slots: ChangeSlots, dataset: Dataset) -> None:
    """Store `dataset` as a reader would: under the token its slot holds now."""
    offset = slot_of(dataset.name)
    cache.put(dataset.name, offset, slots.token_at(offset), dataset)


def test_an_entry_is_served_while_its_slot_holds_the_token_it_was_read_under(slots: ChangeSlots) -> None:
    cache = DatasetCache(4)
    assert cache.get("a", slots) is None
    put(cache, slots, A)
    assert cache.get("a", slots) is A
    assert cache.stats() == CacheStats(size=1, capacity=4, hits=1, misses=1, invalidations=0)
    write(slots, "a")  # the slot moved on: the entry is dropped
    assert cache.get("a", slots) is None
    assert cache.stats() == CacheStats(size=0, capacity=4, hits=1, misses=2, invalidations=1)


def test_token_at_and_token_agree(slots: ChangeSlots) -> None:
    write(slots, "a")
    assert slots.token_at(slot_of("a")) == slots.token("a") != 0


def test_an_entry_is_refused_while_its_slot_is_pending(slots: ChangeSlots) -> None:
    cache = DatasetCache(4)
    put(cache, slots, A)
    mark = slots.begin("a")
    assert cache.get("a", slots) is None
    slots.finish("a", mark)
    assert cache.get("a", slots) is None  # and it stays refused once the write is published


def test_a_read_under_a_pending_token_is_never_stored(slots: ChangeSlots) -> None:
    cache = DatasetCache(4)
    mark = slots.begin("a")
    offset = slot_of("a")
    cache.put("a", offset, slots.token_at(offset), A)
    assert cache.stats().size == 0
    assert cache.get("a", slots) is None
    assert mark & PENDING


def test_lru_evicts_the_least_recently_used_beyond_capacity(slots: ChangeSlots) -> None:
    cache = DatasetCache(2)
    put(cache, slots, A)
    put(cache, slots, B)
    assert cache.get("a", slots) is A  # 'a' is now the most recently used
    put(cache, slots, C)
    assert cache.stats().size == 2
    assert cache.get("b", slots) is None
    assert cache.get("a", slots) is A
    assert cache.get("c", slots) is C


def test_put_replaces_an_entry_in_place(slots: ChangeSlots) -> None:
    cache = DatasetCache(2)
    put(cache, slots, A)
    newer = A.replace(description="newer")
    put(cache, slots, newer)
    assert cache.stats().size == 1
    assert cache.get("a", slots) is newer


def test_capacity_zero_stores_nothing(slots: ChangeSlots) -> None:
    cache = DatasetCache(0)
    put(cache, slots, A)
    assert cache.get("a", slots) is None
    assert cache.stats() == CacheStats(size=0, capacity=0, hits=0, misses=1, invalidations=0)


def test_invalidate_and_clear(slots: ChangeSlots) -> None:
    cache = DatasetCache(4)
    put(cache, slots, A)
    put(cache, slots, B)
    cache.invalidate("a")
    cache.invalidate("missing")
    assert cache.stats().invalidations == 1
    assert cache.get("a", slots) is None
    cache.clear()
    assert cache.stats().size == 0
    assert cache.get("b", slots) is None


def test_stale_cache_fault_serves_entries_after_a_write(slots: ChangeSlots) -> None:
    cache = DatasetCache(4)
    put(cache, slots, A)
    write(slots, "a")
    with faults.enabled("stale_cache"):
        assert cache.get("a", slots) is A
    assert cache.get("a", slots) is None


# -- the catalog's use of the cache ----------------------------------------------------------


def test_repeated_get_returns_the_identical_object_and_counts_a_hit(catalog: Catalog) -> None:
    catalog.create(make("a"))
    first = catalog.get("a")
    assert catalog.stats().cache_misses == 1
    second = catalog.get("a")
    assert second is first
    stats = catalog.stats()
    assert (stats.cache_hits, stats.cache_misses, stats.cache_size) == (1, 1, 1)
    for _ in range(5):
        assert catalog.get("a") is first
    assert catalog.stats().cache_hits == 6


def test_a_missing_dataset_is_not_cached(catalog: Catalog) -> None:
    assert catalog.get("a") is None
    assert catalog.get("a") is None
    assert catalog.stats().cache_hits == 0
    created = catalog.create(make("a"))
    assert catalog.get("a") == created


def test_a_local_write_invalidates_the_entry(catalog: Catalog) -> None:
    stored = catalog.create(make("a"))
    cached = catalog.get("a")
    assert catalog.get("a") is cached
    saved = catalog.save(stored.replace(description="new"), expected_version=1)
    fresh = catalog.get("a")
    assert fresh == saved
    assert fresh is not cached
    catalog.delete("a", expected_version=2)
    assert catalog.get("a") is None


def test_cache_size_zero_disables_the_cache(catalog_path: Path) -> None:
    with Catalog(catalog_path, cache_size=0) as catalog:
        catalog.create(make("a"))
        first = catalog.get("a")
        second = catalog.get("a")
        assert first == second
        assert first is not second
        stats = catalog.stats()
        assert (stats.cache_hits, stats.cache_size, stats.cache_capacity) == (0, 0, 0)
        assert stats.cache_misses == 2


def test_the_catalog_cache_evicts_beyond_its_capacity(catalog_path: Path) -> None:
    with Catalog(catalog_path, cache_size=2) as catalog:
        catalog.create_many(make(n) for n in "abc")
        a = catalog.get("a")
        b = catalog.get("b")
        assert catalog.get("a") is a  # 'b' is now least recently used
        catalog.get("c")
        assert catalog.stats().cache_size == 2
        assert catalog.get("a") is a
        assert catalog.get("b") is not b  # evicted: read again
        assert catalog.stats().cache_capacity == 2


def test_list_and_search_do_not_fill_the_cache(catalog: Catalog) -> None:
    catalog.create(make("a"))
    catalog.list()
    catalog.search("rows")
    assert catalog.stats().cache_size == 0


def test_close_clears_the_cache(catalog_path: Path) -> None:
    catalog = Catalog(catalog_path)
    catalog.create(make("a"))
    catalog.get("a")
    assert catalog.stats().cache_size == 1
    catalog.close()
    assert catalog.stats().cache_size == 0
