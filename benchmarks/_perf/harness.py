"""Targets 4 and 6: what the stress harness itself costs, per call and per latency histogram.

Target 4 times the same cached gets of the shared warmed catalog bare and through
`ClientContext.call`, in process CPU time, which other processes on the machine do not inflate.
Target 6, measured once after the rounds, is a `Histogram`'s size after a million samples
against the same samples kept raw.
"""

from __future__ import annotations

import array
import math
import random
import sys
import threading
import time

from metafuse.stress.client import Board, ClientContext
from metafuse.stress.histogram import Histogram

from .measure import Group, Sample, Scratch, Target, in_turn, log
from .report import Row

HARNESS_CALLS = 100_000
"""Cached gets per round timed bare and through `ClientContext.call` for the harness cost."""
HISTOGRAM_SAMPLES = 1_000_000


class Harness(Group):
    """Target 4 each round on the shared warmed catalog; target 6 once, after the rounds."""

    name = "harness"
    TARGETS = (
        Target(
            "4",
            "harness cost <= 10 %: CPU of a cached get through ClientContext.call / bare get <= 1.10",
            "ns",
            "the same cached gets called bare, one thread, process CPU time",
            lambda measured, ratio: ratio <= 1.10,
        ),
    )

    def __init__(self, scratch: Scratch) -> None:
        super().__init__(scratch)
        self.cached, self.names, self.cached_path = scratch.cached, scratch.names, scratch.cached_path

    def measure(self, round_index: int) -> dict[str, Sample]:
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

    def after_rounds(self) -> list[Row]:
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
