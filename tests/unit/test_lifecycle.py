"""close() and fork() at any time: no crash, only CatalogClosedError, nothing half-written.

The risky runs happen in a child interpreter (`_lifecycle_child.py`), so a crash (a segfault from
closing a connection inside an SQLite call) shows up as that child's exit status instead of
killing the test worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from metafuse import Catalog, CatalogClosedError

from ._support import make

CHILD = Path(__file__).with_name("_lifecycle_child.py")
ROOT = Path(__file__).resolve().parents[2]


def _child(*args: str, faults: str = "", timeout: float = 120) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFUSE_", "STRESS_"))}
    env["PYTHONPATH"] = str(ROOT)
    if faults:
        env["METAFUSE_FAULTS"] = faults
    done = subprocess.run(
        [sys.executable, str(CHILD), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    report: dict[str, object] = json.loads(lines[-1]) if lines else {}
    report["returncode"] = done.returncode
    report["stderr"] = done.stderr[-2000:]
    return report


def test_close_under_busy_threads_raises_only_catalog_closed(tmp_path: Path) -> None:
    report = _child("close-under-threads", str(tmp_path / "catalog.db"))
    assert report["returncode"] == 0, report
    assert report["unexpected"] == [], report
    assert report["closed_errors"] > 0, "no call met the closed catalog: the test proved nothing"
    assert report["calls_after_close"] > 0
    assert report["catalog_fds_after"] == 0, report
    assert report["integrity"] == ["ok"]
    assert report["lost"] == [], report


def test_close_unguarded_fault_is_caught(tmp_path: Path) -> None:
    report = _child("close-under-threads", str(tmp_path / "catalog.db"), faults="close_unguarded")
    # The bug shows as a crash, or as errors other than CatalogClosedError, or as calls that
    # went on after close().
    assert report["returncode"] != 0 or report["unexpected"] or report["closed_errors"] == 0, report


def test_calls_after_close_raise_catalog_closed(catalog: Catalog) -> None:
    catalog.create(make("a"))
    catalog.get("a")
    catalog.close()
    for call in (
        lambda: catalog.get("a"),  # would be a cache hit
        lambda: catalog.get("b"),
        lambda: catalog.create(make("c")),
        lambda: catalog.search("a"),
        lambda: catalog.update("a", lambda d: d),
        catalog.list,
    ):
        with pytest.raises(CatalogClosedError):
            call()


@pytest.mark.parametrize("held", ["writer-lock", "transaction", "reading"])
def test_fork_while_another_thread_uses_the_catalog(tmp_path: Path, held: str) -> None:
    report = _child("fork", str(tmp_path / "catalog.db"), held)
    assert report["returncode"] == 0, report
    assert report["child_status"] == 0, report
    assert report["child"] == {"inherited": "ok", "new": "ok"}, report
    assert report["parent_after"] == "ok", report


def test_fork_inside_a_transaction_aborts_it_in_the_child(tmp_path: Path) -> None:
    report = _child("fork-inside-transaction", str(tmp_path / "catalog.db"))
    assert report["returncode"] == 0, report
    assert report["child_status"] == 0, report
    assert report["child_block"] == "TransactionAbortedError", report
    assert report["child_committed_nothing"] is True, report
    assert report["parent_committed"] is True, report


def test_fork_unsafe_fault_is_caught(tmp_path: Path) -> None:
    report = _child("fork", str(tmp_path / "catalog.db"), "writer-lock", faults="fork_unsafe")
    assert report.get("child_status") != 0 or report.get("child") != {"inherited": "ok", "new": "ok"}, report
