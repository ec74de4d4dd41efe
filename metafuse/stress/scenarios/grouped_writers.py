"""Scenario: several machines, each with threads whose saves are grouped into one log entry.

Each client opens its own catalog on one store catalog (its own replica, as a machine would)
and runs `THREADS` writer threads on it that read-modify-save the same few datasets with
`expected_version`. Saves of one client that wait together become one log entry (group
commit), and the entries of different clients race for the log's numbers: an entry that loses
to another client's entry changing one of its datasets must fail exactly the saves that changed
it. Every acknowledged save is recorded; versions acknowledged twice are lost updates.

This module owns the scenario, its setup and its invariants; the tokens are `_content`'s, the ledger
`_ledger`'s. It reaches the catalog only through `Catalog` and its public verbs
(`stats().group_commits` included), never its private modules.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from ...catalog import Catalog
from ...errors import BusyError, ConflictError
from ..client import ClientContext
from ..scenario import RunView, SetupContext, Verdict, inconclusive, scenario
from ._content import checksum, recreate, rewrite, tokened
from ._ledger import WriteLedger

DATASETS = 3
"""Datasets every writer of every client picks from: few, so entries often touch the same one."""

THREADS = 4
"""Writer threads per client, sharing that client's catalog (so their saves are grouped)."""

FIRST = 5
"""Saves each writer thread makes before it looks at the clock: every client starts them at the
same moment, so entries of different clients race however loaded the machine is."""


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    names = [f"stress.grouped.{index}" for index in range(DATASETS)]
    recreate(catalog, [tokened(name, "initial") for name in names])
    return {"names": names}


@scenario(
    "grouped_writers",
    title="grouped writers",
    summary="Clients, each with writer threads on a catalog of its own, save the same 3 datasets on a store.",
    setup=_setup,
    shared_catalog=False,
    store_only="its clients are machines whose grouped saves race at a store's log",
)
def grouped_writers(ctx: ClientContext) -> None:
    """Run `THREADS` writers on a catalog of this client's own until the run ends."""
    ledger = WriteLedger()
    counts = {"acknowledged": 0, "conflicts": 0, "busy": 0, "errors": 0}
    lock = threading.Lock()
    stop = threading.Event()
    problems: list[str] = []
    names: list[str] = ctx.shared["names"]
    go = threading.Event()

    def writer(catalog: Catalog, thread: int) -> None:
        rng = random.Random(ctx.rng.random() + thread)
        writes = 0
        go.wait()
        while writes < FIRST or not stop.is_set():
            name = rng.choice(names)
            outcome = "errors"
            try:
                current = catalog.get(name)
                if current is None:
                    raise LookupError(f"{name} is missing")
                token = f"client-{ctx.client}-thread-{thread}-write-{writes}"
                stored = catalog.save(rewrite(current, token), expected_version=current.version)
                ledger.append((stored.name, stored.version, checksum(stored)))
                outcome = "acknowledged"
            except ConflictError:
                outcome = "conflicts"
            except BusyError:
                outcome = "busy"
            except Exception as error:  # a result to report, not a crash of the thread
                with lock:
                    problems.append(f"{type(error).__name__}: {error}")
            writes += 1
            with lock:
                counts[outcome] += 1

    with Catalog.open(ctx.path) as catalog:
        threads = [threading.Thread(target=writer, args=(catalog, t), daemon=True) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        try:
            ctx.next_round()  # every client's catalog is open: all start writing at once
            go.set()
            while not ctx.should_stop():
                ctx.call("read", catalog.get, names[ctx.client % DATASETS])
                time.sleep(0.05)
        finally:
            go.set()
            stop.set()
            for thread in threads:
                thread.join()
        groups = catalog.stats().group_commits
    ctx.recorder.metrics.update(counts, ledger=ledger, groups=groups, problem=problems[:1])


SCENARIO = grouped_writers


def _ledger(run: RunView) -> WriteLedger:
    merged = WriteLedger()
    for recorder in run.recorders:
        ledger = recorder.metrics.get("ledger")
        if isinstance(ledger, WriteLedger):
            merged.merge(ledger)
    return merged


@grouped_writers.invariant("no_errors", "no read or save failed with an unexpected error")
def _no_errors(run: RunView) -> Verdict:
    errors = run.metric_sum("errors")
    first = next((r.metrics["problem"][0] for r in run.recorders if r.metrics.get("problem")), "")
    if errors:
        return False, f"{errors} saves failed unexpectedly, first: {first}"
    return run.no_unexpected_errors()


@grouped_writers.invariant(
    "groups_formed", "some saves were grouped into one log entry; inconclusive if none was"
)
def _groups_formed(run: RunView) -> Verdict:
    groups, saves = run.metric_sum("groups"), run.metric_sum("acknowledged")
    detail = f"{groups} log entries held several saves; {saves} saves acknowledged"
    if not groups:
        return inconclusive(f"{detail}: nothing was grouped, so the grouped path was not judged")
    return True, detail


@grouped_writers.invariant(
    "version_chain", "each dataset's acknowledged saves got versions 2, 3, ... with no gap or duplicate"
)
def _version_chain(run: RunView) -> Verdict:
    problems = _ledger(run).chain_problems("saves")
    return not problems, "; ".join(problems) or "every chain is complete"


@grouped_writers.invariant(
    "final_content", "each dataset's stored content is the content of its last acknowledged save"
)
def _final_content(run: RunView) -> Verdict:
    stored = {name: run.catalog.get(name) for name in run.shared["names"]}
    problems = _ledger(run).content_problems(stored, "save")
    return not problems, "; ".join(problems) or "stored content matches the last save everywhere"


def _metrics(run: RunView) -> dict[str, Any]:
    ledger = _ledger(run)
    return {
        "acknowledged": run.metric_sum("acknowledged"),
        "conflicts": run.metric_sum("conflicts"),
        "busy": run.metric_sum("busy"),
        "groups": run.metric_sum("groups"),
        "duplicate_versions": sum(ledger.duplicates(name) for name in ledger.names()),
    }


def _headline(result: dict[str, Any]) -> list[tuple[str, Any]]:
    metrics = result["metrics"]
    return [
        ("Saves acknowledged", metrics.get("acknowledged", 0)),
        ("Saves conflicted", metrics.get("conflicts", 0)),
        ("Saves past their bound (busy)", metrics.get("busy", 0)),
        ("Log entries holding several saves", metrics.get("groups", 0)),
        ("Versions acknowledged twice", metrics.get("duplicate_versions", 0)),
    ]


grouped_writers.metrics = _metrics
grouped_writers.headline = _headline
