"""The commit log on real stores: concurrent appenders from threads and processes, and faults.

Every run is judged by `check_log`: gap-free sequences, no commit lost, none written twice,
every acknowledged commit readable at the sequence its append returned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from metafuse.objectstore import AppendContended, CommitLog, ObjectStore, open_store
from metafuse.objectstore.testing import FaultPlan, FaultProxy

from ._support import S3Location, check_log

ROOT = Path(__file__).resolve().parents[2]


def append_from_threads(store: ObjectStore, threads: int, each: int) -> tuple[dict[str, int], set[str]]:
    """`threads` clients (one CommitLog each) append `each` entries, all released together.

    Returns the acknowledged commits (id to sequence) and the ids of those refused at their
    deadline (`AppendContended`: lost numbers for `max_wait` seconds, as an overloaded machine
    can make a writer do; lock-free racing is not fair).
    """
    barrier = threading.Barrier(threads)
    acknowledged: dict[str, int] = {}
    refused: set[str] = set()
    lock = threading.Lock()

    def client(name: int) -> None:
        log = CommitLog(store, "cat")
        barrier.wait()
        for i in range(each):
            try:
                result = log.append({"writer": name, "i": i})
            except AppendContended as contended:
                with lock:
                    refused.add(contended.commit_id)
                continue
            with lock:
                acknowledged[result.commit_id] = result.sequence

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(client, n) for n in range(threads)]:
            future.result()
    return acknowledged, refused


def test_concurrent_thread_appenders_leave_a_gap_free_log(store: ObjectStore) -> None:
    acknowledged, refused = append_from_threads(store, threads=8, each=15)
    check_log(CommitLog(store, "cat"), acknowledged, attempted=120, refused=refused)


def test_concurrent_process_appenders_leave_a_gap_free_log(store_url: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    script = str(Path(__file__).with_name("_appender.py"))
    processes = [
        subprocess.Popen(
            [sys.executable, script, store_url, f"p{n}", "15"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for n in range(3)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        acknowledged: dict[str, int] = {}
        for process in processes:
            out, _ = process.communicate(timeout=120)
            assert process.returncode == 0
            for line in out.splitlines():
                record = json.loads(line)
                acknowledged[record["commit_id"]] = record["sequence"]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    with open_store(store_url) as reader:
        check_log(CommitLog(reader, "cat"), acknowledged, attempted=45)


@pytest.fixture
def proxy(s3_location: S3Location) -> Iterator[FaultProxy]:
    if not s3_location.endpoint_url.startswith("http://"):
        pytest.skip(
            f"the fault proxy speaks plain HTTP; this store's endpoint is {s3_location.endpoint_url!r}"
        )
    with FaultProxy(s3_location.endpoint_url, seed=14) as running:
        yield running


def test_under_ten_percent_faults_no_commit_is_lost_or_duplicated(
    proxy: FaultProxy, s3_location: S3Location
) -> None:
    # Seed 14: the first 150 PUTs include 3-4 of every fault kind (the streams are per method).
    proxy.plan = FaultPlan.mixed(0.10, max_delay=0.05)
    faulty = open_store(s3_location.url(endpoint_url=proxy.endpoint_url))
    acknowledged, refused = append_from_threads(faulty, threads=6, each=25)
    counts, _, _ = proxy.snapshot()
    proxy.plan = FaultPlan()
    for fault in ("unavailable", "conflict", "drop_after", "error_after", "slow"):
        assert counts[("PUT", fault)] >= 1, f"no PUT got {fault}: {counts}"
    injected = sum(n for (_, fault), n in counts.items() if fault)
    assert 0.05 < injected / sum(counts.values()) < 0.15
    with open_store(s3_location.url()) as direct:
        check_log(CommitLog(direct, "cat"), acknowledged, attempted=150, refused=refused)
    faulty.close()
