"""Extra scenario: the read cache's two narrowest races, each made by construction, every round.

Random pauses (`metafuse.perturb`) make a race likely when one pause opens its window. These
two need two windows open at once, so each client plays them step by step instead, holding
threads at named interleaving points (`perturb.hold`) while it runs the other steps. Each client
has a dataset of its own, three Catalogs of its own on the run's file (`C` and `W` with a cache,
`O` without one) and two helper threads. A round of each kind:

`entry` (a hit must serve the entry it checked). The dataset is at version v. A thread of `C`
misses and reads v, and is held before it caches it; `W` saves v+1 (acknowledged); the client
reads through `C` (a miss: it caches v+1); the other helper reads through `C`, hits that entry
and is held between its check and returning it; the first is released and caches v over v+1;
then the second is released. It started after v+1 was acknowledged, so it must return v+1.
(The round first saves once through `W`, so that `C`'s entry is stale and the first read misses.)

`handoff` (a writer that finishes may not replace a newer writer's PENDING mark). A thread saves
v+1 through `W` and is held after accounting for its commit, before finishing its slot; the
other opens a transaction on `W`, saves v+2 (marking the slot PENDING) and waits in it; the
first is released and finishes; the client reads through `C` (v+1: v+2 is not committed); the
second commits and is held after accounting, before finishing its slot; the client reads through
`O` (no cache: v+2), then through `C`, which must not return less than `O` just did.

Every read is checked as it returns against the newest version acknowledged, or returned by
another read, before it started.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ... import perturb
from ...catalog import Catalog
from ..client import ClientContext
from ..scenario import RunView, SetupContext, Verdict, inconclusive, scenario
from ._content import recreate, rewrite, tokened

REACH = 1.0
"""Seconds a step waits for a thread to reach its hold; a round whose hold was not reached is not
counted as exercised (and checks nothing it did not make)."""
MISS = "read: database read -> cached"
HIT = "hit: validated -> served"
SETTLED = "settle: known accounted -> slots finished"


def dataset_of(client: int) -> str:
    """The dataset client `client` plays its rounds on."""
    return f"stress.held.{client}"


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    recreate(catalog, [tokened(dataset_of(client), "v1-initial") for client in range(setup.clients)])
    return {}


class _Round:
    """One client's rounds: its Catalogs, its two helper threads, and what its reads showed."""

    def __init__(self, ctx: ClientContext) -> None:
        self.ctx = ctx
        self.name = dataset_of(ctx.client)
        self.c = Catalog(ctx.path)
        self.w = Catalog(ctx.path)
        self.o = Catalog(ctx.path, cache_size=0)
        self.threads = ThreadPoolExecutor(2, thread_name_prefix=f"held-{ctx.client}")
        self.newest = 1  # acknowledged, or returned by a read, so far
        self.stale = self.behind = 0
        self.exercised = {"entry": 0, "handoff": 0}
        self.sequence = 0

    def close(self) -> None:
        self.threads.shutdown(wait=True)
        for catalog in (self.c, self.w, self.o):
            catalog.close()

    def check(self, seen: int | None, floor: int) -> None:
        """Count version `seen` stale if older than `floor` (known before its read started)."""
        if seen is None:
            raise LookupError(f"dataset {self.name} is missing from the catalog")
        if seen < floor:
            self.stale += 1
            self.behind = max(self.behind, floor - seen)
        self.newest = max(self.newest, seen)

    def save(self, catalog: Catalog, expected: int) -> int:
        """Save a new token over version `expected`; return the version stored."""
        self.sequence += 1
        current = catalog.get(self.name)
        assert current is not None
        token = f"v{expected + 1}-client-{self.ctx.client}-write-{self.sequence}"
        return catalog.save(rewrite(current, token), expected_version=expected).version

    def held(self, point: str, body: Callable[[], int | None]) -> tuple[Future[int | None], perturb.Hold]:
        """Run `body()` on a helper thread that holds itself at `point`; return its future and
        the hold (armed before `body` starts)."""
        armed: Future[perturb.Hold] = Future()

        def run() -> int | None:
            with perturb.hold(point) as hold:
                armed.set_result(hold)
                return body()

        future = self.threads.submit(run)
        return future, armed.result(perturb.HOLD_LIMIT)

    def read(self, catalog: Catalog) -> int | None:
        seen = catalog.get(self.name)
        return None if seen is None else seen.version

    def entry(self) -> bool:
        """The `entry` round; True when both holds were reached (the race was made)."""
        self.newest = max(self.newest, self.save(self.w, self.newest))  # C's entry is stale now
        floor = self.newest
        first, miss = self.held(MISS, lambda: self.read(self.c))
        reached = miss.reached.wait(REACH)
        self.newest = max(self.newest, self.save(self.w, self.newest))
        second: tuple[Future[int | None], perturb.Hold] | None = None
        if reached:
            floor = self.newest
            self.check(self.read(self.c), floor)  # a miss: caches the newest version
            second = self.held(HIT, lambda: self.read(self.c))
            reached = second[1].reached.wait(REACH)
        miss.release()
        self.check(first.result(), 0)  # its read began before the second save: either is right
        if second is not None:
            second[1].release()
            self.check(second[0].result(), floor)
        return reached

    def handoff(self) -> bool:
        """The `handoff` round; True when every hold was reached (the race was made)."""
        start = self.newest
        first, older = self.held(SETTLED, lambda: self._transaction(start))
        reached = older.reached.wait(REACH)
        opened: Future[perturb.Hold] = Future()
        go: Future[bool] = Future()
        second = self.threads.submit(self._newer, start + 1, opened, go)
        newer: perturb.Hold | None = None
        if reached:
            try:
                newer = opened.result(REACH)
            except TimeoutError:
                reached = False  # another client's transaction held the file's write lock
        older.release()
        self.check(first.result(), start + 1)
        self.check(self.read(self.c), self.newest)  # v+1 at least; v+2 is not committed
        go.set_result(newer is not None)
        if newer is not None and newer.reached.wait(REACH):
            self.check(self.read(self.o), self.newest)  # no cache: what is committed
            self.check(self.read(self.c), self.newest)  # must not be older than that
        else:
            reached = False
        if newer is not None:
            newer.release()
        self.check(second.result(), start + 2)
        return reached

    def _transaction(self, expected: int) -> int:
        with self.w.transaction():
            return self.save(self.w, expected)

    def _newer(self, expected: int, opened: Future[perturb.Hold], go: Future[bool]) -> int:
        with perturb.hold(SETTLED) as hold:
            try:
                with self.w.transaction():
                    stored = self.save(self.w, expected)  # marks the slot PENDING
                    opened.set_result(hold)
                    if not go.result(perturb.HOLD_LIMIT):
                        hold.release()
                # Left the transaction: committed, accounted, held before finishing the slot.
                return stored
            except BaseException as error:
                if not opened.done():
                    opened.set_exception(error)
                raise


