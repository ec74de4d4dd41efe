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
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _store_writers as writers
from _bigcatalog import dataset_name, generate
from objectstore_log import fresh_url

from metafuse import Catalog, Dataset
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
    seconds: float = 30.0
    runs: int = 3
    processes: int = 5
    servers: tuple[str, ...] = ("single", "threaded")
    parts: tuple[str, ...] = ("sizes", "writers")


QUICK = Plan(sizes=(100, 1_000), commits=10, warmup=2, bootstraps=1, seconds=1.0, runs=1)


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


# -- part 2: many writers, on both servers ---------------------------------------------------------


def writers_table(rows: Sequence[dict[str, Any]]) -> str:
    """One row per cell: medians of its runs; failures summed over them."""
    return markdown(
        (
            "<cell",
            "processes",
            "saves/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            *(f"{kind}/save" for kind in writers.KINDS),
            "saves/entry",
            "<refused saves, updates past their bound",
        ),
        [
            (
                row["cell"],
                str(row["processes"]),
                f"{row['saves_per_s']:.1f}",
                f"{row['p50_ms']:.1f}",
                f"{row['p99_ms']:.1f}",
                f"{row['max_ms']:.0f}",
                *(f"{row['per_save'][kind]:.2f}" for kind in writers.KINDS),
                f"{row['saves_per_entry']:.1f}",
                ", ".join(f"{n} {kind}" for kind, n in sorted(row["failures"].items())) or "none",
            )
            for row in rows
        ],
    )


def targets_table(rows: Sequence[dict[str, Any]]) -> str:
    """Issue #22's targets, each measured as a ratio and met or not."""
    return markdown(
        ("<target", "measured", "<met"),
        [(name, text, "met" if met else "**not met**") for name, text, _, met in writers.targets(rows)],
    )


def measure_writers(plan: Plan) -> list[dict[str, Any]]:
    """Every cell, `plan.runs` times, on each server of `plan.servers`; one entry per server."""
    servers = []
    for server_kind in plan.servers:
        with MotoServer(threaded=server_kind == "threaded") as server:
            rows = []
            for cell in writers.cells(plan.processes):
                endpoint = server.endpoint_url
                runs = [writers.measure_cell(endpoint, cell, plan.seconds) for _ in range(plan.runs)]
                rows.append({**writers.median_of(runs), "runs": runs})
                print(f"{server_kind}: {cell.name}: {rows[-1]['saves_per_s']:.1f} saves/s", file=sys.stderr)
        servers.append({"server": server_kind, "rows": rows})
    return servers


# -- the run ---------------------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a short smoke run (smaller sizes, 1 s cells, 1 run)"
    )
    parser.add_argument(
        "--part", choices=("all", "sizes", "writers"), default="all", help="measure one part only"
    )
    parser.add_argument("--seconds", type=float, help="seconds per writers cell (default 30; 1 with --quick)")
    parser.add_argument("--runs", type=int, help="runs per writers cell, the median shown (default 3)")
    parser.add_argument("--processes", type=int, help="processes the 50 writers are spread over (default 5)")
    parser.add_argument(
        "--servers", help="comma-separated moto servers to measure writers on: single,threaded (both)"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="measure nothing: print the tables of a saved --json report",
    )
    args = parser.parse_args(argv)
    for name in ("seconds", "runs", "processes"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name} must be positive, got {value:g}")
    if args.servers is not None:
        servers = tuple(part.strip() for part in args.servers.split(",") if part.strip())
        unknown = sorted(set(servers) - {"single", "threaded"}) or ([] if servers else ["(none)"])
        if unknown:
            parser.error(f"--servers: {unknown[0]} is not a server; use single, threaded or both")
        args.servers = servers
    return args


def plan_of(args: argparse.Namespace) -> Plan:
    """The plan the options ask for: the full or quick one, with any option given replacing its field."""
    plan = QUICK if args.quick else Plan()
    changes: dict[str, Any] = {
        name: getattr(args, name)
        for name in ("seconds", "runs", "processes", "servers")
        if getattr(args, name) is not None
    }
    if args.part != "all":
        changes["parts"] = (args.part,)
    return dataclasses.replace(plan, **changes)


def measure(plan: Plan) -> dict[str, Any]:
    """The parts `plan` names against moto servers of their own; the report `render` prints."""
    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
        os.environ.setdefault(name, value)
    started = time.perf_counter()
    report: dict[str, Any] = {"plan": dataclasses.asdict(plan), "load_before": os.getloadavg()}
    if "sizes" in plan.parts:
        with MotoServer() as server, FaultProxy(server.endpoint_url) as proxy:
            report["sizes"] = []
            for size in plan.sizes:
                report["sizes"].append(by_size(server.endpoint_url, proxy, size, plan))
                print(f"{size:,} datasets measured", file=sys.stderr)
    if "writers" in plan.parts:
        report["writers"] = measure_writers(plan)
    report["load_after"] = os.getloadavg()
    report["seconds"] = time.perf_counter() - started
    return report


def render(report: dict[str, Any]) -> str:
    """The markdown that docs/benchmarks.md pastes: the tables of the parts measured."""
    plan = report["plan"]
    load = ", ".join(f"{a:.1f}" for a in (*report["load_before"], *report["load_after"]))
    out = []
    if "sizes" in report:
        out.append(
            f"Bytes per commit: `update` of one field of a random dataset by a warm client, mean of"
            f" {plan['commits']} commits after {plan['warmup']} warm-up; bootstrap seconds: median of"
            f" {plan['bootstraps']}, without the proxy.\n\n{size_tables(report['sizes'])}"
        )
    for server in report.get("writers", []):
        kind = "single-threaded" if server["server"] == "single" else "threaded (per-key locks)"
        out.append(
            f"Writers on moto {kind}: {plan['seconds']:g} s per cell, median of {plan['runs']}"
            f" run(s); 50 writers are threads over {plan['processes']} processes, one catalog each.\n\n"
            f"{writers_table(server['rows'])}\n\n{targets_table(server['rows'])}"
        )
    out.append(f"Run took {report['seconds']:.0f} s; load average before and after: {load}.")
    return "\n\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.render:
        report = json.loads(args.render.read_text())
    else:
        report = measure(plan_of(args))
        if args.json:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
