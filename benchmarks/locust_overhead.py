"""What Locust adds to each catalog call: reporting it through `events.request`, recording its history line.

Run with the `locust` extra installed: `python benchmarks/locust_overhead.py`. Prints microseconds
per call for each, over 200,000 calls in one process (Locust's statistics listener included).
"""

from __future__ import annotations

import os
import tempfile
import time

from locust import User, events
from locust.env import Environment

from metafuse.stress.history import HistoryWriter

CALLS = 200_000


def main() -> None:
    environment = Environment(user_classes=[User], events=events)
    environment.create_local_runner()
    started = time.perf_counter()
    for _ in range(CALLS):
        environment.events.request.fire(
            request_type="catalog",
            name="get",
            response_time=0.01,
            response_length=0,
            exception=None,
            context={},
        )
    fire = (time.perf_counter() - started) / CALLS
    fd, path = tempfile.mkstemp(suffix=".jsonl")
    os.close(fd)
    try:
        writer = HistoryWriter(path, 1)
        started = time.perf_counter()
        for _ in range(CALLS):
            now = time.time_ns()
            writer.add(
                "get", "locust.writers.0", now, time.time_ns(), "ok", version=3, token="client-1-write-2"
            )
        writer.flush()
        record = (time.perf_counter() - started) / CALLS
    finally:
        os.unlink(path)
    print(f"events.request.fire: {fire * 1e6:.2f} us/call; history line: {record * 1e6:.2f} us/call")


if __name__ == "__main__":
    main()
