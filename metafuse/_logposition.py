"""A store replica's place in the commit log: the one row of its table `log_position`.

Owns how that row is read and written: the sequence of the last log entry the replica applied
and that entry's commit id. Callers read and write it inside the replica's own transactions, so
the replica and its position never disagree. It may not create the table (`LogCommits.prepare`
does, once), open or end a transaction, or talk to the store.
"""

from __future__ import annotations

import sqlite3


def position(conn: sqlite3.Connection) -> int:
    """The sequence of the last entry the replica applied (0: none yet)."""
    row = conn.execute("SELECT sequence FROM log_position WHERE id = 1").fetchone()
    return 0 if row is None else int(row[0])


def position_and_commit(conn: sqlite3.Connection) -> tuple[int, str | None]:
    """The last entry the replica applied and its commit id (None: not known, an older replica)."""
    row = conn.execute("SELECT sequence, commit_id FROM log_position WHERE id = 1").fetchone()
    return (0, None) if row is None else (int(row[0]), None if row[1] is None else str(row[1]))


def set_position(conn: sqlite3.Connection, sequence: int, commit_id: str | None) -> None:
    """Record entry `sequence` (commit `commit_id`) as applied, in the open transaction."""
    conn.execute("UPDATE log_position SET sequence = ?, commit_id = ? WHERE id = 1", (sequence, commit_id))
