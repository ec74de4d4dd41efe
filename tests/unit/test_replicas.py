"""Replica directories: reclaimed once their process is gone, never removed from under it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from metafuse import Catalog
from metafuse._logcommits import REPLICA_ROOT_ENV
from metafuse._replicas import PREFIX

from ._support import make

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def replica_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "replicas"
    root.mkdir()
    monkeypatch.setenv(REPLICA_ROOT_ENV, str(root))
    return root


def replicas(root: Path) -> list[str]:
    return sorted(name for name in os.listdir(root) if name.startswith(PREFIX))


def test_a_killed_clients_replica_is_reclaimed_by_the_next_open(replica_root: Path, tmp_path: Path) -> None:
    url = f"log+file://{tmp_path / 'store'}"
    script = (
        "import os, sys\n"
        "from metafuse import Catalog\n"
        "catalog = Catalog.open(sys.argv[1])\n"
        "catalog.count\n"
        "os._exit(0)  # no close(): as a killed process would\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", script, url], check=True, env=env, timeout=120)
    left = replicas(replica_root)
    assert len(left) == 1
    with Catalog.open(url) as catalog:
        assert catalog.count == 0
        assert left[0] not in replicas(replica_root)
        assert len(replicas(replica_root)) == 1  # its own
    assert replicas(replica_root) == []


def test_a_live_clients_replica_is_left_alone(replica_root: Path, tmp_path: Path) -> None:
    url = f"log+file://{tmp_path / 'store'}"
    with Catalog.open(url) as first, Catalog.open(url) as second:
        first.create(make("live.d"))
        assert second.get("live.d") is not None
        assert len(replicas(replica_root)) == 2
        assert first.get("live.d") is not None


def test_a_forked_child_closing_leaves_its_parents_replica(replica_root: Path, tmp_path: Path) -> None:
    url = f"log+file://{tmp_path / 'store'}"
    with Catalog.open(url) as catalog:
        catalog.create(make("fork.d"))
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                catalog.close()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert len(replicas(replica_root)) == 1
        catalog.create(make("fork.after"))
        assert catalog.get("fork.d") is not None
    assert replicas(replica_root) == []
