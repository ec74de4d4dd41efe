"""The Locust users' reports: a save the catalog refused busy is an answer, counted apart, not work.

`BusyError` is the catalog saying it was overloaded and wrote nothing: other writers held its
writer lock past the busy timeout, as they do on a starved machine (under gevent as under
threads). Reported as a Locust failure, one such answer turned a clean run's exit red beside
two CPU hogs, so it is reported under request type `busy`, as conflicts are under `conflict`. So
that a writer lock that never comes free cannot pass for a clean run, a busy call does not count
towards `--metafuse-operations`, and a user whose every save was refused busy has not made its
calls. The stall here is planted: a greenlet keeps the writer lock for 1 s against a 0.2 s busy
timeout.
"""

from __future__ import annotations

from pathlib import Path

import gevent  # noqa: F401  (missing gevent fails this module; it never skips)

from ._scripts import run_script

SCRIPT = Path(__file__).with_name("_busy_user.py")


def _run(tmp_path: Path) -> dict[str, object]:
    return run_script(SCRIPT, tmp_path / "catalog.db")


def test_a_save_refused_busy_is_reported_apart_and_is_not_work(tmp_path: Path) -> None:
    outcome = _run(tmp_path)
    stalled = [["catalog", "get", None], ["busy", "save", None]] * 3
    assert outcome["requests"] == [*stalled, ["catalog", "get", None], ["catalog", "save", None]], outcome
    assert outcome["failures"] == 0, outcome
    # Three gets answered (more than the quota of 2), every save refused: not done. One save
    # answered after the stall: done, and said once.
    assert outcome["finished_after"] == [0, 0, 0, 1], outcome
    # The history keeps the busy saves as calls whose effect it does not claim to know.
    assert outcome["history"] == ["unknown", "unknown", "unknown", "ok"], outcome
