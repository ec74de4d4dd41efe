"""Reliability: a held write lock turns writes into a `BusyError` naming file and timeout; reads go on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import metafuse.stress.scenarios  # noqa: F401  (registers the scenarios)
from metafuse import BusyError, Catalog
from metafuse.stress.config import StressConfig
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY

from .reliability_helpers import Child, make

TIMEOUT = 0.3


def _assert_busy(error: BusyError, path: Path, timeout: float) -> None:
    message = str(error)
    assert str(path) in message, message
    assert f"{timeout:g} s" in message, message
    assert error.path == str(path)
    assert error.timeout == timeout


def test_lock_held_by_another_process_makes_writes_busy_and_leaves_reads_working(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    with Catalog(path) as catalog:
        catalog.create(make("locks.kept", description="before the lock"))
        catalog.create(make("locks.doomed"))
    with Child("hold-lock", str(path)) as holder:
        holder.expect("locked")
        # Opening needs no write lock: a catalog that exists opens while another process writes.
        with Catalog(path, busy_timeout=TIMEOUT) as catalog:
            version = catalog.version
            kept = catalog.get("locks.kept")
            assert kept is not None
            doomed = catalog.get("locks.doomed")
            assert doomed is not None
            writes: list[Callable[[], object]] = [
                lambda: catalog.create(make("locks.new")),
                lambda: catalog.save(kept.replace(description="during the lock"), expected_version=1),
                lambda: catalog.delete("locks.doomed", expected_version=1),
                lambda: catalog.update("locks.kept", lambda d: d.replace(description="updated")),
            ]
            for write in writes:
                with pytest.raises(BusyError) as info:
                    write()
                _assert_busy(info.value, path, TIMEOUT)
            # WAL: every kind of read still works while the writer holds its lock.
            assert catalog.get("locks.kept") == kept
            assert [d.name for d in catalog.list()] == ["locks.doomed", "locks.kept"]
            assert [d.name for d in catalog.search("lock")] == ["locks.kept"]
            assert catalog.count == 2
            assert catalog.version == version
            assert catalog.integrity_check() == ["ok"]

            holder.send("release")
            holder.expect("released")
            assert holder.finish() == ""

            assert catalog.version == version, "a write that raised BusyError must not have happened"
            assert catalog.get("locks.new") is None
            stored = catalog.get("locks.kept")
            assert stored is not None
            assert stored.description == "before the lock"
            # After the release the same writes work, and nothing was lost.
            catalog.create(make("locks.new"))
            catalog.save(kept.replace(description="after the lock"), expected_version=1)
            catalog.delete("locks.doomed", expected_version=1)
            assert catalog.version == version + 3
    with Catalog(path, cache_size=0) as reopened:
        assert reopened.integrity_check() == ["ok"]
        assert [d.name for d in reopened.list()] == ["locks.kept", "locks.new"]
        stored = reopened.get("locks.kept")
        assert stored is not None
        assert (stored.version, stored.description) == (2, "after the lock")


def _hold_transaction(
    catalog: Catalog, entered: threading.Event, release: threading.Event, errors: list[BaseException]
) -> None:
    try:
        with catalog.transaction():
            current = catalog.get("locks.shared")
            assert current is not None
            catalog.save(current.replace(description="held"), expected_version=current.version)
            entered.set()
            if not release.wait(30):
                raise AssertionError("the test never released the transaction")
    except BaseException as error:
        errors.append(error)
        entered.set()


@pytest.mark.parametrize("same_object", [False, True], ids=["two-catalogs", "one-catalog-two-threads"])
def test_transaction_in_one_thread_makes_another_threads_write_busy(
    tmp_path: Path, same_object: bool
) -> None:
    path = tmp_path / "catalog.db"
    holder = Catalog(path, busy_timeout=0.2)
    other = holder if same_object else Catalog(path, busy_timeout=0.2)
    try:
        holder.create(make("locks.shared", description="start"))
        entered, release = threading.Event(), threading.Event()
        errors: list[BaseException] = []
        thread = threading.Thread(target=_hold_transaction, args=(holder, entered, release, errors))
        thread.start()
        try:
            assert entered.wait(30)
            assert not errors, errors
            with pytest.raises(BusyError) as info:
                other.create(make("locks.other"))
            _assert_busy(info.value, path, 0.2)
            # Readers see the last commit, never the open transaction's half.
            during = other.get("locks.shared")
            assert during is not None
            assert (during.version, during.description) == (1, "start")
        finally:
            release.set()
            thread.join(30)
        assert not thread.is_alive()
        assert not errors, errors
        other.create(make("locks.other"))
        stored = other.get("locks.shared")
        assert stored is not None
        assert (stored.version, stored.description) == (2, "held")
        assert other.version == 3
    finally:
        holder.close()
        other.close()


def test_busy_timeout_zero_fails_at_once_rather_than_waiting_forever(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    with Catalog(path) as catalog:
        catalog.create(make("locks.zero"))
    with Child("hold-lock", str(path)) as holder, Catalog(path, busy_timeout=0) as catalog:
        holder.expect("locked")
        with pytest.raises(BusyError) as info:
            catalog.create(make("locks.never"))
        _assert_busy(info.value, path, 0)
        holder.send("release")
        holder.expect("released")
        catalog.create(make("locks.never"))
        assert catalog.count == 2


@pytest.mark.slow
def test_fifty_process_clients_meet_no_unexpected_errors(tmp_path: Path) -> None:
    config = StressConfig(clients=50, duration=2, mode="process", seed=1)
    result = run_scenario(REGISTRY["concurrent_writers"], config, path=str(tmp_path / "stress.db"))
    assert result.clients == 50
    assert result.mode == "process"
    assert result.total("error") == 0, result.errors[:5]
    assert not result.errors, result.errors[:5]
    assert not any("locked" in error for error in result.errors)
    assert result.operations["write"]["ok"] > 0
    for op, counts in result.operations.items():
        # Lock timeouts are their own outcome, counted apart from unexpected errors.
        assert counts["total"] == counts["ok"] + counts["conflict"] + counts["busy"] + counts["error"], op
    assert result.passed, [(v.name, v.detail) for v in result.invariants if not v.ok]
    with Catalog(tmp_path / "stress.db") as catalog:
        assert catalog.integrity_check() == ["ok"]
