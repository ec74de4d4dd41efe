"""Scenario: the world damages a store catalog's objects; each promise is kept or fails loudly.

Each client runs rounds, each on a fresh catalog of its own beside the run's (`<url>/chaos-...`),
with a writer and a reader (two replicas). A round plays one misbehaviour, in turn:

- `foreign_snapshot`: an object someone else put under `snapshots/` (a backup);
- `corrupt_snapshot`: the newest snapshot overwritten with garbage;
- `deleted_entry`: a log entry the reader has not applied yet deleted by hand;
- `store_gone`: every object of the catalog deleted (a bucket emptied or removed);
- `lost_reply` (on `log+file://` only, where the store can be made to misbehave): a writer's PUT
  of its log entry gets no reply and has not landed; while the writer waits to send it again, a
  rival commits at that number; then the lost request lands late (and meets the rival's entry),
  and the writer's resend is refused as taken.

The snapshot acts and `lost_reply` must not disturb anyone: a new client sees every acknowledged
write, once. The deleted entry and the emptied store cannot be survived, so the reader must say
so (a `CatalogError`): a read that returns an old value, or a write that is acknowledged, is
silent damage. Every client's first round comes before it looks at the clock, and client `i`
starts with act `i % n` of the `n` acts the store can play (`acts_for`), which alternate
harmless and damaging: a run with two clients plays both kinds, with `n` every act.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from typing import Any, Callable

from ...catalog import Catalog
from ...errors import CatalogError
from ...model import Dataset
from ...objectstore import OVERWRITE, AmbiguousWrite, ObjectStoreError, PutMode
from ...objectstore.local import misbehaving
from ...objectstore.lost_replies import LOST_REPLY
from ..client import ClientContext
from ..scenario import RunView, SetupContext, Verdict, scenario
from ._store import catalog_store, local_root, sibling_catalog

ACTS = ("foreign_snapshot", "deleted_entry", "lost_reply", "store_gone", "corrupt_snapshot")
"""The misbehaviours, in the order each client plays them (harmless and damaging in turn)."""
HARMLESS = ("foreign_snapshot", "corrupt_snapshot")
"""The snapshot acts, which a catalog must ride out unnoticed."""
DAMAGING = ("deleted_entry", "store_gone")
"""The acts no catalog can ride out: each must be reported."""
LOCAL_ONLY = ("lost_reply",)
"""The acts that need a store this process can make misbehave (a `log+file://` directory)."""

KEPT, LOUD, SILENT = "kept", "loud", "silent"


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    return {"base": sibling_catalog(setup.path, f"store-chaos-{uuid.uuid4().hex[:12]}")}


def _dataset(name: str, rows: int = 0) -> Dataset:
    return Dataset(name=name, uri=f"mem://{name}", row_count=rows)


def _snapshots_damaged(url: str, act: str) -> str:
    """Write four datasets with a snapshot every two, damage the snapshots, open a new client."""
    with Catalog.open(url, snapshot_every=2) as writer:
        writer.create(_dataset("chaos.d0"))
        writer.create(_dataset("chaos.d1"))
        with catalog_store(url) as store:
            if act == "foreign_snapshot":
                store.put("snapshots/backup.db", b"a copy kept by someone else", OVERWRITE)
            writer.create(_dataset("chaos.d2"))
            writer.create(_dataset("chaos.d3"))  # snapshot 4, and a retention pass
            if act == "corrupt_snapshot":
                store.put(f"snapshots/{4:020d}.db", b"\0" * 4096, OVERWRITE)
    with Catalog.open(url) as fresh:
        return KEPT if fresh.count == 4 else SILENT


def _log_damaged(url: str, act: str) -> str:
    """A reader applies entry 1, the writer commits entries 2 and 3, the world damages the log."""
    with Catalog.open(url) as writer, Catalog.open(url) as reader:
        writer.create(_dataset("chaos.d"))
        if reader.get("chaos.d") is None:
            return SILENT
        for rows in (1, 2):
            current = writer.get("chaos.d")
            assert current is not None
            writer.save(current.replace(row_count=rows), expected_version=current.version)
        with catalog_store(url) as store:
            doomed = [f"log/{2:020d}.json"] if act == "deleted_entry" else store.list("")
            for key in doomed:
                store.delete(key)
        try:
            seen = reader.get("chaos.d")
        except CatalogError:
            pass  # loud: the promise cannot be kept, and the reader says so
        else:
            if seen is None or seen.row_count != 2:
                return SILENT
        try:
            reader.create(_dataset("chaos.after"))
        except CatalogError:
            return LOUD
        return SILENT  # acknowledged on a log the reader cannot have followed


class _RivalTakesTheNumber:
    """The world of the `lost_reply` act, as the writer's put hook.

    The writer's first log entry is lost on the way: no reply, and it has not landed. When the
    writer sends that entry again, the rival commits first (and takes its number), the lost
    request lands late (and meets the rival's entry), and only then does the resend go out.
    """

    def __init__(self, rival: Catalog) -> None:
        self.rival = rival
        self.held: tuple[str, Callable[[], str]] | None = None
        self.played = False

    def __call__(self, key: str, data: bytes, mode: PutMode, land: Callable[[], str]) -> str:
        if self.played or mode.kind != "create" or not key.startswith("log/"):
            return land()
        if self.held is None:
            self.held = (key, land)
            raise AmbiguousWrite(key, str(mode), LOST_REPLY)
        self.played = True
        held, late = self.held
        if key != held:
            raise RuntimeError(
                f"the writer sent {key} after its write of {held} got no reply, not that again"
            )
        self.rival.create(_dataset("chaos.rival"))
        with contextlib.suppress(ObjectStoreError):
            late()
        return land()


def _reply_lost(url: str) -> str:
    """A writer's lost entry, a rival at its number, a late copy and a refused resend: the writer
    must be acknowledged once, after the rival, and everyone must see both writes."""
    root = local_root(url)
    if root is None:
        raise ValueError(f"the lost_reply act needs a log+file:// catalog, not {url!r}")
    with Catalog.open(url) as rival:
        rival.create(_dataset("chaos.first"))
        world = _RivalTakesTheNumber(rival)
        with misbehaving(root, world):
            writer = Catalog.open(url)
        with writer:
            writer.create(_dataset("chaos.mine"))
            if not world.played:
                raise RuntimeError("the writer's lost entry was never sent again: the act was not played")
            if writer.get("chaos.rival") is None:
                return SILENT
    with Catalog.open(url) as fresh:
        names = sorted(dataset.name for dataset in fresh.list())
    return KEPT if names == ["chaos.first", "chaos.mine", "chaos.rival"] else SILENT


def acts_for(url: str) -> tuple[str, ...]:
    """The acts a client can play on the store `url` names, in the order of `ACTS`."""
    local = local_root(url) is not None
    return tuple(act for act in ACTS if local or act not in LOCAL_ONLY)


def play(url: str, act: str) -> str:
    """Play `act` on a fresh catalog at `url`: "kept", "loud" or "silent"."""
    if act in HARMLESS:
        return _snapshots_damaged(url, act)
    if act == "lost_reply":
        return _reply_lost(url)
    return _log_damaged(url, act)


@scenario(
    "store_chaos",
    title="store chaos",
    summary="The world deletes, replaces and adds a store catalog's objects; each promise is kept or loud.",
    setup=_setup,
    shared_catalog=False,
    store_only="it damages the objects of catalogs on an object store",
)
def store_chaos(ctx: ClientContext) -> None:
    """Play the acts in turn, each on a fresh catalog; count each act's outcomes."""
    # The damage is on purpose: the warnings a passed-over snapshot logs are expected here.
    expected = _ExpectedDamage(ctx.shared["base"])
    logger = logging.getLogger("metafuse.logcommits")
    logger.addFilter(expected)
    try:
        _play_rounds(ctx)
    finally:
        logger.removeFilter(expected)


def _play_rounds(ctx: ClientContext) -> None:
    """The first round, then more while one as long as the longest so far ends by the deadline.

    A round is many requests and cannot stop halfway: started near the deadline on a slow store,
    it would run past the watchdog's grace and count as hung.
    """
    outcomes: dict[str, int] = {}
    played = ctx.client
    longest = 0.0
    acts = acts_for(ctx.shared["base"])
    while True:
        act = acts[played % len(acts)]
        url = sibling_catalog(ctx.shared["base"], f"chaos-{ctx.client}-{played}")
        began = time.monotonic()
        outcome, result = ctx.call(act, play, url, act)
        longest = max(longest, time.monotonic() - began)
        if outcome == "ok" and result is not None:
            key = f"{act}.{result}"
            outcomes[key] = outcomes.get(key, 0) + 1
            ctx.recorder.metrics.update(outcomes)
        played += 1
        if ctx.should_stop() or ctx.time_left() < longest:
            break


SCENARIO = store_chaos


class _ExpectedDamage(logging.Filter):
    """Drops the catalog's warnings about the damage this scenario does to its own catalogs."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(isinstance(arg, str) and arg.startswith(self.base) for arg in record.args or ())


def _count(run: RunView, act: str, result: str) -> int:
    return run.metric_sum(f"{act}.{result}")


@store_chaos.invariant("no_errors", "no act ended in an error other than a catalog's own")
def _no_errors(run: RunView) -> Verdict:
    return run.no_unexpected_errors()


@store_chaos.invariant("no_silent_damage", "no read returned lost data, no write was acknowledged on damage")
def _no_silent_damage(run: RunView) -> Verdict:
    silent = {act: _count(run, act, SILENT) for act in ACTS if _count(run, act, SILENT)}
    return not silent, f"silent damage in {silent}" if silent else "none"


def _every_round(run: RunView, acts: tuple[str, ...], expected: str, needed: bool) -> Verdict:
    """Whether every round of `acts` ended `expected`, and (if `needed`) there was one at least."""
    played = {act: sum(_count(run, act, r) for r in (KEPT, LOUD, SILENT)) for act in acts}
    matched = {act: _count(run, act, expected) for act in acts}
    detail = f"played {played}, {expected} {matched}"
    if not sum(played.values()):
        return not needed, f"{detail} (too few clients to play it first)" if not needed else detail
    return played == matched, detail


@store_chaos.invariant("foreign_objects_ignored", "a foreign or corrupted snapshot disturbed nobody")
def _foreign_ignored(run: RunView) -> Verdict:
    return _every_round(run, HARMLESS, KEPT, needed=True)


@store_chaos.invariant("damage_reported", "a deleted log entry and an emptied store were reported each time")
def _damage_reported(run: RunView) -> Verdict:
    return _every_round(run, DAMAGING, LOUD, needed=run.clients > 1)


@store_chaos.invariant(
    "lost_replies_survived",
    "a write whose reply was lost, and whose number a rival took meanwhile, was acknowledged once and kept",
)
def _lost_replies_survived(run: RunView) -> Verdict:
    # Client 2 plays it first on a log+file:// store; other stores cannot be made to lose replies.
    local = local_root(run.shared["base"]) is not None
    return _every_round(run, LOCAL_ONLY, KEPT, needed=local and run.clients > 2)
