"""How a dataset becomes rows: the INSERTs, UPDATEs and DELETEs of create, save and delete.

Owns the SQL that writes the `datasets` row and its child tables (`fields`, `tags`, `lineage`)
and the choice of which of them a save rewrites. Every function runs inside a write
transaction its caller already opened and reports each dataset it changes through `mark`
before changing it. It may not open, commit or roll back a transaction, take a lock, touch the
cache or the change slots, or know whether the catalog lives on a file or a store.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import sqlite3
from collections.abc import Callable
from typing import Any

from . import faults
from ._rows import CHILDREN_AS_JSON
from .errors import ConflictError, NotFoundError
from .model import Dataset

Mark = Callable[[str, "int | None"], None]
"""Called with a dataset's name and its stored version (None: new) before a write changes it."""

CHILDREN = ("fields", "tags", "lineage")
COLUMNS = ("uri", "format", "description", "owner", "domain", "partitions", "size_bytes", "row_count")
"""The dataset row's own columns, in `row_values` order after the name."""

VERSION_OF = "SELECT id, version FROM datasets WHERE name = ?"
INSERT_DATASET = (
    "INSERT INTO datasets (name, uri, format, description, owner, domain, partitions,"
    " size_bytes, row_count, last_modified, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
)
SAVE_ROW = (
    f"SELECT d.id, d.version, {CHILDREN_AS_JSON}, {', '.join('d.' + column for column in COLUMNS)}"
    " FROM datasets AS d WHERE d.name = ?"
)
"""A stored dataset as a save compares it: id, version, children as JSON, then `COLUMNS`."""
SET_VERSION = "UPDATE datasets SET version = ?, last_modified = ? WHERE id = ?"
BUMP_CATALOG = "UPDATE catalog_meta SET version = version + ?, last_modified = ? WHERE id = 1"


def now() -> _dt.datetime:
    """The time a write stamps on what it stores (UTC)."""
    return _dt.datetime.now(_dt.timezone.utc)


def insert_new(
    conn: sqlite3.Connection, datasets: list[Dataset], stamp: _dt.datetime, mark: Mark
) -> list[Dataset]:
    """Insert `datasets` at version 1; `ConflictError` (nothing inserted by this call) if a name exists."""
    created: list[Dataset] = []
    for dataset in datasets:
        row = conn.execute(VERSION_OF, (dataset.name,)).fetchone()
        if row is not None:
            raise ConflictError(dataset.name, None, row[1])
        mark(dataset.name, None)
        dataset_id = conn.execute(INSERT_DATASET, row_values(dataset, stamp)).lastrowid
        assert dataset_id is not None
        write_children(conn, dataset_id, dataset)
        conn.execute(SET_VERSION, (1, stamp.isoformat(), dataset_id))
        created.append(stored(dataset, 1, stamp))
    if created:
        conn.execute(BUMP_CATALOG, (len(created), stamp.isoformat()))
    return created


def replace(
    conn: sqlite3.Connection,
    dataset: Dataset,
    expected_version: int,
    stamp: _dt.datetime,
    mark: Mark,
    invalidate: Callable[[str], None],
) -> Dataset:
    """Rewrite a stored dataset if its version is `expected_version`; return it as stored.

    `NotFoundError` or `ConflictError` (after `invalidate(name)`: the conflict proves any cached
    copy stale) leave the rows untouched.
    """
    row = conn.execute(SAVE_ROW, (dataset.name,)).fetchone()
    if row is None:
        raise NotFoundError(dataset.name)
    dataset_id, actual = row[0], row[1]
    children, stored_columns = row[2:5], row[5:]
    if faults.active("lost_update"):
        # The classic bug: "SET version = expected + 1" without "WHERE version = expected".
        actual = expected_version
    if actual != expected_version:
        invalidate(dataset.name)
        raise ConflictError(dataset.name, expected_version, actual)
    mark(dataset.name, actual)
    new_version = actual + 1
    update_sql, update = changed_columns(dataset, stamp, stored_columns, new_version, dataset_id)
    if faults.active("torn_write"):
        conn.execute(update_sql, update)
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        replace_children(conn, dataset_id, dataset, children)
    else:
        # Children first: the search trigger on the version bump reads them.
        replace_children(conn, dataset_id, dataset, children)
        conn.execute(update_sql, update)
    conn.execute(BUMP_CATALOG, (1, stamp.isoformat()))
    return stored(dataset, new_version, stamp)


