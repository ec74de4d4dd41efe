"""The benchmark catalog (10,000 datasets), cached on disk, and the raw-`sqlite3` baselines.

Shared by `conftest.py` (pytest-benchmark) and `perf.py` (the targets report), so both measure
the same content and the same floor. Everything is generated from a fixed seed: two builds of
the fixture hold the same datasets, fields, tags and lineage (timestamps aside).

The raw baselines are what a hand-written application would do with `sqlite3` on the same file:
no validation, no cache, no freshness tokens, rows left as tuples.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import random
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from metafuse import Catalog, Dataset, Field
from metafuse._schema import SCHEMA_VERSION

FIXTURE_VERSION = 1
"""Bump when `generate` changes: the cached file's name carries it, so an old file is not reused."""
DATASETS = 10_000
FIELDS_EACH = 10
UPSTREAM_EACH = 5
TAGS_EACH = 3
SEED = 20_240_501
BATCH = 1_000
"""Datasets per `create_many` call (one transaction each) when building."""
FIXTURE_NAME = f"catalog-10k-v{FIXTURE_VERSION}.db"
SIDECARS = ("-wal", "-shm", "-journal", "-mfgen")
"""Files SQLite and MetaFuse keep beside a catalog."""

# fmt: off
_ROOTS = (
    "amber", "basil", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "juniper",
    "kestrel", "lumen", "marble", "nectar", "onyx", "prism", "quartz", "raven", "sierra", "tundra",
    "umber", "violet", "willow", "xenon", "yarrow",
)
_SUFFIXES = (
    "", "wood", "stone", "field", "light", "ridge", "brook", "fall", "gate", "crest", "vale",
    "port", "mere", "shaw", "holt", "wick", "ford", "ton", "by", "ley",
)
_COLUMNS = (
    "id", "created_at", "updated_at", "customer_id", "order_id", "amount", "currency", "status",
    "country", "region", "sku", "quantity", "price", "discount", "session_id", "user_id",
    "event_type", "event_time", "page", "referrer", "device", "os", "browser", "campaign",
    "channel", "revenue", "cost", "margin", "ledger_id", "account_id", "balance", "txn_type",
    "merchant", "category", "zip", "city", "email_hash", "score", "label", "model_version",
)
# fmt: on
WORDS = tuple(root + suffix for root in _ROOTS for suffix in _SUFFIXES)
"""Description vocabulary (500 words); none of them is a field name, a tag or a name token."""
_TYPES = ("int64", "string", "double", "timestamp", "boolean", "date", "decimal(18,2)")
_TAGS = tuple(f"{kind}:{value}" for kind in ("tier", "team", "freq") for value in ("a", "b", "c", "d", "e"))
_DOMAINS = tuple(f"domain-{index:02d}" for index in range(20))
_FORMATS = ("parquet", "csv", "delta", "orc", "avro")


NAME_FORMAT = "bench.ds{:05d}"
"""`str.format` pattern of the generated names; they sort in index order."""


def dataset_name(index: int) -> str:
    """Name of the `index`-th generated dataset."""
    return NAME_FORMAT.format(index)


def generate(count: int = DATASETS, *, seed: int = SEED) -> Iterator[Dataset]:
    """Yield `count` datasets: 10 fields, 3 tags and 5 upstream datasets each, from `seed`.

    Upstream names point at other generated datasets (chosen at random), so a depth-3 walk
    fans out to up to 5 + 25 + 125 edges.
    """
    rng = random.Random(seed)
    for index in range(count):
        columns = rng.sample(_COLUMNS, FIELDS_EACH)
        upstream: list[str] = []
        while len(upstream) < min(UPSTREAM_EACH, count - 1):
            parent = rng.randrange(count)
            if parent != index and dataset_name(parent) not in upstream:
                upstream.append(dataset_name(parent))
        domain = rng.choice(_DOMAINS)
        yield Dataset(
            name=dataset_name(index),
            uri=f"s3://bench-lake/{domain}/ds{index:05d}/",
            format=rng.choice(_FORMATS),
            description=" ".join(rng.sample(WORDS, 8)) + ". Synthetic dataset for the benchmarks.",
            owner=f"owner-{rng.randrange(50):02d}",
            domain=domain,
            tags=rng.sample(_TAGS, TAGS_EACH),
            fields=[
                Field(column, rng.choice(_TYPES), nullable=rng.random() < 0.7, description=f"{column} column")
                for column in columns
            ],
            size_bytes=rng.randrange(1 << 20, 1 << 36),
            row_count=rng.randrange(1_000, 100_000_000),
            upstream=upstream,
        )


