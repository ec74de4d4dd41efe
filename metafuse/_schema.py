"""The catalog schema, its migrations (keyed by `PRAGMA user_version`) and the checks made on open.

Owns the DDL, `migrate`, the checks of a path and of a file before SQLite opens it, the atomic
creation of a new file, and this process's count of open catalogs per file. It writes no dataset
(only the schema, the first `catalog_meta` row and, migrating, the rebuilt search index), keeps no
connection (only the one that builds a new file, closed at once), and imports only `errors` and
`_sqlite_errors`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator

from ._sqlite_errors import translate
from .errors import BusyError, CatalogFileError, StorageError

SCHEMA_VERSION = 2
"""The newest schema this code reads and writes.

1: the first schema. 2: the FTS5 index keeps no per-row token counts (`columnsize = 0`) and the
search trigger skips datasets whose indexed text did not change; see `_migrate_search`.
"""

_SQLITE_MAGIC = b"SQLite format 3\x00"

_TABLES = """
CREATE TABLE catalog_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    last_modified TEXT NOT NULL,
    search_backend TEXT NOT NULL
);
CREATE TABLE datasets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    uri TEXT NOT NULL,
    format TEXT,
    description TEXT,
    owner TEXT,
    domain TEXT,
    partitions TEXT NOT NULL DEFAULT '[]',
    size_bytes INTEGER,
    row_count INTEGER,
    version INTEGER NOT NULL,
    last_modified TEXT NOT NULL
);
CREATE INDEX datasets_by_domain ON datasets (domain, name);
CREATE INDEX datasets_by_owner ON datasets (owner, name);
CREATE TABLE fields (
    dataset_id INTEGER NOT NULL REFERENCES datasets (id),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    data_type TEXT NOT NULL,
    nullable INTEGER NOT NULL,
    description TEXT,
    PRIMARY KEY (dataset_id, position)
) WITHOUT ROWID;
CREATE TABLE tags (
    dataset_id INTEGER NOT NULL REFERENCES datasets (id),
    position INTEGER NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (dataset_id, position)
) WITHOUT ROWID;
CREATE INDEX tags_by_tag ON tags (tag, dataset_id);
CREATE TABLE lineage (
    dataset_id INTEGER NOT NULL REFERENCES datasets (id),
    position INTEGER NOT NULL,
    upstream TEXT NOT NULL,
    PRIMARY KEY (dataset_id, position)
) WITHOUT ROWID;
CREATE INDEX lineage_by_upstream ON lineage (upstream, dataset_id);
"""

# columnsize = 0: no `search_index_docsize` table, whose row each refresh rewrote (one WAL page
# per save). bm25 still gets each hit's token counts, by tokenizing the hit's stored text, so
# ranks are unchanged; ranking a search costs that tokenizing instead. detail stays full: phrase,
# NEAR and column-filter queries need the positions (docs/benchmarks.md, "Writes: WAL pages").
_FTS_INDEX = (
    "CREATE VIRTUAL TABLE search_index USING fts5(name, description, field_names, tags,"
    " tokenize = 'unicode61', columnsize = 0)"
)
_PLAIN_INDEX = (
    "CREATE TABLE search_index (rowid INTEGER PRIMARY KEY, name TEXT, description TEXT,"
    " field_names TEXT, tags TEXT)"
)

_SEARCH_TEXT = """
    coalesce(new.description, ''),
    coalesce((SELECT group_concat(name, ' ') FROM fields WHERE dataset_id = new.id), ''),
    coalesce((SELECT group_concat(tag, ' ') FROM tags WHERE dataset_id = new.id), '')"""

# Writers touch a dataset's children first and bump `version` last, so one trigger on the version
# bump sees the finished dataset and refreshes its search row at most once per write. A refresh
# is a delete and an insert, which FTS5 writes as a new index segment (about ten WAL pages), so
# a save that leaves the indexed text as the index holds it (a new row count, uri, owner or
# lineage) skips it: the WHEN clause compares the stored row with the text the insert would write.
_TRIGGERS = f"""
CREATE TRIGGER datasets_search_refresh AFTER UPDATE OF version ON datasets WHEN NOT EXISTS (
    SELECT name, description, field_names, tags FROM search_index WHERE rowid = new.id
    INTERSECT SELECT new.name, {_SEARCH_TEXT}
) BEGIN
    DELETE FROM search_index WHERE rowid = new.id;
    INSERT INTO search_index (rowid, name, description, field_names, tags)
    SELECT new.id, new.name, {_SEARCH_TEXT};
