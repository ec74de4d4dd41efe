"""Crash safety: writer processes are SIGKILLed at random moments and replaced; nothing is lost."""

from __future__ import annotations

from typing import Any

from ...catalog import Catalog
from ..client import ClientContext
from ..control import ProcessControl
from ..scenario import RunView, SetupContext, Verdict, inconclusive, scenario
from ._content import checksum, recreate, tokened, write_loop
from ._ledger import WriteLedger

DATASETS = 5


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    names = [f"stress.kill.{index}" for index in range(DATASETS)]
    recreate(catalog, [tokened(name, "initial") for name in names])
    return {"names": names}


@scenario(
    "kill_writers",
    title="killed writers",
    summary="Writer processes are SIGKILLed at random moments and replaced; acknowledged writes survive.",
    setup=_setup,
    default_clients=4,
    always_process=True,
)
def kill_writers(ctx: ClientContext) -> None:
    """Write tokens; report each write to the runner only after `save` returned."""
    salt = f"{ctx.rng.getrandbits(32):08x}"  # a replaced client must not repeat a token
    for stored in write_loop(ctx, ctx.shared["names"], lambda n: f"client-{ctx.client}-{salt}-{n}"):
        ctx.report((stored.name, stored.version, checksum(stored)))


def _driver(control: ProcessControl) -> None:
    """Kill a random running writer whenever the schedule says a kill is due."""
    done = control.state.setdefault("kills", 0)
    wanted = control.kills_wanted
    due = int(control.elapsed / control.duration * (wanted + 1))
    running = control.running()
    if done < min(due, wanted) and running:
        control.kill_and_replace(control.rng.choice(running))
        control.state["kills"] = done + 1


kill_writers.driver = _driver
kill_writers.report_sink = WriteLedger
SCENARIO = kill_writers


def _lost(run: RunView) -> tuple[int, list[str]]:
    ledger: WriteLedger = run.reports
    lost = 0
    problems = []
    for name in ledger.names():
        duplicates = ledger.duplicates(name)
        if duplicates:
            lost += duplicates
            problems.append(f"{name}: {duplicates} versions acknowledged to two writers")
        newest, digests = ledger.newest(name)
        stored = run.catalog.get(name)
        if stored is None:
            lost += ledger.writes(name)
            problems.append(f"{name} missing")
        elif stored.version < newest:
            lost += 1
            problems.append(f"{name} stored v{stored.version}, acknowledged v{newest}")
        elif stored.version == newest and checksum(stored) not in digests:
            lost += 1
            problems.append(f"{name} v{newest} content differs from the acknowledged write")
    return lost, problems


@kill_writers.invariant("integrity_ok", "PRAGMA integrity_check reports ok after the kills")
def _integrity(run: RunView) -> Verdict:
    report = run.catalog.integrity_check()
    return report == ["ok"], "; ".join(report[:3])


@kill_writers.invariant("no_lost_write", "every acknowledged write is present with its content")
def _no_lost_write(run: RunView) -> Verdict:
    lost, problems = _lost(run)
    return lost == 0, f"{run.reports.total()} acknowledged, {lost} lost" + (
        f": {'; '.join(problems[:3])}" if problems else ""
    )


@kill_writers.invariant("kills_happened", "writers were actually killed during the run")
def _kills_happened(run: RunView) -> Verdict:
    if not run.killed:  # a run too short or too loaded for the driver to kill anyone
        return inconclusive("0 kills: nothing was killed, so recovery was not exercised")
    return True, f"{len(run.killed)} kills"


@kill_writers.invariant("survivors_error_free", "clients that were not killed saw no unexpected errors")
def _survivors(run: RunView) -> Verdict:
    return run.no_unexpected_errors()


def _metrics(run: RunView) -> dict[str, Any]:
    lost, _ = _lost(run)
    return {"kills": len(run.killed), "acknowledged_writes": run.reports.total(), "lost_writes": lost}


def _headline(result: dict[str, Any]) -> list[tuple[str, Any]]:
    metrics = result["metrics"]
    return [
        ("Kills", metrics.get("kills", 0)),
        ("Acknowledged writes", metrics.get("acknowledged_writes", 0)),
        ("Lost writes", metrics.get("lost_writes", 0)),
        ("Errors", sum(op.get("error", 0) for op in result["operations"].values())),
    ]


kill_writers.metrics = _metrics
kill_writers.headline = _headline
