"""Scenario 5: clients repeatedly open their own Catalog, use it, and close it; nothing may leak."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...catalog import Catalog
from ..client import ClientContext
from ..resources import catalog_fds, count_open_fds
from ..scenario import RunView, Verdict, inconclusive, scenario
from ._content import rewrite, tokened


@scenario(
    "connection_cleanup",
    title="connection cleanup",
    summary="Clients open their own Catalog, run mixed writes, reads and lists, and close it.",
    shared_catalog=False,
)
def connection_cleanup(ctx: ClientContext) -> None:
    """Open, use and close a catalog in a loop; check stats() and (per process) descriptors."""
    run_sessions(ctx, Catalog.open)


def run_sessions(ctx: ClientContext, open_catalog: Callable[[str], Catalog]) -> None:
    """The client loop: open with `open_catalog(ctx.path)`, write, read, list, close; count leaks.

    After every close, `stats().open_connections` must be 0. In process mode this client is the
    only one in its process, so each session is also a measurement window: descriptors on the
    catalog's own files must be back to their count before the open (the verdict). Changes of
    the whole process's count are reported beside it as `process_fd_changes`: other threads
    (the memory probe, the interpreter) may open unrelated files at any moment.
    """
    name = f"stress.cleanup.{ctx.client}.{ctx.rng.getrandbits(32):08x}"
    sessions = leaked_connections = leaked_fds = process_changes = 0
    created = False
    measure = ctx.mode == "process"
    while not ctx.should_stop():
        if measure:
            fds_before, process_before = catalog_fds(ctx.path), count_open_fds()
        _, catalog = ctx.call("open", open_catalog, ctx.path)
        if catalog is None:
            continue
        try:
            if not created:
                outcome, _ = ctx.call("write", catalog.create, tokened(name, "created"))
                created = outcome == "ok"
                if created:
                    ctx.event(name)
            else:
                _, current = ctx.call("read", catalog.get, name)
                if current is not None:
                    ctx.call(
                        "write",
                        catalog.save,
                        rewrite(current, f"session-{sessions}"),
                        expected_version=current.version,
                    )
            ctx.call("list", catalog.list, domain="stress", limit=20)
        finally:
            catalog.close()
        sessions += 1
        leaked_connections += catalog.stats().open_connections
        if measure:
            leaked_fds += catalog_fds(ctx.path) != fds_before
            process_changes += count_open_fds() != process_before
    ctx.recorder.metrics.update(
        sessions=sessions,
        leaked_connections=leaked_connections,
        leaked_fd_sessions=leaked_fds,
        process_fd_changes=process_changes,
    )


SCENARIO = connection_cleanup


@connection_cleanup.invariant(
    "connections_closed", "every catalog's stats() showed zero open connections after close()"
)
def _connections_closed(run: RunView) -> Verdict:
    leaked = run.metric_sum("leaked_connections")
    if not run.metric_sum("sessions"):
        return inconclusive("no catalog was opened and closed: too little progress to judge")
    return (
        leaked == 0,
        f"{leaked} connections still open after close, over {run.metric_sum('sessions')} sessions",
    )


@connection_cleanup.invariant(
    "fds_restored", "no descriptor on the catalog's files outlived the catalog that opened it"
)
def fds_restored(run: RunView) -> Verdict:
    """Descriptors on the catalog's own files: per session in each client process, and in the
    runner before and after the clients (the only measure in thread mode)."""
    if run.fd_before < 0:
        return False, "cannot count file descriptors here (no /proc/self/fd)"
    whole = f"catalog file descriptors {run.fd_before} open before the run, {run.fd_after} after"
    if not run.metric_sum("sessions") and run.fd_before == run.fd_after:
        return inconclusive(f"no catalog was opened and closed ({whole}): too little progress to judge")
    if run.mode == "process":
        leaky = run.metric_sum("leaked_fd_sessions")
        return leaky == 0 and run.fd_before == run.fd_after, (
            f"{leaky} client sessions left catalog file descriptors open; {whole}"
        )
    return run.fd_before == run.fd_after, whole


@connection_cleanup.invariant(
    "datasets_readable", "every dataset a client created is readable; inconclusive if none was created"
)
def _datasets_readable(run: RunView) -> Verdict:
    names = [name for (name,) in run.merged.events]
    missing = [name for name in names if run.catalog.get(name) is None]
    detail = f"{len(names)} created, {len(missing)} unreadable"
    if not names:
        return inconclusive(f"{detail}: no client created its dataset in time; too little progress to judge")
    return not missing, detail


@connection_cleanup.invariant("integrity_ok", "PRAGMA integrity_check reports ok")
def _integrity(run: RunView) -> Verdict:
    report = run.catalog.integrity_check()
    return report == ["ok"], "; ".join(report[:3])


@connection_cleanup.invariant(
    "checkpoint_completes", "a TRUNCATE WAL checkpoint completes: no reader still holds a snapshot"
)
def _checkpoint(run: RunView) -> Verdict:
    done = run.catalog.checkpoint()
    return done, "checkpoint completed" if done else "checkpoint blocked by an open reader or writer"


@connection_cleanup.invariant("no_errors", "no operation failed unexpectedly")
def _no_errors(run: RunView) -> Verdict:
    return run.no_unexpected_errors()


def _metrics(run: RunView) -> dict[str, Any]:
    return {
        "sessions": run.metric_sum("sessions"),
        "leaked_connections": run.metric_sum("leaked_connections"),
        "fd_before": run.fd_before,
        "fd_after": run.fd_after,
        "process_fd_changes": run.metric_sum("process_fd_changes"),
    }


def _headline(result: dict[str, Any]) -> list[tuple[str, Any]]:
    metrics = result["metrics"]
    return [
        ("Catalogs opened and closed", metrics.get("sessions", 0)),
        ("Connections open after close", metrics.get("leaked_connections", 0)),
        ("Catalog file descriptors before/after", f"{metrics.get('fd_before')}/{metrics.get('fd_after')}"),
        (
            "Process file descriptors before/after (reported, not a verdict)",
            f"{metrics.get('process_fds_before')}/{metrics.get('process_fds_after')}",
        ),
        ("Errors", sum(op.get("error", 0) for op in result["operations"].values())),
    ]


connection_cleanup.metrics = _metrics
connection_cleanup.headline = _headline
