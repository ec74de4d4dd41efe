"""lifecycle: each invariant can fail on what it names, and a fork helper slow to start costs the run
nothing. Its machinery is tested in test_stress_lifecycle_machinery.py."""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import multiprocessing.process
import time
from pathlib import Path

import pytest

from metafuse import Catalog
from metafuse.stress._watchdog import WATCHDOG_GRACE
from metafuse.stress.config import StressConfig
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenarios import lifecycle as scenario
from metafuse.stress.scenarios._content import recreate, tokened
from metafuse.stress.scenarios._lifecycle import fork
from metafuse.stress.scenarios._lifecycle.datasets import dataset_names

from ._stress_views import view


def _check(name: str, run: object) -> tuple[bool | None, str]:
    invariant = next(i for i in scenario.SCENARIO.invariants if i.name == name)
    return invariant.check(run)  # type: ignore[arg-type]


def test_children_ok_fails_on_a_hung_crashed_or_failed_child(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as catalog:
        good = [{"forks": {"exit 0": 3, "skipped": 2}}]
        assert _check("children_ok", view(catalog, good))[0]
        bad_ends = (
            "hung",
            "signal 11",
            "exit 5",
            "exit 4",
            "exit 3",
            "helper hung",
            "parent missed child's write",
        )
        for bad in bad_ends:
            assert not _check("children_ok", view(catalog, [{"forks": {"exit 0": 3, bad: 1}}]))[0], bad
        # Rounds that were all skipped (a starved child among them) exercised nothing: no verdict.
        assert _check("children_ok", view(catalog, [{"forks": {"skipped": 2}}]))[0] is None
        assert _check("children_ok", view(catalog, [{"forks": {fork.STARVED: 1}}]))[0] is None
        assert _check("children_ok", view(catalog, [{"forks": {fork.STARVED: 1, "hung": 1}}]))[0] is False


def test_closed_refused_and_only_closed_errors_fail_on_what_they_name(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as catalog:
        assert _check("closed_refused", view(catalog, [{"closed_served": 0}]))[0]
        assert not _check("closed_refused", view(catalog, [{"closed_served": 0}, {"closed_served": 2}]))[0]
        assert _check("only_closed_errors", view(catalog, [{"closed_seen": 5}]))[0]
        mmap = ["read: ValueError: mmap closed or invalid"]
        ok, detail = _check("only_closed_errors", view(catalog, [{"closed_seen": 5}], errors=mmap))
        assert not ok
        assert "mmap closed" in detail


def test_fds_restored_fails_on_a_leak_or_no_measurement(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as catalog:
        assert _check("fds_restored", view(catalog, [{"fd_before": 0, "fd_after": 0}, {}]))[0]
        assert not _check("fds_restored", view(catalog, [{"fd_before": 0, "fd_after": 2}]))[0]
        assert not _check("fds_restored", view(catalog, [{}]))[0]
        assert not _check("fds_restored", view(catalog, [{"fd_before": -1, "fd_after": -1}]))[0]


def test_nothing_lost_fails_on_a_missing_write_or_other_content(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as catalog:
        name = dataset_names(0)["w0"]
        recreate(catalog, [tokened(name, "initial")])
        stored = catalog.get(name)
        assert stored is not None
        assert _check("nothing_lost", view(catalog, [{"acked": {name: (1, "initial")}}]))[0]
        assert not _check("nothing_lost", view(catalog, [{"acked": {name: (2, "initial")}}]))[0]
        assert not _check("nothing_lost", view(catalog, [{"acked": {name: (1, "other")}}]))[0]
        halves = [{"acked": {name: (1, "initial")}, "half_written": 1}]
        assert not _check("nothing_lost", view(catalog, halves))[0]
        assert _check("nothing_lost", view(catalog, [{}]))[0] is None  # nothing acknowledged to check
        assert _check("nothing_lost", view(catalog, [{"half_written": 1}]))[0] is False


def test_lifecycle_exercised_is_inconclusive_without_progress_and_fails_on_closes_nobody_met(
    tmp_path: Path,
) -> None:
    with Catalog(tmp_path / "c.db") as catalog:
        done = {"reopens": 3, "closed_seen": 5, "forks": {"exit 0": 1}}
        assert _check("lifecycle_exercised", view(catalog, [done]))[0] is True
        unmet = {**done, "closed_seen": 0}
        assert _check("lifecycle_exercised", view(catalog, [unmet, {}]))[0] is False
        skipped = {**done, "forks": {"skipped: no transaction held": 2}}
        assert _check("lifecycle_exercised", view(catalog, [skipped]))[0] is None
        assert _check("lifecycle_exercised", view(catalog, [{**done, "reopens": 0}]))[0] is None


def test_closed_refused_fails_when_the_refusal_check_failed(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as catalog:
        checked = [{"closed_served": 0, "refusal_failures": 1}]
        ok, detail = _check("closed_refused", view(catalog, checked))
        assert not ok
        assert "1 calls after close() not refused" in detail


def test_a_fork_helper_slow_to_start_does_not_eat_into_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a loaded machine a spawned interpreter can take seconds to start. The thread-mode
    # helper is started by setup, before the run's clock, so a slow start costs the run nothing:
    # here it takes longer than the run and the watchdog's grace together.
    start = multiprocessing.context.SpawnProcess.start

    def slow_start(process: multiprocessing.process.BaseProcess) -> None:
        time.sleep(WATCHDOG_GRACE + 2)
        start(process)  # type: ignore[arg-type]

    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", slow_start)
    config = StressConfig(clients=2, duration=1, mode="thread", seed=5)
    result = run_scenario(scenario.SCENARIO, config, path=str(tmp_path / "catalog.db"))
    failed = {check.name: check.detail for check in result.invariants if not check.ok}
    assert failed == {}
    assert result.passed
