"""Scenario: writers stall mid-transaction while the retention deletes what they read.

Each client holds two catalogs on one store catalog created with a zero retention: `stalled`
opens a transaction and reads its own counter; then `world` (another replica, which uploads a
snapshot after every commit and runs the retention pass) commits twice, so the retention
deletes the entries `stalled` read and the number it is about to write at. Then `stalled`
saves. The store must refuse that save (`ForkedHistoryError`): acknowledged, it would sit at a
deleted number that no other client reads. Every client's first stall happens before it looks
at the clock, so every run makes at least one stall per client whatever the load.
"""

from __future__ import annotations

import uuid
from typing import Any

from ...catalog import Catalog
from ...errors import ForkedHistoryError
from ...model import Dataset
from ..client import ClientContext
from ..scenario import RunView, SetupContext, Verdict, scenario
from ._store import sibling_catalog


def _counter(client: int) -> str:
    return f"stall.counter.{client}"


def _filler(client: int) -> str:
    return f"stall.world.{client}"


def _bump(dataset: Dataset) -> Dataset:
    return dataset.replace(row_count=(dataset.row_count or 0) + 1)


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    url = sibling_catalog(setup.path, f"stalled-writer-{uuid.uuid4().hex[:12]}")
    with Catalog.open(url, retention=0) as own:
        for client in range(setup.clients):
            for name in (_counter(client), _filler(client)):
                own.create(Dataset(name=name, uri=f"mem://{name}", row_count=0))
    return {"url": url}


def stall_then_save(stalled: Catalog, world: Catalog, counter: str, filler: str) -> str:
    """One stall: read `counter` in a transaction, let `world` commit twice, then save it.

    Returns "acknowledged" or "refused" (the store said the writer fell behind the retention).
    """
    try:
        with stalled.transaction():
            current = stalled.get(counter)
            if current is None:
                raise LookupError(f"{counter} is missing")
            for _ in range(2):
                world.update(filler, _bump)
            stalled.save(_bump(current), expected_version=current.version)
    except ForkedHistoryError:
        return "refused"
    return "acknowledged"


@scenario(
    "stalled_writer",
    title="stalled writer",
    summary="Writers stall mid-transaction while the retention deletes what they read; each is refused.",
    setup=_setup,
    shared_catalog=False,
    store_only="it stalls writers past a store catalog's retention",
)
def stalled_writer(ctx: ClientContext) -> None:
    """Stall, save, count the outcome; the first stall comes before the first look at the clock."""
    url = ctx.shared["url"]
    counter, filler = _counter(ctx.client), _filler(ctx.client)
    outcomes = {"acknowledged": 0, "refused": 0}
    with Catalog.open(url) as stalled, Catalog.open(url, snapshot_every=1) as world:
        while True:
            outcome, result = ctx.call("stalled_save", stall_then_save, stalled, world, counter, filler)
            if outcome == "ok" and result is not None:
                outcomes[result] += 1
                ctx.recorder.metrics.update(outcomes)
            ctx.call("read", stalled.get, counter)  # the refused writer starts again from a snapshot
            if ctx.should_stop():
                break


SCENARIO = stalled_writer


@stalled_writer.invariant("no_errors", "no stall, save or read failed with an unexpected error")
def _no_errors(run: RunView) -> Verdict:
    return run.no_unexpected_errors()


@stalled_writer.invariant(
    "acknowledged_kept", "every save acknowledged to a stalled writer is in what a new client reads, once"
)
def _acknowledged_kept(run: RunView) -> Verdict:
    wrong = []
    with Catalog.open(run.shared["url"]) as fresh:
        for recorder in run.recorders:
            acknowledged = int(recorder.metrics.get("acknowledged", 0))
            found = fresh.get(_counter(recorder.client))
            value = None if found is None else (found.row_count or 0)
            if value != acknowledged:
                wrong.append(f"client {recorder.client}: {acknowledged} acknowledged, counter {value}")
    total = run.metric_sum("acknowledged")
    return not wrong, "; ".join(wrong) if wrong else f"{total} acknowledged saves, all kept"


@stalled_writer.invariant("stalls_refused", "every writer the retention left behind was refused")
def _stalls_refused(run: RunView) -> Verdict:
    refused, acknowledged = run.metric_sum("refused"), run.metric_sum("acknowledged")
    stalls = refused + acknowledged
    detail = f"{stalls} stalls: {refused} refused, {acknowledged} acknowledged"
    return stalls > 0 and acknowledged == 0, detail
