"""Tests for metafuse._freshness: change slots, and how the catalog's cache obeys them."""

from __future__ import annotations

import os
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from metafuse import Catalog
from metafuse._freshness import _SIZE, PENDING, SLOTS, ChangeSlots, open_slots, sidecar_path, slot_of

from ._support import make


@pytest.fixture
def slots(tmp_path: Path) -> Iterator[ChangeSlots]:
    opened = ChangeSlots(str(tmp_path / "c.db-mfgen"))
    yield opened
    opened.close()


def test_sidecar_path_is_beside_the_catalog() -> None:
    assert sidecar_path("/data/c.db") == "/data/c.db-mfgen"


def test_slot_of_is_a_stable_crc32_offset() -> None:
    for name in ("a", "sales.orders", "x" * 255, "\u00e9"):
        offset = slot_of(name)
        assert offset == (zlib.crc32(name.encode("utf-8")) % SLOTS) * 8
        assert offset % 8 == 0
        assert 0 <= offset < SLOTS * 8


def test_the_slot_file_is_created_at_full_size(tmp_path: Path) -> None:
    path = tmp_path / "c.db-mfgen"
    opened = ChangeSlots(str(path))
    try:
        assert path.stat().st_size == _SIZE
        assert opened.token("anything") == 0
    finally:
        opened.close()


def test_begin_sets_pending(slots: ChangeSlots) -> None:
    mark = slots.begin("a")
    assert mark & PENDING
    assert slots.token("a") == mark


def test_finish_replaces_its_own_mark_with_a_fresh_token(slots: ChangeSlots) -> None:
    before = slots.token("a")
    mark = slots.begin("a")
    slots.finish("a", mark)
    after = slots.token("a")
    assert not after & PENDING
    assert after not in (before, mark, mark & ~PENDING)
    assert after != 0


def test_finish_leaves_a_later_writers_pending_mark(slots: ChangeSlots) -> None:
    early = slots.begin("a")
    late = slots.begin("a")
    assert late != early
    slots.finish("a", early)  # the earlier writer finishes after the later one began
    assert slots.token("a") == late
    assert slots.token("a") & PENDING
    slots.finish("a", late)
    assert not slots.token("a") & PENDING


def test_finish_of_a_stale_mark_does_not_touch_a_published_token(slots: ChangeSlots) -> None:
    first = slots.begin("a")
    second = slots.begin("a")
    slots.finish("a", second)
    published = slots.token("a")
    slots.finish("a", first)
    assert slots.token("a") == published


def test_slots_of_other_names_are_untouched(slots: ChangeSlots) -> None:
    others = [n for n in (f"n{i}" for i in range(50)) if slot_of(n) != slot_of("a")]
    before = {n: slots.token(n) for n in others}
    slots.finish("a", slots.begin("a"))
    assert {n: slots.token(n) for n in others} == before


def test_tokens_are_not_reused(slots: ChangeSlots) -> None:
    seen: set[int] = set()
    for _ in range(500):
        mark = slots.begin("a")
        slots.finish("a", mark)
        token = slots.token("a")
        assert mark not in seen
        assert token not in seen
        seen.update((mark, token))
    assert len(seen) == 1000


