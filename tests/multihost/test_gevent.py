"""The catalog under gevent's monkey-patching, as Locust runs it: writers take turns.

gevent is imported here so that this module fails, never skips, where it is missing: `nox -s
locust` installs it with the `locust` extra.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gevent  # noqa: F401  (missing gevent fails this module; it never skips)

SCRIPT = Path(__file__).with_name("_gevent_writers.py")
REPO_ROOT = Path(__file__).resolve().parents[2]


def test_transaction_writers_are_not_starved_by_group_commits(tmp_path: Path) -> None:
    # Before the fix the group-commit leader yielded to the hub while holding the writer lock
    # (its Condition tested ownership with acquire(False)); the creator then waited through
    # every saver's turn and managed 2 creates in 100 rounds, or raised BusyError.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "catalog.db")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["switches_holding_the_writer_lock"] == 0
    assert outcome["rounds_with_a_create"] >= 90, outcome
