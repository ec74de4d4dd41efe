"""`LocalDirStore` under concurrent use: listings are snapshots, tags come from the file, not its bytes.

A listing of an ext4 directory walks it in hash order, one batch of names per `getdents` call;
a name created behind the walk is missed while one created ahead of it is seen, so without a
lock a listing taken during appends can hold entry n + 2 but not n. The directories here are
padded with thousands of names that sort before every key the tests read, so that a walk spans
many batches and appends from other threads and processes land in the middle of it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from metafuse.objectstore import (
    CREATE,
    OVERWRITE,
    AlreadyExists,
    CommitLog,
    LocalDirStore,
    NotFound,
    PreconditionFailed,
    StoreInaccessible,
    update,
)

ROOT = Path(__file__).resolve().parents[2]
PADDING = 20_000
APPENDS = 40
"""Appends by each appender: two processes and one thread."""

PAD_AFTER = "0-~"
"""Sorts after every padding name ("0-pad-<i>") and before every entry ("<20 digits>...")."""


def pad(directory: Path) -> None:
    """Fill `directory` with PADDING hard links of one empty file, named to sort before every key."""
    directory.mkdir(parents=True, exist_ok=True)
    seed = directory.parent / "padding-seed"
    seed.write_bytes(b"")
    for i in range(PADDING):
        os.link(seed, directory / f"0-pad-{i}")
    seed.unlink()


def sequence_of(key: str) -> int:
    return int(key.rsplit("/", 1)[1][:20])


class Checks:
    """Runs `check` in a loop from several threads until stopped; keeps what each one found wrong."""

    def __init__(self, check: Callable[[], str | None], threads: int) -> None:
        self.problems: list[str] = []
        self.runs = 0
        self._check = check
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop) for _ in range(threads)]

    def _loop(self) -> None:
        while not self._stop.is_set():
            problem = self._check()
            with self._lock:
                self.runs += 1
                if problem is not None:
                    self.problems.append(problem)

    def __enter__(self) -> Checks:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def run_appenders(script: str, root: Path, thread_target: Callable[[], None]) -> None:
    """Run `script` (python -c, given the store root) in two processes and `thread_target` in a thread."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    processes = [subprocess.Popen([sys.executable, "-c", script, str(root)], env=env) for _ in range(2)]
    thread = threading.Thread(target=thread_target)
    thread.start()
    try:
        for process in processes:
            assert process.wait(timeout=300) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        thread.join()


CREATE_IN_ORDER = f"""
import sys
from metafuse.objectstore import CREATE, AlreadyExists, LocalDirStore
store = LocalDirStore(sys.argv[1])
n = made = 0
while made < {APPENDS}:
    n += 1
    try:
        store.put(f"log/{{n:020d}}", b"x", CREATE)
        made += 1
    except AlreadyExists:
        pass
"""


@pytest.mark.slow
def test_a_listing_during_appends_is_a_gap_free_prefix(tmp_path: Path) -> None:
    # Appenders create log/<n> only after log/<n-1> exists (create-if-absent, in order): every
    # state of the directory is a prefix 1..k, so every listing must be one too.
    store = LocalDirStore(tmp_path)
    pad(tmp_path / "log")

    def create_in_order() -> None:
        n = made = 0
        while made < APPENDS:
            n += 1
            try:
                store.put(f"log/{n:020d}", b"x", CREATE)
                made += 1
            except AlreadyExists:
                pass

    def listing_is_a_prefix() -> str | None:
        sequences = [sequence_of(key) for key in store.list("log/", start_after=f"log/{PAD_AFTER}")]
        if sequences != list(range(1, len(sequences) + 1)):
            missing = sorted(set(range(1, max(sequences) + 1)) - set(sequences))
            return f"listed up to {max(sequences)} without {missing[:5]}"
        return None

    with Checks(listing_is_a_prefix, threads=2) as checks:
        run_appenders(CREATE_IN_ORDER, tmp_path, create_in_order)
    assert len(store.list("log/", start_after=f"log/{PAD_AFTER}")) == 3 * APPENDS
    assert checks.runs > 0
    assert checks.problems == [], f"{len(checks.problems)} of {checks.runs} checks failed"


APPEND_TO_LOG = f"""
import sys
from metafuse.objectstore import CommitLog, LocalDirStore
log = CommitLog(LocalDirStore(sys.argv[1]), "cat")
after = 3
for i in range({APPENDS}):
    after = log.append({{"i": i}}, after=after).sequence
"""


