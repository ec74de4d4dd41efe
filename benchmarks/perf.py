"""Measure MetaFuse against its performance targets, each next to a raw `sqlite3` baseline of the same run.

    python benchmarks/perf.py [--json PATH] [--seconds N] [--rounds R]

Every target is measured in `--rounds` rounds (default 5). A round measures each target once,
catalog and raw baseline back to back (which goes first alternates from round to round), so a
change in machine load reaches both sides of a ratio alike. The table reports, per target, the
median of the measured figures and of the baselines, and the median, minimum and maximum of
the per-round ratios; the verdict is taken on the median ratio, so one noisy round can neither
make nor break a target. The same rows, with every round's figures, are written as JSON
(default `.benchmarks/perf.json`). A report, not a gate: it exits 0 whether or not the targets
are met, and 2 only on bad arguments. Standard library and metafuse only; about three minutes
on a 2-core machine with the defaults (`--seconds 2`: each timed loop or stress run lasts 2 s,
each raw loop 1 s).
"""

from __future__ import annotations

import argparse
import array
import dataclasses
import datetime as _dt
import functools
import importlib.util
import json
import math
import multiprocessing
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("metafuse") is None:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

import _bigcatalog as big  # noqa: E402
import group_commit  # noqa: E402

from metafuse import Catalog  # noqa: E402
from metafuse.model import Dataset  # noqa: E402
from metafuse.stress.client import Board, ClientContext  # noqa: E402
from metafuse.stress.config import StressConfig  # noqa: E402
from metafuse.stress.histogram import Histogram  # noqa: E402
from metafuse.stress.result import ScenarioResult  # noqa: E402
from metafuse.stress.runner import run_scenario  # noqa: E402
from metafuse.stress.scenario import REGISTRY  # noqa: E402
from metafuse.stress.scenarios import _content  # noqa: E402

DEFAULT_JSON = ROOT / ".benchmarks" / "perf.json"
DEFAULT_SECONDS = 2
DEFAULT_ROUNDS = 5
READ_CLIENTS = 20
WRITE_CLIENTS = 10
RAW_DOCS = 1_000
"""Rows in the raw read baseline's table: as many as the read_heavy scenario's datasets."""
LATENCY_SAMPLES = {"get": 1_000, "search": 60, "list": 60, "lineage": 100}
"""Timed calls per operation and round for the 10,000-dataset latency percentiles."""
PROCESS_WARMUP = 2
"""Seconds of a read_heavy process run left out while each process fills its cache."""
GROUP_SAVES = 150
"""Saves per thread per round for target 7e (as `benchmarks/group_commit.py` makes them)."""
HARNESS_CALLS = 100_000
"""Cached gets per round timed bare and through `ClientContext.call` for the harness cost."""
RSS_READS = 1_100
"""Distinct datasets the RSS probe reads: more than the default cache holds (1,024)."""
HISTOGRAM_SAMPLES = 1_000_000