END;
CREATE TRIGGER datasets_search_remove AFTER DELETE ON datasets BEGIN
    DELETE FROM search_index WHERE rowid = old.id;
END;
"""
_TRIGGER_NAMES = ("datasets_search_refresh", "datasets_search_remove")

_SEARCH_ROWS = """
INSERT INTO search_index (rowid, name, description, field_names, tags)
SELECT d.id, d.name, coalesce(d.description, ''),
    coalesce((SELECT group_concat(name, ' ') FROM fields WHERE dataset_id = d.id), ''),
    coalesce((SELECT group_concat(tag, ' ') FROM tags WHERE dataset_id = d.id), '')
FROM datasets AS d
"""


def fts5_available(conn: sqlite3.Connection) -> bool:
    """Return whether this SQLite build has the FTS5 extension."""
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x)")
    except sqlite3.OperationalError:
        return False
    conn.execute("DROP TABLE temp.fts5_probe")
    return True


_open_catalogs: dict[str, int] = {}
_open_lock = threading.RLock()  # re-entrant: creating a catalog may open another in this thread


@contextlib.contextmanager
def registered(real_path: str) -> Iterator[bool]:
    """Count one more open Catalog on `real_path` in this process; yield whether it is the first.

    Held under one process-wide lock with the header check: closing any descriptor of a file drops
    every POSIX lock the process holds on it, SQLite's included, so `check_file` may open the file
    itself only while no catalog of this process has it open (and so no connection of ours can
    hold a lock on it). If the body raises, the registration is undone.
    """
    with _open_lock:
        first = not _open_catalogs.get(real_path)
        _open_catalogs[real_path] = _open_catalogs.get(real_path, 0) + 1
        try:
            yield first
        except BaseException:
            _release(real_path)
            raise


def _after_fork_in_child() -> None:
    # A thread that was opening or closing a catalog at the fork does not exist in the child:
    # its hold on the lock would last forever. The count it was changing can only be too high,
    # which makes a later open skip its header check: the safe side (no descriptor closed).
    global _open_lock
    _open_lock = threading.RLock()
    # The child abandons, never closes, the connections it inherited (see `_connections`), and it
    # holds their locks for real on descriptors of its own (`_forklocks`): a file open at the fork
    # stays open in this process for good, so its count never falls back to zero, and a later open
    # never checks its header through a descriptor whose close would drop those locks.
    for real_path in _open_catalogs:
        _open_catalogs[real_path] += 1


os.register_at_fork(after_in_child=_after_fork_in_child)


def unregister(real_path: str) -> None:
    """Count one open Catalog on `real_path` fewer (its `close()`)."""
    with _open_lock:
        _release(real_path)


def _release(real_path: str) -> None:
    left = _open_catalogs.get(real_path, 0) - 1
    if left > 0:
        _open_catalogs[real_path] = left
    else:
        _open_catalogs.pop(real_path, None)


_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def check_path_text(path: str) -> None:
    """Refuse names that are not file paths ('', ':memory:', URLs), before any path is resolved."""
    if not path or path == ":memory:":
        raise CatalogFileError(repr(path), "is not a file path; a catalog lives in a file")
    url = _URL.match(path)
    if url is not None:
        scheme = url.group(1).lower()
        if scheme in ("s3", "log+file"):
            raise CatalogFileError(path, "is an object-store URL: open it with Catalog.open(url)")
        raise CatalogFileError(
            path,
            f"is a URL ({scheme}://), which MetaFuse does not open: give a file path, s3://bucket/prefix"
            " or log+file:///directory",
        )


def check_file(path: str, *, read_header: bool = True) -> bool:
    """Refuse paths that cannot hold a catalog; return whether the file already exists.

    Runs before SQLite touches the file, so a file that is not a catalog is never modified. With
    `read_header=False` (another catalog of this process has the file open, see `registered`) the
    file is not opened: it was checked when first opened.
    """
    check_path_text(path)
    if os.path.isdir(path):
        raise CatalogFileError(path, "is a directory, not a catalog file")
    if not os.path.exists(path):
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            ancestor = parent
            while not os.path.exists(ancestor) and os.path.dirname(ancestor) != ancestor:
                ancestor = os.path.dirname(ancestor)
            if os.path.exists(ancestor) and not os.path.isdir(ancestor):
                raise CatalogFileError(path, f"{ancestor} is a file, not a directory")
            raise CatalogFileError(path, f"directory {parent} does not exist")
        return False
    if not read_header:
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(100)
    except OSError as error:
        raise CatalogFileError(path, f"cannot be read ({error.strerror})") from None
    if not head:
        raise CatalogFileError(
            path, "is empty (0 bytes), not a catalog; delete it to start a new catalog there"
        )
    if not head.startswith(_SQLITE_MAGIC):
        raise CatalogFileError(path, "is not a MetaFuse catalog (not an SQLite database)")
    if len(head) < 100:
        raise CatalogFileError(path, "is truncated (shorter than an SQLite header)")
    return True


def refuse_hard_links(path: str) -> None:
    """Refuse a catalog file that has more than one name (hard link).

    SQLite names its `-wal` and `-shm` files after the name it was opened by, so two names of one
    file would give it two write-ahead logs and two lock tables: concurrent writers through
    different names would corrupt it (https://sqlite.org/howtocorrupt.html, "multiple links to the
    same file"). The only second name tolerated is the brief one `create_atomically` uses.
    """
    try:
        info = os.stat(path)
    except OSError:
        return
    if info.st_nlink <= 1:
        return
    directory = os.path.dirname(path)
    prefix = f".{os.path.basename(path)}."
    try:
        names = [entry for entry in os.scandir(directory) if entry.name.startswith(prefix)]
        creating = sum(
            1 for entry in names if entry.name.endswith(".creating") and entry.inode() == info.st_ino
        )
    except OSError:
        creating = 0
    if info.st_nlink - creating > 1:
        raise CatalogFileError(
            path,
            f"has {info.st_nlink} hard links; SQLite keys its -wal and -shm files on the name, so"
            " a catalog must have exactly one name (open it by that name, or copy it)",
        )


def migrate(conn: sqlite3.Connection, path: str, *, read_only: bool) -> str:
    """Bring the schema to `SCHEMA_VERSION` and return the search backend ('fts5' or 'like').

    Runs in one `BEGIN IMMEDIATE` transaction, so two processes creating the same catalog at
    once cannot both initialise it. A newer or foreign schema is refused untouched.
    """
    version = _user_version(conn, path)
    if version == SCHEMA_VERSION or (read_only and version > 0):
        _refuse_newer(path, version)
        return _search_backend(conn, path)
    _refuse_newer(path, version)
    if read_only:
        raise CatalogFileError(path, "is not initialised and was opened read-only")
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _user_version(conn, path)
        _refuse_newer(path, version)
        if version == 0:
            _create(conn, path)
        elif version < 2:
            _migrate_search(conn, path)
        # Later migrations go here: `elif version < 3: ...`, each bringing the file up by one.
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return _search_backend(conn, path)


def _user_version(conn: sqlite3.Connection, path: str) -> int:
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as error:
        # A full disk or a lock is not damage; everything else here means an unreadable file.
        meant = translate(error, path, 0.0)
        if isinstance(meant, (StorageError, BusyError)):
            raise meant from None
        raise CatalogFileError(path, f"is damaged or not a catalog ({error})") from None


def _refuse_newer(path: str, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise CatalogFileError(
            path,
            f"has schema version {version}, newer than this MetaFuse supports ({SCHEMA_VERSION});"
            " upgrade metafuse to open it",
        )


def _create(conn: sqlite3.Connection, path: str) -> None:
    existing = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if existing:
        raise CatalogFileError(path, "is an SQLite database but not a MetaFuse catalog")
    backend = "fts5" if fts5_available(conn) else "like"
    for statement in _statements(_TABLES):
        conn.execute(statement)
    conn.execute(_FTS_INDEX if backend == "fts5" else _PLAIN_INDEX)
    _create_triggers(conn)
    conn.execute(
        "INSERT INTO catalog_meta (id, version, last_modified, search_backend) VALUES (1, 0, ?, ?)",
        (_dt.datetime.now(_dt.timezone.utc).isoformat(), backend),
    )


def _create_triggers(conn: sqlite3.Connection) -> None:
    for statement in _TRIGGERS.split("END;"):
        if statement.strip():
            conn.execute(statement + "END;")


def _migrate_search(conn: sqlite3.Connection, path: str) -> None:
    """Schema 1 to 2: the FTS5 index rebuilt with `columnsize = 0`, the refresh trigger guarded.

    The index is rebuilt from the datasets, fields and tags it is derived from, inside the
    migration's transaction, so a reader sees either the old index or the whole new one. A
    LIKE-backend catalog keeps its plain table and only gets the new triggers.
    """
    backend = _search_backend(conn, path)
    for name in _TRIGGER_NAMES:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    if backend == "fts5":
        if not fts5_available(conn):
            raise CatalogFileError(
                path,
                "has schema version 1 with an FTS5 search index, and this SQLite"
                f" ({sqlite3.sqlite_version}) has no FTS5 to upgrade it with; open it once with an"
                " SQLite that has FTS5",
            )
        conn.execute("DROP TABLE search_index")
        conn.execute(_FTS_INDEX)
        conn.execute(_SEARCH_ROWS)
    _create_triggers(conn)


def _search_backend(conn: sqlite3.Connection, path: str) -> str:
    try:
        row = conn.execute("SELECT search_backend FROM catalog_meta WHERE id = 1").fetchone()
    except sqlite3.DatabaseError as error:
        raise CatalogFileError(path, f"is not a MetaFuse catalog ({error})") from None
    if row is None:
        raise CatalogFileError(path, "is not a MetaFuse catalog (catalog_meta is empty)")
    return str(row[0])


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


def sqlite_uri(path: str, *, read_only: bool = False) -> str:
    """Return the `file:` URI that opens exactly `path`.

    Names like ':memory:' or 'file:x.db' mean something else to SQLite when passed as plain
    file names; an absolute, quoted URI always names the file itself.
    """
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}"
    return f"{uri}?mode=ro" if read_only else uri


def create_atomically(path: str) -> None:
    """Create a new, empty catalog at `path` so that no other process ever sees it half-made.

    The catalog is built in a temporary file beside `path` and hard-linked into place, which
    fails if `path` appeared meanwhile (another process won the race: its catalog is used). So
    an empty (0-byte) file at a catalog's path is never one being created, and can be refused
    as a wiped catalog instead of being silently initialised.
    """
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(
        directory,
        f".{os.path.basename(path)}.{os.getpid()}.{threading.get_ident()}.creating",
    )
    try:
        _build(temporary, path)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        except OSError:
            # No hard links on this file system: a rename, which could replace a racing
            # creator's brand-new, still-empty catalog; both are empty, so nothing is lost.
            if not os.path.exists(path):
                os.replace(temporary, path)
    finally:
        for leftover in (temporary, f"{temporary}-wal", f"{temporary}-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def _build(temporary: str, path: str) -> None:
    directory = os.path.dirname(temporary)
    try:
        conn = sqlite3.connect(sqlite_uri(temporary), isolation_level=None, uri=True)
    except sqlite3.Error as error:
        raise CatalogFileError(path, f"cannot be created in {directory} ({error})") from None
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        migrate(conn, path, read_only=False)
    except sqlite3.Error as error:
        meant = translate(error, path, 0.0)
        if isinstance(meant, StorageError):
            raise meant from None
        raise CatalogFileError(path, f"cannot be created in {directory} ({error})") from None
    finally:
        conn.close()  # the last connection checkpoints and removes the -wal file
