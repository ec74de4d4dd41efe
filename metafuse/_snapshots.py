"""A store catalog's snapshots: compacted copies of the replica, and the retention that prunes them.

Owns everything under `snapshots/` in the store: uploading a copy of the replica named by the
log position recorded inside it (created only if absent; an unsound object at that name is
replaced), finding and downloading the newest sound snapshot (one that passes SQLite's check,
records the position its name says and, while that entry is in the log, its commit id), and
`expire`, the retention pass that deletes the snapshots and log entries nothing may need any
more. Store failures are raised as they come (`ObjectStoreError`): the caller turns them into
catalog errors. It may not open a transaction on the replica or apply anything to it, nor
append to the log; it only reads the log, and truncates it below a snapshot it keeps.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import threading
import time

from ._logposition import position
from ._rows import SELECT_DATASET
from .errors import StorageError
from .objectstore import CREATE, AlreadyExists, CommitLog, NotFound, ObjectStore, PreconditionFailed, update

logger = logging.getLogger("metafuse.logcommits")

SNAPSHOT_DIR = "snapshots/"
"""The folder of the snapshots in the store: `snapshots/<sequence as 20 digits>.db`."""

_SNAPSHOT_KEY = re.compile(r"^" + re.escape(SNAPSHOT_DIR) + r"\d{20}\.db$")


class Snapshots:
    """The snapshots of the catalog at `url` (as it may be shown), whose log is `log`.

    Safe to share between threads: each call works on temporary files named for its thread.
    """

    def __init__(self, url: str, store: ObjectStore, log: CommitLog, *, replica_dir: str) -> None:
        self.url = url
        self.store = store
        self.log = log
        self.replica_dir = replica_dir
        self.replica_path = os.path.join(replica_dir, "replica.db")

    def write(self) -> int:
        """Upload a compacted copy of the replica as a snapshot; return its sequence (0: none).

        Named by the position recorded inside the copy, so a copy taken while other threads
        commit is still named truthfully. Created only if absent: two writers racing to write
        the same snapshot upload identical content, and the loser's copy is simply dropped.
        """
        copy = os.path.join(self.replica_dir, f"snapshot-{threading.get_ident()}.db")
        try:
            conn = sqlite3.connect(self.replica_path, isolation_level=None)
            try:
                conn.execute("VACUUM INTO ?", (copy,))
            finally:
                conn.close()
            check = sqlite3.connect(copy)
            try:
                sequence = position(check)
            finally:
                check.close()
            if sequence == 0:
                return 0
            with open(copy, "rb") as file:
                data = file.read()
            key = f"{SNAPSHOT_DIR}{sequence:020d}.db"
            try:
                self.store.put(key, data, CREATE)
            except AlreadyExists:
                self._replace_if_unsound(key, data)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(copy)
        return sequence

    def _replace_if_unsound(self, key: str, data: bytes) -> None:
        """Another object holds snapshot name `key`: a racing writer's copy (kept), or something
        that is not a sound snapshot (replaced by `data`, only if unchanged since it was read)."""
        check = os.path.join(self.replica_dir, f"existing-{threading.get_ident()}.db")
        try:
            tag = self.store.head(key).tag
            problem, _ = self._fetch(key, check)
        except NotFound:
            return
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(check)
        if problem is not None:
            logger.warning("%s: snapshot %s replaced: %s", self.url, key, problem)
            with contextlib.suppress(PreconditionFailed, NotFound):
                self.store.put(key, data, update(tag))

    def expire(self, now: float | None = None) -> tuple[int, int]:
        """Delete what the retention no longer keeps; return (snapshots, log entries) deleted.

        Keeps the newest snapshot at least `retention` seconds old (by the store's clock
        against `now`, default this machine's), every snapshot after it, and every log entry
        from its sequence on; deletes the older snapshots, then the older entries oldest first.
        So anything a client could still need is kept while it is younger than the retention:
        a bootstrap that listed the snapshots, a catch-up from an older snapshot, and a
        writer between finding the log's end and appending after it (`CommitLog`).
        A catalog created without a retention deletes nothing.
        """
        retention = self.log.retention
        if retention is None:
            return 0, 0
        moment = time.time() if now is None else now
        # One listing gives every snapshot's time: no HEAD per snapshot.
        listed = [meta for meta in self.store.list_meta(SNAPSHOT_DIR) if _SNAPSHOT_KEY.match(meta.key)]
        listed.sort(key=lambda meta: meta.key)
        keys = [meta.key for meta in listed]
        old_enough = [i for i in range(len(listed) - 1, -1, -1) if moment - listed[i].modified >= retention]
        if not old_enough:
            return 0, 0
        oldest, end = self.log.oldest(), self.log.latest()
        if old_enough[0] == 0 and (oldest is None or oldest >= sequence_of(keys[0])):
            return 0, 0  # nothing before the snapshot to keep: nothing to delete
        keep = None
        for index in old_enough:  # the newest old enough that is sound and within the log
            problem = self._unsound_to_keep(keys[index], end)
            if problem is None:
                keep = index
                break
            logger.warning("%s: snapshot %s not kept by the retention: %s", self.url, keys[index], problem)
        if keep is None:
            return 0, 0
        for key in keys[:keep]:
            self.store.delete(key)
        # The newest entry always stays: a number the retention deleted has later entries.
        entries = self.log.truncate(below=min(sequence_of(keys[keep]), end))
        return keep, entries

    def _unsound_to_keep(self, key: str, end: int) -> str | None:
        """Why snapshot `key` must not be the one the retention keeps (None: it may be)."""
        if sequence_of(key) > end:
            return f"names entry {sequence_of(key)}, past the log's end ({end})"
        check = os.path.join(self.replica_dir, f"expire-{threading.get_ident()}.db")
        try:
            problem, _ = self._fetch(key, check)
        except NotFound:
            return "gone"
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(check)
        return problem

    def download_newest(self, path: str) -> tuple[int, str | None] | None:
        """Save the newest sound snapshot as `path`; its sequence and last commit id, or None.

        A snapshot that is not a catalog, or whose recorded position is not the one its name
        says, is passed over with a warning naming its key, for the next older one (and after
        the oldest, None: the replica then starts from the log's first entry).
        """
        passed_over: set[str] = set()
        for _ in range(5):  # each miss means retention removed it for a newer one: list again
            keys = [key for key in self._keys() if key not in passed_over]
            missing = False
            for key in reversed(keys):
                partial = path + ".download"
                try:
                    problem, commit_id = self._fetch(key, partial)
                except NotFound:
                    missing = True
                    break
                if problem is None:
                    os.replace(partial, path)
                    return sequence_of(key), commit_id
                os.unlink(partial)
                passed_over.add(key)
                logger.warning("%s: snapshot %s passed over: %s", self.url, key, problem)
            if not missing:
                return None
        raise StorageError(self.url, "the newest snapshot kept disappearing before it could be read")

    def _fetch(self, key: str, path: str) -> tuple[str | None, str | None]:
        """Download snapshot `key` to `path` and check it: (what is wrong, or None; its commit id).

        Sound means: a catalog that passes `quick_check`, recording the position its name says,
        and, when log entry at that position is still there, that entry's commit id (a snapshot
        of another history, a restored backup say, records another). `NotFound` if it is gone.
        """
        data, _ = self.store.get(key)
        with open(path, "wb") as file:
            file.write(data)
        sequence = sequence_of(key)
        problem, commit_id = _problem(path, sequence)
        if problem is None and commit_id is not None:
            try:
                logged = self.log.read(sequence).commit_id
            except NotFound:
                logged = commit_id  # deleted by the retention: nothing left to compare with
            if logged != commit_id:
                problem = f"records commit {commit_id} at entry {sequence}, but the log holds {logged} there"
        return problem, commit_id

    def _keys(self) -> list[str]:
        """The snapshots' keys, oldest first; objects that are not named as snapshots are ignored."""
        return sorted(key for key in self.store.list(SNAPSHOT_DIR) if _SNAPSHOT_KEY.match(key))


def sequence_of(key: str) -> int:
    """The log sequence a snapshot's key names."""
    return int(os.path.basename(key)[: -len(".db")])


def _problem(path: str, sequence: int) -> tuple[str | None, str | None]:
    """What is wrong with the snapshot file at `path` named for `sequence` (None: sound), and
    the commit id it records for that entry."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as error:
        return f"cannot be opened ({error})", None
    try:
        check = conn.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            return f"fails SQLite's quick_check ({check[0] if check else 'no answer'})", None
        columns = {row[1] for row in conn.execute("PRAGMA table_info(log_position)")}
        if "sequence" not in columns:
            return "has no log position: not a catalog snapshot", None
        query = "SELECT sequence, commit_id" if "commit_id" in columns else "SELECT sequence, NULL"
        row = conn.execute(query + " FROM log_position WHERE id = 1").fetchone()
        if row is None or row[0] != sequence:
            recorded = None if row is None else row[0]
            return f"records position {recorded}, not the {sequence} its name says", None
        conn.execute(SELECT_DATASET + " LIMIT 1").fetchall()
        return None, None if row[1] is None else str(row[1])
    except sqlite3.Error as error:
        return f"is not a catalog snapshot ({error})", None
    finally:
        conn.close()
