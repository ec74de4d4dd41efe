"""The runner's verdicts: the scenario's invariants evaluated, and the two the runner adds itself.

Owns how an invariant's check becomes an `InvariantResult` (a crashing check fails, it does not
raise), `clients_finished`, the `linearizable` check of a recorded history, and the run's metrics.
Reads the finished run (`RunView`, `Outcome`) only: starts, stops and writes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from . import history as op_history
from ._client_run import Outcome
from .linearizability import check as check_linearizable
from .resources import rss_growth
from .scenario import InvariantResult, RunView, Scenario

log = logging.getLogger("metafuse.stress")


def evaluate(invariant: Any, view: RunView) -> InvariantResult:
    """`invariant` judged on `view`: ok, FAILED, or inconclusive (a check that raises has FAILED)."""
    try:
        ok, detail = invariant.check(view)
    except Exception as error:  # a crashing check is a failed check, reported, not raised
        ok, detail = False, f"check raised {type(error).__name__}: {error}"
    state = "inconclusive" if ok is None else "ok" if ok else "FAILED"
    log.debug("invariant %s: %s (%s)", invariant.name, state, detail)
    return InvariantResult(invariant.name, invariant.promise, bool(ok), detail, inconclusive=ok is None)


HISTORY_CHECK_SECONDS = 30.0
"""Seconds the `linearizable` check may search; keys still undecided then make it inconclusive."""


def linearizable(path: str) -> InvariantResult:
    """The history the run recorded at `path`, judged as `stress check-history` judges it."""
    promise = "every dataset's recorded history is linearizable (what `stress check-history` checks)"
    try:
        operations = op_history.read_history(path)
    except Exception as error:
        return InvariantResult("linearizable", promise, False, f"history unreadable: {error}")
    results = check_linearizable(operations, timeout=HISTORY_CHECK_SECONDS)
    bad = [result for result in results if result.linearizable is False]
    undecided = [result.key for result in results if result.linearizable is None]
    detail = f"{len(operations)} operations on {len(results)} datasets"
    if bad:
        example = (
            bad[0].counterexample.describe(min(op.invoke for op in operations))[0]
            if bad[0].counterexample
            else ""
        )
        return InvariantResult(
            "linearizable",
            promise,
            False,
            f"{detail}: {len(bad)} not linearizable, first {bad[0].key} {example}".rstrip(),
        )
    if undecided:
        return InvariantResult(
            "linearizable",
            promise,
            False,
            f"{detail}: {len(undecided)} undecided in {HISTORY_CHECK_SECONDS:g} s",
            inconclusive=True,
        )
    return InvariantResult("linearizable", promise, True, f"{detail}: all linearizable")


def clients_finished(view: RunView) -> InvariantResult:
    """The runner's own invariant: no client hung past the watchdog and none crashed."""
    problems = []
    if view.hung:
        problems.append(f"clients {view.hung} hung past the watchdog")
    if view.crashed:
        problems.append(f"clients {view.crashed} crashed")
    ok = not problems
    everyone = "the 1 client" if view.clients == 1 else f"all {view.clients} clients"
    detail = "; ".join(problems) if problems else f"{everyone} finished"
    return InvariantResult("clients_finished", "every client finished on time without crashing", ok, detail)


def scenario_metrics(scenario: Scenario, view: RunView) -> dict[str, Any]:
    """The scenario's own metrics of the run; a metrics function that raises leaves `metrics_error`."""
    try:
        return scenario.metrics(view)
    except Exception as error:
        return {"metrics_error": f"{type(error).__name__}: {error}"}


def memory(mode: str, outcome: Outcome) -> dict[str, Any]:
    """Resident memory after warm-up and as the clients stopped, of whichever process grew most:
    this one (it holds every client in thread mode, the reports in process mode) or a client
    process (those killed before reporting, or younger than the warm-up, are not counted)."""
    pairs = [outcome.rss]
    if mode == "process":
        pairs += [
            (int(r.metrics.get("rss_warm", 0)), int(r.metrics.get("rss_end", 0))) for r in outcome.recorders
        ]
    measured = [(rss_growth(warm, end), warm, end) for warm, end in pairs]
    measured = [item for item in measured if item[0] is not None]
    if not measured:
        return {}
    growth, warm, end = max(measured)
    return {
        "rss_warm_mb": round(warm / 2**20, 1),
        "rss_end_mb": round(end / 2**20, 1),
        "rss_growth": round(float(growth or 0.0), 4),
    }