def test_two_mappings_of_one_file_share_their_slots(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db-mfgen")
    first, second = ChangeSlots(path), ChangeSlots(path)
    try:
        mark = first.begin("a")
        assert second.token("a") == mark
        second.finish("a", mark)  # any process may finish a mark it can see
        assert first.token("a") == second.token("a")
        assert not first.token("a") & PENDING
    finally:
        first.close()
        second.close()


def test_reopening_keeps_tokens(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db-mfgen")
    first = ChangeSlots(path)
    first.finish("a", first.begin("a"))
    token = first.token("a")
    first.close()
    second = ChangeSlots(path)
    try:
        assert second.token("a") == token
    finally:
        second.close()


def test_open_slots_returns_none_where_the_file_cannot_be_made(tmp_path: Path) -> None:
    assert open_slots(str(tmp_path / "missing-dir" / "c.db")) is None
    opened = open_slots(str(tmp_path / "c.db"))
    assert opened is not None
    opened.close()
    assert os.path.exists(tmp_path / "c.db-mfgen")


# -- the catalog and its slots ----------------------------------------------------------------


def test_a_catalog_creates_its_slot_file(catalog: Catalog, catalog_path: Path) -> None:
    assert Path(sidecar_path(str(catalog_path))).stat().st_size == _SIZE
    assert catalog.stats().cache_freshness == "shared-memory slots + WAL index"


def test_a_write_publishes_a_fresh_token(catalog: Catalog, catalog_path: Path) -> None:
    observer = ChangeSlots(sidecar_path(str(catalog_path)))
    try:
        before = observer.token("a")
        catalog.create(make("a"))
        after_create = observer.token("a")
        assert after_create != before
        assert not after_create & PENDING
        stored = catalog.get("a")
        assert stored is not None
        catalog.save(stored, expected_version=1)
        assert observer.token("a") not in (after_create, 0)
        assert not observer.token("a") & PENDING
    finally:
        observer.close()


def test_a_slot_is_pending_for_the_whole_write_transaction(catalog: Catalog, catalog_path: Path) -> None:
    observer = ChangeSlots(sidecar_path(str(catalog_path)))
    try:
        with catalog.transaction():
            catalog.create(make("a"))
            assert observer.token("a") & PENDING
            catalog.create(make("b"))
            assert observer.token("a") & PENDING
            assert observer.token("b") & PENDING
        assert not observer.token("a") & PENDING
        assert not observer.token("b") & PENDING
    finally:
        observer.close()


def test_a_rolled_back_write_also_finishes_its_mark(catalog: Catalog, catalog_path: Path) -> None:
    observer = ChangeSlots(sidecar_path(str(catalog_path)))
    try:
        pending_inside: list[int] = []

        def block() -> None:
            with catalog.transaction():
                catalog.create(make("a"))
                pending_inside.append(observer.token("a") & PENDING)
                raise RuntimeError("roll back")

        with pytest.raises(RuntimeError, match="roll back"):
            block()
        assert pending_inside == [PENDING]
        assert not observer.token("a") & PENDING
    finally:
        observer.close()


def test_a_read_under_a_pending_token_is_never_cached_or_served(catalog: Catalog, catalog_path: Path) -> None:
    stored = catalog.create(make("a"))
    writer = ChangeSlots(sidecar_path(str(catalog_path)))  # plays a writer in another process
    try:
        mark = writer.begin("a")
        for _ in range(3):
            assert catalog.get("a") == stored
        stats = catalog.stats()
        assert stats.cache_hits == 0
        assert stats.cache_size == 0
        writer.finish("a", mark)
        first = catalog.get("a")
        assert catalog.get("a") is first
        assert catalog.stats().cache_hits == 1
    finally:
        writer.close()


def test_a_cached_entry_is_refused_once_its_slot_goes_pending(catalog: Catalog, catalog_path: Path) -> None:
    catalog.create(make("a"))
    cached = catalog.get("a")
    assert catalog.get("a") is cached
    writer = ChangeSlots(sidecar_path(str(catalog_path)))
    try:
        mark = writer.begin("a")  # a writer in another process may be committing now
        again = catalog.get("a")
        assert again is not cached
        assert again == cached
        assert catalog.stats().cache_invalidations == 1
        writer.finish("a", mark)
    finally:
        writer.close()


def test_a_stale_entry_is_refused_after_a_token_change_without_a_local_write(
    catalog: Catalog, catalog_path: Path
) -> None:
    stored = catalog.create(make("a", description="old"))
    assert catalog.get("a") is catalog.get("a")
    # Another process commits directly and publishes a token (the full write protocol).
    writer = ChangeSlots(sidecar_path(str(catalog_path)))
    raw = sqlite3.connect(catalog_path, isolation_level=None)
    try:
        mark = writer.begin("a")
        raw.execute("UPDATE datasets SET description = 'new', version = 2 WHERE name = 'a'")
        writer.finish("a", mark)
    finally:
        raw.close()
        writer.close()
    fresh = catalog.get("a")
    assert fresh is not None
    assert fresh.description == "new"
    assert fresh.version == stored.version + 1


def test_names_sharing_a_slot_only_share_invalidations(catalog: Catalog) -> None:
    by_slot: dict[int, str] = {}
    pair: tuple[str, str] | None = None
    for i in range(100_000):
        name = f"n{i}"
        clash = by_slot.setdefault(slot_of(name), name)
        if clash != name:
            pair = (clash, name)
            break
    assert pair is not None
    first_name, second_name = pair
    first = catalog.create(make(first_name, description="first"))
    second = catalog.create(make(second_name, description="second"))
    assert catalog.get(first_name) == first
    cached_first = catalog.get(first_name)
    assert catalog.get(first_name) is cached_first
    catalog.save(second.replace(description="second v2"), expected_version=1)
    hits = catalog.stats().cache_hits
    assert catalog.get(first_name) == first  # correct data, though its cache entry was dropped
    assert catalog.stats().cache_hits == hits
    updated = catalog.get(second_name)
    assert updated is not None
    assert updated.description == "second v2"