@dataclasses.dataclass
class Row:
    """One line of the report: medians over the rounds, and the spread of the per-round ratios.

    `ratio` is the median of the per-round measured / baseline ratios, `ratio_min` and
    `ratio_max` their extremes; `met` is None for context lines.
    """

    key: str
    target: str
    measured: float
    unit: str
    baseline: float | None
    baseline_label: str
    ratio: float | None
    met: bool | None
    detail: str = ""
    baseline_unit: str = ""
    ratio_min: float | None = None
    ratio_max: float | None = None
    rounds: list[dict[str, float]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.baseline_unit = self.baseline_unit or self.unit


@dataclasses.dataclass
class Sample:
    """One round's figure for a target: the catalog's, its raw baseline's, and a note."""

    measured: float
    baseline: float
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.measured / self.baseline if self.baseline else math.nan


@dataclasses.dataclass
class Target:
    """A target measured once per round: `trial(round)` returns one `Sample` per key it serves.

    Several targets can share one trial (a stress run compared with two raw loops); `check`
    decides `met` from the median measured figure and the median ratio (None for context).
    """

    key: str
    target: str
    unit: str
    baseline_label: str
    check: Callable[[float, float], bool] | None
    detail: str = ""
    baseline_unit: str = ""


def log(message: str) -> None:
    """Progress to stderr, so stdout holds only the table."""
    print(f"[perf {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- raw baselines ---------------------------------------------------------------------------


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


def make_versioned(path: Path, rows: int = 5) -> None:
    """Create the raw writers' table: `rows` rows with a version column, as concurrent_writers has."""
    conn = big.raw_connect(path)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, body TEXT)")
    conn.executemany("INSERT INTO items VALUES (?, 1, 'initial')", [(index,) for index in range(1, rows + 1)])
    conn.close()


def read_docs(conn: sqlite3.Connection, rng: random.Random) -> None:
    """One raw read: point select by primary key, then `json.loads` of the ~1 KB body."""
    row = conn.execute("SELECT body FROM docs WHERE id = ?", (rng.randrange(RAW_DOCS) + 1,)).fetchone()
    json.loads(row[0])


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


def loop_rate(threads: int, seconds: float, make: Callable[[int], Callable[[random.Random], None]]) -> float:
    """Run `make(index)(rng)` in a loop on `threads` threads for `seconds`; return calls/s."""
    ops = [make(index) for index in range(threads)]
    counts = [0] * threads
    barrier = threading.Barrier(threads + 1)
    bounds: dict[str, float] = {}

    def worker(index: int) -> None:
        op, rng, done = ops[index], random.Random(index), 0
        barrier.wait()
        deadline = bounds["deadline"]
        while time.perf_counter() < deadline:
            for _ in range(16):
                op(rng)
            done += 16
        counts[index] = done

    pool = [threading.Thread(target=worker, args=(index,), daemon=True) for index in range(threads)]
    for thread in pool:
        thread.start()
    bounds["deadline"] = time.perf_counter() + seconds
    barrier.wait()
    for thread in pool:
        thread.join()
    elapsed = max(time.perf_counter(), bounds["deadline"]) - (bounds["deadline"] - seconds)
    return sum(counts) / elapsed


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


def make_cached(path: Path) -> list[str]:
    """Create a catalog of `RAW_DOCS` datasets shaped like read_heavy's; return their names."""
    rng = random.Random(2)
    names = [f"stress.read.{index:04d}" for index in range(RAW_DOCS)]
    with Catalog(path) as catalog:
        _content.recreate(
            catalog,
            [_content.tokened(name, f"read-{rng.getrandbits(32):08x}", extra_fields=6) for name in names],
        )
    return names


def scenario(
    name: str, clients: int, seconds: int, mode: str = "thread", *, warmup: int = 0
) -> ScenarioResult:
    """Run one registered stress scenario with a fixed seed and return its result."""
    config = StressConfig(clients=clients, duration=seconds + warmup, mode=mode, seed=1, warmup=float(warmup))
    result = run_scenario(REGISTRY[name], config)
    if not result.passed:
        failed = [invariant.name for invariant in result.invariants if not invariant.ok]
        log(f"{name} ({mode}) failed invariants {failed}: its figures are suspect")
    return result


def in_turn(round_index: int, *steps: Callable[[], float]) -> list[float]:
    """Run `steps` in order on even rounds and in reverse on odd ones; return results in order."""
    order = list(range(len(steps)))
    if round_index % 2:
        order.reverse()
    results = [0.0] * len(steps)
    for index in order:
        results[index] = steps[index]()
    return results


# -- the targets -----------------------------------------------------------------------------

TARGETS = [
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
        "3",
        f"concurrent_writers, {WRITE_CLIENTS} threads, FULL: attempts/s >= 0.8 x raw",
        "/s",
        f"raw {WRITE_CLIENTS} threads: BEGIN IMMEDIATE, select, conditional UPDATE, COMMIT (busy handler)",
        lambda measured, ratio: ratio >= 0.8,
    ),
    Target(
        "4",
        "harness cost <= 10 %: CPU of a cached get through ClientContext.call / bare get <= 1.10",
        "ns",
        "the same cached gets called bare, one thread, process CPU time",
        lambda measured, ratio: ratio <= 1.10,
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
        f"benchmarks/group_commit.py's rounds: each thread saves its own dataset {GROUP_SAVES} times (a new"
        " row count each, the indexed text unchanged), all released together",
    ),
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
]


