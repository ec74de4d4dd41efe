"""Write skew: in each round, clients read both flags of a pair in a transaction and turn their own on
only if neither is on; a serializable catalog never lets both turn on.

Each pair of datasets (`stress.skew.<pair>.a` and `.b`) holds one flag each: the round in which it
was turned on (`row_count`, 0 for never). In round r every client runs one `catalog.transaction()`
on its pair: it reads both datasets, and saves its own side with flag r only if neither is r yet.
In any serial order the first transaction of a pair turns its side on and every later one sees it
and writes nothing, so a round never ends with both sides on. If the catalog validates only
writes (each client's save names the version it read of its own dataset), two transactions that
read before either commits both pass: the write skew of Adya's G2.

The race is made, not hoped for. Every client has a catalog of its own (`own_catalogs`: opened by
the runner before the run's clock starts, so a loaded machine spends none of a short run opening
catalogs) and meets the others in each round twice: before its transaction (the round gate) and
inside it, after its reads and before its write. On an object store nothing serializes the
transactions of different catalogs, so every client waits there until every other has read: all
reads of a round precede all its writes. On a catalog file the writer lock admits one transaction
at a time, so waiting for the others' reads would deadlock; each waits instead until every other
client has *started* its transaction (it is then queued on the lock), so the transactions of a
round overlap in time by construction and only the lock keeps them apart.

Each transaction is recorded as a `txn` line (its reads and writes, and its outcome); the
`serializable` invariant runs `metafuse.stress.serializability` on them, and `--history` writes
them out for `stress check-history`.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from time import monotonic_ns
from typing import Any

from ..._logcommits import is_store_url
from ...catalog import Catalog
from ...model import Dataset
from ..client import ClientContext
from ..history import CONFLICT, OK, UNKNOWN, MicroOp, Operation, read_token, record_setup
from ..scenario import RunView, SetupContext, Verdict, inconclusive, scenario
from ..serializability import check
from ._content import recreate, rewrite, tokened

SIDES = ("a", "b")
"""The two datasets of a pair."""
_GRACE = 5.0
_POLL = 0.0002


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    pairs = [[f"stress.skew.{pair}.{side}" for side in SIDES] for pair in range(max(1, setup.clients // 2))]
    invoke = monotonic_ns()
    created = recreate(catalog, [tokened(name, f"{name}-off") for pair in pairs for name in pair])
    record_setup(setup.config.history, created, invoke, monotonic_ns())
    # Spawn-context objects work between threads and reach spawned client processes in their job.
    context = multiprocessing.get_context("spawn")
    return {
        "pairs": pairs,
        "store": is_store_url(setup.path),
        "created": [(dataset.name, dataset.version, read_token(dataset)) for dataset in created],
        "read": context.Barrier(setup.clients),
        "started": context.RawArray("q", setup.clients),
    }


class Meeting:
    """Where the clients of a round wait for each other inside their transactions (see the module).

    `start(r)` marks this client's transaction of round r as started; `wait(r)` returns once every
    client has read (on a store) or started (on a file) in round r. Every client calls `wait`
    exactly once per round, even when its transaction failed before its reads, so no one waits for
    a client that will not come. A wait that outlives the run (plus a grace) gives up; `broken`
    counts them, and the round goes on without the meeting.
    """

    def __init__(self, ctx: ClientContext) -> None:
        self._ctx = ctx
        self._store = bool(ctx.shared["store"])
        self._read = ctx.shared["read"]
        self._started = ctx.shared["started"]
        self.broken = 0

    def start(self, round_: int) -> None:
        """Mark this client's transaction of `round_` as started."""
        self._started[self._ctx.client] = round_

    def wait(self, round_: int) -> None:
        """Wait for every other client of `round_` (see the class)."""
        timeout = max(0.0, self._ctx.deadline - time.monotonic()) + _GRACE
        if self._store:
            try:
                self._read.wait(timeout)
            except threading.BrokenBarrierError:
                self.broken += 1
            return
        give_up = time.monotonic() + timeout
        while any(started < round_ for started in self._started[:]):
            if time.monotonic() > give_up:
                self.broken += 1
                return
            time.sleep(_POLL)


