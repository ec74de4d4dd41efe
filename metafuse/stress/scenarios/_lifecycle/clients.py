"""The lifecycle scenario's two client loops, built from the machinery beside this module.

Thread mode: the clients are threads sharing one `Shelf`; client 0 closes and replaces its
catalog under the others, and the fork helper (see `helper`) forks for the run. Process mode:
each client process has `WORKERS` working threads of its own, closes their catalog under them,
and forks in its turn of `FORK_SLOT`. Either way each client leaves in its recorder's metrics
what the invariants read: counts, acknowledged writes, fork outcomes, descriptors before and after.

It declares no scenario and evaluates no invariant (`..lifecycle` does, and it alone imports this
module). It opens no catalog itself (the `Shelf`, the refusal check and the fork rounds do), and imports
nothing of the catalog.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from ...client import ClientContext
from ...resources import catalog_fds
from . import helper as helpers
from .calls import Tally
from .datasets import WORKERS, dataset_names
from .fork import Forker, first_round_patience
from .quiet import Quiet
from .shelf import Shelf, refusal_check
from .timing import FORK_SLOT
from .worker import Worker


class _Group:
    """The threads of one thread-mode run: their shelf, and who closes it last."""

    def __init__(self, path: str, members: int, quiet: Quiet) -> None:
        self.fd_before = catalog_fds(path)
        self.shelf = Shelf(path)
        self.members = members
        self.quiet = quiet
        self.lock = threading.Lock()

    def leave(self) -> int | None:
        """One member is done; the last one closes the shelf and returns the descriptors left open."""
        with self.lock:
            self.members -= 1
            last = self.members == 0
        if not last:
            return None
        self.shelf.close()
        return catalog_fds(self.shelf.path)


_groups: dict[tuple[str, float], _Group] = {}
_groups_lock = threading.Lock()


def _group(ctx: ClientContext) -> _Group:
    with _groups_lock:
        key = (ctx.path, ctx.start)
        group = _groups.get(key)
        if group is None:
            group = _groups[key] = _Group(ctx.path, ctx.clients, helpers.quiet(ctx.path))
        return group


def thread_client(ctx: ClientContext) -> None:
    """Thread mode: client 0 closes the shared catalog under the others; the others work on it."""
    names = dataset_names(ctx.client)
    metrics: dict[str, Any] = {"acked": {}, "forks": {}}
    helper = None
    group = _group(ctx)
    try:
        if ctx.client == 0:
            helper = helpers.take(ctx.path)
            helper.conn.send(ctx.deadline)
            unsafe = _refusal(ctx, names["fork"], metrics)
            reopens = 0
            while not ctx.should_stop():
                time.sleep(ctx.rng.uniform(0.01, 0.05))
                if not unsafe:
                    outcome, _ = ctx.call("reopen", group.shelf.replace)
                    reopens += outcome == "ok"
            metrics["reopens"] = reopens
        else:
            worker = Worker(group.shelf, names["w0"], ctx, f"client-{ctx.client}")
            group.quiet.work(worker, ctx.should_stop)
            metrics.update(worker.metrics())
    finally:
        fds_after = group.leave()
        if fds_after is not None:
            metrics.update(fd_before=group.fd_before, fd_after=fds_after)
            with _groups_lock:
                _groups.pop((ctx.path, ctx.start), None)
        if helper is not None:
            helpers.finish(ctx, helper, metrics)
        ctx.recorder.metrics.update(metrics)


def _refusal(ctx: ClientContext, name: str, metrics: dict[str, Any]) -> bool:
    """Run `refusal_check`; record its failures; return whether closing under use is unsafe."""
    served, problems = refusal_check(ctx.path, name)
    metrics["refusal_failures"] = served
    for problem in problems:
        ctx.recorder.error(f"refusal check: {problem}")
    return served > 0


def process_client(ctx: ClientContext) -> None:
    """Process mode: this process closes its own threads' catalog under them, and forks in its turn."""
    fd_before = catalog_fds(ctx.path)
    names = dataset_names(ctx.client)
    label = f"client-{ctx.client}"
    shelf = Shelf(ctx.path)
    quiet = Quiet(ctx.board)
    tallies = [Tally() for _ in range(WORKERS)]
    workers = [
        Worker(shelf, names[f"w{index}"], tallies[index], f"{label}.{index}") for index in range(WORKERS)
    ]

    forker = Forker(shelf, names, label, quiet, ctx.should_stop)
    threads = [
        threading.Thread(target=quiet.work, args=(w, ctx.should_stop), name=f"{label}-w", daemon=True)
        for w in workers
    ]
    reopens = 0
    checked: dict[str, Any] = {}
    unsafe = _refusal(ctx, names["fork"], checked)
    try:
        for thread in threads:
            thread.start()
        forked_in = -1
        if ctx.client == 0:  # the first slot's round, at once and patiently: every run forks
            forked_in = 0
            forker.round(first_round_patience(ctx.deadline))
        while not ctx.should_stop():
            time.sleep(ctx.rng.uniform(0.01, 0.05))
            turn = int((time.monotonic() - ctx.start) / FORK_SLOT)
            if turn % ctx.clients == ctx.client and turn != forked_in:
                forked_in = turn
                forker.round()
            elif not unsafe:
                outcome, _ = ctx.call("reopen", shelf.replace)
                reopens += outcome == "ok"
    finally:
        for thread in threads:
            thread.join(10)
        forker.holder.join(10)
        shelf.close()
    acked: dict[str, Any] = {}
    totals: Counter[str] = Counter()
    for worker, tally in zip(workers, tallies):
        tally.fold_into(ctx)
        found = worker.metrics()
        acked.update(found.pop("acked"))
        totals.update(found)
    fork_metrics = forker.metrics()
    acked.update(fork_metrics["acked"])
    for message in fork_metrics["errors"]:
        ctx.recorder.error(message)
    totals.update(checked)
    ctx.recorder.metrics.update(
        totals,
        acked=acked,
        forks=fork_metrics["forks"],
        reopens=reopens,
        fd_before=fd_before,
        fd_after=catalog_fds(ctx.path),
    )