class Bench:
    """What the rounds share: scratch files, a warmed catalog, the 10,000 generated datasets."""

    def __init__(self, workdir: Path, seconds: int) -> None:
        self.workdir = workdir
        self.seconds = seconds
        self.raw_seconds = max(1.0, seconds / 2)
        self.docs = workdir / "raw-docs.db"
        self.doc_bytes = make_docs(self.docs)
        self.writes = workdir / "raw-writes.db"
        make_versioned(self.writes)
        self.cached_path = workdir / "cached.db"
        self.names = make_cached(self.cached_path)
        self.cached = Catalog(self.cached_path)
        for name in self.names:
            self.cached.get(name)
        log(f"generating {big.DATASETS:,} datasets")
        self.datasets: list[Dataset] = list(big.generate())

    def close(self) -> None:
        self.cached.close()

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

    def reads(self, round_index: int) -> dict[str, Sample]:
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

    def writes_round(self, round_index: int) -> dict[str, Sample]:
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

    def harness(self, round_index: int) -> dict[str, Sample]:
        """Target 4: process CPU per cached get, through `ClientContext.call` and bare."""
        rng = random.Random(round_index)
        names = [rng.choice(self.names) for _ in range(HARNESS_CALLS)]
        get = self.cached.get
        now = time.monotonic()
        ctx = ClientContext(
            client=0,
            clients=1,
            mode="thread",
            path=str(self.cached_path),
            catalog=self.cached,
            shared={},
            seed=round_index,
            start=now,
            deadline=now + 3_600,
            record=True,
            live=[0, 0, 0],
            gate=None,  # type: ignore[arg-type]  # no rounds here
            report=lambda value: None,
            stopped=lambda: False,
            board=Board([0] * Board.SIZE, threading.Lock()),
        )
        call = ctx.call

        def bare() -> float:
            start = time.process_time()
            for name in names:
                get(name)
            return (time.process_time() - start) / len(names) * 1e9

        def through_call() -> float:
            start = time.process_time()
            for name in names:
                call("read", get, name)
            ctx.publish()  # fold the last pending latencies in: part of the cost
            return (time.process_time() - start) / len(names) * 1e9

        harnessed, plain = in_turn(round_index, through_call, bare)
        return {"4": Sample(harnessed, plain)}

    def big(self, round_index: int) -> dict[str, Sample]:
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


def run_rounds(bench: Bench, rounds: int) -> dict[str, list[Sample]]:
    """Measure every target once per round, the groups interleaved; return each target's samples."""
    groups = [
        ("reads", bench.reads),
        ("writes", bench.writes_round),
        ("harness", bench.harness),
        ("10k", bench.big),
    ]
    samples: dict[str, list[Sample]] = {target.key: [] for target in TARGETS}
    for round_index in range(rounds):
        for name, measure in groups:
            log(f"round {round_index + 1}/{rounds}: {name}")
            for key, sample in measure(round_index).items():
                samples[key].append(sample)
    return samples


def summarise(target: Target, samples: list[Sample]) -> Row:
    """One report row: medians of the figures and of the per-round ratios, and their spread."""
    ratios = [sample.ratio for sample in samples]
    measured = statistics.median(sample.measured for sample in samples)
    baseline = statistics.median(sample.baseline for sample in samples)
    ratio = statistics.median(ratios)
    spread = ", ".join(f"{value:.3g}" for value in ratios)
    detail = "; ".join(part for part in (target.detail, f"per-round ratios {spread}") if part)
    return Row(
        target.key,
        target.target,
        measured,
        target.unit,
        baseline,
        target.baseline_label,
        ratio,
        target.check(measured, ratio) if target.check is not None else None,
        detail,
        target.baseline_unit,
        min(ratios),
        max(ratios),
        [dataclasses.asdict(sample) | {"ratio": sample.ratio} for sample in samples],
    )


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


# -- target 6: latency recording memory -------------------------------------------------------


def measure_histogram() -> list[Row]:
    """Target 6: a Histogram's size after 1,000,000 samples spread log-uniformly over 1 us - 10 s."""
    log(f"histogram: {HISTOGRAM_SAMPLES:,} samples, 1 us - 10 s")
    rng = random.Random(6)
    low, high = math.log(1e-6), math.log(10.0)
    samples = array.array("d", (math.exp(rng.uniform(low, high)) for _ in range(HISTOGRAM_SAMPLES)))
    histogram = Histogram()
    start = time.perf_counter()
    for sample in samples:
        histogram.add(sample)
    per_add = (time.perf_counter() - start) / HISTOGRAM_SAMPLES
    buckets = histogram.buckets
    size = (
        sys.getsizeof(histogram)
        + sys.getsizeof(buckets)
        + sum(sys.getsizeof(key) + sys.getsizeof(value) for key, value in buckets.items())
    )
    raw = sys.getsizeof(samples)
    doublings = math.ceil(math.log2(10.0 / 1e-6))
    bound = 32 * doublings + 1
    per_client = size * 3  # read, write and one more operation kind per client, at most
    return [
        Row(
            "6",
            f"latency histogram, 1 M samples over 1 us-10 s: <= 32 x {doublings} + 1 = {bound} buckets",
            size / 1024,
            "KiB",
            raw / 1024,
            "the same samples kept raw (array of doubles)",
            size / raw,
            len(buckets) <= bound,
            f"{len(buckets)} buckets; add() {per_add * 1e6:.2f} us. Bound at 50 clients x 300 s: at most"
            f" 32 buckets per doubling of the latency range, so <= 50 clients x 3 operation kinds x"
            f" {size / 1024:.0f} KiB = {50 * per_client / 1e6:.1f} MB however many samples (15 M"
            f" samples kept raw: {15e6 * 8 / 1e6:.0f} MB)",
        )
    ]


