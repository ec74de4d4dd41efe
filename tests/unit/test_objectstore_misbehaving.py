"""A misbehaving network in front of `LocalDirStore`: lost replies and late requests.

`local.misbehaving(root, hook)` gives the stores opened on a directory a put hook;
`lost_replies.LostReplies` is the hook the stress scenarios use. The last test is the log's promise
under it: appends from several threads, a fifth of whose entries lose their reply and a fifth
land late, are each acknowledged once, at the number they hold, and none is lost.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from metafuse.objectstore import (
    CREATE,
    OVERWRITE,
    AmbiguousWrite,
    CommitLog,
    LocalDirStore,
    NotFound,
    PutMode,
)
from metafuse.objectstore.local import misbehaving
from metafuse.objectstore.lost_replies import LOST_REPLY, LostReplies


def test_only_stores_opened_in_the_block_on_that_directory_get_the_hook(tmp_path: Path) -> None:
    seen: list[tuple[str, bytes, str]] = []

    def hook(key: str, data: bytes, mode: PutMode, land: Callable[[], str]) -> str:
        seen.append((key, data, str(mode)))
        return land()

    before = LocalDirStore(tmp_path / "a")
    with misbehaving(tmp_path / "a", hook):
        inside = LocalDirStore(tmp_path / "a")
        other = LocalDirStore(tmp_path / "b")
    after = LocalDirStore(tmp_path / "a")
    for store in (before, other, after):
        store.put("k", b"x", OVERWRITE)
    assert seen == []
    inside.put("k", b"y", OVERWRITE)  # the store keeps its hook after the block
    assert seen == [("k", b"y", "overwrite")]
    assert inside.get("k").data == b"y"


def test_a_second_block_on_one_directory_waits_for_the_first(tmp_path: Path) -> None:
    def passing(key: str, data: bytes, mode: PutMode, land: Callable[[], str]) -> str:
        return land()

    entered = threading.Event()
    with misbehaving(tmp_path, passing):

        def enter_second() -> None:
            with misbehaving(tmp_path, passing):
                entered.set()

        second = threading.Thread(target=enter_second)
        second.start()
        assert not entered.wait(0.2)
    second.join(10)
    assert entered.is_set()


def test_a_lost_reply_lands_and_says_nothing_certain(tmp_path: Path) -> None:
    network = LostReplies(1, lost=1.0)
    with misbehaving(tmp_path, network):
        store = LocalDirStore(tmp_path)
    with pytest.raises(AmbiguousWrite, match="Read timeout"):
        store.put("log/1", b"one", CREATE)
    assert store.get("log/1").data == b"one"
    # The store's answer to a second copy (taken) is lost with its reply too.
    with pytest.raises(AmbiguousWrite) as caught:
        store.put("log/1", b"two", CREATE)
    assert caught.value.cause == LOST_REPLY
    assert store.get("log/1").data == b"one"
    assert network.counts["lost"] == 2


def test_a_late_request_lands_after_its_client_gave_up(tmp_path: Path) -> None:
    network = LostReplies(1, late=1.0, late_delay=0.05)
    with misbehaving(tmp_path, network):
        store = LocalDirStore(tmp_path)
    with pytest.raises(AmbiguousWrite):
        store.put("log/1", b"late", CREATE)
    with pytest.raises(NotFound):
        store.get("log/1")  # still on its way
    network.drain()
    assert store.get("log/1").data == b"late"
    with pytest.raises(AmbiguousWrite):
        store.put("log/1", b"later", CREATE)
    network.drain()  # it met the first copy: AlreadyExists, to nobody
    assert store.get("log/1").data == b"late"


def test_only_conditional_puts_under_the_prefix_misbehave(tmp_path: Path) -> None:
    network = LostReplies(1, lost=1.0, prefix="log/")
    with misbehaving(tmp_path, network):
        store = LocalDirStore(tmp_path)
    store.put("snapshots/1", b"s", CREATE)
    store.put("log/1", b"o", OVERWRITE)
    assert network.counts == {}
    with pytest.raises(AmbiguousWrite):
        store.put("log/2", b"c", CREATE)


def test_the_seed_decides_each_puts_fate(tmp_path: Path) -> None:
    def fates(seed: int, directory: Path) -> list[str]:
        network = LostReplies(seed, lost=0.3, late=0.3, late_delay=0.0)
        with misbehaving(directory, network):
            store = LocalDirStore(directory)
        found = []
        for index in range(40):
            try:
                store.put(f"k{index}", b"x", CREATE)
                found.append("")
            except AmbiguousWrite:
                found.append("?")
        network.drain()
        return found

    first = fates(7, tmp_path / "a")
    assert first == fates(7, tmp_path / "b")
    assert first != fates(8, tmp_path / "c")
    assert "" in first
    assert "?" in first


def test_probabilities_that_add_up_past_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at most 1"):
        LostReplies(1, lost=0.6, late=0.6)


def test_appends_through_lost_replies_are_each_acknowledged_once_where_they_landed(tmp_path: Path) -> None:
    network = LostReplies(3, lost=0.2, late=0.2, late_delay=0.01, prefix="log/")
    with misbehaving(tmp_path, network):
        store = LocalDirStore(tmp_path)
    log = CommitLog(store, backoff=0.001)
    acknowledged: dict[str, int] = {}
    lock = threading.Lock()

    def writer(name: str) -> None:
        for index in range(15):
            result = log.append({"writer": name, "index": index})
            with lock:
                acknowledged[result.commit_id] = result.sequence

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    network.drain()
    entries = CommitLog(LocalDirStore(tmp_path)).tail()
    assert network.counts["lost"]
    assert network.counts["late"]
    assert len(acknowledged) == 60
    assert {entry.commit_id: entry.sequence for entry in entries} == acknowledged
    assert [entry.sequence for entry in entries] == list(range(1, 61))
