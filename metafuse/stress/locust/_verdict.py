"""The run's one verdict, at the master: merge the workers' histories, judge them, set the exit code.

A history that is NOT linearizable sets the master's exit code to `EXIT_NOT_LINEARIZABLE`; one
that cannot be decided (a worker's history did not arrive by `--collect-timeout`, the search ran
past `--check-timeout`, the users did not make their `--metafuse-operations` calls, or the test
ended without Locust ever stopping it) to `EXIT_INCONCLUSIVE`; otherwise Locust's own exit stands.
"""

from __future__ import annotations

import functools
from typing import Any

import gevent
from locust.env import Environment
from locust.runners import WorkerRunner

from metafuse.stress import distributed

from . import _collect, _settings

EXIT_NOT_LINEARIZABLE = 6
"""The master's exit code when the merged history is not linearizable."""
EXIT_INCONCLUSIVE = 7
"""The master's exit code when the verdict could not be decided (a history did not arrive, the
search ran out of time, or no client recorded an operation)."""


def on_test_stop(environment: Environment, **_: Any) -> None:
    """`test_stop` listener (the master, or a local run): collect, merge, judge and print."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return
    parts, missing = _collect.gather(environment)
    operations = distributed.merge(parts)
    bound = max((part.clock.uncertainty_ns for part in parts), default=0)
    timeout = float(_settings.option(environment, "check_timeout", 60.0))
    users = int(getattr(runner, "target_user_count", 0))
    work = distributed.Work(_settings.quota(environment), users, _collect.state.collector.finished)
    check = functools.partial(
        distributed.judge, operations, missing=missing, bound_ns=bound, timeout=timeout, work=work
    )
    # A native thread, so the hub keeps answering the workers' heartbeats during a long search.
    verdict: distributed.Verdict = gevent.get_hub().threadpool.apply(check)
    for line in verdict.lines():
        print(line, flush=True)
    history = str(_settings.option(environment, "history", "") or "")
    if history:
        distributed.write(history, operations)
        print(f"[metafuse] verdict: merged history written to {history}", flush=True)
    _collect.state.collector.status = verdict.status


def on_quitting(environment: Environment, **_: Any) -> None:
    """`quitting` listener: the verdict's exit code, when it is not a pass."""
    if isinstance(environment.runner, WorkerRunner):
        return
    collector = _collect.state.collector
    if collector.started and collector.status is None:
        # Seen once under heavy load: the master quit at --run-time without firing test_stop,
        # so nothing was collected. A run with no verdict must not look like a passing one.
        print(
            "[metafuse] verdict: INCONCLUSIVE: the test ended without a verdict (Locust never stopped it)",
            flush=True,
        )
        environment.process_exit_code = EXIT_INCONCLUSIVE
    elif collector.status == distributed.NOT_LINEARIZABLE:
        environment.process_exit_code = EXIT_NOT_LINEARIZABLE
    elif collector.status == distributed.INCONCLUSIVE:
        environment.process_exit_code = EXIT_INCONCLUSIVE
