"""Tests for metafuse._schema's migrations: a schema 1 catalog opens as the current schema.

Schema 1 files are made by writing a catalog with this code and putting schema 1's search index
and triggers back, as schema 1 created them (the statements below are copied from it verbatim).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from metafuse import Catalog, CatalogFileError, Field, _schema
from metafuse._schema import SCHEMA_VERSION

from ._support import make

_V1_FTS_INDEX = (
    "CREATE VIRTUAL TABLE search_index USING fts5(name, description, field_names, tags,"
    " tokenize = 'unicode61')"
)
_V1_PLAIN_INDEX = (
    "CREATE TABLE search_index (rowid INTEGER PRIMARY KEY, name TEXT, description TEXT,"
    " field_names TEXT, tags TEXT)"
)
_V1_TRIGGERS = (
    """CREATE TRIGGER datasets_search_refresh AFTER UPDATE OF version ON datasets BEGIN
    DELETE FROM search_index WHERE rowid = new.id;
    INSERT INTO search_index (rowid, name, description, field_names, tags) VALUES (
        new.id, new.name, coalesce(new.description, ''),
        coalesce((SELECT group_concat(name, ' ') FROM fields WHERE dataset_id = new.id), ''),
        coalesce((SELECT group_concat(tag, ' ') FROM tags WHERE dataset_id = new.id), ''));
END;""",
    """CREATE TRIGGER datasets_search_remove AFTER DELETE ON datasets BEGIN
    DELETE FROM search_index WHERE rowid = old.id;
END;""",
)

QUERIES = (
    "customer",
    "pii",
    "cust*",
    "customer OR sales",
    "pii NOT salary",
    '"orders and refunds"',
    "name:orders",
    "tags:pii",
    "NEAR(customer refunds, 3)",
    "invoices",  # ranked: b.invoices first
    "orders.daily",  # not FTS5 syntax: searched as plain words
)


def _raw(path: Path) -> contextlib.closing[sqlite3.Connection]:
    return contextlib.closing(sqlite3.connect(path, isolation_level=None))


def _fill(catalog: Catalog) -> None:
    """Datasets for every query above, with saves and a delete behind them."""
    filler = " ".join(f"word{i}" for i in range(60))
    catalog.create_many(
        [
            make(
                "orders.daily",
                description="customer orders and refunds",
                tags=["pii"],
                fields=[Field("customer_id", "int")],
            ),
            make("sales-2024", description="sales figures", tags=["finance"], fields=[]),
            make("hr.staff", description="employee records", tags=["pii"], fields=[Field("salary", "int")]),
            make("locked.vault", description="locked orders archive", tags=[], fields=[]),
            make("a.weak", description=f"{filler} invoices {filler}", tags=[], fields=[]),
            make("b.invoices", description="invoices invoices invoices", tags=["invoices"], fields=[]),
            make("gone", description="customer sales, deleted below"),
        ]
    )
    vault = catalog.get("locked.vault")
    assert vault is not None
    catalog.save(
        vault.replace(description="locked orders archive, sealed", tags=["restricted"]), expected_version=1
    )
    catalog.delete("gone", expected_version=1)


def _to_schema_1(path: Path) -> None:
    """Give the catalog at `path` schema 1's search index and triggers, as schema 1 built them."""
    with _raw(path) as conn:
        backend = conn.execute("SELECT search_backend FROM catalog_meta").fetchone()[0]
        conn.execute("BEGIN")
        for name in ("datasets_search_refresh", "datasets_search_remove"):
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DROP TABLE search_index")
        conn.execute(_V1_FTS_INDEX if backend == "fts5" else _V1_PLAIN_INDEX)
        conn.execute(
            "INSERT INTO search_index (rowid, name, description, field_names, tags)"
            " SELECT d.id, d.name, coalesce(d.description, ''),"
            " coalesce((SELECT group_concat(name, ' ') FROM fields WHERE dataset_id = d.id), ''),"
            " coalesce((SELECT group_concat(tag, ' ') FROM tags WHERE dataset_id = d.id), '')"
            " FROM datasets AS d"
        )
        for trigger in _V1_TRIGGERS:
            conn.execute(trigger)
        conn.execute("PRAGMA user_version = 1")
        conn.execute("COMMIT")


