"""Scenario 2: many clients read random datasets from a catalog pre-filled with 1,000.

Owns the scenario, its setup and its invariants. Its clients only read (nothing writes during the
run), and it reaches the catalog only through `Catalog` and its public verbs.
"""

from __future__ import annotations

from time import monotonic_ns
from typing import Any

from ...catalog import Catalog
from ...model import Dataset
from ..client import ClientContext
from ..history import record_setup
from ..result import series_stats
from ..scenario import RunView, SetupContext, Verdict, inconclusive, scenario
from ._content import checksum, recreate, tokened

DATASETS = 1_000
FIELDS_EACH = 8


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    names = [f"stress.read.{index:04d}" for index in range(DATASETS)]
    invoke = monotonic_ns()
    created = recreate(
        catalog,
        [
            tokened(name, f"read-{setup.rng.getrandbits(32):08x}", extra_fields=FIELDS_EACH - 2)
            for name in names
        ],
    )
    record_setup(setup.config.history, created, invoke, monotonic_ns())
    return {"names": names, "checksums": {dataset.name: checksum(dataset) for dataset in created}}


@scenario(
    "read_heavy_workload",
    title="read-heavy",
    summary="Clients read random datasets from a catalog pre-filled with 1,000 datasets.",
    setup=_setup,
    default_clients=20,
)
def read_heavy_workload(ctx: ClientContext) -> None:
    """Read random datasets; verify each distinct object once against the stored checksum."""
    names = ctx.shared["names"]
    expected = ctx.shared["checksums"]
    verified: dict[str, Dataset] = {}
    mismatches = 0
    choose = ctx.rng.choice
    get = ctx.catalog.get
    history = ctx.history
    while not ctx.should_stop():
        name = choose(names)
        _, dataset = ctx.call("read", get, name)
        if history is not None:
            ctx.record("get", name, dataset)
        if dataset is None:
            mismatches += 1  # every dataset exists: None is a wrong answer
        elif verified.get(name) is not dataset:
            # A Dataset is immutable: an object already verified needs no second checksum.
            if checksum(dataset) != expected[name]:
                mismatches += 1
            verified[name] = dataset
    ctx.recorder.metrics["mismatches"] = mismatches


SCENARIO = read_heavy_workload


def _reads_per_sec(run: RunView) -> float:
    reads = run.merged.counts.get("read", {}).get("ok", 0)
    return reads / run.elapsed if run.elapsed > 0 else 0.0


@read_heavy_workload.invariant("no_read_errors", "no read failed")
def _no_errors(run: RunView) -> Verdict:
    errors = run.merged.total("error") + run.merged.total("busy")
    return errors == 0, f"{errors} failed reads"


@read_heavy_workload.invariant("content_intact", "every read returned exactly the stored content")
def _content(run: RunView) -> Verdict:
    mismatches = sum(r.metrics.get("mismatches", 0) for r in run.recorders)
    return mismatches == 0, f"{mismatches} reads differed from the stored checksum"


@read_heavy_workload.invariant("reads_per_sec_above_10", "the catalog served more than 10 reads/s")
def _throughput(run: RunView) -> Verdict:
    rate = _reads_per_sec(run)
    if rate <= 10:  # a speed, not a correctness promise: an overloaded machine cannot judge it
        return inconclusive(f"{rate:,.0f} reads/s: the machine served too few reads to judge")
    return True, f"{rate:,.0f} reads/s"


def _metrics(run: RunView) -> dict[str, Any]:
    return {
        "reads_per_sec": round(_reads_per_sec(run), 1),
        **series_stats(run.merged.per_second, run.elapsed),
    }


def _headline(result: dict[str, Any]) -> list[tuple[str, Any]]:
    read = result["operations"].get("read", {})
    return [
        ("Total reads", read.get("total", 0)),
        ("Reads/s", f"{result['metrics'].get('reads_per_sec', 0):,.1f}"),
        ("Throughput CoV", result["metrics"].get("cov", 0.0)),
        ("Errors", read.get("error", 0)),
    ]


read_heavy_workload.metrics = _metrics
read_heavy_workload.headline = _headline
