"""Targets 3, 7d and 7e: writes by ten threads, against raw writers free and queued on a Lock.

concurrent_writers' attempts/s against raw threads running BEGIN IMMEDIATE, a select, a
conditional UPDATE and COMMIT on their own connections, both with SQLite's busy handler alone
and taking turns on a `threading.Lock`; and `benchmarks/group_commit.py`'s rounds of ten threads
saving their own datasets against its raw loop queued on a Lock.
"""

from __future__ import annotations

import functools
import random
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import _bigcatalog as big
import group_commit

from .measure import Group, Sample, Scratch, Target, in_turn, loop_rate, scenario

WRITE_CLIENTS = 10
GROUP_SAVES = 150
"""Saves per thread per round for target 7e (as `benchmarks/group_commit.py` makes them)."""


def make_versioned(path: Path, rows: int = 5) -> None:
    """Create the raw writers' table: `rows` rows with a version column, as concurrent_writers has."""
    conn = big.raw_connect(path)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, body TEXT)")
    conn.executemany("INSERT INTO items VALUES (?, 1, 'initial')", [(index,) for index in range(1, rows + 1)])
    conn.close()


def write_item(conn: sqlite3.Connection, rng: random.Random) -> None:
    """One raw write: BEGIN IMMEDIATE, select the version, conditional UPDATE, COMMIT."""
    item = rng.randrange(5) + 1
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("SELECT version FROM items WHERE id = ?", (item,)).fetchone()[0]
        updated = conn.execute(
            "UPDATE items SET version = version + 1, body = ? WHERE id = ? AND version = ?",
            (f"write-{rng.getrandbits(32):08x}", item, version),
        ).rowcount
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    assert updated == 1


def raw_rate(
    path: Path, threads: int, seconds: float, op: Callable[[sqlite3.Connection, random.Random], None]
) -> float:
    """Run `op` in a loop on `threads` threads, one connection each, for `seconds`; return ops/s."""
    conns = [big.raw_connect(path) for _ in range(threads)]
    try:
        return loop_rate(threads, seconds, lambda index: functools.partial(op, conns[index]))
    finally:
        for conn in conns:
            conn.close()


class Writes(Group):
    """Targets 3, 7d and 7e, on a raw table of five versioned rows and fresh group-commit files."""

    name = "writes"
    TARGETS = (
        Target(
            "3",
            f"concurrent_writers, {WRITE_CLIENTS} threads, FULL: attempts/s >= 0.8 x raw",
            "/s",
            f"raw {WRITE_CLIENTS} threads: BEGIN IMMEDIATE, select, conditional UPDATE, COMMIT"
            " (busy handler)",
            lambda measured, ratio: ratio >= 0.8,
        ),
        Target(
            "7d",
            f"concurrent_writers, {WRITE_CLIENTS} threads, FULL: attempts/s >= 1.0 x raw queued on a Lock",
            "/s",
            f"raw {WRITE_CLIENTS} threads as in 3, taking turns on a threading.Lock",
            lambda measured, ratio: ratio >= 1.0,
        ),
        Target(
            "7e",
            f"{WRITE_CLIENTS}-thread saves, FULL: saves/s >= 1.0 x raw queued on a Lock",
            "/s",
            f"raw {WRITE_CLIENTS} threads, a row each: BEGIN IMMEDIATE, select, UPDATE, COMMIT, on a Lock",
            lambda measured, ratio: ratio >= 1.0,
            f"benchmarks/group_commit.py's rounds: each thread saves its own dataset {GROUP_SAVES} times"
            " (a new row count each, the indexed text unchanged), all released together",
        ),
    )

    def __init__(self, scratch: Scratch) -> None:
        super().__init__(scratch)
        self.writes = scratch.workdir / "raw-writes.db"
        make_versioned(self.writes)

    def measure(self, round_index: int) -> dict[str, Sample]:
        """Targets 3, 7d and 7e: concurrent_writers against raw writers, and saves against raw saves."""
        lock = threading.Lock()

        def queued(conn: sqlite3.Connection, rng: random.Random) -> None:
            with lock:
                write_item(conn, rng)

        def raw(op: Callable[[sqlite3.Connection, random.Random], None]) -> float:
            return raw_rate(self.writes, WRITE_CLIENTS, self.raw_seconds, op)

        catalog, free, turns = in_turn(
            round_index,
            lambda: float(
                scenario("concurrent_writers", WRITE_CLIENTS, self.seconds).operations["write"]["per_sec"]
            ),
            lambda: raw(write_item),
            lambda: raw(queued),
        )
        group_dir = self.workdir / f"group-{round_index}"
        group_dir.mkdir()
        saves, raw_saves = in_turn(
            round_index,
            lambda: group_commit.catalog_round(str(group_dir), WRITE_CLIENTS, GROUP_SAVES)[0],
            lambda: group_commit.raw_round(str(group_dir), WRITE_CLIENTS, GROUP_SAVES),
        )
        return {"3": Sample(catalog, free), "7d": Sample(catalog, turns), "7e": Sample(saves, raw_saves)}
