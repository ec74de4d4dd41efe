"""`LogCommits`: how a commit becomes durable when the catalog lives on an object store.

A local catalog's commit is durable when SQLite's COMMIT returns. A catalog on an object store
(`s3://bucket/prefix`, or `log+file:///dir` for a directory) keeps a private local SQLite file,
the *replica*, with the same schema, and the `Catalog` runs the same SQL on it. What differs is
only how a write transaction begins and ends; `Catalog` calls these hooks and nothing else:

- `begin(conn, apply)`, right after `BEGIN IMMEDIATE` on the replica: apply every log entry the
  replica has not applied yet (one HEAD when it is up to date), so the transaction's version
  checks run against every commit acknowledged anywhere before it began.
- `publish(conn, before, apply)`, right before the replica's COMMIT: turn the datasets the
  transaction changed into one log entry (each with the version it was expected to have) and
  append it (`CommitLog.append`, `If-None-Match: *`). Losing the number to entries that touch
  none of those datasets is not a conflict: they are applied inside the same transaction and the
  append retries at the next number. An entry that touches one of them raises `ConflictError`,
  and the replica transaction rolls back. Only an appended entry lets the COMMIT run.
- `before_read(sync)`: one HEAD to find whether the log moved past the replica (skipped while the
  last check is younger than `max_staleness`, when the caller opted into stale reads), and if it
  did, `sync()` runs an empty write transaction, whose `begin` catches up.
- `committed()`: after the replica's COMMIT, every `snapshot_every` entries, upload a compacted
  copy of the replica as `snapshots/<sequence>.db` (created only if absent), from which new
  clients bootstrap instead of replaying the whole log; then `expire` what retention allows.

Retention is fixed when the catalog is created (`retention_seconds` in `catalog.json`; catalogs
made without it keep everything). Once a snapshot is that old, the snapshots before it and the
log entries before its sequence are deleted, entries oldest first (`CommitLog.truncate`). A
replica that fell further behind than that finds its next entry gone (`LogTruncated`) and starts
again from the newest snapshot, applied through the same `apply` as a log entry.

The replica records the last entry it applied in the table `log_position` (`_logposition`),
inside the same transactions that apply entries, so the replica and its position never disagree.

Three parts live beside this one: `catalog.json`, claimed or checked on open
(`_catalogmarker`), the snapshots and the retention pass (`_snapshots`), and the replica's
position (`_logposition`). This module owns the hooks and the replica's catch-up; it may not write
a dataset's rows itself (it is handed `apply`), nor take the catalog's writer lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from . import _replicas as replicas
from . import faults
from ._catalogmarker import MARKER_KEY, MAX_RETENTION, claim_or_check
from ._logposition import position as _position
from ._logposition import position_and_commit as _position_and_commit
from ._logposition import set_position as _set_position
from ._rows import SELECT_DATASET, decode
from ._snapshots import Snapshots
from .errors import (
    BusyError,
    CatalogError,
    CatalogFileError,
    CommitUnknownError,
    ConflictError,
    ForkedHistoryError,
    StorageError,
    ValidationError,
)
from .objectstore import (
    AppendContended,
    CommitLog,
    CommitUnknown,
    LogEntry,
    LogForked,
    LogTruncated,
    ObjectStore,
    ObjectStoreError,
    open_store,
    redact,
)

logger = logging.getLogger("metafuse.logcommits")

LOG_FILE_SCHEME = "log+file://"
"""A catalog on a directory used as an object store (tests, a shared file system)."""
REPLICA_DIR_PREFIX = replicas.PREFIX
"""Each replica lives in a fresh directory whose name starts so (see `metafuse._replicas`)."""
REPLICA_ROOT_ENV = "METAFUSE_REPLICA_DIR"
"""Where replica directories are made (default: the system's temporary directory)."""


def replica_root() -> str:
    """The directory new replicas are made in: `$METAFUSE_REPLICA_DIR`, else the temporary directory."""
    return os.path.realpath(os.environ.get(REPLICA_ROOT_ENV) or tempfile.gettempdir())


SNAPSHOT_EVERY = 100
"""Default: one snapshot every this many log entries."""
RESTARTS = 5
"""How many times in a row a catch-up starts again from a newer snapshot before it gives up."""

Change = Mapping[str, Any]
"""One dataset's change in a log entry: `{"name", "expected", "dataset"}` (dataset None: deleted)."""
Applier = Callable[[Sequence[Change]], None]
"""Applies changes to the replica inside the open write transaction (the catalog's own SQL)."""


def is_store_url(target: str) -> bool:
    """Whether `target` names a catalog on an object store rather than a local file."""
    lowered = target.lower()
    return lowered.startswith("s3://") or lowered.startswith(LOG_FILE_SCHEME)


class LogCommits:
    """The object-store side of one catalog opened with `Catalog.open(url)` (see the module doc)."""

    def __init__(
        self,
        url: str,
        store: ObjectStore,
        *,
        replica_dir: str,
        max_staleness: float | None,
        snapshot_every: int,
    ) -> None:
        self.url = redact(url)
        """The catalog's URL as it may be shown: any credentials in it replaced (see `redact`)."""
        self.store = store
        self.log = CommitLog(store)
        """The commit log; its `retention` is the catalog's, once `catalog.json` has been read."""
        self.replica_dir = replica_dir
        self.replica_path = os.path.join(replica_dir, "replica.db")
        self.snapshots = Snapshots(self.url, store, self.log, replica_dir=replica_dir)
        """The catalog's snapshots and the retention pass over them and the log."""
        self.max_staleness = max_staleness
        self.snapshot_every = snapshot_every
        self._position = 0  # last entry applied, as last seen (the table is the truth)
        self._checked_at = -float("inf")
        self._snapshot_due = 0
        self._lock = threading.Lock()
        self.bootstrapped_from = 0
        """The sequence of the snapshot this replica started from (0: the empty catalog)."""

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str,
        *,
        create: bool,
        max_staleness: float | None = None,
        snapshot_every: int = SNAPSHOT_EVERY,
        retention: float | None = None,
        settle_seconds: float | None = None,
    ) -> LogCommits:
        """Open (or create) the catalog at `url` and bootstrap a private replica of it.

        `retention` (seconds) is recorded when this call creates the catalog (default
        `RETENTION`); for an existing catalog it must be None or the value it was created with.
        """
        if max_staleness is not None and (
            isinstance(max_staleness, bool)
            or not isinstance(max_staleness, (int, float))
            or not 0 <= max_staleness <= 3600
        ):
            raise ValidationError("max_staleness", "must be None or 0 to 3600 seconds", max_staleness)
        if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int) or snapshot_every < 1:
            raise ValidationError("snapshot_every", "must be a whole number >= 1", snapshot_every)
        if retention is not None and (
            isinstance(retention, bool)
            or not isinstance(retention, (int, float))
            or not 0 <= retention <= MAX_RETENTION
        ):
            raise ValidationError(
                "retention", f"must be None or 0 to {MAX_RETENTION} seconds (ten years)", retention
            )
        if settle_seconds is not None and (
            isinstance(settle_seconds, bool)
            or not isinstance(settle_seconds, (int, float))
            or not 0 <= settle_seconds <= 3600
        ):
            raise ValidationError("settle_seconds", "must be None or 0 to 3600 seconds", settle_seconds)
        local = url.lower().startswith(LOG_FILE_SCHEME)
        store_url = url[len("log+") :] if local else url
        parts = urlsplit(store_url)
        # Opening a directory as a store makes its internal folder: check first, so that a read
        # of a catalog that is not there leaves nothing behind.
        if (
            local
            and not create
            and parts.netloc in ("", "localhost")
            and parts.path
            and not os.path.isfile(os.path.join(parts.path, MARKER_KEY))
        ):
            raise CatalogFileError(url, f"does not exist (no {MARKER_KEY}); `metafuse init` creates one")
        root = replica_root()
        try:
            replicas.reclaim(root)
            replica_dir = replicas.make(root)
        except OSError as error:
            raise CatalogFileError(
                redact(url),
                f"cannot make its local replica in {root} ({error.strerror}):"
                f" set {REPLICA_ROOT_ENV} to a writable directory",
            ) from None
        try:
            store = open_store(store_url)
        except ObjectStoreError as error:
            shutil.rmtree(replica_dir, ignore_errors=True)
            message = str(error)
            if local:  # speak of the URL as the user wrote it
                message = message.replace(f"'{store_url}'", f"'{url}'").replace(
                    "(file:///dir)", "(log+file:///dir)"
                )
            raise CatalogFileError(redact(url), redact(message)) from None
        commits = cls(
            url,
            store,
            replica_dir=replica_dir,
            max_staleness=None if max_staleness is None else float(max_staleness),
            snapshot_every=snapshot_every,
        )
        if settle_seconds is not None:
            commits.log.settle_seconds = float(settle_seconds)
        try:
            with commits._store_errors():
                commits.log.retention = claim_or_check(
                    commits.url, commits.log, create=create, retention=retention
                )
                commits._bootstrap()
        except BaseException:
            commits.close()
            raise
        return commits

    def _bootstrap(self) -> None:
        """Start the replica from the newest snapshot, if there is one; the log tail follows later."""
        found = self.snapshots.download_newest(self.replica_path)
        if found is not None:
            self.bootstrapped_from = found[0]

    def prepare(self, conn: sqlite3.Connection) -> None:
        """Make sure the replica has its `log_position` row (once, right after the schema check)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS log_position"
                " (id INTEGER PRIMARY KEY CHECK (id = 1), sequence INTEGER NOT NULL, commit_id TEXT)"
            )
            columns = {row[1] for row in conn.execute("PRAGMA table_info(log_position)")}
            if "commit_id" not in columns:  # a snapshot written before entries were chained
                conn.execute("ALTER TABLE log_position ADD COLUMN commit_id TEXT")
            conn.execute("INSERT OR IGNORE INTO log_position (id, sequence) VALUES (1, 0)")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._position = _position(conn)
        self.log._saw(self._position)

    # -- the hooks -------------------------------------------------------------------------

    def begin(self, conn: sqlite3.Connection, apply: Applier) -> None:
        """Inside a new write transaction on the replica: apply every entry it has not applied."""
        position, applied = _position_and_commit(conn)
        restarted = False
        with self._store_errors():
            for restarts in range(RESTARTS + 1):
                try:
                    entries = self.log.since(position, applied)
                    break
                except LogTruncated:
                    if restarts == RESTARTS:
                        raise
                    # Fell behind the retention: start again from the newest snapshot, then
                    # its tail (again, if the retention moved past that snapshot meanwhile).
                    position, applied = self._restart_from_snapshot(conn, apply)
                    restarted = True
        for entry in entries:
            apply(_changes(entry))
        if entries:
            _set_position(conn, entries[-1].sequence, entries[-1].commit_id)
        if entries or restarted:
            # Keep the catch-up whatever becomes of the write: a conflict would otherwise roll
            # it back with the write, and the retry would download the same entries again. No
            # one else writes this private replica, and this thread still holds its writer lock.
            conn.execute("COMMIT")
            conn.execute("BEGIN IMMEDIATE")
        # The position in memory moves only after the final COMMIT (`settled_position`).

    def publish(
        self,
        conn: sqlite3.Connection,
        before: Mapping[str, int | None],
        apply: Applier,
        reads: Mapping[str, int | None] | None = None,
        read_all: bool = False,
    ) -> None:
        """Before the replica's COMMIT: append the transaction's changes to the log, or raise.

        Validates the transaction against every entry that lands between the position it
        began at and its own: one that changes a dataset it wrote, or one it read (`reads`;
        any dataset if `read_all`), raises `ConflictError`, so transactions are serializable.
        """
        if not before:
            return
        rows = _changes_made(conn, before)
        position, applied = _position_and_commit(conn)
        seen: Mapping[str, int | None] = {} if reads is None or faults.active("unvalidated_reads") else reads
        depends_on_all = read_all and not faults.active("unvalidated_reads")

        def validate(lost: Sequence[LogEntry]) -> None:
            for entry in lost:
                changes = _changes(entry)
                for change in changes:
                    name = str(change["name"])
                    if name in before or name in seen or depends_on_all:
                        dataset = change.get("dataset")
                        actual = None if dataset is None else int(dataset["version"])
                        raise ConflictError(name, before[name] if name in before else seen.get(name), actual)
                apply(changes)

        self.log.skip_placement_check = faults.active("unchecked_log")
        try:
            with self._store_errors():
                result = self.log.append({"changes": rows}, validate, after=position, prev=applied)
        except CommitUnknown as unknown:
            raise CommitUnknownError(
                self.url,
                f"the store stopped answering during commit {unknown.commit_id}: it may have landed;"
                " settle it (Catalog.settle) before trying again",
                unknown,
            ) from None
        _set_position(conn, result.sequence, result.commit_id)
        if result.sequence % self.snapshot_every == 0:
            self._snapshot_due = result.sequence  # cleared only by `committed`, never by a later write

    def settle(self, error: CommitUnknownError) -> bool:
        """Decide the commit behind `error` for good: True if it is in the log, False if it never
        will be; `StorageError` while the store is still unreachable (nothing decided)."""
        pending = error.pending
        if not isinstance(pending, CommitUnknown) or error.path != self.url:
            raise ValidationError("error", f"must be a CommitUnknownError raised by {self.url}", error)
        try:
            with self._store_errors():
                return self.log.settle(pending) is not None
        except ForkedHistoryError:
            # Re-sent to a number the retention had deleted: whether the first copy landed there
            # (and is now in a snapshot) or not cannot be told from the log any more.
            raise StorageError(
                self.url,
                f"cannot settle commit {pending.commit_id}: the retention deleted entry"
                f" {pending.sequence} meanwhile, so whether it landed cannot be told from the log;"
                " look for its change in the catalog",
            ) from None

    def committed(self) -> None:
        """After the replica's COMMIT: remember the position; upload a snapshot when one is due."""
        due, self._snapshot_due = self._snapshot_due, 0
        if not due:
            return
        try:
            self.write_snapshot()
        except (CatalogError, OSError, sqlite3.Error) as error:
            # The write itself is committed and acknowledged: a failed snapshot only means new
            # clients replay a longer log tail until the next one.
            logger.warning("%s: snapshot after entry %d not written: %s", self.url, due, error)
            return
        try:
            self.expire()
        except CatalogError as error:
            logger.warning("%s: retention pass after entry %d stopped: %s", self.url, due, error)

    def before_read(self, sync: Callable[[], None]) -> None:
        """Make the replica reflect every commit acknowledged before now (or within max_staleness)."""
        now = time.monotonic()
        if self.max_staleness is not None and now - self._checked_at < self.max_staleness:
            return
        self.log.trust_absent_next = faults.active("trusting_probe")
        with self._store_errors():
            try:
                moved = self.log.moved(self._position)
            except LogTruncated:
                moved = True  # behind the retention: `sync` starts again from a snapshot
        if moved:
            sync()
        else:
            self._checked_at = now

    def _restart_from_snapshot(self, conn: sqlite3.Connection, apply: Applier) -> tuple[int, str | None]:
        """Make the replica the newest snapshot, inside the open transaction; return its position
        (sequence and commit id).

        Applied as changes (every dataset of the snapshot, and a deletion for each dataset the
        replica has and the snapshot lacks), so the catalog marks every name it touches just as
        for a log entry, and cached copies cannot outlive the restart.
        """
        position = _position(conn)
        download = os.path.join(self.replica_dir, f"restart-{threading.get_ident()}.db")
        try:
            found = self.snapshots.download_newest(download)
            if found is None or found[0] <= position:
                raise StorageError(
                    self.url, f"the log's entries after {position} are gone and no newer snapshot holds them"
                )
            sequence, commit_id = found
            snapshot = sqlite3.connect(f"file:{download}?mode=ro", uri=True)
            try:
                datasets = [decode(row).to_dict() for row in snapshot.execute(SELECT_DATASET)]
            finally:
                snapshot.close()
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(download)
        kept = {str(data["name"]) for data in datasets}
        gone = [str(name) for (name,) in conn.execute("SELECT name FROM datasets") if name not in kept]
        changes: list[Change] = [{"name": data["name"], "dataset": data} for data in datasets]
        changes.extend({"name": name, "dataset": None} for name in gone)
        apply(changes)
        _set_position(conn, sequence, commit_id)
        logger.info(
            "%s: replica was behind the retention at %d; restarted from snapshot %d",
            self.url,
            position,
            sequence,
        )
        return sequence, commit_id

    # -- snapshots -------------------------------------------------------------------------

    def write_snapshot(self) -> int:
        """Upload a compacted copy of the replica as a snapshot; return its sequence (0: none).

        See `Snapshots.write`; store failures raise `StorageError` naming the catalog.
        """
        with self._store_errors():
            return self.snapshots.write()

    def expire(self, now: float | None = None) -> tuple[int, int]:
        """Delete what the retention no longer keeps; return (snapshots, log entries) deleted.

        Runs after each snapshot; see `Snapshots.expire`. Store failures raise `StorageError`.
        """
        with self._store_errors():
            return self.snapshots.expire(now)

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Remove the replica's directory (if this process made it) and release the store."""
        replicas.release(self.replica_dir)  # not a forked child's: its parent's replica
        self.store.close()

    def _saw_end(self, position: int) -> None:
        with self._lock:
            if position > self._position:
                self._position = position
            self._checked_at = time.monotonic()

    def settled_position(self, conn: sqlite3.Connection) -> None:
        """After a COMMIT: the replica's position as committed (for the next read's HEAD)."""
        self._saw_end(_position(conn))

    def _store_errors(self) -> _StoreErrors:
        return _StoreErrors(self.url)