def build(path: Path, datasets: Sequence[Dataset], *, batch: int = BATCH) -> float:
    """Create a new catalog at `path` holding `datasets` (`create_many` per batch); return seconds.

    The clock covers opening the new file, every batch and closing it (the WAL is checkpointed
    into the file on close).
    """
    if path.exists():
        raise FileExistsError(path)
    start = time.perf_counter()
    with Catalog(path) as catalog:
        for offset in range(0, len(datasets), batch):
            catalog.create_many(datasets[offset : offset + batch])
    return time.perf_counter() - start


def remove(path: Path) -> None:
    """Delete a catalog file and its sidecars, whichever exist."""
    for suffix in ("", *SIDECARS):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def is_current(path: Path) -> bool:
    """Whether `path` is a complete fixture of this version (schema, counts, first dataset)."""
    if not path.is_file():
        return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        user_version = conn.execute("PRAGMA user_version").fetchone()[0]
        counts = [
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("datasets", "fields", "lineage")
        ]
        first = conn.execute("SELECT description FROM datasets WHERE name = ?", (dataset_name(0),)).fetchone()
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    expected = next(generate())
    return (
        user_version == SCHEMA_VERSION
        and counts == [DATASETS, DATASETS * FIELDS_EACH, DATASETS * UPSTREAM_EACH]
        and first is not None
        and first[0] == expected.description
    )


def ensure(path: Path) -> float | None:
    """Make `path` a current fixture; return the build's seconds, or None if the file was reused.

    Builds into a temporary name and renames it into place, so an interrupted build never
    leaves a file that looks complete.
    """
    if is_current(path):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_name(f"{path.name}.building-{os.getpid()}")
    remove(building)
    datasets = list(generate())
    try:
        seconds = build(building, datasets)
        remove(path)
        os.replace(building, path)
    finally:
        remove(building)
    return seconds


# -- raw sqlite3 baselines ---------------------------------------------------------------------


