"""The object-store contract, run unchanged against LocalDirStore and S3Store (moto or a real store).

Races are started together with a barrier and judged by what the store ended up holding, not
by timing: whatever the interleaving, exactly one creator and one updater may win.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import pytest

from metafuse.objectstore import (
    CREATE,
    OVERWRITE,
    AlreadyExists,
    InvalidKey,
    NotFound,
    ObjectStore,
    PreconditionFailed,
    open_store,
    update,
)
from metafuse.objectstore.s3 import S3Store

from ._support import S3Location

RACERS = 12


def race(store: ObjectStore, attempt: Callable[[int], str | None]) -> list[int]:
    """Run `attempt(i)` for i in 0..RACERS-1 from that many threads released together; return winners."""
    barrier = threading.Barrier(RACERS)
    winners: list[int] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        if attempt(i) is not None:
            with lock:
                winners.append(i)

    with ThreadPoolExecutor(RACERS) as pool:
        for future in [pool.submit(run, i) for i in range(RACERS)]:
            future.result()
    return winners


def test_absent_keys_are_not_found_and_deleting_them_is_fine(store: ObjectStore) -> None:
    with pytest.raises(NotFound) as caught:
        store.get("nothing/here")
    assert caught.value.key == "nothing/here"
    with pytest.raises(NotFound):
        store.head("nothing/here")
    store.delete("nothing/here")
    assert store.list() == []


def test_create_then_get_returns_the_bytes_and_their_tag(store: ObjectStore) -> None:
    before = time.time()
    tag = store.put("a/one.json", b'{"x": 1}', CREATE)
    assert store.get("a/one.json") == (b'{"x": 1}', tag)
    meta = store.head("a/one.json")
    assert meta[:3] == ("a/one.json", 8, tag)
    # When it was written, by the store's clock: S3 reports whole seconds; allow for that and
    # for a server clock a little apart from this one (retention assumes far less than an hour).
    assert before - 60 <= meta.modified <= time.time() + 60
    empty_tag = store.put("a/empty", b"", CREATE)
    assert store.get("a/empty") == (b"", empty_tag)


def test_create_of_an_existing_key_fails_and_keeps_the_first_bytes(store: ObjectStore) -> None:
    tag = store.put("k", b"first", CREATE)
    with pytest.raises(AlreadyExists) as caught:
        store.put("k", b"second", CREATE)
    assert caught.value.key == "k"
    assert store.get("k") == (b"first", tag)


def test_update_needs_the_current_tag(store: ObjectStore) -> None:
    first = store.put("k", b"v1", CREATE)
    second = store.put("k", b"v2", update(first))
    assert second != first
    with pytest.raises(PreconditionFailed) as caught:
        store.put("k", b"v3", update(first))
    assert caught.value.expected == first
    assert store.get("k") == (b"v2", second)
    store.delete("k")
    with pytest.raises(NotFound):
        store.put("k", b"v4", update(second))
    with pytest.raises(NotFound):
        store.get("k")


def test_overwrite_replaces_or_creates(store: ObjectStore) -> None:
    store.put("k", b"v1", CREATE)
    tag = store.put("k", b"v2", OVERWRITE)
    assert store.get("k") == (b"v2", tag)
    fresh = store.put("new", b"n", OVERWRITE)
    assert store.get("new") == (b"n", fresh)


def test_a_version_has_one_tag_everywhere_and_a_change_gets_a_new_one(store: ObjectStore) -> None:
    first = store.put("v/k", b"one", CREATE)
    assert store.get("v/k").tag == store.head("v/k").tag == first
    assert [meta.tag for meta in store.list_meta("v/")] == [first]
    second = store.put("v/k", b"two", OVERWRITE)
    assert second != first
    assert store.get("v/k").tag == store.head("v/k").tag == second
    assert [meta.tag for meta in store.list_meta("v/")] == [second]
    # Equal bytes may share a tag (S3's ETag is their MD5) or not (a local store's tag names the
    # write): the contract promises neither, so update() cannot be counted on to see A -> B -> A.


def test_list_meta_is_list_with_what_head_says(store: ObjectStore) -> None:
    if isinstance(store, S3Store):
        store.page_size = 2  # several pages
    keys = ["m/a", "m/b/c", "m/b/d", "m/e", "n/x"]
    for i, key in enumerate(keys):
        store.put(key, b"x" * i, CREATE)
    listings: list[tuple[str, str, int | None]] = [
        ("", "", None),
        ("m/", "", None),
        ("m/", "m/b/c", 9),
        ("m/", "", 3),
    ]
    for prefix, start_after, limit in listings:
        metas = store.list_meta(prefix, start_after, limit)
        assert [meta.key for meta in metas] == store.list(prefix, start_after, limit)
        for meta in metas:
            head = store.head(meta.key)
            assert meta[:3] == head[:3]
            assert abs(meta.modified - head.modified) < 1  # S3: milliseconds listed, seconds HEAD
    assert store.list_meta("m/", limit=0) == []
    assert store.list_meta("none/") == []


def test_delete_removes_the_object(store: ObjectStore) -> None:
    store.put("d/x", b"1", CREATE)
    store.put("d/y", b"2", CREATE)
    store.delete("d/x")
    with pytest.raises(NotFound):
        store.get("d/x")
    assert store.list("d/") == ["d/y"]
    store.put("d/x", b"3", CREATE)  # a deleted key can be created again
    assert store.get("d/x").data == b"3"


def test_list_is_sorted_by_utf8_bytes_and_honours_prefix_and_start_after(store: ObjectStore) -> None:
    keys = ["p/z", "p/a-1", "p/a/1", "p/a0", "p/\u00e9t\u00e9", "p/B", "q/other"]
    for key in keys:
        store.put(key, key.encode(), CREATE)
    expected = sorted((k for k in keys if k.startswith("p/")), key=lambda k: k.encode())
    assert expected == ["p/B", "p/a-1", "p/a/1", "p/a0", "p/z", "p/\u00e9t\u00e9"]
    assert store.list("p/") == expected
    assert store.list("p/a") == ["p/a-1", "p/a/1", "p/a0"]
    assert store.list("p/", start_after="p/a/1") == ["p/a0", "p/z", "p/\u00e9t\u00e9"]
    assert store.list("p/", start_after="p/\u00e9t\u00e9") == []
    assert store.list("nope/") == []
    assert store.list() == sorted(keys, key=lambda k: k.encode())


def test_list_pages_through_many_keys(store: ObjectStore) -> None:
    if isinstance(store, S3Store):
        store.page_size = 7  # 7 keys per LIST request: 60 keys take 9 pages
    keys = [f"many/{i:03d}" for i in range(60)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda key: store.put(key, b"x", CREATE), keys))
    assert store.list("many/") == keys
    assert store.list("many/", start_after="many/049") == keys[50:]
    assert store.list("many/", limit=1) == keys[:1]
    assert store.list("many/", limit=17) == keys[:17]  # across pages on S3
    assert store.list("many/", start_after="many/049", limit=20) == keys[50:]
    assert store.list("many/", limit=0) == []
    assert [meta.key for meta in store.list_meta("many/", start_after="many/009", limit=17)] == keys[10:27]


def test_s3_listing_beyond_1000_keys_uses_continuation(s3_location: S3Location) -> None:
    store = open_store(s3_location.url())
    assert isinstance(store, S3Store)
    keys = [f"big/{i:04d}" for i in range(1005)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: store.put(key, b"", CREATE), keys))
    assert store.page_size == 1000
    assert store.list("big/") == keys
    store.close()


def test_keys_no_backend_can_hold_are_refused_before_any_request(store: ObjectStore) -> None:
    for key in ("/abs", "a//b", ".hidden/x", "a/../b"):
        with pytest.raises(InvalidKey):
            store.put(key, b"x", CREATE)
        with pytest.raises(InvalidKey):
            store.get(key)


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_creates_of_one_key_have_exactly_one_winner(store: ObjectStore, round_: int) -> None:
    key = f"race/{round_}"

    def create(i: int) -> str | None:
        try:
            return store.put(key, f"writer {i}".encode(), CREATE)
        except AlreadyExists:
            return None

    winners = race(store, create)
    assert len(winners) == 1
    assert store.get(key).data == f"writer {winners[0]}".encode()


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_updates_from_one_tag_have_exactly_one_winner(store: ObjectStore, round_: int) -> None:
    key = f"cas/{round_}"
    tag = store.put(key, b"start", CREATE)

    def swap(i: int) -> str | None:
        try:
            return store.put(key, f"writer {i}".encode(), update(tag))
        except PreconditionFailed:
            return None

    winners = race(store, swap)
    assert len(winners) == 1
    assert store.get(key).data == f"writer {winners[0]}".encode()