@pytest.mark.slow
def test_tail_during_appends_reports_no_false_gap(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    seeding = CommitLog(store, "cat")
    for i in range(3):
        seeding.append({"seed": i})
    # Every read below starts after entry 2, so the log never lists the padding as a key.
    pad(tmp_path / "cat" / "log")

    def append() -> None:
        log = CommitLog(store, "cat")
        after = 3
        for i in range(APPENDS):
            after = log.append({"i": i}, after=after).sequence

    seen = [3]  # the newest entry a tail returned: each tail starts a few before it

    def tail_is_whole() -> str | None:
        after = max(3, seen[-1] - 5)
        try:
            entries = CommitLog(store, "cat").tail(after=after)
        except Exception as exc:  # the failure this test is about is LogCorrupt, but say any
            return f"{type(exc).__name__}: {exc}"
        sequences = [entry.sequence for entry in entries]
        if sequences:
            seen.append(sequences[-1])
        expected = list(range(after + 1, after + 1 + len(sequences)))
        return None if sequences == expected else f"tail after {after} gave {sequences}"

    with Checks(tail_is_whole, threads=2) as checks:
        run_appenders(APPEND_TO_LOG, tmp_path, append)
    assert [e.sequence for e in CommitLog(store, "cat").tail(after=3)] == list(range(4, 4 + 3 * APPENDS))
    assert checks.runs > 0
    assert checks.problems == [], f"{len(checks.problems)} of {checks.runs} checks failed"


def test_head_and_list_meta_give_the_tag_get_and_put_give(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    tag = store.put("a/b", b"one", CREATE)
    assert store.get("a/b").tag == tag
    assert store.head("a/b")[:3] == ("a/b", 3, tag)
    assert store.list_meta("a/") == [store.head("a/b")]
    newer = store.put("a/b", b"two", update(tag))
    assert newer != tag
    assert store.get("a/b") == (b"two", newer)
    assert store.head("a/b").tag == newer


def test_rewriting_the_same_bytes_gives_a_new_tag(tmp_path: Path) -> None:
    # A tag names a write, not a content: update() sees A -> B -> A on a local store.
    store = LocalDirStore(tmp_path)
    first = store.put("k", b"same", CREATE)
    again = store.put("k", b"same", OVERWRITE)
    assert again != first
    with pytest.raises(PreconditionFailed):
        store.put("k", b"other", update(first))
    store.delete("k")
    recreated = store.put("k", b"same", CREATE)
    assert recreated not in (first, again)
    with pytest.raises(NotFound):
        store.head("missing")


def test_head_does_not_read_the_object(tmp_path: Path) -> None:
    # A sparse terabyte: reading it would need a terabyte of memory; a stat does not care.
    store = LocalDirStore(tmp_path)
    tag = store.put("big", b"", CREATE)
    os.truncate(tmp_path / "big", 2**40)
    meta = store.head("big")
    assert meta.size == 2**40
    assert meta.tag != tag  # the content changed under it, so the tag did too
    assert store.list_meta() == [meta]


def test_list_limit_and_start_after_skip_directories_out_of_range(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    for key in ["p/a-1", "p/a/1", "p/a/2", "p/a0", "p/b/x/y", "p/c", "q/1"]:
        store.put(key, b"", CREATE)
    assert store.list("p/", limit=1) == ["p/a-1"]
    assert store.list("p/", limit=2) == ["p/a-1", "p/a/1"]
    assert store.list("p/", start_after="p/a/1") == ["p/a/2", "p/a0", "p/b/x/y", "p/c"]
    assert store.list("p/", start_after="p/a0", limit=1) == ["p/b/x/y"]
    assert store.list("p/b") == ["p/b/x/y"]
    assert store.list("p/a/") == ["p/a/1", "p/a/2"]
    assert [meta.key for meta in store.list_meta("p/", start_after="p/a", limit=3)] == [
        "p/a-1",
        "p/a/1",
        "p/a/2",
    ]
    assert store.list("p/", limit=0) == [] == store.list_meta("p/", limit=0)


def test_a_removed_store_directory_is_reported_not_listed_as_empty(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path / "store")
    store.put("log/1", b"x", CREATE)
    shutil.rmtree(tmp_path / "store")
    calls: dict[str, Callable[[], object]] = {
        "list": lambda: store.list("log/"),
        "list_meta": lambda: store.list_meta("log/", limit=2),
        "create": lambda: store.put("log/2", b"x", CREATE),
        "delete": lambda: store.delete("log/1"),
    }
    for name, call in calls.items():
        with pytest.raises(StoreInaccessible, match="the store was removed or moved"):
            call()
        assert not (tmp_path / "store").exists(), f"{name} made the directory again"
