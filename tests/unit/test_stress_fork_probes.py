"""The fork probes pass on the library and fail on the bugs they name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from metafuse.stress.scenarios import _fork_probes

CHILD = Path(__file__).with_name("_fork_probe_child.py")
ROOT = Path(__file__).resolve().parents[2]


def _probe_alone(probe: str, directory: Path, *bug: str) -> str:
    """The probe's verdict from a fresh interpreter, whose fork meets no thread of this worker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFUSE_", "STRESS_"))}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, str(CHILD), probe, str(directory), *bug],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_a_forked_child_waits_for_the_slot_lock_its_parent_holds(tmp_path: Path) -> None:
    assert _probe_alone("lock_excluded", tmp_path) == "None"


def test_a_child_sharing_the_parents_flock_description_is_caught(tmp_path: Path) -> None:
    assert _probe_alone("lock_excluded", tmp_path, "shared") == (
        "the child took the slot-file lock while its parent held it"
    )


def test_change_slots_whose_file_is_gone_leave_the_others_renewed_in_a_child(tmp_path: Path) -> None:
    # The after-fork hook used to stop at the first slots it could not reopen, and every slots
    # after it kept sharing the parent's flock description.
    assert _probe_alone("lock_excluded", tmp_path, "gone") == "None"


def test_children_forked_while_other_threads_are_inside_sqlite_get_through_their_hooks(
    tmp_path: Path,
) -> None:
    assert _probe_alone("hooks_unblocked", tmp_path) == "None"


def test_a_child_that_closes_its_inherited_connections_is_caught(tmp_path: Path) -> None:
    # Every fork meets SQLite's VFS mutex held, which the planted close waits for forever.
    assert _probe_alone("hooks_unblocked", tmp_path, "closing") == (
        "a child forked while another thread was inside SQLite ended with hung"
    )


def test_run_probes_names_each_failure_and_leaves_no_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []

    def planted(directory: str) -> str:
        made.append(directory)
        Path(directory, "left-behind").write_text("x")
        return "the child took the slot-file lock while its parent held it"

    monkeypatch.setitem(_fork_probes.PROBES, "lock_excluded", planted)
    monkeypatch.setitem(_fork_probes.PROBES, "hooks_unblocked", lambda directory: None)
    assert _fork_probes.run_probes() == {
        "lock_excluded": "the child took the slot-file lock while its parent held it"
    }
    assert made
    assert not any(os.path.exists(path) for path in made)
