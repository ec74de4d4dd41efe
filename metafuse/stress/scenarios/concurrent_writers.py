"""Scenario 1: clients read-modify-save the same five datasets with `expected_version`.

Owns the scenario, its setup and its invariants; the write loop and the tokens are `_content`'s, the
ledger `_ledger`'s. It reaches the catalog only through its public verbs and switches no fault on
(`runner` does).
"""

from __future__ import annotations

from time import monotonic_ns
from typing import Any

from ...catalog import Catalog
from ..client import ClientContext
from ..history import record_setup
from ..scenario import RunView, SetupContext, Verdict, inconclusive, scenario
from ._content import checksum, recreate, tokened, write_loop
from ._ledger import WriteLedger

DATASETS = 5


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    names = [f"stress.writers.{index}" for index in range(DATASETS)]
    invoke = monotonic_ns()
    created = recreate(catalog, [tokened(name, "initial") for name in names])
    record_setup(setup.config.history, created, invoke, monotonic_ns())
    return {"names": names}


@scenario(
    "concurrent_writers",
    title="concurrent writer",
    summary="Clients read-modify-save the same 5 datasets with expected_version.",
    setup=_setup,
)
def concurrent_writers(ctx: ClientContext) -> None:
    """Read a random dataset, write a unique token over the version read; record successes.

    The first write of every client races on purpose (all read one dataset, then all save it),
    so a run with more than one client has conflicts whatever the load.
    """
    ledger = WriteLedger()
    ctx.recorder.metrics["ledger"] = ledger
    for stored in write_loop(
        ctx,
        ctx.shared["names"],
        lambda n: f"client-{ctx.client}-write-{n}",
        record=True,
        race_first=True,
    ):
        ledger.append((stored.name, stored.version, checksum(stored)))


SCENARIO = concurrent_writers


def _ledger(run: RunView) -> WriteLedger:
    merged = WriteLedger()
    for recorder in run.recorders:
        ledger = recorder.metrics.get("ledger")
        if isinstance(ledger, WriteLedger):
            merged.merge(ledger)
    return merged


@concurrent_writers.invariant("no_errors", "no read or write failed with an unexpected error")
def _no_errors(run: RunView) -> Verdict:
    return run.no_unexpected_errors()


@concurrent_writers.invariant(
    "writes_succeeded", "at least one write succeeded; inconclusive if none was attempted"
)
def _writes_succeeded(run: RunView) -> Verdict:
    writes = run.merged.counts.get("write", {})
    ok = writes.get("ok", 0)
    if not sum(writes.values()):
        return inconclusive("0 writes attempted: too little progress to judge")
    return ok > 0, f"{ok} successful writes"


@concurrent_writers.invariant(
    "conflicts_detected",
    "with more than one client, some writes conflicted (else nothing raced); inconclusive if fewer"
    " than two wrote",
)
def _conflicts_detected(run: RunView) -> Verdict:
    conflicts = run.merged.counts.get("write", {}).get("conflict", 0)
    if run.clients == 1:
        return True, f"1 client: {conflicts} conflicts expected to be 0"
    writers = sum(1 for recorder in run.recorders if sum(recorder.counts.get("write", {}).values()))
    detail = f"{conflicts} conflicts among {run.clients} clients"
    if not conflicts and writers < 2:
        return inconclusive(f"{detail}, of which {writers} wrote: too little progress to judge")
    return conflicts > 0, detail


@concurrent_writers.invariant(
    "version_chain", "each dataset's successful writes got versions 2, 3, ... with no gap or duplicate"
)
def _version_chain(run: RunView) -> Verdict:
    problems = _ledger(run).chain_problems("writes")
    return not problems, "; ".join(problems) or "every chain is complete"


@concurrent_writers.invariant(
    "final_content", "each dataset's stored content is the content of its last successful write"
)
def _final_content(run: RunView) -> Verdict:
    stored = {name: run.catalog.get(name) for name in run.shared["names"]}
    problems = _ledger(run).content_problems(stored, "write")
    return not problems, "; ".join(problems) or "stored content matches the last write everywhere"


def _headline(result: dict[str, Any]) -> list[tuple[str, Any]]:
    write = result["operations"].get("write", {})
    return [
        ("Successful writes", write.get("ok", 0)),
        ("Conflicts detected", write.get("conflict", 0)),
        ("Errors", sum(op.get("error", 0) for op in result["operations"].values())),
        ("Writes/s (attempts)", write.get("per_sec", 0.0)),
    ]


concurrent_writers.headline = _headline