@pytest.fixture(params=["fts5", "like"])
def schema_1_file(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A filled catalog file with schema 1, for each search backend."""
    path = tmp_path / "old.db"
    with monkeypatch.context() as patch:
        if request.param == "like":
            patch.setattr(_schema, "fts5_available", lambda conn: False)
        with Catalog(path) as catalog:
            _fill(catalog)
    _to_schema_1(path)
    return path


def _answers(catalog: Catalog) -> dict[str, list[str]]:
    """Every query's dataset names, in the order search returns them."""
    return {query: [d.name for d in catalog.search(query)] for query in QUERIES}


def _ranks(path: Path) -> dict[str, list[tuple[int, float]]]:
    """Every FTS5 query's (rowid, bm25 rank), read straight from the index."""
    with _raw(path) as conn:
        return {
            query: conn.execute(
                "SELECT rowid, round(rank, 9) FROM search_index WHERE search_index MATCH ?"
                " ORDER BY rank, rowid",
                (query,),
            ).fetchall()
            for query in QUERIES
            if query != "orders.daily"
        }


def _user_version(path: Path) -> int:
    with _raw(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _index_sql(path: Path) -> str:
    with _raw(path) as conn:
        return str(conn.execute("SELECT sql FROM sqlite_master WHERE name = 'search_index'").fetchone()[0])


def test_a_schema_1_catalog_is_migrated_and_searches_the_same(schema_1_file: Path) -> None:
    with Catalog(schema_1_file, read_only=True) as old:  # read-only: opened as it is, not migrated
        backend = old.stats().search_backend
        before = _answers(old)
    assert _user_version(schema_1_file) == 1
    ranks_before = _ranks(schema_1_file) if backend == "fts5" else {}
    assert before["invoices"] == (["b.invoices", "a.weak"] if backend == "fts5" else ["a.weak", "b.invoices"])

    with Catalog(schema_1_file) as migrated:
        assert migrated.stats().search_backend == backend
        assert _answers(migrated) == before
    assert _user_version(schema_1_file) == SCHEMA_VERSION
    if backend == "fts5":
        assert "columnsize = 0" in _index_sql(schema_1_file)
        assert _ranks(schema_1_file) == ranks_before  # same hits, same bm25 scores
        with _raw(schema_1_file) as conn:
            conn.execute("INSERT INTO search_index (search_index) VALUES ('integrity-check')")
    else:
        assert _index_sql(schema_1_file) == _V1_PLAIN_INDEX


def test_a_migrated_catalog_keeps_its_index_current(schema_1_file: Path) -> None:
    with Catalog(schema_1_file) as catalog:
        orders = catalog.get("orders.daily")
        assert orders is not None
        catalog.save(
            orders.replace(description="parcels", fields=[Field("parcel_id", "int")]), expected_version=1
        )
        assert [d.name for d in catalog.search("parcel_id")] == ["orders.daily"]
        assert [d.name for d in catalog.search("parcels")] == ["orders.daily"]
        assert catalog.search("refunds") == []
        catalog.delete("orders.daily", expected_version=2)
        assert catalog.search("parcels") == []
        catalog.create(make("new.one", description="parcels again"))
        assert [d.name for d in catalog.search("parcels")] == ["new.one"]


def test_migrating_an_fts5_catalog_without_fts5_is_refused_and_leaves_it_at_schema_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    with Catalog(path) as catalog:
        _fill(catalog)
    _to_schema_1(path)
    monkeypatch.setattr(_schema, "fts5_available", lambda conn: False)
    with pytest.raises(CatalogFileError, match="schema version 1 with an FTS5 search index"):
        Catalog(path)
    assert _user_version(path) == 1
    assert "columnsize" not in _index_sql(path)


@contextlib.contextmanager
def _index_unchanged(path: Path, expected: bool) -> Iterator[None]:
    """Check that the FTS5 index's stored blocks are (or are not) the same after the block."""

    def blocks() -> list[Any]:
        with _raw(path) as conn:
            return conn.execute("SELECT id, block FROM search_index_data ORDER BY id").fetchall()

    before = blocks()
    yield
    assert (blocks() == before) is expected


def test_a_save_that_leaves_the_indexed_text_alone_does_not_write_the_index(
    catalog: Catalog, catalog_path: Path
) -> None:
    stored = catalog.create(make("a", description="apples", tags=["red"], fields=[Field("stem", "int")]))
    with _index_unchanged(catalog_path, expected=True):
        stored = catalog.save(
            stored.replace(row_count=10, uri="s3://elsewhere/a", owner="bo", upstream=["raw.a"]),
            expected_version=stored.version,
        )
    assert [d.name for d in catalog.search("apples")] == ["a"]
    with _index_unchanged(catalog_path, expected=False):
        stored = catalog.save(stored.replace(tags=["green"]), expected_version=stored.version)
    assert catalog.search("red") == []
    assert catalog.search("green") == [stored]


@pytest.mark.parametrize(
    "change",
    [
        {"description": "apples and pears"},
        {"description": None},
        {"fields": [Field("stem", "int"), Field("leaf", "int")]},
        {"fields": [Field("leaf", "int")]},
        {"fields": []},
        {"tags": []},
        {"tags": ["red", "ripe"]},
    ],
)
def test_any_change_to_the_indexed_text_reaches_the_index(catalog: Catalog, change: dict[str, Any]) -> None:
    stored = catalog.create(make("a", description="apples", tags=["red"], fields=[Field("stem", "int")]))
    saved = catalog.save(stored.replace(**change), expected_version=1)
    with _raw(Path(catalog.path)) as conn:
        row = conn.execute(
            "SELECT description, field_names, tags FROM search_index WHERE rowid = 1"
        ).fetchone()
    assert row == (
        saved.description or "",
        " ".join(f.name for f in saved.fields),
        " ".join(saved.tags),
    )