# -- report ----------------------------------------------------------------------------------


def show(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "ns":
        return f"{value:,.0f} ns"
    return f"{value:,.3f} {unit}" if unit == "ms" else f"{value:,.2f} {unit}"


def table(rows: Sequence[Row]) -> str:
    """The report as fixed-width text: one line per row, its baseline and detail indented below."""
    head = ("#", "Target", "Measured", "Raw baseline", "Ratio", "min-max", "Result")
    cells = [
        (
            row.key,
            row.target,
            show(row.measured, row.unit),
            show(row.baseline, row.baseline_unit),
            "-" if row.ratio is None else f"{row.ratio:.3g}x",
            "-"
            if row.ratio_min is None or len(row.rounds) < 2
            else f"{row.ratio_min:.3g}-{row.ratio_max:.3g}",
            {True: "met", False: "NOT MET", None: "context"}[row.met],
        )
        for row in rows
    ]
    widths = [max(len(str(line[column])) for line in [head, *cells]) for column in range(len(head))]
    lines = []
    for index, line in enumerate([head, *cells]):
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
        else:
            row = rows[index - 1]
            lines.append(f"{'':{widths[0]}}    baseline: {row.baseline_label}")
            if row.detail:
                lines.append(f"{'':{widths[0]}}    {row.detail}")
    return "\n".join(lines)


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/perf.py",
        description="Measure the performance targets against raw sqlite3 baselines from the same rounds.",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        type=Path,
        default=DEFAULT_JSON,
        help=f"where to write the JSON report (default {DEFAULT_JSON.relative_to(ROOT)})",
    )
    parser.add_argument(
        "--seconds",
        type=int,
        default=DEFAULT_SECONDS,
        metavar="N",
        help=f"each timed loop and stress run, 1-300 s (default {DEFAULT_SECONDS}); raw loops N/2, >= 1 s",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        metavar="R",
        help=f"rounds of every measurement, 1-50 (default {DEFAULT_ROUNDS}); verdicts use the median",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 300:
        parser.error(f"--seconds must be from 1 to 300, not {args.seconds}")
    if not 1 <= args.rounds <= 50:
        parser.error(f"--rounds must be from 1 to 50, not {args.rounds}")
    if args.json.is_dir():
        parser.error(f"--json {args.json} is a directory; give a file path")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every measurement, print the table, write the JSON; 0 whatever the verdicts."""
    args = parse(argv)
    began = time.perf_counter()
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="metafuse-perf-") as scratch:
        bench = Bench(Path(scratch), args.seconds)
        try:
            samples = run_rounds(bench, args.rounds)
        finally:
            bench.close()
    rows = [summarise(target, samples[target.key]) for target in TARGETS]
    rows += measure_histogram()
    elapsed = time.perf_counter() - began
    load_after = _load()
    met = [row for row in rows if row.met is not None]
    print(table(rows))
    print(
        f"\n{sum(1 for row in met if row.met)}/{len(met)} targets met (median of {args.rounds} rounds)",
        end="",
    )
    versions = f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs"
    print(f" in {elapsed:.0f} s ({versions})")
    print(f"load average (1 min) {load_before:.1f} before, {load_after:.1f} after", end="")
    busy = max(load_before, load_after) > (os.cpu_count() or 1)
    print(": other processes competed for the CPUs, so absolute figures are low" if busy else "")
    document = {
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": args.seconds,
        "rounds": args.rounds,
        "elapsed": round(elapsed, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "met": sum(1 for row in met if row.met),
        "targets": len(met),
        "rows": [dataclasses.asdict(row) for row in rows],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
