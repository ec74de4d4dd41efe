"""`Catalog.open` on moto's S3 server: bytes per commit as the catalog grows, and commits/s by clients.

    python benchmarks/objectstore_catalog.py [--quick] [--json PATH]

Needs `pip install -e '.[s3]' 'moto[server]'`; starts its own single-threaded moto server on a
free loopback port and stops it at the end. Two parts, printed as markdown tables:

1. Bytes per commit, per catalog size (100, 1,000, 10,000 generated datasets of 10 fields each;
   `_bigcatalog.generate`). Each catalog is built with `create_many` in batches of 1,000 through
   a client that talks to the server directly, and given a snapshot. A warm client, going
   through a pass-through `FaultProxy` that counts HTTP bytes both ways, then runs `update`s of
   one field (`row_count`) of a random dataset; each commit's bytes and requests are counted
   alone. Beside them: the log entry's size, the replica's SQLite file after a checkpoint (what
   a whole-file upload would move per commit), and the compacted snapshot upload (what
   `snapshot_every=100` adds, spread over 100 commits). Then a new client's bootstrap:
   `Catalog.open` plus a first `get`, once from a snapshot with no log tail and once with the
   tail of entries committed since (bytes through the proxy; seconds straight to the server,
   as the proxy adds its own delay to each request).
2. Commits/s and commit latency against 1, 5, 10, 20 and 50 clients (threads, each with its own
   `Catalog.open` and so its own replica, like separate machines), for `same` (every client
   `update`s one shared dataset) and `own` (each client `save`s its own dataset with the version
   its last save returned). Each cell runs twice on a fresh bucket: straight to the server
   (rates, latencies, conflicts) and through a `FaultProxy` (requests and bytes per commit).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _bigcatalog import dataset_name, generate
from objectstore_log import fresh_url

from metafuse import Catalog, ConflictError, Dataset
from metafuse.objectstore.testing import FaultProxy, MotoServer

T = TypeVar("T")

NO_SNAPSHOTS = 1_000_000_000
"""`snapshot_every` for clients whose snapshots are taken by hand (setup, the warm writer)."""
BATCH = 1_000
"""Datasets per `create_many` (one log entry each) when building a catalog."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """How much to measure: `--quick` is a smoke run of the same code."""

    sizes: tuple[int, ...] = (100, 1_000, 10_000)
    commits: int = 50
    warmup: int = 5
    bootstraps: int = 3
    clients: tuple[int, ...] = (1, 5, 10, 20, 50)
    seconds: float = 5.0


QUICK = Plan(sizes=(100, 1_000), commits=10, warmup=2, bootstraps=1, clients=(1, 5), seconds=1.0)


@dataclasses.dataclass
class Traffic:
    """What went through the proxy during one measured action."""

    seconds: float
    requests: Counter[str]
    bytes: int


def counted(proxy: FaultProxy, action: Callable[[], T]) -> tuple[T, Traffic]:
    """Run `action` with the proxy's counters zeroed first; its result and what it moved."""
    proxy.reset_counts()
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    counts, up, down = proxy.snapshot()
    return result, Traffic(seconds, by_method(counts), up + down)


def by_method(counts: Counter[tuple[str, str]]) -> Counter[str]:
    """The proxy's (method, fault) counts summed by method (a LIST is a GET on the bucket)."""
    totals: Counter[str] = Counter()
    for (method, _fault), number in counts.items():
        totals[method] += number
    return totals


def bump(dataset: Dataset) -> Dataset:
    """The one-field change every commit makes."""
    return dataclasses.replace(dataset, row_count=(dataset.row_count or 0) + 1)


def urls(endpoint: str, proxy: FaultProxy) -> tuple[str, str]:
    """A fresh bucket's catalog URL, straight to the server and through the proxy."""
    proxied = fresh_url(endpoint, proxy.endpoint_url)
    return proxied.replace(proxy.endpoint_url, endpoint), proxied