@scenario(
    "held_races",
    title="held races",
    summary="Each client plays the read cache's two narrowest races step by step, holding threads.",
    setup=_setup,
    default_clients=2,
    default_duration=5,
    file_only="a client opens Catalogs of its own on the file",
)
def held_races(ctx: ClientContext) -> None:
    """Alternate `entry` and `handoff` rounds until the run ends; check every read as it returns."""
    rounds = _Round(ctx)
    try:
        kind = 0
        while not ctx.should_stop():
            play = rounds.entry if kind % 2 == 0 else rounds.handoff
            name = "entry" if kind % 2 == 0 else "handoff"
            outcome, made = ctx.call(name, play)
            if outcome != "ok":
                break  # a round that failed may have left a helper in an unknown state
            if made:
                rounds.exercised[name] += 1
            kind += 1
    finally:
        rounds.close()
    ctx.recorder.metrics.update(
        stale_reads=rounds.stale,
        max_versions_behind=rounds.behind,
        entry_rounds=rounds.exercised["entry"],
        handoff_rounds=rounds.exercised["handoff"],
    )


SCENARIO = held_races


@held_races.invariant(
    "no_stale_read",
    "no read returned a version older than one acknowledged, or returned by another read, before it started",
)
def _no_stale_read(run: RunView) -> Verdict:
    return run.no_stale_reads()


@held_races.invariant("races_made", "both races were made: a round of each kind reached all its holds")
def _races_made(run: RunView) -> Verdict:
    entry, handoff = run.metric_sum("entry_rounds"), run.metric_sum("handoff_rounds")
    detail = f"{entry} entry rounds and {handoff} handoff rounds made"
    if not entry or not handoff:
        return inconclusive(f"{detail}: too little progress to judge")
    return True, detail


@held_races.invariant("no_errors", "no round failed unexpectedly")
def _no_errors(run: RunView) -> Verdict:
    return run.no_unexpected_errors()
