"""Scenario: writers stall mid-transaction while the retention deletes what they read.

Each client holds two catalogs on one store catalog created with a zero retention: `stalled`
opens a transaction and reads its own counter; then `world` (another replica, which uploads a
snapshot after every commit and runs the retention pass) commits twice, so the retention
deletes the entries `stalled` read and the number it is about to write at. Then `stalled`
saves. The store must refuse that save (`ForkedHistoryError`), or, when another client's
retention pass removed the entry before its writer could check where it landed, say it cannot
tell (`CommitUnknownError`): acknowledged, it would sit at a deleted number no other client
reads. Every client's first stall happens before it looks at the clock, so every run makes at
least one stall per client whatever the load.

On a `log+file://` store the network misbehaves as well (`LostReplies`): a share of the log
entries each client writes lose their reply after landing, or land late, after the writer has
been told nothing; the promises are the same.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

from ...catalog import Catalog
from ...errors import CommitUnknownError, ForkedHistoryError
from ...model import Dataset
from ...objectstore.local import misbehaving
from ...objectstore.lost_replies import LostReplies
from ..client import ClientContext
from ..scenario import RunView, SetupContext, Verdict, inconclusive, scenario
from ._store import local_root, sibling_catalog

LOST, LATE = 0.1, 0.1
"""On a `log+file://` store: the share of log entries whose reply is lost, and that land late."""


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

    Returns "acknowledged", "refused" (the store said the writer fell behind the retention) or
    "unknown" (`CommitUnknownError`: the entry was gone by the time its writer checked where it
    landed, so the log cannot tell whether anyone read it).
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
    except CommitUnknownError:
        return "unknown"
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
    outcomes = {"acknowledged": 0, "refused": 0, "unknown": 0}
    longest = 0.0
    root = local_root(url)
    network = LostReplies(ctx.rng.getrandbits(64), lost=LOST, late=LATE, prefix="log/")
    with contextlib.ExitStack() as stack:
        with misbehaving(root, network) if root is not None else contextlib.nullcontext():
            stalled = stack.enter_context(Catalog.open(url))
            world = stack.enter_context(Catalog.open(url, snapshot_every=1))
        stack.callback(network.drain)  # no late entry lands after the client is done
        while True:
            began = time.monotonic()
            outcome, result = ctx.call("stalled_save", stall_then_save, stalled, world, counter, filler)
            if outcome == "ok" and result is not None:
                outcomes[result] += 1
                ctx.recorder.metrics.update(outcomes)
            ctx.call("read", stalled.get, counter)  # the refused writer starts again from a snapshot
            longest = max(longest, time.monotonic() - began)
            # A stall cannot stop halfway: none is started that would end past the deadline.
            if ctx.should_stop() or ctx.time_left() < longest:
                break
        ctx.recorder.metrics.update({f"network.{fate or 'ok'}": n for fate, n in network.counts.items()})


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
            unknown = int(recorder.metrics.get("unknown", 0))  # may or may not have landed
            found = fresh.get(_counter(recorder.client))
            value = None if found is None else (found.row_count or 0)
            if value is None or not acknowledged <= value <= acknowledged + unknown:
                wrong.append(f"client {recorder.client}: {acknowledged} acknowledged, counter {value}")
    total = run.metric_sum("acknowledged")
    lost, late = run.metric_sum("network.lost"), run.metric_sum("network.late")
    network = f"{lost} replies lost, {late} entries late"
    return not wrong, f"{'; '.join(wrong) if wrong else f'{total} acknowledged saves, all kept'} ({network})"


@stalled_writer.invariant(
    "stalls_refused", "no writer the retention left behind was acknowledged (refused, or told unknown)"
)
def _stalls_refused(run: RunView) -> Verdict:
    refused, acknowledged = run.metric_sum("refused"), run.metric_sum("acknowledged")
    unknown = run.metric_sum("unknown")
    stalls = refused + acknowledged + unknown
    detail = f"{stalls} stalls: {refused} refused, {unknown} unknown, {acknowledged} acknowledged"
    if stalls == 0:
        # Each client makes one stall before it looks at the clock: none with an outcome means
        # every client hung or gave up busy, and no writer was left behind to judge.
        return inconclusive(f"{detail}: too little progress to judge")
    return acknowledged == 0, detail
