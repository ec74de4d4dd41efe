"""Targets 1, 2 and 7a-7c: reads, by threads and by processes, against one raw reading thread.

Read_heavy with thread and process clients, and `Catalog.get` on the shared warmed catalog in
loops of 1 and 20 threads and 1 and 20 spawned processes (each warming its own cache before the
clock starts). The raw baseline is one thread's point select and `json.loads` of the same ~1 KB
bodies, measured before and after the catalog's runs of the round.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _bigcatalog as big

from metafuse import Catalog
from metafuse.stress.scenarios import _content

from .measure import RAW_DOCS, Group, Sample, Scratch, Target, in_turn, loop_rate, scenario

READ_CLIENTS = 20
PROCESS_WARMUP = 2
"""Seconds of a read_heavy process run left out while each process fills its cache."""


def make_docs(path: Path) -> int:
    """Create a table of `RAW_DOCS` JSON rows shaped like the read_heavy datasets; return mean bytes."""
    rng = random.Random(1)
    conn = big.raw_connect(path)
    bodies = [
        json.dumps(
            _content.tokened(
                f"stress.read.{index:04d}", f"read-{rng.getrandbits(32):08x}", extra_fields=6
            ).to_dict()
        )
        for index in range(RAW_DOCS)
    ]
    conn.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO docs (id, body) VALUES (?, ?)", enumerate(bodies, 1))
    conn.execute("COMMIT")
    conn.close()
    return sum(map(len, bodies)) // len(bodies)


def read_docs(conn: sqlite3.Connection, rng: random.Random) -> None:
    """One raw read: point select by primary key, then `json.loads` of the ~1 KB body."""
    row = conn.execute("SELECT body FROM docs WHERE id = ?", (rng.randrange(RAW_DOCS) + 1,)).fetchone()
    json.loads(row[0])


def _process_reader(
    path: str, names: list[str], index: int, barriers: Any, deadline: Any, counts: Any
) -> None:
    """A cached-read process: warm its cache, wait for every sibling, read until the deadline."""
    catalog = Catalog(path)
    for name in names:
        catalog.get(name)
    ready, go = barriers
    ready.wait()
    go.wait()
    get, rng, done, end = catalog.get, random.Random(index), 0, deadline.value
    choose = rng.choice
    while time.monotonic() < end:
        for _ in range(64):
            get(choose(names))
        done += 64
    counts[index] = done
    catalog.close()


def process_rate(path: Path, names: list[str], processes: int, seconds: float) -> float:
    """Cached gets/s of `processes` spawned processes, each with its own warmed Catalog."""
    spawn = multiprocessing.get_context("spawn")
    barriers = (spawn.Barrier(processes + 1), spawn.Barrier(processes + 1))
    deadline = spawn.RawValue("d", 0.0)
    counts = spawn.RawArray("q", processes)
    pool = [
        spawn.Process(target=_process_reader, args=(str(path), names, index, barriers, deadline, counts))
        for index in range(processes)
    ]
    for proc in pool:
        proc.start()
    barriers[0].wait()  # every process has warmed its cache
    deadline.value = time.monotonic() + seconds
    barriers[1].wait()
    for proc in pool:
        proc.join()
    return float(sum(counts)) / seconds


class Reads(Group):
    """Targets 1, 2 and 7a-7c, on the shared warmed catalog and a raw table of the same bodies."""

    name = "reads"
    TARGETS = (
        Target(
            "1",
            f"read_heavy, {READ_CLIENTS} threads, cache on: reads/s >= 1.0 x raw",
            "/s",
            "raw 1 thread: PK select + json.loads of the ~1 KB body, WAL",
            lambda measured, ratio: ratio >= 1.0,
        ),
        Target(
            "2",
            f"read_heavy, {READ_CLIENTS} processes: reads/s >= 1.6 x raw",
            "/s",
            "raw 1 thread, as in 1",
            lambda measured, ratio: ratio >= 1.6,
            f"reads after a {PROCESS_WARMUP} s warm-up in which each process fills its cache (1,000 misses"
            " + checksums)",
        ),
        Target(
            "7a",
            f"cached gets, {READ_CLIENTS} threads >= 0.8 x 1 thread",
            "/s",
            "the same loop of Catalog.get on 1 thread (1,000 cached datasets)",
            lambda measured, ratio: ratio >= 0.8,
        ),
        Target(
            "7b",
            "cached gets, 1 thread >= 10 x raw",
            "/s",
            "raw 1 thread, as in 1",
            lambda measured, ratio: ratio >= 10.0,
        ),
        Target(
            "7c",
            f"cached gets, {READ_CLIENTS} processes >= 1.5 x 1 process",
            "/s",
            "the same loop in 1 process; each process warms its cache before the clock starts",
            lambda measured, ratio: ratio >= 1.5,
        ),
    )

    def __init__(self, scratch: Scratch) -> None:
        super().__init__(scratch)
        self.cached, self.names, self.cached_path = scratch.cached, scratch.names, scratch.cached_path
        self.docs = scratch.workdir / "raw-docs.db"
        self.doc_bytes = make_docs(self.docs)

    def raw_reads(self) -> float:
        return loop_rate(1, self.raw_seconds, lambda index: self._raw_reader())

    def _raw_reader(self) -> Callable[[random.Random], None]:
        conn = big.raw_connect(self.docs)
        return lambda rng: read_docs(conn, rng)

    def cached_gets(self, threads: int) -> float:
        get, names = self.cached.get, self.names

        def read(rng: random.Random) -> None:
            get(rng.choice(names))

        return loop_rate(threads, self.seconds, lambda index: read)

    def read_heavy_processes(self) -> float:
        """Reads/s of read_heavy with process clients, over the seconds after a warm-up.

        Each process fills its own cache (1,000 misses and checksums) when it starts: on two
        cores that takes a second or two of the run, so those seconds are left out.
        """
        warmup = PROCESS_WARMUP
        result = scenario("read_heavy_workload", READ_CLIENTS, self.seconds, "process", warmup=warmup)
        seconds = result.metrics["per_second"][warmup : warmup + self.seconds]
        return float(sum(seconds)) / self.seconds

    def measure(self, round_index: int) -> dict[str, Sample]:
        """Targets 1, 2 and 7a-7c: the read side, raw measured before and after the catalog runs."""
        raw_before = self.raw_reads()
        threads, processes, one_process, one_thread, many_threads = in_turn(
            round_index,
            lambda: float(
                scenario("read_heavy_workload", READ_CLIENTS, self.seconds).metrics["reads_per_sec"]
            ),
            self.read_heavy_processes,
            lambda: process_rate(self.cached_path, self.names, 1, self.seconds),
            lambda: self.cached_gets(1),
            lambda: self.cached_gets(READ_CLIENTS),
        )
        many_processes = process_rate(self.cached_path, self.names, READ_CLIENTS, self.seconds)
        raw = statistics.fmean([raw_before, self.raw_reads()])
        return {
            "1": Sample(threads, raw),
            "2": Sample(processes, raw),
            "7a": Sample(many_threads, one_thread),
            "7b": Sample(one_thread, raw),
            "7c": Sample(many_processes, one_process),
        }
