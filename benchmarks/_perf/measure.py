"""What every group of performance targets measures with.

`Target` declares a target once (its statement, unit, raw baseline and check); `Sample` is one
round's figure for it beside its baseline; `Group` is a set of targets measured together each
round. `Scratch` holds what the groups share: the scratch directory, the run's durations and one
warmed 1,000-dataset catalog. The loops here time calls on threads (`loop_rate`), run a stress
scenario with a fixed seed (`scenario`), and alternate which side of a ratio goes first from
round to round (`in_turn`), so a change in machine load reaches both sides alike.
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar

from metafuse import Catalog
from metafuse.stress.config import StressConfig
from metafuse.stress.result import ScenarioResult
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY
from metafuse.stress.scenarios import _content

from .report import Row

RAW_DOCS = 1_000
"""Rows in the raw read baseline's table: as many as the read_heavy scenario's datasets."""


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
    """A target measured once per round: its group's `measure(round)` returns one `Sample` for it.

    Several targets can share one measurement (a stress run compared with two raw loops); `check`
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


class Scratch:
    """What the groups share: the scratch directory, the durations, and one warmed catalog.

    `cached` (at `cached_path`) holds `RAW_DOCS` datasets shaped like read_heavy's (`names`),
    each read once on opening, so every get on it is a cache hit. `close` closes it.
    """

    def __init__(self, workdir: Path, seconds: int) -> None:
        self.workdir = workdir
        self.seconds = seconds
        self.raw_seconds = max(1.0, seconds / 2)
        self.cached_path = workdir / "cached.db"
        self.names = make_cached(self.cached_path)
        self.cached = Catalog(self.cached_path)
        for name in self.names:
            self.cached.get(name)

    def close(self) -> None:
        """Close the cached catalog."""
        self.cached.close()


class Group:
    """Targets measured together: `TARGETS` declares them, `measure` returns one `Sample` per key.

    `name` labels the group in the progress lines. A subclass sets up its files in `__init__`
    from the shared `Scratch`, releases them in `close`, and may add rows measured once after
    every round (`after_rounds`).
    """

    name: ClassVar[str]
    TARGETS: ClassVar[tuple[Target, ...]]

    def __init__(self, scratch: Scratch) -> None:
        self.scratch = scratch
        self.workdir = scratch.workdir
        self.seconds = scratch.seconds
        self.raw_seconds = scratch.raw_seconds

    def measure(self, round_index: int) -> Mapping[str, Sample]:
        """Measure every target of the group once; return their samples by key."""
        raise NotImplementedError

    def after_rounds(self) -> list[Row]:
        """Rows measured once, after every round (none unless a group says otherwise)."""
        return []

    def close(self) -> None:
        """Release what `__init__` set up (nothing unless a group says otherwise)."""


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
