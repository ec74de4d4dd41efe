"""Targets 5a-5g: a fresh 10,000-dataset catalog each round, against the same rows loaded raw.

Bulk load (`create_many` against raw `executemany`), the p95 latency of cold gets, searches,
list pages and lineage walks (each call alternating with its raw twin), the file's size, and the
resident memory of a fresh interpreter that reads more datasets than the default cache holds.
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import _bigcatalog as big

from metafuse import Catalog
from metafuse.model import Dataset

from . import ROOT
from .measure import Group, Sample, Scratch, Target, in_turn, log

LATENCY_SAMPLES = {"get": 1_000, "search": 60, "list": 60, "lineage": 100}
"""Timed calls per operation and round for the 10,000-dataset latency percentiles."""
RSS_READS = 1_100
"""Distinct datasets the RSS probe reads: more than the default cache holds (1,024)."""


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of `samples`."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def p95_pair(
    catalog: Callable[[Any], Any], raw: Callable[[Any], Any], arguments: Sequence[Any], warmup: int = 50
) -> tuple[float, float]:
    """Time `catalog(argument)` and `raw(argument)` for each argument; return both p95s in ms.

    The two calls alternate (which goes first alternates too), so a change in machine load
    during the loop reaches both sides alike.
    """
    for argument in arguments[:warmup]:
        catalog(argument)
        raw(argument)
    times: tuple[list[float], list[float]] = ([], [])
    clock = time.perf_counter
    for index, argument in enumerate(arguments):
        for side in (0, 1) if index % 2 == 0 else (1, 0):
            call = catalog if side == 0 else raw
            start = clock()
            call(argument)
            times[side].append(clock() - start)
    return percentile(times[0], 0.95) * 1e3, percentile(times[1], 0.95) * 1e3


_RSS_CHILD = r"""
import collections, sys
kind, path, count, name_format = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
names = [name_format.format(index) for index in range(count)]
held = 0
if kind == "catalog":
    from metafuse import Catalog
    catalog = Catalog(path)
    for name in names:
        assert catalog.get(name) is not None
    held = catalog.stats().cache_size
elif kind == "raw":
    import sqlite3
    conn = sqlite3.connect(path)
    kept = collections.OrderedDict()
    for name in names:
        row = conn.execute("SELECT * FROM datasets WHERE name = ?", (name,)).fetchone()
        fields = conn.execute("SELECT * FROM fields WHERE dataset_id = ?", (row[0],)).fetchall()
        kept[name] = (row, fields)
        if len(kept) > 1024:
            kept.popitem(last=False)
    held = len(kept)
try:
    with open("/proc/self/status") as status:
        values = dict(line.split(":", 1) for line in status if ":" in line)
    rss, peak = int(values["VmRSS"].split()[0]), int(values["VmHWM"].split()[0])
except OSError:
    import resource
    rss = peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(rss, peak, held)
"""


def rss_kib(kind: str, path: Path) -> tuple[int, int, int]:
    """Run a fresh interpreter that opens `path` (`catalog`, `raw` or `bare`); return RSS, peak, held."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD, kind, str(path), str(RSS_READS), big.NAME_FORMAT],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.split()
    rss, peak, held = (int(value) for value in out)
    return rss, peak, held


class Bulk(Group):
    """Targets 5a-5g, each round on a fresh file built from the same 10,000 generated datasets."""

    name = "10k"
    TARGETS = (
        Target(
            "5a",
            "bulk load 10k datasets / 100k fields / 50k edges <= 10 s",
            "s",
            "raw executemany into the same schema + FTS rows",
            lambda measured, ratio: measured <= 10.0,
            f"create_many x {big.DATASETS // big.BATCH} batches, a fresh file each round",
        ),
        Target(
            "5b",
            "get cold (cache_size=0) p95 <= 1 ms and <= 2 x raw",
            "ms",
            "raw select of the row by name, then its fields",
            lambda measured, ratio: measured <= 1.0 and ratio <= 2.0,
            f"{LATENCY_SAMPLES['get']:,} random names per round",
        ),
        Target(
            "5c",
            "search (one word, ~160 hits, best 100) p95 <= 10 ms",
            "ms",
            "raw FTS5 MATCH + rank, rows only",
            lambda measured, ratio: measured <= 10.0,
        ),
        Target(
            "5d",
            "list page of 100 p95 <= 5 ms",
            "ms",
            "raw 100 rows + one IN query for fields",
            lambda measured, ratio: measured <= 5.0,
        ),
        Target(
            "5e",
            "lineage upstream depth 3 p95 <= 10 ms",
            "ms",
            "raw recursive CTE",
            lambda measured, ratio: measured <= 10.0,
        ),
        Target(
            "5f",
            "catalog file <= 100 MB",
            "MB",
            "same rows loaded raw",
            lambda measured, ratio: measured <= 100.0,
        ),
        Target(
            "5g",
            "RSS, open catalog with a full default cache <= 50 MB",
            "MB",
            "raw sqlite3 process holding 1,024 rows + fields",
            lambda measured, ratio: measured <= 50.0,
            f"fresh interpreters reading {RSS_READS:,} distinct datasets",
        ),
    )

    def __init__(self, scratch: Scratch) -> None:
        super().__init__(scratch)
        log(f"generating {big.DATASETS:,} datasets")
        self.datasets: list[Dataset] = list(big.generate())

    def measure(self, round_index: int) -> dict[str, Sample]:
        """Targets 5a-5g on a fresh 10,000-dataset catalog per round."""
        path, raw_path = self.workdir / f"big-{round_index}.db", self.workdir / f"big-raw-{round_index}.db"
        load, raw_load = in_turn(
            round_index,
            lambda: big.build(path, self.datasets),
            lambda: big.raw_bulk_load(raw_path, self.datasets),
        )
        size, raw_size = os.path.getsize(path) / 1e6, os.path.getsize(raw_path) / 1e6
        rng = random.Random(5 + round_index)
        names = [big.dataset_name(rng.randrange(big.DATASETS)) for _ in range(LATENCY_SAMPLES["get"])]
        words = [rng.choice(big.WORDS) for _ in range(LATENCY_SAMPLES["search"])]
        pages = [big.dataset_name(rng.randrange(big.DATASETS - 100)) for _ in range(LATENCY_SAMPLES["list"])]
        walks = [big.dataset_name(rng.randrange(big.DATASETS)) for _ in range(LATENCY_SAMPLES["lineage"])]
        conn = big.raw_connect(path)
        with Catalog(path, cache_size=0) as catalog:
            get = p95_pair(catalog.get, lambda name: big.raw_get(conn, name), names)
            search = p95_pair(catalog.search, lambda word: big.raw_search(conn, word), words, warmup=10)
            listing = p95_pair(
                lambda after: catalog.list(limit=100, after=after),
                lambda after: big.raw_list(conn, after),
                pages,
                warmup=10,
            )
            lineage = p95_pair(
                lambda name: catalog.lineage(name, depth=3),
                lambda name: big.raw_lineage(conn, name, 3),
                walks,
            )
        conn.close()
        rss, _, _ = rss_kib("catalog", path)
        raw_rss, _, _ = rss_kib("raw", path)
        big.remove(path)
        big.remove(raw_path)
        return {
            "5a": Sample(load, raw_load),
            "5b": Sample(*get),
            "5c": Sample(*search),
            "5d": Sample(*listing),
            "5e": Sample(*lineage),
            "5f": Sample(size, raw_size),
            "5g": Sample(rss / 1024, raw_rss / 1024),
        }
