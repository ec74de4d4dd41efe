"""How a read becomes SQL: the listing, search and lineage queries, run on a connection given.

Owns the text of every read query beyond a single dataset's (`_rows.SELECT_DATASET`): the
filters of a listing, the FTS5 search with its plain-words fallback and its LIKE stand-in, and
the recursive lineage walks. Its functions take arguments the caller already validated. It may
not open connections, translate errors, consult the cache or the store, or write.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ._rows import SELECT_DATASET, decode
from ._sqlite_errors import translate
from .errors import NotFoundError
from .model import Dataset

CATALOG_VERSION = "SELECT version FROM catalog_meta WHERE id = 1"
"""A catalog file's version: the writes ever committed to it."""
LOG_POSITION = "SELECT sequence FROM log_position WHERE id = 1"
"""A replica's version: the sequence of the newest log entry it applied."""


def listing(
    domain: str | None, owner: str | None, tag: str | None, after: str | None, limit: int
) -> tuple[str, list[Any]]:
    """The query of a filtered page of datasets ordered by name, and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    if domain is not None:
        clauses.append("d.domain = ?")
        params.append(domain)
    if owner is not None:
        clauses.append("d.owner = ?")
        params.append(owner)
    if tag is not None:
        clauses.append("d.id IN (SELECT dataset_id FROM tags WHERE tag = ?)")
        params.append(tag)
    if after is not None:
        clauses.append("d.name > ?")
        params.append(after)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    params.append(limit)
    return f"{SELECT_DATASET}{where} ORDER BY d.name LIMIT ?", params


def search_fts5(
    conn: sqlite3.Connection, query: str, limit: int, path: str, busy_timeout: float
) -> list[Dataset]:
    """Best FTS5 matches first; a query that is not valid FTS5 is searched as plain words instead.

    A lock or file error is re-raised as it came (`path` and `busy_timeout` tell them apart).
    """
    sql = (
        f"{SELECT_DATASET} JOIN (SELECT rowid AS id, rank FROM search_index"
        " WHERE search_index MATCH ? ORDER BY rank LIMIT ?) AS hits ON hits.id = d.id"
        " ORDER BY hits.rank, d.name"
    )
    try:
        rows = conn.execute(sql, (query, limit)).fetchall()
    except sqlite3.OperationalError as error:
        if translate(error, path, busy_timeout) is not None:
            raise  # a lock or file problem, not the query's syntax
        rows = conn.execute(sql, (_as_plain_words(query), limit)).fetchall()
    return [decode(row) for row in rows]


def search_like(conn: sqlite3.Connection, query: str, limit: int) -> list[Dataset]:
    """Datasets holding every word of `query`, by name (for SQLite built without FTS5)."""
    clauses = []
    params: list[Any] = []
    for word in query.split():
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append(
            "(s.name LIKE ? ESCAPE '\\' OR s.description LIKE ? ESCAPE '\\'"
            " OR s.field_names LIKE ? ESCAPE '\\' OR s.tags LIKE ? ESCAPE '\\')"
        )
        params.extend([pattern] * 4)
    sql = (
        f"{SELECT_DATASET} JOIN search_index AS s ON s.rowid = d.id"
        f" WHERE {' AND '.join(clauses)} ORDER BY d.name LIMIT ?"
    )
    return [decode(row) for row in conn.execute(sql, [*params, limit])]


def lineage(conn: sqlite3.Connection, name: str, direction: str, depth: int) -> list[tuple[str, str, int]]:
    """(downstream, upstream, depth) edges within `depth` steps of `name`; `NotFoundError` if absent."""
    walk = _UPSTREAM_WALK if direction == "upstream" else _DOWNSTREAM_WALK
    # One read transaction, so the existence check and the walk see the same snapshot
    # (inside a caller's write transaction, that transaction already is one).
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        if conn.execute("SELECT 1 FROM datasets WHERE name = ?", (name,)).fetchone() is None:
            raise NotFoundError(name)
        rows = conn.execute(walk, {"name": name, "depth": depth}).fetchall()
    finally:
        if own:
            conn.execute("COMMIT")
    return [(str(down), str(up), int(level)) for down, up, level in rows]


def _as_plain_words(query: str) -> str:
    # NUL ends an FTS5 string early ("unterminated string"): it separates words instead.
    words = query.replace("\x00", " ").split()
    return " ".join('"' + word.replace('"', '""') + '"' for word in words) or '""'


_UPSTREAM_WALK = """
WITH RECURSIVE walk (downstream, upstream, depth) AS (
    SELECT d.name, l.upstream, 1 FROM datasets AS d JOIN lineage AS l ON l.dataset_id = d.id
     WHERE d.name = :name
    UNION
    SELECT w.upstream, l.upstream, w.depth + 1
      FROM walk AS w JOIN datasets AS d ON d.name = w.upstream
      JOIN lineage AS l ON l.dataset_id = d.id
     WHERE w.depth < :depth
)
SELECT downstream, upstream, min(depth) FROM walk GROUP BY downstream, upstream
 ORDER BY 3, 1, 2
"""
_DOWNSTREAM_WALK = """
WITH RECURSIVE walk (downstream, upstream, depth) AS (
    SELECT d.name, l.upstream, 1 FROM lineage AS l JOIN datasets AS d ON d.id = l.dataset_id
     WHERE l.upstream = :name
    UNION
    SELECT d.name, l.upstream, w.depth + 1
      FROM walk AS w JOIN lineage AS l ON l.upstream = w.downstream
      JOIN datasets AS d ON d.id = l.dataset_id
     WHERE w.depth < :depth
)
SELECT downstream, upstream, min(depth) FROM walk GROUP BY downstream, upstream
 ORDER BY 3, 1, 2
"""