def quantiles(latencies: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds; the p99 is the sample at rank 0.99 n."""
    ordered = sorted(latencies)
    return statistics.median(ordered) * 1e3, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3


# -- part 1: bytes per commit by catalog size ------------------------------------------------------


def bootstrap(direct: str, proxied: str, proxy: FaultProxy, name: str, rounds: int) -> dict[str, float]:
    """A new client's `Catalog.open` and first `get`: bytes and requests, and median seconds.

    Bytes are counted once through the proxy; seconds are timed straight to the server, since
    the proxy adds its own delay to every request.
    """

    def open_and_get(url: str) -> Callable[[], None]:
        def run() -> None:
            with Catalog.open(url) as catalog:
                if catalog.get(name) is None:
                    raise AssertionError(f"{name} missing after bootstrap")

        return run

    _, traffic = counted(proxy, open_and_get(proxied))
    timed = open_and_get(direct)
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        timed()
        seconds.append(time.perf_counter() - started)
    return {
        "bytes": traffic.bytes,
        "requests": sum(traffic.requests.values()),
        "seconds": statistics.median(seconds),
    }


def by_size(endpoint: str, proxy: FaultProxy, size: int, plan: Plan) -> dict[str, Any]:
    """Part 1 for one catalog size."""
    direct, proxied = urls(endpoint, proxy)
    datasets = list(generate(size))
    started = time.perf_counter()
    with Catalog.open(direct, snapshot_every=NO_SNAPSHOTS) as builder:
        for offset in range(0, size, BATCH):
            builder.create_many(datasets[offset : offset + BATCH])
        builder._commits.write_snapshot()
    built = time.perf_counter() - started
    rng = random.Random(size)
    row: dict[str, Any] = {"datasets": size, "build_seconds": built}
    row["bootstrap"] = bootstrap(direct, proxied, proxy, dataset_name(rng.randrange(size)), plan.bootstraps)
    with Catalog.open(proxied, snapshot_every=NO_SNAPSHOTS) as writer:
        for _ in range(plan.warmup):
            writer.update(dataset_name(rng.randrange(size)), bump)
        per_commit: list[Traffic] = []
        for _ in range(plan.commits):
            name = dataset_name(rng.randrange(size))
            per_commit.append(counted(proxy, lambda name=name: writer.update(name, bump))[1])
        commits = writer._commits
        assert commits is not None
        entry, _ = commits.store.get(commits.log.key(commits.log.known_end))
        writer.checkpoint()
        replica = os.path.getsize(commits.replica_path)
        tail = plan.warmup + plan.commits
        row["bootstrap_tail"] = bootstrap(direct, proxied, proxy, dataset_name(0), plan.bootstraps)
        _, upload = counted(proxy, commits.write_snapshot)
    requests: Counter[str] = Counter()
    for traffic in per_commit:
        requests.update(traffic.requests)
    row.update(
        commit_bytes=statistics.mean(t.bytes for t in per_commit),
        commit_bytes_max=max(t.bytes for t in per_commit),
        commit_requests={m: requests[m] / len(per_commit) for m in sorted(requests)},
        entry_bytes=len(entry),
        replica_bytes=replica,
        snapshot_upload_bytes=upload.bytes,
        tail_entries=tail,
    )
    return row


def size_tables(rows: Sequence[dict[str, Any]]) -> str:
    """The bytes-per-commit table and the bootstrap table, one row per catalog size."""
    commits = markdown(
        (
            "datasets",
            "bytes/commit (max)",
            "<requests/commit",
            "log entry",
            "whole file (replica)",
            "whole file ÷ commit",
            "snapshot upload",
            "+ snapshot/100 per commit",
        ),
        [
            (
                f"{row['datasets']:,}",
                f"{row['commit_bytes']:,.0f} ({row['commit_bytes_max']:,})",
                request_mix(row["commit_requests"]),
                f"{row['entry_bytes']:,}",
                f"{row['replica_bytes']:,}",
                f"{row['replica_bytes'] / row['commit_bytes']:,.0f}x",
                f"{row['snapshot_upload_bytes']:,}",
                f"{row['commit_bytes'] + row['snapshot_upload_bytes'] / 100:,.0f}",
            )
            for row in rows
        ],
    )
    bootstraps = markdown(
        (
            "datasets",
            "bootstrap from snapshot: bytes",
            "requests",
            "seconds",
            "with a tail of entries: entries",
            "bytes",
            "requests",
            "seconds",
        ),
        [
            (
                f"{row['datasets']:,}",
                *_bootstrap_cells(row["bootstrap"]),
                str(row["tail_entries"]),
                *_bootstrap_cells(row["bootstrap_tail"]),
            )
            for row in rows
        ],
    )
    return f"{commits}\n\n{bootstraps}"


def _bootstrap_cells(figures: dict[str, float]) -> tuple[str, str, str]:
    return f"{figures['bytes']:,}", str(figures["requests"]), f"{figures['seconds']:.2f}"


def request_mix(per_commit: dict[str, float]) -> str:
    """Requests per commit by HTTP method, e.g. `2 HEAD, 1 PUT` (a LIST is a GET)."""
    return ", ".join(f"{_count(number)} {method}" for method, number in per_commit.items())


def _count(number: float) -> str:
    return f"{number:,.0f}" if number >= 10 else f"{number:.1f}".removesuffix(".0")


def markdown(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table; columns are right-aligned unless their name starts with `<`."""
    names = [column.lstrip("<") for column in columns]
    aligns = ["---" if column.startswith("<") else "---:" for column in columns]
    lines = [f"| {' | '.join(names)} |", f"|{'|'.join(aligns)}|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


# -- part 2: commits per second by client count ----------------------------------------------------


class Tally:
    """Results the client threads hand in, under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latencies: list[float] = []
        self.conflicts = 0
        self.pessimistic = 0

    def add(self, latencies: list[float], conflicts: int, pessimistic: int) -> None:
        with self._lock:
            self.latencies.extend(latencies)
            self.conflicts += conflicts
            self.pessimistic += pessimistic


def contend(
    url: str, clients: int, seconds: float, shared: bool, proxy: FaultProxy | None = None
) -> tuple[float, Tally, Traffic | None]:
    """`clients` catalogs commit for `seconds`: (elapsed seconds, tally, the proxy's counts).

    The proxy's counters are zeroed once every client has opened its catalog and read its
    dataset, so they hold only the commits' traffic.
    """
    with Catalog.open(url) as seed:
        seed.create_many(generate(1 if shared else clients))
    catalogs = [Catalog.open(url) for _ in range(clients)]
    barrier = threading.Barrier(clients + 1, action=None if proxy is None else proxy.reset_counts)
    stop = threading.Event()
    tally = Tally()

    def client(index: int) -> None:
        catalog = catalogs[index]
        name = dataset_name(0 if shared else index)
        current = catalog.get(name)
        assert current is not None
        conflicts = 0
        mine: list[float] = []

        def conflicted(_error: ConflictError, _attempt: int) -> None:
            nonlocal conflicts
            conflicts += 1

        barrier.wait()
        while not stop.is_set():
            started = time.perf_counter()
            if shared:
                catalog.update(name, bump, on_conflict=conflicted)
            else:
                try:
                    current = catalog.save(bump(current), expected_version=current.version)
                except ConflictError:
                    conflicts += 1
                    current = catalog.get(name)
                    assert current is not None
                    continue
            mine.append(time.perf_counter() - started)
        tally.add(mine, conflicts, catalog.stats().pessimistic_updates)

    try:
        with ThreadPoolExecutor(clients) as pool:
            futures = [pool.submit(client, index) for index in range(clients)]
            barrier.wait()
            started = time.perf_counter()
            try:
                time.sleep(seconds)
            finally:
                stop.set()
            for future in futures:
                future.result()
            elapsed = time.perf_counter() - started
        traffic = None
        if proxy is not None:
            counts, up, down = proxy.snapshot()
            traffic = Traffic(elapsed, by_method(counts), up + down)
    finally:
        for catalog in catalogs:
            catalog.close()
    return elapsed, tally, traffic


def by_clients(
    endpoint: str, proxy: FaultProxy, clients: int, shared: bool, seconds: float
) -> dict[str, Any]:
    """Part 2 for one client count and scenario: a timed run, then a counted one."""
    direct, _ = urls(endpoint, proxy)
    elapsed, tally, _ = contend(direct, clients, seconds, shared)
    _, proxied = urls(endpoint, proxy)
    _, counted_tally, traffic = contend(proxied, clients, seconds, shared, proxy)
    assert traffic is not None
    commits = len(counted_tally.latencies)
    p50, p99 = quantiles(tally.latencies)
    return {
        "scenario": "same" if shared else "own",
        "clients": clients,
        "commits": len(tally.latencies),
        "commits_per_s": len(tally.latencies) / elapsed,
        "p50_ms": p50,
        "p99_ms": p99,
        "conflicts_per_commit": tally.conflicts / max(1, len(tally.latencies)),
        "pessimistic": tally.pessimistic,
        "counted_commits": commits,
        "requests_per_commit": {m: traffic.requests[m] / max(1, commits) for m in sorted(traffic.requests)},
        "bytes_per_commit": traffic.bytes / max(1, commits),
    }


def clients_table(rows: Sequence[dict[str, Any]]) -> str:
    """One row per scenario and client count."""
    return markdown(
        (
            "<writers",
            "clients",
            "commits/s",
            "p50 ms",
            "p99 ms",
            "conflicts/commit",
            "5th-attempt updates",
            "<requests/commit",
            "bytes/commit",
        ),
        [
            (
                row["scenario"],
                str(row["clients"]),
                f"{row['commits_per_s']:.1f}",
                f"{row['p50_ms']:.1f}",
                f"{row['p99_ms']:.1f}",
                f"{row['conflicts_per_commit']:.2f}",
                str(row["pessimistic"]),
                request_mix(row["requests_per_commit"]),
                f"{row['bytes_per_commit']:,.0f}",
            )
            for row in rows
        ],
    )


# -- the run ---------------------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (smaller sizes, 1 s cells)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="measure nothing: print the tables of a saved --json report",
    )
    return parser.parse_args(argv)


def measure(plan: Plan) -> dict[str, Any]:
    """Both parts against a moto server of their own; the report `render` prints."""
    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
        os.environ.setdefault(name, value)
    started = time.perf_counter()
    report: dict[str, Any] = {"plan": dataclasses.asdict(plan), "load_before": os.getloadavg()}
    with MotoServer() as server, FaultProxy(server.endpoint_url) as proxy:
        report["sizes"] = []
        for size in plan.sizes:
            report["sizes"].append(by_size(server.endpoint_url, proxy, size, plan))
            print(f"{size:,} datasets measured", file=sys.stderr)
        report["clients"] = []
        for shared in (True, False):
            for clients in plan.clients:
                row = by_clients(server.endpoint_url, proxy, clients, shared, plan.seconds)
                report["clients"].append(row)
                print(f"{row['scenario']} x {clients}: {row['commits_per_s']:.1f} commits/s", file=sys.stderr)
    report["load_after"] = os.getloadavg()
    report["seconds"] = time.perf_counter() - started
    return report


def render(report: dict[str, Any]) -> str:
    """The markdown that docs/benchmarks.md pastes: both parts' tables with what they measured."""
    plan = report["plan"]
    load = ", ".join(f"{a:.1f}" for a in (*report["load_before"], *report["load_after"]))
    return (
        f"Bytes per commit: `update` of one field of a random dataset by a warm client, mean of"
        f" {plan['commits']} commits after {plan['warmup']} warm-up; bootstrap seconds: median of"
        f" {plan['bootstraps']}, without the proxy.\n\n"
        f"{size_tables(report['sizes'])}\n\n"
        f"Commits by client count: {plan['seconds']:g} s per cell; moto single-threaded.\n\n"
        f"{clients_table(report['clients'])}\n\n"
        f"Run took {report['seconds']:.0f} s; load average before and after: {load}."
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.render:
        report = json.loads(args.render.read_text())
    else:
        report = measure(QUICK if args.quick else Plan())
        if args.json:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
