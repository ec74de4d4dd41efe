"""Many writers on one store catalog: saves/s, latency spread and requests per acknowledged save.

Writers are threads spread over several processes; each process opens one `Catalog` that its
threads share (so saves that wait together are grouped into one log entry), and processes meet
only through the store, as machines would. Each process counts the S3 requests its boto3
client sends (botocore's `before-send` event: every HTTP request, retries included), by kind:
PUT, GET, HEAD, LIST (a GET on the bucket) and DELETE.

Two workloads: `own` (each writer `save`s its own dataset with the version its last save
returned; these never conflict) and `same` (every writer `update`s one shared dataset).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from _bigcatalog import dataset_name, generate

from metafuse import BusyError, Catalog, ConflictError, Dataset, RetriesExhaustedError

MAX_ATTEMPTS = 5
"""`update()`'s bound on attempts (its default), stated so the bound checked is the one asked for."""

KINDS = ("PUT", "GET", "HEAD", "LIST")
"""The request kinds the table shows per acknowledged save (DELETEs are counted, never shown:
a cell takes no snapshot, so nothing is deleted)."""


@dataclasses.dataclass(frozen=True)
class Cell:
    """One measurement: `writers` threads over `processes` processes, `shared` or own datasets."""

    shared: bool
    writers: int
    processes: int

    @property
    def name(self) -> str:
        return f"{'same' if self.shared else 'own'} x {self.writers}"


def cells(processes: int) -> list[Cell]:
    """The four cells: 1 and 50 writers, of their own datasets and of one dataset."""
    return [
        Cell(shared, writers, 1 if writers == 1 else processes)
        for shared in (False, True)
        for writers in (1, 50)
    ]


def bump(dataset: Dataset) -> Dataset:
    """The one-field change every save makes."""
    return dataclasses.replace(dataset, row_count=(dataset.row_count or 0) + 1)


def fresh_url(endpoint: str) -> str:
    """A catalog URL in a new bucket of the server at `endpoint`."""
    import boto3

    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    client.close()
    return f"s3://{bucket}/c?endpoint_url={endpoint}&region=us-east-1"


class Requests:
    """The HTTP requests one boto3 client sent, by kind, under a lock (threads share the client)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def hook(self, request: Any, **_: Any) -> None:
        method = str(request.method)
        kind = "LIST" if method == "GET" and "list-type=" in str(request.url) else method
        with self._lock:
            self.counts[kind] += 1

    def take(self) -> Counter[str]:
        with self._lock:
            counts, self.counts = self.counts, Counter()
        return counts


def _writer_process(
    url: str, cell: Cell, first: int, threads: int, ready: Any, start: Any, stop: Any, results: Any
) -> None:
    """One machine: `threads` writers sharing one catalog, from `start` until `stop`."""
    with Catalog.open(url) as catalog:
        requests = Requests()
        commits = catalog._commits
        assert commits is not None
        commits.store._client.meta.events.register("before-send.s3", requests.hook)  # type: ignore[attr-defined]
        names = [dataset_name(0 if cell.shared else first + index) for index in range(threads)]
        current = [catalog.get(name) for name in names]
        lock = threading.Lock()
        latencies: list[float] = []
        failures: Counter[str] = Counter()
        finished: list[float] = []

        def writer(index: int) -> None:
            mine: list[float] = []
            failed: Counter[str] = Counter()
            dataset = current[index]
            assert dataset is not None
            conflicts = 0

            def conflicted(_error: ConflictError, _attempt: int) -> None:
                nonlocal conflicts
                conflicts += 1

            while not stop.is_set():
                began = time.monotonic()
                try:
                    if cell.shared:
                        conflicts = 0
                        catalog.update(names[index], bump, max_attempts=MAX_ATTEMPTS, on_conflict=conflicted)
                        if conflicts >= MAX_ATTEMPTS:
                            failed["past its bound"] += 1  # acknowledged after more attempts than allowed
                    else:
                        dataset = catalog.save(bump(dataset), expected_version=dataset.version)
                except (BusyError, ConflictError, RetriesExhaustedError) as error:
                    failed[type(error).__name__] += 1
                    if not cell.shared:
                        dataset = _reread(catalog, names[index], dataset)
                    continue
                mine.append(time.monotonic() - began)
            with lock:
                latencies.extend(mine)
                failures.update(failed)
                finished.append(time.monotonic())

        ready.wait()
        start.wait()
        requests.take()
        group_before = catalog.stats().group_commits, catalog.stats().grouped_writes
        pool = [threading.Thread(target=writer, args=(index,)) for index in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        stats = catalog.stats()
        results.put(
            {
                "latencies": latencies,
                "failures": dict(failures),
                "requests": dict(requests.take()),
                "finished": max(finished),
                "group_commits": stats.group_commits - group_before[0],
                "grouped_writes": stats.grouped_writes - group_before[1],
                "pessimistic": catalog.stats().pessimistic_updates,
            }
        )


def _reread(catalog: Catalog, name: str, known: Dataset) -> Dataset:
    """The stored dataset after a failed save, or `known` while reading fails too (busy)."""
    try:
        return catalog.get(name) or known
    except BusyError:
        return known


def measure_cell(endpoint: str, cell: Cell, seconds: float) -> dict[str, Any]:
    """Run `cell` once on a fresh bucket for `seconds` (then every save in flight ends)."""
    url = fresh_url(endpoint)
    with Catalog.open(url) as seed:
        seed.create_many(generate(1 if cell.shared else cell.writers))
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(cell.processes + 1)
    start, stop = context.Event(), context.Event()
    results = context.Queue()
    base, extra = divmod(cell.writers, cell.processes)
    shares = [base + (i < extra) for i in range(cell.processes)]
    firsts = [sum(shares[:i]) for i in range(cell.processes)]
    workers = [
        context.Process(
            target=_writer_process, args=(url, cell, firsts[i], shares[i], ready, start, stop, results)
        )
        for i in range(cell.processes)
    ]
    for worker in workers:
        worker.start()
    try:
        ready.wait(timeout=300)
        began = time.monotonic()
        start.set()
        time.sleep(seconds)
        stop.set()
        parts = [results.get(timeout=600) for _ in workers]
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    return summarise(cell, parts, max(p["finished"] for p in parts) - began)


def summarise(cell: Cell, parts: Sequence[dict[str, Any]], elapsed: float) -> dict[str, Any]:
    """One run of a cell: rates, latency spread, failures and requests per acknowledged save."""
    latencies = sorted(x for part in parts for x in part["latencies"])
    saves = len(latencies)
    requests: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for part in parts:
        requests.update(part["requests"])
        failures.update(part["failures"])
    return {
        "cell": cell.name,
        "shared": cell.shared,
        "writers": cell.writers,
        "processes": cell.processes,
        "elapsed": elapsed,
        "saves": saves,
        "saves_per_s": saves / elapsed,
        "p50_ms": _rank(latencies, 0.50) * 1e3,
        "p99_ms": _rank(latencies, 0.99) * 1e3,
        "max_ms": (latencies[-1] if latencies else 0.0) * 1e3,
        "per_save": {kind: requests[kind] / max(1, saves) for kind in KINDS},
        "failures": dict(failures),
        "pessimistic": sum(part["pessimistic"] for part in parts),
        "grouped_writes": sum(p["grouped_writes"] for p in parts),
        "group_commits": sum(p["group_commits"] for p in parts),
    }


def _rank(ordered: Sequence[float], q: float) -> float:
    """The sample at rank q * n of a sorted list (0 for none)."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