def raw_connect(path: Path | str, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """Open `path` as the catalog does: autocommit, WAL, `synchronous`, 5 s busy timeout."""
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


_RAW_ROW = (
    "SELECT id, name, uri, format, description, owner, domain, partitions, size_bytes, row_count,"
    " version, last_modified FROM datasets"
)
_RAW_FIELDS = (
    "SELECT name, data_type, nullable, description FROM fields WHERE dataset_id = ? ORDER BY position"
)


def raw_get(conn: sqlite3.Connection, name: str) -> tuple[Any, list[Any]] | None:
    """Point-select a dataset row by name, then its fields: two queries, rows left as tuples."""
    row = conn.execute(f"{_RAW_ROW} WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    return row, conn.execute(_RAW_FIELDS, (row[0],)).fetchall()


def raw_save(conn: sqlite3.Connection, name: str, expected_version: int, description: str) -> int:
    """`BEGIN IMMEDIATE`, select the version, conditional `UPDATE`, `COMMIT`; return the new version.

    Raises `RuntimeError` when the stored version is not `expected_version` (nothing written).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT id, version FROM datasets WHERE name = ?", (name,)).fetchone()
        updated = conn.execute(
            "UPDATE datasets SET description = ?, version = version + 1, last_modified = ?"
            " WHERE id = ? AND version = ?",
            (description, _now(), row[0], expected_version),
        ).rowcount
        if updated != 1:
            raise RuntimeError(f"{name}: version {row[1]}, expected {expected_version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return expected_version + 1


def raw_create(conn: sqlite3.Connection, dataset: Dataset) -> int:
    """Insert a dataset row, its fields, tags, lineage and search row in one transaction."""
    stamp = _now()
    conn.execute("BEGIN IMMEDIATE")
    try:
        dataset_id = conn.execute(
            "INSERT INTO datasets (name, uri, format, description, owner, domain, partitions,"
            " size_bytes, row_count, last_modified, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
            (
                dataset.name,
                dataset.uri,
                dataset.format,
                dataset.description,
                dataset.owner,
                dataset.domain,
                json.dumps(list(dataset.partitions)),
                dataset.size_bytes,
                dataset.row_count,
                stamp,
            ),
        ).lastrowid
        assert dataset_id is not None
        _insert_children(conn, [(dataset_id, dataset)])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return dataset_id


def raw_bulk_load(path: Path, datasets: Sequence[Dataset], *, batch: int = BATCH) -> float:
    """Load `datasets` into a new, empty catalog file with `executemany` per batch; return seconds.

    The schema is made by opening a `Catalog` (not timed); the rows, their children and their
    search rows are written by hand, one `BEGIN IMMEDIATE` transaction per batch.
    """
    if path.exists():
        raise FileExistsError(path)
    Catalog(path).close()
    start = time.perf_counter()
    conn = raw_connect(path)
    try:
        stamp = _now()
        for offset in range(0, len(datasets), batch):
            chunk = [
                (offset + index + 1, dataset)
                for index, dataset in enumerate(datasets[offset : offset + batch])
            ]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO datasets (id, name, uri, format, description, owner, domain, partitions,"
                " size_bytes, row_count, last_modified, version)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                [
                    (
                        dataset_id,
                        d.name,
                        d.uri,
                        d.format,
                        d.description,
                        d.owner,
                        d.domain,
                        json.dumps(list(d.partitions)),
                        d.size_bytes,
                        d.row_count,
                        stamp,
                    )
                    for dataset_id, d in chunk
                ],
            )
            _insert_children(conn, chunk)
            conn.execute("COMMIT")
    finally:
        conn.close()
    return time.perf_counter() - start


def _insert_children(conn: sqlite3.Connection, chunk: Sequence[tuple[int, Dataset]]) -> None:
    conn.executemany(
        "INSERT INTO fields (dataset_id, position, name, data_type, nullable, description)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (dataset_id, position, f.name, f.data_type, int(f.nullable), f.description)
            for dataset_id, d in chunk
            for position, f in enumerate(d.fields)
        ],
    )
    conn.executemany(
        "INSERT INTO tags (dataset_id, position, tag) VALUES (?, ?, ?)",
        [(dataset_id, position, tag) for dataset_id, d in chunk for position, tag in enumerate(d.tags)],
    )
    conn.executemany(
        "INSERT INTO lineage (dataset_id, position, upstream) VALUES (?, ?, ?)",
        [(dataset_id, position, up) for dataset_id, d in chunk for position, up in enumerate(d.upstream)],
    )
    conn.executemany(
        "INSERT INTO search_index (rowid, name, description, field_names, tags) VALUES (?, ?, ?, ?, ?)",
        [
            (
                dataset_id,
                d.name,
                d.description or "",
                " ".join(f.name for f in d.fields),
                " ".join(d.tags),
            )
            for dataset_id, d in chunk
        ],
    )


def raw_list(conn: sqlite3.Connection, after: str, limit: int = 100) -> tuple[list[Any], list[Any]]:
    """A page of dataset rows after `after` by name, then all their fields in one query."""
    rows = conn.execute(f"{_RAW_ROW} WHERE name > ? ORDER BY name LIMIT ?", (after, limit)).fetchall()
    marks = ", ".join("?" * len(rows))
    fields = conn.execute(
        f"SELECT dataset_id, name, data_type, nullable, description FROM fields"
        f" WHERE dataset_id IN ({marks}) ORDER BY dataset_id, position",
        [row[0] for row in rows],
    ).fetchall()
    return rows, fields


def raw_search(conn: sqlite3.Connection, query: str, limit: int = 100) -> list[Any]:
    """The best `limit` FTS5 matches for `query`, joined to their dataset rows."""
    return conn.execute(
        f"{_RAW_ROW} AS d JOIN (SELECT rowid AS hit, rank FROM search_index WHERE search_index MATCH ?"
        " ORDER BY rank LIMIT ?) ON hit = d.id ORDER BY rank",
        (query, limit),
    ).fetchall()


def raw_lineage(conn: sqlite3.Connection, name: str, depth: int = 3) -> list[Any]:
    """Upstream edges within `depth` steps of `name`, nearest first (a recursive CTE)."""
    return conn.execute(
        """
        WITH RECURSIVE walk (downstream, upstream, depth) AS (
            SELECT ?1, l.upstream, 1 FROM lineage AS l
             WHERE l.dataset_id = (SELECT id FROM datasets WHERE name = ?1)
            UNION
            SELECT w.upstream, l.upstream, w.depth + 1
              FROM walk AS w JOIN datasets AS d ON d.name = w.upstream
              JOIN lineage AS l ON l.dataset_id = d.id
             WHERE w.depth < ?2
        )
        SELECT downstream, upstream, min(depth) FROM walk GROUP BY downstream, upstream ORDER BY 3
        """,
        (name, depth),
    ).fetchall()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()