class _StoreErrors:
    """Turns object-store failures into catalog errors naming the catalog's URL."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        if isinstance(error, CommitUnknown):
            return  # decided by `publish`
        if isinstance(error, LogForked):
            raise ForkedHistoryError(self.url, f"refused: {error}") from None
        if isinstance(error, AppendContended):
            raise BusyError(
                self.url,
                round(error.waited, 1),
                f"gave up a commit: other writers won {error.attempts} log numbers in a row",
            ) from None
        if isinstance(error, ObjectStoreError):
            raise StorageError(self.url, f"object store failed: {error}") from None


def _changes(entry: LogEntry) -> list[Change]:
    changes = entry.payload.get("changes")
    if not isinstance(changes, list):
        raise StorageError(f"log entry {entry.sequence}", "has no list of changes")
    return changes


def _changes_made(conn: sqlite3.Connection, before: Mapping[str, int | None]) -> list[dict[str, Any]]:
    """Each changed dataset as the transaction leaves it (None when deleted), with its expected version."""
    rows = []
    for name in sorted(before):
        row = conn.execute(SELECT_DATASET + " WHERE d.name = ?", (name,)).fetchone()
        rows.append(
            {
                "name": name,
                "expected": before[name],
                "dataset": None if row is None else decode(row).to_dict(),
            }
        )
    return rows
