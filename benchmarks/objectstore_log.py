"""Commit-log appends against moto's S3 server on loopback: appends/s and bytes moved per append.

    python benchmarks/objectstore_log.py [--threads 1,5,10] [--appends 40]

Needs `pip install -e '.[s3]' 'moto[server]'`. For each thread count it runs the appenders twice
on a fresh bucket: once straight to the server (appends/s, p50/p99 append latency) and once
through a pass-through `FaultProxy` that counts HTTP bytes (status lines, headers and bodies,
both directions) and requests per append. Two ways to pick the sequence number are measured:
`probe` (append() with no `after`: HEAD the next entry, then PUT) and `known` (after=the last
sequence this client saw, as a client with a replica does: just the PUT).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from metafuse.objectstore import CommitLog, ObjectStore, open_store
from metafuse.objectstore.testing import FaultProxy, MotoServer

PAYLOAD = {
    "op": "update",
    "dataset": "sales.orders",
    "expected_version": 41,
    "changes": {"row_count": 1_234_567, "description": "orders, one row per order line"},
}
"""A typical one-field catalog change."""


def run(store: ObjectStore, threads: int, appends: int, mode: str) -> tuple[float, list[float], int]:
    """`threads` clients append `appends` entries each; returns (seconds, latencies, puts sent)."""
    barrier = threading.Barrier(threads + 1)
    latencies: list[float] = []
    puts = 0
    lock = threading.Lock()

    def client(name: int) -> None:
        nonlocal puts
        log = CommitLog(store, "cat")
        mine: list[float] = []
        sent = 0
        barrier.wait()
        for i in range(appends):
            started = time.perf_counter()
            after = log.known_end if mode == "known" else None
            result = log.append({**PAYLOAD, "writer": name, "i": i}, after=after)
            mine.append(time.perf_counter() - started)
            sent += result.attempts
        with lock:
            latencies.extend(mine)
            puts += sent

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(client, n) for n in range(threads)]
        barrier.wait()
        started = time.perf_counter()
        for future in futures:
            future.result()
        elapsed = time.perf_counter() - started
    return elapsed, latencies, puts


def fresh_url(endpoint: str, via: str | None = None) -> str:
    import boto3

    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/b?endpoint_url={via or endpoint}&region=us-east-1"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,5,10", help="comma-separated client thread counts")
    parser.add_argument("--appends", type=int, default=40, help="appends per thread")
    args = parser.parse_args()
    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
        os.environ.setdefault(name, value)
    counts = [int(n) for n in args.threads.split(",")]
    print(f"{args.appends} appends per thread; moto single-threaded\n")
    print("| mode | threads | appends/s | p50 ms | p99 ms | PUTs/append | requests/append | bytes/append |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with MotoServer() as server:
        for mode in ("probe", "known"):
            for threads in counts:
                with open_store(fresh_url(server.endpoint_url)) as direct:
                    elapsed, latencies, _ = run(direct, threads, args.appends, mode)
                with FaultProxy(server.endpoint_url) as proxy:
                    with open_store(fresh_url(server.endpoint_url, proxy.endpoint_url)) as proxied:
                        proxy.reset_counts()
                        _, _, puts = run(proxied, threads, args.appends, mode)
                    requests, up, down = proxy.snapshot()
                total = threads * args.appends
                latencies.sort()
                p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
                p50 = statistics.median(latencies)
                print(
                    f"| {mode} | {threads} | {total / elapsed:.0f} | {p50 * 1e3:.1f} "
                    f"| {p99 * 1e3:.1f} | {puts / total:.2f} | {sum(requests.values()) / total:.2f} "
                    f"| {(up + down) / total:.0f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
