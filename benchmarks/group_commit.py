"""Saves per fsync and saves/s of threads saving at once, against a raw loop queued on a Lock.

    python benchmarks/group_commit.py [--threads 10] [--saves 150] [--rounds 5]

Each round, on fresh files with `synchronous = FULL`:

- catalog: `--threads` threads of one `Catalog` each save their own dataset `--saves` times (a
  new row count each time, the version read from the previous save), all released together;
- raw: `--threads` threads, each with its own `sqlite3` connection, run `_bigcatalog.raw_save`
  (BEGIN IMMEDIATE, select, conditional single-row UPDATE, COMMIT) on their own row the same
  number of times, taking turns on one `threading.Lock`: the strongest naive raw writer.

The two go in alternating order from round to round. It prints, per round and as the median and
minimum, the ratio of the catalog's saves/s to the raw loop's, and the catalog's commits
(`stats()`: a commit of a group counts once) and saves per commit, which is saves per fsync.
Figures are recorded, never asserted: a loaded machine moves the rates, not the commit counts'
meaning.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _bigcatalog import raw_save

from metafuse import Catalog, Dataset


def _released_together(threads: int, work: Callable[[int], None]) -> float:
    """Run `work(index)` in `threads` threads released by one barrier; return the seconds taken."""
    barrier = threading.Barrier(threads + 1)

    def run(index: int) -> None:
        barrier.wait()
        work(index)

    pool = [threading.Thread(target=run, args=(index,)) for index in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    return time.perf_counter() - started


def catalog_round(workdir: str, threads: int, saves: int) -> tuple[float, int]:
    """Return (saves/s, commits) for `threads` threads saving through one catalog."""
    with Catalog(os.path.join(workdir, "catalog.db"), synchronous="FULL") as catalog:
        names = [f"bench.group_{index}" for index in range(threads)]
        catalog.create_many(Dataset(name, f"file:///data/{name}") for name in names)

        def work(index: int) -> None:
            version = 1
            for count in range(saves):
                stored = catalog.save(
                    Dataset(names[index], f"file:///data/{names[index]}", row_count=count),
                    expected_version=version,
                )
                version = stored.version

        seconds = _released_together(threads, work)
        stats = catalog.stats()
    total = threads * saves
    commits = stats.group_commits + (total - stats.grouped_writes)
    return total / seconds, commits


def raw_round(workdir: str, threads: int, saves: int) -> float:
    """Return saves/s for the raw conditional-update loop, its threads queued on one Lock."""
    path = os.path.join(workdir, "raw.db")
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode = WAL")
    setup.execute(
        "CREATE TABLE datasets (id INTEGER PRIMARY KEY, name TEXT UNIQUE, description TEXT,"
        " version INTEGER NOT NULL, last_modified TEXT)"
    )
    setup.executemany(
        "INSERT INTO datasets (name, version) VALUES (?, 1)", [(f"raw.{i}",) for i in range(threads)]
    )
    setup.close()
    turns = threading.Lock()

    def work(index: int) -> None:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous = FULL")
        version = 1
        for count in range(saves):
            with turns:
                version = raw_save(conn, f"raw.{index}", version, f"count {count}")
        conn.close()

    return threads * saves / _released_together(threads, work)


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=10)
    parser.add_argument("--saves", type=int, default=150, help="saves per thread per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    ratios: list[float] = []
    per_commit: list[float] = []
    print("| round | catalog saves/s | raw saves/s (queued on a Lock) | ratio | commits | saves per commit |")
    print("|---:|---:|---:|---:|---:|---:|")
    for index in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="metafuse-group-") as workdir:
            if index % 2:
                raw = raw_round(workdir, args.threads, args.saves)
                rate, commits = catalog_round(workdir, args.threads, args.saves)
            else:
                rate, commits = catalog_round(workdir, args.threads, args.saves)
                raw = raw_round(workdir, args.threads, args.saves)
        saves = args.threads * args.saves
        ratios.append(rate / raw)
        per_commit.append(saves / commits)
        cells = (f"{index + 1}", f"{rate:,.0f}", f"{raw:,.0f}", f"{rate / raw:.2f}", f"{commits:,}")
        print(f"| {' | '.join(cells)} | {saves / commits:.2f} |")
    print(
        f"\nratio median {statistics.median(ratios):.2f}, min {min(ratios):.2f}; saves per commit"
        f" median {statistics.median(per_commit):.2f}, min {min(per_commit):.2f}"
        f" ({args.threads} threads x {args.saves} saves, synchronous=FULL, SQLite {sqlite3.sqlite_version})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