MEDIAN_KEYS = ("saves_per_s", "p50_ms", "p99_ms", "max_ms")


def median_of(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A cell's figures over its runs: the median of each, failures summed over all runs."""
    row = dict(runs[0])
    for key in MEDIAN_KEYS:
        row[key] = statistics.median(run[key] for run in runs)
    row["per_save"] = {kind: statistics.median(run["per_save"][kind] for run in runs) for kind in KINDS}
    failures: Counter[str] = Counter()
    for run in runs:
        failures.update(run["failures"])
    row["failures"] = dict(failures)
    row["pessimistic"] = sum(run["pessimistic"] for run in runs)
    row["saves"] = [run["saves"] for run in runs]
    row["saves_per_entry"] = statistics.median(
        run["grouped_writes"] / run["group_commits"] if run["group_commits"] else 1.0 for run in runs
    )
    return row


def targets(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str, float, bool]]:
    """Issue #22's targets on one server's median rows: (target, measured as text, ratio, met)."""
    by = {row["cell"]: row for row in rows}
    own1, own50, same1, same50 = by["own x 1"], by["own x 50"], by["same x 1"], by["same x 50"]
    past_bound = same50["failures"].get("past its bound", 0)

    def ratio(a: float, b: float) -> float:
        return a / b if b else 0.0

    own_rate = ratio(own50["saves_per_s"], own1["saves_per_s"])
    same_rate = ratio(same50["saves_per_s"], same1["saves_per_s"])
    own_p99 = ratio(own50["p99_ms"], own1["p50_ms"])
    same_p99 = ratio(same50["p99_ms"], same1["p50_ms"])
    return [
        ("50 own writers' saves/s >= 1.0x one writer's", f"{own_rate:.2f}x", own_rate, own_rate >= 1.0),
        (
            "50 own writers' PUTs per acknowledged save <= 1.5",
            f"{own50['per_save']['PUT']:.2f}",
            own50["per_save"]["PUT"],
            own50["per_save"]["PUT"] <= 1.5,
        ),
        (
            "50 `update()` writers' saves/s >= 0.3x one writer's",
            f"{same_rate:.2f}x",
            same_rate,
            same_rate >= 0.3,
        ),
        (
            "no `update()` of 50 writers past its bound",
            f"{past_bound} of {sum(same50['saves'])}",
            float(past_bound),
            past_bound == 0,
        ),
        ("p99 of 50 own writers <= 20x one writer's p50", f"{own_p99:.1f}x", own_p99, own_p99 <= 20),
        (
            "p99 of 50 `update()` writers <= 20x one writer's p50",
            f"{same_p99:.1f}x",
            same_p99,
            same_p99 <= 20,
        ),
    ]


def load() -> tuple[float, float, float]:
    """The load average now (1, 5, 15 minutes)."""
    return os.getloadavg()
