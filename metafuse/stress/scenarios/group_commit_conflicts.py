"""Probe: saves that commit as one group include a conflicting one; only that one may fail.

Each client runs `SAVERS` threads on its one Catalog (in thread mode the Catalog every client
shares, in process mode its own), so group commit runs in either mode. Each saver owns one
dataset, so its expected version is always right, and in round r the saver `r % SAVERS` sends
a wrong expected version instead. The savers of a client start each round together at a barrier:
their saves queue at once, and the group a leader takes mixes honest saves with the conflicting
one in every run (with perturbation on, the leader also pauses before it takes the line).

After each acknowledged save its saver reads its dataset back: an acknowledgement is a promise
that the write is committed, so the read must show it. A save is a separate scenario rather than
a phase of `concurrent_writers` because that scenario's writers race for shared datasets, where
a conflict is expected and says nothing; here every conflict but the planted one is a bug.
"""

from __future__ import annotations

import threading
from time import monotonic_ns
from typing import Any

from ...catalog import Catalog
from ...errors import BusyError, ConflictError
from ...model import Dataset
from ..client import ClientContext
from ..history import record_setup
from ..scenario import RunView, SetupContext, Verdict, inconclusive, scenario
from ._content import recreate, tokened

SAVERS = 3
"""Saving threads per client."""


def dataset_name(client: int, saver: int) -> str:
    """The dataset that saver `saver` of client `client` alone writes."""
    return f"stress.group.{client}.{saver}"


def _token(version: int, client: int, saver: int) -> str:
    return f"v{version}-client-{client}-saver-{saver}"


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    invoke = monotonic_ns()
    created = recreate(
        catalog,
        [
            tokened(dataset_name(client, saver), _token(1, client, saver))
            for client in range(setup.clients)
            for saver in range(SAVERS)
        ],
    )
    record_setup(setup.config.history, created, invoke, monotonic_ns())
    return {}


class _Saver:
    """One saving thread's rounds and what it saw (counters read once the threads have ended)."""

    def __init__(self, ctx: ClientContext, index: int, barrier: threading.Barrier) -> None:
        self.ctx = ctx
        self.index = index
        self.barrier = barrier
        self.name = dataset_name(ctx.client, index)
        self.version = 1
        self.honest_acked = self.honest_refused = self.busy = 0
        self.planted = self.planted_refused = self.planted_acked = 0
        self.unseen = 0  # acknowledged saves that a read right after did not show
        self.errors: list[str] = []

    def run(self) -> None:
        ctx = self.ctx
        rounds = 0
        try:
            while not ctx.should_stop():
                try:
                    self.barrier.wait(timeout=max(0.1, ctx.time_left() + 1.0))
                except threading.BrokenBarrierError:
                    return
                planted = rounds % SAVERS == self.index
                rounds += 1
                self.save(planted)
        finally:
            self.barrier.abort()  # the others stop waiting for a round this saver will not join

    def save(self, planted: bool) -> None:
        ctx = self.ctx
        # A wrong expected version: the one before (or, at version 1, the one after).
        expected = (self.version - 1 if self.version > 1 else 2) if planted else self.version
        proposed = tokened(self.name, _token(self.version + 1, ctx.client, self.index))
        error: Exception | None = None
        stored: Dataset | None = None
        if self.index == 0:  # the client's own thread: its calls are timed and recorded
            _, stored = ctx.call("save", ctx.catalog.save, proposed, expected_version=expected)
            error = ctx.last_error
            if ctx.history is not None:
                ctx.record("save", self.name, stored, expected=expected, token=proposed.description)
        else:
            try:
                stored = ctx.catalog.save(proposed, expected_version=expected)
            except Exception as caught:
                error = caught
        self.planted += planted
        if isinstance(error, BusyError):
            self.busy += 1  # never ran its version check: neither acknowledged nor refused
            return
        if error is not None and not isinstance(error, ConflictError):
            self.errors.append(f"{type(error).__name__}: {error}")
            return
        if planted:
            self.planted_refused += error is not None
            self.planted_acked += stored is not None
            if stored is not None:
                self.version = stored.version
            return
        if stored is None:
            self.honest_refused += 1
            if isinstance(error, ConflictError) and error.name == self.name and error.actual is not None:
                self.version = error.actual
            return
        self.honest_acked += 1
        self.version = stored.version
        if self.index == 0:
            _, seen = ctx.call("read", ctx.catalog.get, self.name)
            if ctx.history is not None:
                ctx.record("get", self.name, seen)
        else:
            seen = ctx.catalog.get(self.name)
        if seen is None or seen.version < stored.version:
            self.unseen += 1