def remove(
    conn: sqlite3.Connection, name: str, expected_version: int, mark: Mark, invalidate: Callable[[str], None]
) -> None:
    """Delete a stored dataset if its version is `expected_version`, else raise and delete nothing."""
    row = conn.execute(VERSION_OF, (name,)).fetchone()
    if row is None:
        raise NotFoundError(name)
    if row[1] != expected_version:
        invalidate(name)
        raise ConflictError(name, expected_version, row[1])
    mark(name, row[1])
    delete_rows(conn, row[0])
    conn.execute(BUMP_CATALOG, (1, now().isoformat()))


def delete_rows(conn: sqlite3.Connection, dataset_id: int) -> None:
    """Delete one dataset's row and its child rows."""
    for table in ("fields", "tags", "lineage", "datasets"):
        column = "id" if table == "datasets" else "dataset_id"
        conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (dataset_id,))


def stored(dataset: Dataset, version: int, stamp: _dt.datetime) -> Dataset:
    """`dataset` as stored: with its new version and stamp (no re-validation: it was valid)."""
    result = object.__new__(Dataset)
    for field in dataclasses.fields(Dataset):
        object.__setattr__(result, field.name, getattr(dataset, field.name))
    object.__setattr__(result, "version", version)
    object.__setattr__(result, "last_modified", stamp)
    return result


def row_values(dataset: Dataset, stamp: _dt.datetime) -> tuple[Any, ...]:
    """The values of `INSERT_DATASET`: the name, then `COLUMNS`, then the stamp."""
    return (
        dataset.name,
        dataset.uri,
        dataset.format,
        dataset.description,
        dataset.owner,
        dataset.domain,
        json.dumps(list(dataset.partitions)),
        dataset.size_bytes,
        dataset.row_count,
        stamp.isoformat(),
    )


def changed_columns(
    dataset: Dataset, stamp: _dt.datetime, stored: tuple[Any, ...], version: int, dataset_id: int
) -> tuple[str, tuple[Any, ...]]:
    """The UPDATE of a save: only the columns whose values differ, plus the stamp and version.

    An UPDATE rewrites the index entries of every column it assigns, changed or not, so
    assigning only what changed keeps a save from rewriting the owner and domain indexes.
    """
    values = row_values(dataset, stamp)[1:]
    changed = [(column, new) for column, new, old in zip(COLUMNS, values, stored) if new != old]
    assignments = "".join(f"{column} = ?, " for column, _ in changed)
    sql = f"UPDATE datasets SET {assignments}last_modified = ?, version = ? WHERE id = ?"
    return sql, (*(new for _, new in changed), values[-1], version, dataset_id)


def _child_rows(dataset: Dataset) -> tuple[list[Any], list[Any], list[Any]]:
    """Return fields, tags and upstream names shaped as `CHILDREN_AS_JSON` decodes them."""
    fields = [[f.name, f.data_type, int(f.nullable), f.description] for f in dataset.fields]
    return fields, list(dataset.tags), list(dataset.upstream)


def write_children(
    conn: sqlite3.Connection, dataset_id: int, dataset: Dataset, tables: tuple[str, ...] = CHILDREN
) -> None:
    """Insert the child rows of `dataset` into `tables` (the tables hold none of its rows yet)."""
    fields, tags, upstream = _child_rows(dataset)
    if "fields" in tables and fields:
        conn.executemany(
            "INSERT INTO fields (dataset_id, position, name, data_type, nullable, description)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(dataset_id, position, *field) for position, field in enumerate(fields)],
        )
    if "tags" in tables and tags:
        conn.executemany(
            "INSERT INTO tags (dataset_id, position, tag) VALUES (?, ?, ?)",
            [(dataset_id, position, tag) for position, tag in enumerate(tags)],
        )
    if "lineage" in tables and upstream:
        conn.executemany(
            "INSERT INTO lineage (dataset_id, position, upstream) VALUES (?, ?, ?)",
            [(dataset_id, position, parent) for position, parent in enumerate(upstream)],
        )


def replace_children(
    conn: sqlite3.Connection, dataset_id: int, dataset: Dataset, stored: tuple[str, str, str]
) -> None:
    """Rewrite only the child tables whose rows differ from what is stored (JSON arrays)."""
    wanted = _child_rows(dataset)
    changed = tuple(table for table, new, old in zip(CHILDREN, wanted, stored) if new != json.loads(old))
    for table in changed:
        conn.execute(f"DELETE FROM {table} WHERE dataset_id = ?", (dataset_id,))
    write_children(conn, dataset_id, dataset, changed)
