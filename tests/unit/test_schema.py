"""Tests for metafuse._schema: refusing files that are not catalogs, untouched, and migrating new ones."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable

import pytest

import metafuse.catalog as catalog_module
from metafuse import Catalog, CatalogFileError, _schema
from metafuse._schema import SCHEMA_VERSION

from ._support import make


def _raw(path: Path) -> contextlib.closing[sqlite3.Connection]:
    return contextlib.closing(sqlite3.connect(path, isolation_level=None))


def _not_sqlite(path: Path) -> None:
    path.write_text("name,uri\norders,s3://x\n" * 20)


def _zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def _truncated_header(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\x10\x00")


def _garbage_after_header(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)


def _foreign_tables(path: Path) -> None:
    with _raw(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('ana')")


def _foreign_tables_in_wal_mode(path: Path) -> None:
    with _raw(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")


def _plain_database_with_a_newer_user_version(path: Path) -> None:
    with _raw(path) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")


def _catalog_with_a_newer_user_version(path: Path) -> None:
    with Catalog(path) as catalog:
        catalog.create(make("a"))
    with _raw(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")


BAD_FILES: list[tuple[Callable[[Path], None], str]] = [
    (_not_sqlite, "not an SQLite database"),
    (_zero_bytes, "empty"),
    (_truncated_header, "truncated"),
    (_garbage_after_header, "damaged"),
    (_foreign_tables, "not a MetaFuse catalog"),
    (_foreign_tables_in_wal_mode, "not a MetaFuse catalog"),
    (_plain_database_with_a_newer_user_version, "newer than this MetaFuse supports"),
    (_catalog_with_a_newer_user_version, "newer than this MetaFuse supports"),
]


@pytest.mark.parametrize(
    ("make_file", "problem"), BAD_FILES, ids=[f.__name__.strip("_") for f, _ in BAD_FILES]
)
@pytest.mark.parametrize("read_only", [False, True], ids=["writable", "read-only"])
def test_unusable_files_are_refused_and_left_byte_for_byte_unchanged(
    tmp_path: Path, make_file: Callable[[Path], None], problem: str, read_only: bool
) -> None:
    path = tmp_path / "c.db"
    make_file(path)
    before = path.read_bytes()
    with pytest.raises(CatalogFileError) as caught:
        Catalog(path, read_only=read_only)
    assert caught.value.path == str(path)
    if not (read_only and make_file in (_foreign_tables, _foreign_tables_in_wal_mode)):
        assert problem in caught.value.problem
    assert "\n" not in str(caught.value)
    after = path.read_bytes()
    changed = [i for i, (x, y) in enumerate(zip(before, after)) if x != y]
    assert len(after) == len(before)
    assert changed == [], f"bytes changed at offsets {changed[:10]}"


def test_newer_schema_error_says_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _catalog_with_a_newer_user_version(path)
    with pytest.raises(CatalogFileError) as caught:
        Catalog(path)
    assert f"schema version {SCHEMA_VERSION + 1}" in caught.value.problem
    assert f"({SCHEMA_VERSION})" in caught.value.problem


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogFileError, match="is a directory") as caught:
        Catalog(tmp_path)
    assert caught.value.path == str(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_parent_directory_is_refused_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "c.db"
    with pytest.raises(CatalogFileError, match="does not exist") as caught:
        Catalog(path)
    assert caught.value.path == str(path)
    assert str(tmp_path / "no" / "such") in caught.value.problem
    assert list(tmp_path.iterdir()) == []


def test_refused_files_leave_no_sidecar_files(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _not_sqlite(path)
    with pytest.raises(CatalogFileError):
        Catalog(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.db"]


def test_a_new_catalog_gets_the_current_schema(catalog: Catalog, catalog_path: Path) -> None:
    with _raw(catalog_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        meta = conn.execute("SELECT id, version, search_backend FROM catalog_meta").fetchall()
    assert {"catalog_meta", "datasets", "fields", "tags", "lineage", "search_index"} <= tables
    assert meta == [(1, 0, "fts5")]


def test_an_empty_sqlite_database_becomes_a_catalog(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with _raw(path) as conn:  # a real database file with no tables left in it
        conn.execute("CREATE TABLE t (x)")
        conn.execute("DROP TABLE t")
    assert path.stat().st_size > 0
    with Catalog(path) as catalog:
        assert catalog.create(make("a")).version == 1


def test_an_uninitialised_database_is_refused_read_only(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with _raw(path) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("DROP TABLE t")
    with pytest.raises(CatalogFileError, match="not initialised"):
        Catalog(path, read_only=True)


def test_opening_again_does_not_migrate_or_touch_data(catalog: Catalog, catalog_path: Path) -> None:
    stored = catalog.create(make("a"))
    with Catalog(catalog_path) as again:
        assert again.get("a") == stored
        assert again.version == 1
    with _raw(catalog_path) as conn:
        assert conn.execute("SELECT count(*) FROM catalog_meta").fetchone()[0] == 1


def test_like_backend_is_chosen_without_fts5_and_kept_on_reopen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.db"
    with monkeypatch.context() as patch:
        patch.setattr(_schema, "fts5_available", lambda conn: False)
        with Catalog(path) as catalog:
            assert catalog.stats().search_backend == "like"
    with Catalog(path) as catalog:  # FTS5 is available now, but the file was built without it
        assert catalog.stats().search_backend == "like"
        catalog.create(make("a", description="needle"))
        assert [d.name for d in catalog.search("needle")] == ["a"]


def test_fts5_available_probe(tmp_path: Path) -> None:
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        assert _schema.fts5_available(conn) is True
        assert conn.execute("SELECT count(*) FROM temp.sqlite_master").fetchone()[0] == 0


def test_check_file_reports_whether_the_file_exists(
    tmp_path: Path, catalog: Catalog, catalog_path: Path
) -> None:
    assert _schema.check_file(str(tmp_path / "new.db")) is False
    assert _schema.check_file(str(catalog_path)) is True


def test_opening_while_another_client_is_creating_the_file_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two clients creating one catalog at once: the second must not see a half-made, empty file.

    The first client is paused inside its open, right after its first SQLite connection was made
    (before the fix, the file SQLite had just created was still 0 bytes at that point and the
    second client refused it as an empty file).
    """
    path = tmp_path / "c.db"
    created = threading.Event()
    second_done = threading.Event()
    connect = catalog_module.connect
    first_thread: list[threading.Thread] = []

    def paused_connect(path: str, **options: Any) -> sqlite3.Connection:
        conn = connect(path, **options)
        if threading.current_thread() in first_thread and not created.is_set():
            created.set()
            second_done.wait(2)  # a fix may make the second client wait for this one
        return conn

    monkeypatch.setattr(catalog_module, "connect", paused_connect)
    opened: list[Catalog] = []
    first = threading.Thread(target=lambda: opened.append(Catalog(path)))
    first_thread.append(first)
    first.start()
    assert created.wait(10)
    try:
        second = Catalog(path)
    finally:
        second_done.set()
        first.join()
    try:
        assert len(opened) == 1
        opened[0].create(make("a"))
        assert second.count == 1
    finally:
        second.close()
        for catalog in opened:
            catalog.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    path.write_bytes(b"secret")
    path.chmod(0)
    with pytest.raises(CatalogFileError, match="cannot be read"):
        Catalog(path)


