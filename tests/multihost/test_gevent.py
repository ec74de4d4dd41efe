"""The catalog under gevent's monkey-patching, as Locust runs it: writers take turns.

gevent is imported here so that this module fails, never skips, where it is missing: `nox -s
locust` installs it with the `locust` extra.
"""

from __future__ import annotations

from pathlib import Path

import gevent  # noqa: F401  (missing gevent fails this module; it never skips)

from ._scripts import run_script

SCRIPT = Path(__file__).with_name("_gevent_writers.py")


def test_transaction_writers_are_not_starved_by_group_commits(tmp_path: Path) -> None:
    # Before the fix the group-commit leader yielded to the hub while holding the writer lock
    # (its Condition tested ownership with acquire(False)); the creator then waited through
    # every saver's turn and managed 2 creates in 100 rounds, or raised BusyError.
    outcome = run_script(SCRIPT, tmp_path / "catalog.db")
    assert outcome["switches_holding_the_writer_lock"] == 0
    assert outcome["rounds_with_a_create"] >= 90, outcome
