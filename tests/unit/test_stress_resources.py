"""Leak checks measure what they name: the catalog's own descriptors, never another thread's files."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from typing import IO, Any

import pytest

from metafuse.catalog import Catalog
from metafuse.model import Dataset
from metafuse.stress import runner
from metafuse.stress.client import ClientContext
from metafuse.stress.config import StressConfig
from metafuse.stress.resources import RssProbe, catalog_fds, catalog_files, count_open_fds
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY, Scenario, scenario
from metafuse.stress.scenarios import connection_cleanup as cleanup

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")

_held: list[IO[bytes]] = []  # descriptors the test scenarios keep open on purpose
_held_lock = threading.Lock()
_PER_PROCESS = 4  # enough to show in every measure, few enough for any descriptor limit


def _keep(path: str) -> None:
    with _held_lock:
        if len(_held) < _PER_PROCESS:
            _held.append(open(path, "rb"))  # noqa: SIM115 - kept open on purpose


def _open_and_leak_the_database(path: str) -> Catalog:
    """Open a catalog, and leak a descriptor on its database file (a real catalog-fd leak)."""
    catalog = Catalog(path)
    _keep(path)
    return catalog


def _open_while_another_thread_opens_a_file(path: str) -> Catalog:
    """Open a catalog while another thread opens an unrelated file and keeps it."""
    opener = threading.Thread(target=_keep, args=(os.devnull,))
    opener.start()
    catalog = Catalog(path)
    opener.join()
    return catalog


def _leaky(ctx: ClientContext) -> None:
    cleanup.run_sessions(ctx, _open_and_leak_the_database)


def _busy_neighbour(ctx: ClientContext) -> None:
    cleanup.run_sessions(ctx, _open_while_another_thread_opens_a_file)


def _declare(name: str, client: Any) -> Scenario:
    existing = REGISTRY.get(name)
    if existing is not None:
        return existing
    declared = scenario(name, title=name, summary="connection_cleanup variant", shared_catalog=False)(client)
    declared.invariant("fds_restored", "catalog descriptors restored")(cleanup.fds_restored)
    declared.metrics = cleanup.SCENARIO.metrics
    return declared


LEAKY = _declare("test_leaky_sessions", _leaky)
NEIGHBOUR = _declare("test_busy_neighbour", _busy_neighbour)


@pytest.fixture(autouse=True)
def _close_held() -> Iterator[None]:
    yield
    with _held_lock:
        while _held:
            _held.pop().close()
    # A process-mode run leaves garbage holding descriptors (its processes' sentinels, pipes);
    # collected in the middle of the next test's run, it lowers that run's whole-process count.
    gc.collect()


def _verdict(result: Any, name: str) -> Any:
    return next(invariant for invariant in result.invariants if invariant.name == name)


def test_catalog_fds_counts_only_the_catalogs_files(tmp_path: Any) -> None:
    path = str(tmp_path / "catalog.db")
    assert catalog_fds(path) == 0
    catalog = Catalog(path)
    catalog.create(Dataset(name="a.b", uri="file:///a/b"))
    assert catalog_fds(path) > 0
    catalog.close()
    assert catalog_fds(path) == 0
    with open(os.devnull, "rb"), open(tmp_path / "other.db", "wb"):
        assert catalog_fds(path) == 0
    with open(path, "rb"), open(f"{path}-wal", "ab"):
        assert catalog_fds(path) == 2


def test_catalog_fds_follows_links_and_deleted_files(tmp_path: Any) -> None:
    real = tmp_path / "real.db"
    real.write_bytes(b"")
    link = tmp_path / "link.db"
    link.symlink_to(real)
    assert str(real) in catalog_files(str(link))
    with open(real, "rb"):
        assert catalog_fds(str(link)) == 1
        real.unlink()
        assert catalog_fds(str(real)) == 1  # a descriptor on a deleted file is still held


def test_rss_probe_opens_no_file_while_the_run_goes_on() -> None:
    before = count_open_fds()
    probe = RssProbe(0.06)  # samples after 0.01 s, from its timer thread
    during = count_open_fds()
    probe._timer.join(10)
    assert probe.warm > 0
    assert count_open_fds() == during  # the sample re-read the file it already had open
    warm, end = probe.finish()
    assert warm > 0
    assert end > 0
    assert count_open_fds() == before


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_connection_leak_fault_fails_fds_restored(mode: str) -> None:
    config = StressConfig(clients=3, duration=1, mode=mode, seed=5)
    result = run_scenario(REGISTRY["connection_cleanup"], config, faults=("connection_leak",))
    assert not _verdict(result, "fds_restored").ok
    assert not _verdict(result, "connections_closed").ok


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_leaked_descriptor_on_the_database_fails_fds_restored(mode: str) -> None:
    result = run_scenario(LEAKY, StressConfig(clients=3, duration=1, mode=mode, seed=5))
    verdict = _verdict(result, "fds_restored")
    assert not verdict.ok, verdict.detail
    if mode == "process":  # caught in the client sessions themselves
        assert not verdict.detail.startswith("0 client sessions"), verdict.detail


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_an_unrelated_file_opened_by_another_thread_is_not_a_leak(mode: str) -> None:
    result = run_scenario(NEIGHBOUR, StressConfig(clients=3, duration=1, mode=mode, seed=5))
    assert result.passed, result.invariants
    # The whole-process count did move inside the measurement windows: the old check would
    # have failed this clean run.
    if mode == "process":
        assert result.metrics["process_fd_changes"] > 0
    else:
        assert result.metrics["process_fds_after"] > result.metrics["process_fds_before"]


def test_the_runner_measures_outside_the_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """fd_before is taken after setup closed its catalog; fd_after once every client stopped."""
    seen: list[tuple[int, int]] = []
    original = runner.RunView

    def spy(**kwargs: Any) -> Any:
        seen.append((kwargs["fd_before"], kwargs["fd_after"]))
        return original(**kwargs)

    monkeypatch.setattr(runner, "RunView", spy)
    run_scenario(REGISTRY["connection_cleanup"], StressConfig(clients=2, duration=1, mode="thread", seed=5))
    assert seen == [(0, 0)]