def _turned_on(dataset: Dataset, round_: int, token: str) -> Dataset:
    return rewrite(dataset, token).replace(row_count=round_)


def _transaction(
    catalog: Catalog, meeting: Meeting, names: tuple[str, str], round_: int, mops: list[MicroOp], client: int
) -> bool:
    """One round's transaction: read both, meet, turn our flag on if neither is; True if it wrote.

    Appends to `mops` what it read and what it tried to write, as it goes.
    """
    mine, other = names
    meeting.start(round_)
    met = False
    try:
        with catalog.transaction():
            own, theirs = catalog.get(mine), catalog.get(other)
            if own is None or theirs is None:
                raise LookupError(f"{mine if own is None else other} is missing")
            mops.extend(MicroOp("get", d.name, d.version, read_token(d)) for d in (own, theirs))
            meeting.wait(round_)
            met = True
            if round_ in (own.row_count, theirs.row_count):
                return False
            token = f"client-{client}-round-{round_}"
            mops.append(MicroOp("save", mine, token=token, expected=own.version))
            catalog.save(_turned_on(own, round_, token), expected_version=own.version)
            return True
    finally:
        if not met:  # failed before its reads: the others must not wait for it in vain
            meeting.wait(round_)


@scenario(
    "write_skew",
    title="write skew",
    summary="In rounds, clients read both flags of a pair in a transaction and set their own if neither is.",
    setup=_setup,
    own_catalogs=True,
)
def write_skew(ctx: ClientContext) -> None:
    """Each round: one transaction that reads both datasets of the pair and maybe writes its own."""
    pairs = ctx.shared["pairs"]
    pair = ctx.client % len(pairs)
    side = (ctx.client // len(pairs)) % 2
    mine, other = pairs[pair][side], pairs[pair][1 - side]
    meeting = Meeting(ctx)
    transactions: list[Operation] = []
    rounds: list[tuple[int, int, int, int, int, str, bool]] = []  # round, pair, side, invoke, return, ...
    ctx.recorder.metrics.update(transactions=transactions, rounds=rounds)
    catalog = ctx.catalog
    round_ = 0
    try:
        while ctx.next_round():
            round_ += 1
            mops: list[MicroOp] = []
            invoke = monotonic_ns()
            outcome, wrote = ctx.call(
                "transaction", _transaction, catalog, meeting, (mine, other), round_, mops, ctx.client
            )
            ret = monotonic_ns()
            status = OK if outcome == "ok" else CONFLICT if outcome == "conflict" else UNKNOWN
            rounds.append((round_, pair, side, invoke, ret, status, bool(wrote)))
            if mops:
                transactions.append(Operation(ctx.client, "txn", "", status, invoke, ret, mops=tuple(mops)))
                if ctx.history is not None:
                    ctx.history.transaction(invoke, ret, status, mops)
    finally:
        ctx.recorder.metrics["meetings_broken"] = meeting.broken


SCENARIO = write_skew


def _rounds(run: RunView) -> list[tuple[int, int, int, int, int, str, bool]]:
    return [entry for recorder in run.recorders for entry in recorder.metrics.get("rounds", [])]


def _both_on(run: RunView) -> list[tuple[int, int]]:
    """(round, pair) of every round whose committed transactions turned both sides of a pair on."""
    sides: dict[tuple[int, int], set[int]] = {}
    for round_, pair, side, _, _, status, wrote in _rounds(run):
        if status == OK and wrote:
            sides.setdefault((round_, pair), set()).add(side)
    return sorted(key for key, turned in sides.items() if len(turned) == len(SIDES))


@write_skew.invariant("no_errors", "no transaction failed with an unexpected error")
def _no_errors(run: RunView) -> Verdict:
    return run.no_unexpected_errors()


@write_skew.invariant(
    "never_both_on", "no round turned both flags of a pair on (the rule every serial order keeps)"
)
def _never_both_on(run: RunView) -> Verdict:
    both = _both_on(run)
    stored = []  # the final state shows the last round's flags, whatever the outcomes said
    for pair, names in enumerate(run.shared["pairs"]):
        flags = [getattr(run.catalog.get(name), "row_count", None) for name in names]
        if flags[0] and flags[0] == flags[1]:
            stored.append(f"pair {pair} holds both flags of round {flags[0]}")
    turned = sum(1 for *_, status, wrote in _rounds(run) if status == OK and wrote)
    detail = f"{len(both)} rounds turned both flags of a pair on, {turned} flags turned on in all"
    if both:
        detail += f" (first: round {both[0][0]}, pair {both[0][1]})"
    if stored:
        detail += "; " + "; ".join(stored)
    return not both and not stored, detail


@write_skew.invariant(
    "serializable", "the committed transactions' dependency graph (ww, wr, rw) has no cycle"
)
def _serializable(run: RunView) -> Verdict:
    setup = [
        Operation(-1, "create", name, OK, 0, 0, token, version)
        for name, version, token in run.shared["created"]
    ]
    transactions = [op for recorder in run.recorders for op in recorder.metrics.get("transactions", [])]
    result = check([*setup, *transactions])
    origin = min((op.invoke for op in transactions), default=0)
    lines = result.describe(origin)
    if result.serializable:
        return True, lines[0]
    proof = (result.cycles[0] if result.cycles else result.bad_reads[0]).describe(origin)[:7]
    return False, " | ".join([lines[0], *(line.strip() for line in proof)])


@write_skew.invariant(
    "transactions_overlapped",
    "in some round both sides of a pair ran their transactions at once (else nothing raced: INCONCLUSIVE)",
)
def _transactions_overlapped(run: RunView) -> Verdict:
    overlapped = _overlapped(run)
    rounds = len({(round_, pair) for round_, pair, *_ in _rounds(run)})
    if not overlapped:
        why = "1 client has no one to race" if run.clients == 1 else "no transactions overlapped"
        return inconclusive(f"{why} ({rounds} pair-rounds)")
    return True, f"{overlapped} of {rounds} pair-rounds had both sides' transactions overlap"


def _overlapped(run: RunView) -> int:
    intervals: dict[tuple[int, int], list[list[tuple[int, int]]]] = {}
    for round_, pair, side, invoke, ret, *_ in _rounds(run):
        intervals.setdefault((round_, pair), [[], []])[side].append((invoke, ret))
    return sum(
        any(a0 <= b1 and b0 <= a1 for a0, a1 in sides[0] for b0, b1 in sides[1])
        for sides in intervals.values()
    )


def _metrics(run: RunView) -> dict[str, Any]:
    outcomes = Counter(status for *_, status, _ in _rounds(run))
    return {
        "rounds": max((round_ for round_, *_ in _rounds(run)), default=0),
        "pairs": len(run.shared["pairs"]),
        "committed": outcomes[OK],
        "conflicts": outcomes[CONFLICT],
        "unknown": outcomes[UNKNOWN],
        "flags_turned_on": sum(1 for *_, status, wrote in _rounds(run) if status == OK and wrote),
        "both_on": len(_both_on(run)),
        "overlapped": _overlapped(run),
        "meetings_broken": run.metric_sum("meetings_broken"),
    }


def _headline(result: dict[str, Any]) -> list[tuple[str, Any]]:
    metrics = result["metrics"]
    return [
        ("Rounds", metrics.get("rounds", 0)),
        ("Transactions committed", metrics.get("committed", 0)),
        ("Transactions conflicted", metrics.get("conflicts", 0)),
        ("Flags turned on", metrics.get("flags_turned_on", 0)),
        ("Rounds with both flags on", metrics.get("both_on", 0)),
        ("Errors", result["operations"].get("transaction", {}).get("error", 0)),
    ]


write_skew.metrics = _metrics
write_skew.headline = _headline
