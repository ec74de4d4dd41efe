"""outside_writer: the plain-sqlite3 write it makes, the roles, and that each invariant can fail."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from metafuse import Catalog
from metafuse.stress.scenarios import outside_writer as scenario
from metafuse.stress.scenarios._content import tokened

from ._stress_views import view


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    with Catalog(tmp_path / "catalog.db") as opened:
        opened.create(tokened("stress.outside.0", "v1-initial"))
        yield opened


def _check(name: str, run: object) -> tuple[bool, str]:
    invariant = next(i for i in scenario.SCENARIO.invariants if i.name == name)
    return invariant.check(run)  # type: ignore[arg-type]


def test_an_outside_write_bumps_the_version_and_is_searchable(catalog: Catalog) -> None:
    conn = sqlite3.connect(catalog.path, isolation_level=None)
    try:
        version = scenario.outside_write(conn, "stress.outside.0", 7)
    finally:
        conn.close()
    assert version == 2
    with Catalog(catalog.path, cache_size=0) as fresh:
        stored = fresh.get("stress.outside.0")
        assert stored is not None
        assert (stored.version, stored.description) == (2, "v2-outside-7")
        assert [d.name for d in fresh.search("outside")] == ["stress.outside.0"]


def test_an_outside_write_to_a_missing_dataset_is_an_error(catalog: Catalog) -> None:
    conn = sqlite3.connect(catalog.path, isolation_level=None)
    try:
        with pytest.raises(LookupError, match=r"stress\.outside\.9"):
            scenario.outside_write(conn, "stress.outside.9", 1)
        assert not conn.in_transaction
    finally:
        conn.close()


@pytest.mark.parametrize("clients", [1, 2, 4, 5, 10])
def test_roles_give_one_outside_writer_and_at_least_one_updater_and_reader(clients: int) -> None:
    roles = [scenario.roles(client, clients) for client in range(clients)]
    assert sum(outside for outside, _, _ in roles) == 1
    assert roles[0][0]
    assert any(updater for _, updater, _ in roles)
    assert any(reader for _, _, reader in roles)


def test_no_stale_read_fails_on_a_stale_read(catalog: Catalog) -> None:
    assert _check("no_stale_read", view(catalog, [{"stale_reads": 0}, {"stale_reads": 0}]))[0]
    ok, detail = _check("no_stale_read", view(catalog, [{"stale_reads": 0}, {"stale_reads": 3}]))
    assert not ok
    assert "3 stale" in detail


def test_updates_within_bound_fails_on_a_failure_an_overrun_or_no_update(catalog: Catalog) -> None:
    shared = {"max_attempts": 3}
    good = {"attempts": Counter({1: 5, 3: 1}), "update_failures": Counter()}
    assert _check("updates_within_bound", view(catalog, [good], shared=shared))[0]
    failed = {"attempts": Counter({1: 5}), "update_failures": Counter({"conflict": 1})}
    assert not _check("updates_within_bound", view(catalog, [failed], shared=shared))[0]
    overrun = {"attempts": Counter({4: 1}), "update_failures": Counter()}
    assert not _check("updates_within_bound", view(catalog, [overrun], shared=shared))[0]
    assert not _check("updates_within_bound", view(catalog, [{}], shared=shared))[0]


def test_outside_writes_seen_fails_when_no_reader_saw_one(catalog: Catalog) -> None:
    seen = [{"outside_writes": 10}, {"outside_versions_seen": 2}]
    assert _check("outside_writes_seen", view(catalog, seen))[0]
    unseen = [{"outside_writes": 10}, {"outside_versions_seen": 0}]
    assert not _check("outside_writes_seen", view(catalog, unseen))[0]


def test_a_migration_bumps_every_dataset_it_names_in_one_transaction(catalog: Catalog) -> None:
    catalog.create(tokened("stress.outside.1", "v1-initial"))
    conn = sqlite3.connect(catalog.path, isolation_level=None)
    try:
        version = scenario.outside_migration(conn, ("stress.outside.0", "stress.outside.1"), 4)
    finally:
        conn.close()
    assert version == 2
    with Catalog(catalog.path, cache_size=0) as fresh:
        stored = [fresh.get(name) for name in ("stress.outside.0", "stress.outside.1")]
        assert [(d.version, d.description) for d in stored if d is not None] == [(2, "v2-outside-4")] * 2


def test_a_migration_naming_a_missing_dataset_is_an_error_and_commits_nothing(catalog: Catalog) -> None:
    conn = sqlite3.connect(catalog.path, isolation_level=None)
    try:
        with pytest.raises(LookupError, match=r"stress\.outside\.9"):
            scenario.outside_migration(conn, ("stress.outside.0", "stress.outside.9"), 1)
        assert not conn.in_transaction
    finally:
        conn.close()
    stored = catalog.get("stress.outside.0")
    assert stored is not None
    assert stored.version == 1