@scenario(
    "group_commit_conflicts",
    title="group commit with a conflict",
    summary="Threads of one catalog save together, one with a stale version: only that one fails.",
    setup=_setup,
    default_clients=4,
    default_duration=5,
    history_checked=True,
    file_only="it probes the group commit of a catalog file's threads",
)
def group_commit_conflicts(ctx: ClientContext) -> None:
    """Run `SAVERS` threads of rounds on this client's Catalog; sum up what they saw."""
    barrier = threading.Barrier(SAVERS)
    savers = [_Saver(ctx, index, barrier) for index in range(SAVERS)]
    threads = [
        threading.Thread(target=saver.run, name=f"stress-{ctx.client}-saver-{saver.index}", daemon=True)
        for saver in savers[1:]
    ]
    for thread in threads:
        thread.start()
    try:
        savers[0].run()
    finally:
        barrier.abort()
        for thread in threads:
            thread.join()
    stored = {saver.name: saver.version for saver in savers}
    final = {name: dataset.version if dataset else 0 for name, dataset in _final(ctx, stored).items()}
    ctx.recorder.metrics.update(
        honest_acked=sum(s.honest_acked for s in savers),
        honest_refused=sum(s.honest_refused for s in savers),
        planted=sum(s.planted for s in savers),
        planted_refused=sum(s.planted_refused for s in savers),
        planted_acked=sum(s.planted_acked for s in savers),
        unseen=sum(s.unseen for s in savers),
        busy=sum(s.busy for s in savers),
        # Each dataset has one writer: its stored version is 1 + the saves acknowledged on it.
        lost=sum(1 for s in savers if final[s.name] != 1 + s.honest_acked + s.planted_acked),
        other_errors=sum(len(s.errors) for s in savers),
    )
    for saver in savers:
        for error in saver.errors[:3]:
            ctx.recorder.error(error)


def _final(ctx: ClientContext, names: dict[str, int]) -> dict[str, Dataset | None]:
    return {name: ctx.catalog.get(name) for name in names}


SCENARIO = group_commit_conflicts


@group_commit_conflicts.invariant(
    "passed_checks_committed",
    "every save whose version check passed was committed and acknowledged (a conflict fails only"
    " its own save, never the group it committed with)",
)
def _passed_checks_committed(run: RunView) -> Verdict:
    refused, acked = run.metric_sum("honest_refused"), run.metric_sum("honest_acked")
    detail = f"{refused} saves with the right expected version refused, {acked} acknowledged"
    if not acked and not refused:
        return inconclusive(f"{detail}: no round ran")
    return refused == 0, detail


@group_commit_conflicts.invariant(
    "only_the_conflict_failed", "every save with a wrong expected version failed with a conflict"
)
def _only_the_conflict_failed(run: RunView) -> Verdict:
    acked, planted = run.metric_sum("planted_acked"), run.metric_sum("planted")
    return acked == 0, f"{acked} of {planted} saves with a wrong expected version acknowledged"


@group_commit_conflicts.invariant(
    "acknowledged_visible", "a read right after an acknowledged save shows it (acknowledged after COMMIT)"
)
def _acknowledged_visible(run: RunView) -> Verdict:
    unseen = run.metric_sum("unseen")
    return unseen == 0, f"{unseen} acknowledged saves not shown by the saver's next read"


@group_commit_conflicts.invariant(
    "nothing_lost", "each dataset's final version counts exactly the saves acknowledged on it"
)
def _nothing_lost(run: RunView) -> Verdict:
    lost = run.metric_sum("lost")
    return lost == 0, f"{lost} datasets whose final version differs from their acknowledged saves"


@group_commit_conflicts.invariant("no_errors", "no save or read failed with anything but a conflict")
def _no_errors(run: RunView) -> Verdict:
    return run.no_unexpected_errors("other_errors")


def _metrics(run: RunView) -> dict[str, Any]:
    return {
        "honest_acked": run.metric_sum("honest_acked"),
        "honest_refused": run.metric_sum("honest_refused"),
        "planted": run.metric_sum("planted"),
        "planted_refused": run.metric_sum("planted_refused"),
        "busy": run.metric_sum("busy"),
    }


def _headline(result: dict[str, Any]) -> list[tuple[str, Any]]:
    metrics = result["metrics"]
    return [
        ("Saves acknowledged", metrics.get("honest_acked", 0)),
        ("Right saves refused", metrics.get("honest_refused", 0)),
        ("Planted conflicts refused", f"{metrics.get('planted_refused', 0)} of {metrics.get('planted', 0)}"),
    ]


group_commit_conflicts.metrics = _metrics
group_commit_conflicts.headline = _headline
