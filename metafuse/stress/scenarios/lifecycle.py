"""Extra scenario: catalogs closed under working threads, and processes forked mid-transaction.

Threads that share a `Catalog` (a "shelf") keep reading, writing and searching while one thread
closes it under their feet and puts a new one on the shelf. Calls on the closed object must raise
`CatalogClosedError` and nothing else; a call that starts after `close()` has returned must be
refused; the others switch to the new catalog. Each working thread is the only writer of its own
dataset, so it knows exactly what it had acknowledged; a write cut off by the close is resolved on
the new catalog (it either landed whole or not at all).

Fork: a process `os.fork()`s while another of its threads holds the catalog's writer lock inside
an open transaction; the child saves through the inherited `Catalog` and through a new one, checks
each sees the other's write, and `os._exit`s with a status the parent checks (a child that does
not exit within `CHILD_TIMEOUT` is killed and counted as hung). The working threads are paused at
a safe point for the fork: a thread inside SQLite's C code may hold one of SQLite's own global
mutexes, which a child would inherit locked whatever the catalog does, so only the catalog's own
state (writer lock, transaction, connections, change slots) is under test. They stay paused, in
every process of the run, until the child has exited, so that no writer competes with the child
for the write lock (see `_lifecycle.quiet.Quiet`). In process mode every client process does
this itself; in thread mode clients are threads of the test process, which must never fork, so
client 0 runs the same fork rounds in one spawned helper process.

This module declares the scenario and its invariants, and nothing else: the machinery (the
shared shelf, the workers, the quiet board, the lock holder, the fork rounds, the helper, the
client loops) is the package `_lifecycle` beside it, one concept a module.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ...catalog import Catalog
from ..client import ClientContext
from ..scenario import RunView, SetupContext, Verdict, inconclusive, scenario
from ._content import recreate, tokened
from ._lifecycle import helper
from ._lifecycle.clients import process_client, thread_client
from ._lifecycle.datasets import dataset_names
from ._lifecycle.fork import CHILD_OK


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    names = [name for client in range(setup.clients) for name in dataset_names(client).values()]
    recreate(catalog, [tokened(name, "initial") for name in names])
    if setup.config.mode == "thread":
        # Start the forking helper now, before the run's clock: a spawned interpreter can take
        # seconds to start on a loaded machine, which must not eat into the run it measures.
        helper.start(setup.path)
    return {}


@scenario(
    "lifecycle",
    title="lifecycle: close and fork",
    summary="Catalogs are closed under working threads and replaced; processes fork mid-transaction.",
    setup=_setup,
    default_clients=4,
    default_duration=8,
    shared_catalog=False,
    file_only="forked children would share the parent's private replica; open a store catalog per process",
)
def lifecycle(ctx: ClientContext) -> None:
    """Thread mode: client 0 closes the shared catalog under the others; process mode: each client does it
    to its own threads, and forks."""
    if ctx.mode == "thread":
        thread_client(ctx)
    else:
        process_client(ctx)


SCENARIO = lifecycle


def _forks(run: RunView) -> Counter[str]:
    total: Counter[str] = Counter()
    for recorder in run.recorders:
        total.update(recorder.metrics.get("forks", {}))
    return total


@lifecycle.invariant(
    "only_closed_errors", "calls on closed catalogs raised CatalogClosedError; no call raised anything else"
)
def _only_closed_errors(run: RunView) -> Verdict:
    errors = run.merged.total("error")
    first = f", first: {run.merged.errors[0]}" if run.merged.errors else ""
    return errors == 0 and not run.merged.errors, (
        f"{run.metric_sum('closed_seen')} CatalogClosedError (expected), {errors} other errors{first}"
    )


@lifecycle.invariant("closed_refused", "every call that started after close() had returned was refused")
def _closed_refused(run: RunView) -> Verdict:
    served = run.metric_sum("closed_served")
    checks = run.metric_sum("refusal_failures")
    return served + checks == 0, (
        f"{checks} calls after close() not refused in the single-threaded check,"
        f" {served} calls served by a catalog already closed while threads worked"
    )


@lifecycle.invariant(
    "children_ok", "every forked child exited 0 in time, using its inherited catalog and a new one"
)
def _children_ok(run: RunView) -> Verdict:
    forks = _forks(run)
    # A busy child is a failure too: its one save cannot wait out the busy timeout at these sizes,
    # and a child that inherited its parent's SQLite lock state shows exactly as busy.
    # A skipped round (workers not parked, no transaction held, a child starved of the machine)
    # did not exercise the probe: with no other round to judge, the run says nothing here.
    bad = {k: v for k, v in forks.items() if k != f"exit {CHILD_OK}" and not k.startswith("skipped")}
    detail = f"forks: {dict(forks) or 'none'}"
    if not bad and forks[f"exit {CHILD_OK}"] == 0:
        return inconclusive(f"no child ran its checks to the end: {detail}")
    return not bad, detail


@lifecycle.invariant("fds_restored", "after the last close no descriptor on the catalog's files stayed open")
def _fds_restored(run: RunView) -> Verdict:
    pairs = [
        (int(r.metrics["fd_before"]), int(r.metrics["fd_after"]))
        for r in run.recorders
        if "fd_after" in r.metrics
    ]
    if not pairs:
        return False, "no client measured its descriptors"
    if any(before < 0 for before, _ in pairs):
        return False, "cannot count file descriptors here (no /proc/self/fd)"
    leaked = [(before, after) for before, after in pairs if after != before]
    return not leaked, f"{len(pairs)} measured, {len(leaked)} left descriptors open: {leaked[:3]}"


@lifecycle.invariant("nothing_lost", "every acknowledged write is readable at the end; none landed by halves")
def _nothing_lost(run: RunView) -> Verdict:
    acked: dict[str, tuple[int, str]] = {}
    for recorder in run.recorders:
        acked.update(recorder.metrics.get("acked", {}))
    problems = []
    for name, (version, token) in sorted(acked.items()):
        stored = run.catalog.get(name)
        if stored is None or stored.version < version:
            problems.append(
                f"{name}: acknowledged v{version}, stored {stored.version if stored else 'nothing'}"
            )
        elif stored.version == version and stored.description != token:
            problems.append(f"{name} v{version}: stored {stored.description!r}, acknowledged {token!r}")
    halves = run.metric_sum("half_written")
    detail = f"{len(acked)} datasets checked, {len(problems)} lost, {halves} half-written or missing reads"
    if not acked and halves == 0:
        return inconclusive(f"no write was acknowledged: {detail}")
    ok = not problems and halves == 0
    return ok, detail + (f": {'; '.join(problems[:3])}" if problems else "")


@lifecycle.invariant("integrity_ok", "PRAGMA integrity_check reports ok")
def _integrity(run: RunView) -> Verdict:
    report = run.catalog.integrity_check()
    return report == ["ok"], "; ".join(report[:3])


@lifecycle.invariant("lifecycle_exercised", "catalogs were closed under working threads, and children forked")
def _exercised(run: RunView) -> Verdict:
    reopens = run.metric_sum("reopens")
    closed = run.metric_sum("closed_seen")
    children = _forks(run)[f"exit {CHILD_OK}"]
    workers = run.clients > 1 or run.mode == "process"
    detail = f"{reopens} closes under use, {closed} calls met a closed catalog, {children} children ok"
    if reopens == 0 or children == 0:
        # Too little progress (an overloaded machine), or a failure another invariant names:
        # a child that did not exit 0 fails children_ok, a close that raised fails only_closed_errors.
        return inconclusive(detail)
    return closed > 0 or not workers, detail


def _metrics(run: RunView) -> dict[str, Any]:
    return {
        "reopens": run.metric_sum("reopens"),
        "closed_calls": run.metric_sum("closed_seen"),
        "forks": dict(_forks(run)),
    }


def _headline(result: dict[str, Any]) -> list[tuple[str, Any]]:
    metrics = result["metrics"]
    return [
        ("Catalogs closed under use", metrics.get("reopens", 0)),
        ("Calls refused as closed", metrics.get("closed_calls", 0)),
        ("Forks", metrics.get("forks", {})),
        ("Errors", sum(op.get("error", 0) for op in result["operations"].values())),
    ]


lifecycle.metrics = _metrics
lifecycle.headline = _headline