# -- creating a new catalog ------------------------------------------------------------------


def test_creating_a_catalog_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with Catalog(path) as catalog:
        catalog.create(make("a"))
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "c.db-mfgen")
    assert leftovers == ["c.db"]


def test_a_new_catalog_is_complete_before_it_appears(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _schema.create_atomically(str(path))
    assert path.stat().st_size > 0
    assert _schema.check_file(str(path)) is True
    with _raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM catalog_meta").fetchone()[0] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.db"]


def test_losing_the_creation_race_opens_the_winners_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.db"
    real_link = os.link
    raced: list[str] = []

    def link(source: str, target: str) -> None:
        if not raced:
            raced.append(source)
            # Another client creates the catalog and writes to it before this one links.
            with Catalog(path) as winner:
                winner.create(make("from.winner"))
        real_link(source, target)

    monkeypatch.setattr(os, "link", link)
    with Catalog(path) as loser:
        assert raced
        assert loser.get("from.winner") is not None
        assert loser.count == 1
    assert not any(p.name.endswith(".creating") for p in tmp_path.iterdir())


def test_creation_works_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(source: str, target: str) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "c.db"
    with Catalog(path) as catalog:
        assert catalog.create(make("a")).version == 1
    assert not any(p.name.endswith(".creating") for p in tmp_path.iterdir())


def test_many_clients_creating_one_catalog_at_once_all_succeed(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    clients = 6
    start = threading.Barrier(clients)
    errors: list[BaseException] = []
    opened: list[Catalog] = []
    lock = threading.Lock()

    def open_it() -> None:
        start.wait(30)
        try:
            catalog = Catalog(path)
        except BaseException as error:
            with lock:
                errors.append(error)
            return
        with lock:
            opened.append(catalog)

    workers = [threading.Thread(target=open_it) for _ in range(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    try:
        assert errors == []
        assert len(opened) == clients
        opened[0].create(make("a"))
        assert all(c.count == 1 for c in opened)
    finally:
        for catalog in opened:
            catalog.close()
    with _raw(path) as conn:
        assert conn.execute("SELECT count(*) FROM catalog_meta").fetchone()[0] == 1
    assert not any(p.name.endswith(".creating") for p in tmp_path.iterdir())


def test_an_existing_rollback_journal_catalog_is_switched_to_wal(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with Catalog(path) as catalog:
        catalog.create(make("a"))
    with _raw(path) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    with Catalog(path) as catalog:
        assert catalog.get("a") is not None
    with _raw(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
