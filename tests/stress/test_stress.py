"""The stress scenarios as pytest tests: `RUN_STRESS_TESTS=1 pytest tests/stress -s`.

Each test runs one registered scenario through the same runner as `metafuse stress run`, on its
own temporary catalog, prints the report, and fails with the invariants that did not hold.
"""

from __future__ import annotations

import pytest

from metafuse.stress.config import StressConfig
from metafuse.stress.report import announce, format_result, reproduce_command
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY
from metafuse.stress.scenarios import CORE  # noqa: F401  (registers the scenarios)


def _run(name: str, settings: StressConfig) -> None:
    scenario = REGISTRY[name]
    mode = "process" if scenario.always_process else settings.mode
    print()
    print(
        announce(
            scenario.title,
            settings.clients_for(scenario.default_clients),
            settings.duration_for(scenario.default_duration),
            mode,
        )
    )
    result = run_scenario(scenario, settings)
    result.command = reproduce_command(result)
    print(format_result(result))
    failed = [f"{i.name}: {i.detail}" for i in result.invariants if i.failed]
    assert not failed, f"{name} failed {failed}; reproduce with: {result.command}"


def test_concurrent_writers(stress_settings: StressConfig) -> None:
    """Clients read-modify-save 5 datasets: no lost update, complete version chains."""
    _run("concurrent_writers", stress_settings)


def test_read_heavy_workload(stress_settings: StressConfig) -> None:
    """Clients read 1,000 datasets: every read exact, more than 10 reads/s."""
    _run("read_heavy_workload", stress_settings)


def test_optimistic_lock_resolution(stress_settings: StressConfig) -> None:
    """All clients update one counter per round: all succeed, counter exact, attempts bounded."""
    _run("optimistic_lock_resolution", stress_settings)


def test_cache_invalidation_race(stress_settings: StressConfig) -> None:
    """Writers and cached readers race: no stale, backwards or torn read."""
    _run("cache_invalidation_race", stress_settings)


def test_connection_cleanup(stress_settings: StressConfig) -> None:
    """Clients open and close catalogs: no leaked connection or descriptor, file intact."""
    _run("connection_cleanup", stress_settings)


def test_kill_writers(stress_settings: StressConfig) -> None:
    """Writer processes are SIGKILLed and replaced: no acknowledged write is lost."""
    _run("kill_writers", stress_settings)


def test_outside_writer(stress_settings: StressConfig) -> None:
    """A plain sqlite3 client commits while cached readers read and update: no stale read."""
    _run("outside_writer", stress_settings)


def test_path_aliases(stress_settings: StressConfig) -> None:
    """Clients open the catalog through different path spellings: no stale read, hard links refused."""
    _run("path_aliases", stress_settings)


def test_lifecycle(stress_settings: StressConfig) -> None:
    """Catalogs closed under working threads, forks mid-transaction: no crash, nothing lost."""
    _run("lifecycle", stress_settings)


def test_write_skew(stress_settings: StressConfig) -> None:
    """Transactions read both flags of a pair and set their own if neither is: never both on."""
    _run("write_skew", stress_settings)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_scenario_has_a_test(name: str) -> None:
    """Adding a scenario without a test here is caught."""
    assert REGISTRY[name].test_name in globals()


def test_stalled_writer(stress_settings: StressConfig) -> None:
    """Writers stall past a store catalog's retention: each refused, no acknowledged save lost."""
    _run("stalled_writer", stress_settings)


def test_store_chaos(stress_settings: StressConfig) -> None:
    """A store catalog's objects are damaged: foreign snapshots ignored, lost entries reported."""
    _run("store_chaos", stress_settings)


def test_group_commit_conflicts(stress_settings: StressConfig) -> None:
    """Saves grouped with a conflicting one: only that one fails; the others are committed and seen."""
    _run("group_commit_conflicts", stress_settings)


def test_fork_writers(stress_settings: StressConfig) -> None:
    """Forked children write while the parent's threads write: excluded, nothing lost, nothing stale."""
    _run("fork_writers", stress_settings)


def test_grouped_writers(stress_settings: StressConfig) -> None:
    """Machines' grouped saves race at a store's log: every acknowledged version exactly once."""
    _run("grouped_writers", stress_settings)


def test_held_races(stress_settings: StressConfig) -> None:
    """The cache's narrowest races, played step by step with held threads: no read is stale."""
    _run("held_races", stress_settings)
