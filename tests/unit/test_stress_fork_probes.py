"""The fork probe `lock_excluded` passes on the library and fails on the bug it names."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from metafuse import _freshness
from metafuse.stress.scenarios import _fork_probes


def test_a_forked_child_waits_for_the_slot_lock_its_parent_holds(tmp_path: Path) -> None:
    assert _fork_probes.lock_excluded(str(tmp_path)) is None


def _shares_the_description(self: _freshness.ChangeSlots) -> None:
    """The bug `fork_shares_flock` plants: a new description is opened but never put in place."""
    fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
    os.close(fd)
    self._lock = threading.Lock()


def test_a_child_sharing_the_parents_flock_description_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_freshness.ChangeSlots, "_reopen_after_fork", _shares_the_description)
    problem = _fork_probes.lock_excluded(str(tmp_path))
    assert problem == "the child took the slot-file lock while its parent held it"


def test_run_probes_names_each_failure_and_leaves_no_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_freshness.ChangeSlots, "_reopen_after_fork", _shares_the_description)
    made: list[str] = []
    real = _fork_probes.tempfile.mkdtemp

    def recorded(prefix: str) -> str:
        made.append(real(prefix=prefix))
        return made[-1]

    monkeypatch.setattr(_fork_probes.tempfile, "mkdtemp", recorded)
    assert set(_fork_probes.run_probes()) == {"lock_excluded"}
    assert made
    assert not any(os.path.exists(path) for path in made)
