"""The cache is never stale, whoever wrote: other SQLite clients, other spellings of the path,
writers without the slot file, and after the slot file was deleted or replaced."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import pytest

from metafuse import Catalog, CatalogFileError, ConflictError, faults
from metafuse._freshness import sidecar_path
from metafuse._guard import SETTLE

from ._support import make


def _outside_update(path: Path | str, name: str, description: str) -> None:
    """Commit as a plain `sqlite3` client would (a migration script): no MetaFuse involved."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(
            "UPDATE datasets SET description = ?, version = version + 1 WHERE name = ?", (description, name)
        )
    finally:
        conn.close()


def _warm(catalog: Catalog, name: str) -> None:
    first = catalog.get(name)
    assert first is not None
    assert catalog.get(name) is first, "the second read should be a cache hit"


def test_a_commit_by_another_sqlite_client_is_seen_at_once(catalog: Catalog, catalog_path: Path) -> None:
    catalog.create(make("a", description="mine"))
    _warm(catalog, "a")
    _outside_update(catalog_path, "a", "outside")
    seen = catalog.get("a")
    assert seen is not None
    assert (seen.description, seen.version) == ("outside", 2)


def test_the_cache_serves_hits_again_once_the_outside_commit_is_accounted_for(
    catalog: Catalog, catalog_path: Path
) -> None:
    catalog.create(make("a"))
    _outside_update(catalog_path, "a", "outside")
    catalog.get("a")  # a miss that notices the unaccounted commit
    time.sleep(SETTLE * 2)
    catalog.get("a")  # accounts for it (one epoch bump), and is stamped with the new epoch
    again = catalog.get("a")
    assert catalog.get("a") is again


def test_outside_blind_fault_serves_the_stale_entry(catalog: Catalog, catalog_path: Path) -> None:
    catalog.create(make("a", description="mine"))
    _warm(catalog, "a")
    _outside_update(catalog_path, "a", "outside")
    with faults.enabled("outside_blind"):
        stale = catalog.get("a")
    assert stale is not None
    assert stale.description == "mine"  # the bug the fault plants, and that the check prevents


def test_a_conflict_evicts_the_stale_entry_so_update_recovers(catalog: Catalog, catalog_path: Path) -> None:
    # With outside commits invisible (the fault), only the conflict can prove the entry stale.
    catalog.create(make("a", description="mine"))
    _warm(catalog, "a")
    _outside_update(catalog_path, "a", "outside")
    conflicts: list[int] = []
    with faults.enabled("outside_blind"):
        updated = catalog.update(
            "a",
            lambda d: d.replace(tags=("updated",)),
            max_attempts=5,
            backoff=0,
            on_conflict=lambda error, attempt: conflicts.append(attempt),
        )
    assert conflicts == [1]  # the second, optimistic attempt read the database, not the entry
    assert updated.version == 3
    assert updated.description == "outside"
    assert catalog.stats().pessimistic_updates == 0


def test_save_after_an_outside_commit_conflicts_and_evicts(catalog: Catalog, catalog_path: Path) -> None:
    catalog.create(make("a"))
    _warm(catalog, "a")
    _outside_update(catalog_path, "a", "outside")
    with faults.enabled("outside_blind"):
        cached = catalog.get("a")
        assert cached is not None
        with pytest.raises(ConflictError):
            catalog.save(cached.replace(description="late"), expected_version=cached.version)
        fresh = catalog.get("a")
    assert fresh is not None
    assert fresh.version == 2


def test_outside_commits_seen_by_another_process(catalog_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with Catalog(catalog_path) as catalog:
        catalog.create(make("a", description="v1"))
    from ._support import child_cache_then_reread

    result = ctx.Queue()
    go = ctx.Event()
    child = ctx.Process(target=child_cache_then_reread, args=(str(catalog_path), "a", result, go))
    child.start()
    try:
        kind, version, was_hit, _hits = result.get(timeout=60)
        assert (kind, version, was_hit) == ("cached", 1, True)
        _outside_update(catalog_path, "a", "outside")
        go.set()
        kind, version, description = result.get(timeout=60)
        assert (kind, version, description) == ("reread", 2, "outside")
    finally:
        child.join(30)


# -- one file, many spellings -------------------------------------------------------------------


def test_a_relative_path_is_resolved_once_at_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "data")
    catalog = Catalog("catalog.db")
    try:
        assert catalog.path == str(tmp_path / "data" / "catalog.db")
        monkeypatch.chdir(tmp_path / "elsewhere")
        catalog.create(make("a"))
        assert not (tmp_path / "elsewhere" / "catalog.db").exists()
        with Catalog(tmp_path / "data" / "catalog.db") as absolute:
            assert absolute.get("a") is not None
    finally:
        catalog.close()


@pytest.mark.parametrize("spelling", ["symlink", "dotdot", "relative"])
def test_every_spelling_shares_one_freshness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    real = tmp_path / "data" / "catalog.db"
    real.parent.mkdir()
    (tmp_path / "sub").mkdir()
    alias: str | Path
    if spelling == "symlink":
        alias = tmp_path / "link.db"
        alias.symlink_to(real)
    elif spelling == "dotdot":
        alias = tmp_path / "sub" / ".." / "data" / "catalog.db"
    else:
        monkeypatch.chdir(tmp_path / "sub")
        alias = os.path.join("..", "data", "catalog.db")
    writer = Catalog(real)
    reader = Catalog(alias)
    try:
        assert reader.path == writer.path == str(real)
        writer.create(make("a", description="v1"))
        _warm(reader, "a")
        current = writer.get("a")
        assert current is not None
        writer.save(current.replace(description="v2"), expected_version=1)
        seen = reader.get("a")
        assert seen is not None
        assert seen.description == "v2"
        assert not Path(f"{tmp_path / 'link.db'}-mfgen").exists()
    finally:
        reader.close()
        writer.close()


def test_path_spelling_fault_makes_a_symlink_reader_stale(tmp_path: Path) -> None:
    real = tmp_path / "catalog.db"
    alias = tmp_path / "link.db"
    writer = Catalog(real)
    alias.symlink_to(real)
    with faults.enabled("path_spelling"):
        reader = Catalog(alias)
    try:
        writer.create(make("a", description="v1"))
        with faults.enabled("path_spelling"):
            _warm(reader, "a")
            writer.save(make("a", description="v2"), expected_version=1)
            stale = reader.get("a")
        assert stale is not None
        assert stale.description == "v1"
    finally:
        reader.close()
        writer.close()


def test_a_hard_linked_catalog_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "catalog.db"
    Catalog(real).close()
    os.link(real, tmp_path / "second-name.db")
    for spelling in (real, tmp_path / "second-name.db"):
        with pytest.raises(CatalogFileError, match="hard links"):
            Catalog(spelling)


def test_the_second_name_of_a_catalog_being_created_is_not_refused(tmp_path: Path) -> None:
    real = tmp_path / "catalog.db"
    Catalog(real).close()
    os.link(real, tmp_path / ".catalog.db.123.456.creating")  # create_atomically's own link
    with Catalog(real) as catalog:
        assert catalog.count == 0


# -- the slot file itself -------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_deleted_or_replaced_slot_file_never_yields_a_stale_read(
    catalog: Catalog, catalog_path: Path, how: str
) -> None:
    catalog.create(make("a", description="v1"))
    _warm(catalog, "a")
    sidecar = Path(sidecar_path(str(catalog_path)))
    sidecar.unlink()
    if how == "replaced":
        sidecar.write_bytes(b"\0" * 64)
    with Catalog(catalog_path) as late:  # maps a new slot file the first catalog never sees
        late.save(make("a", description="v2"), expected_version=1)
    seen = catalog.get("a")
    assert seen is not None
    assert seen.description == "v2"


def test_the_slot_file_gets_the_catalogs_permissions(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    Catalog(path).close()
    Path(sidecar_path(str(path))).unlink()
    path.chmod(0o664)
    old = os.umask(0o022)
    try:
        Catalog(path).close()
    finally:
        os.umask(old)
    assert Path(sidecar_path(str(path))).stat().st_mode & 0o777 == 0o664


def _write_as_nobody(path: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Spawn target: drop to the `nobody` user, then save through a catalog of its own."""
    import pwd

    try:
        nobody = pwd.getpwnam("nobody")
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
        with Catalog(path) as catalog:
            current = catalog.get("a")
            assert current is not None
            catalog.save(current.replace(description="by nobody"), expected_version=current.version)
            queue.put(("ok", catalog.stats().cache_freshness))
    except BaseException as error:
        queue.put(("error", repr(error)))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a writer as a second user (nobody)")
def test_a_writer_of_another_user_keeps_every_cache_fresh() -> None:
    # pytest's own temporary directories are private to this user: use one `nobody` can reach.
    shared = Path(tempfile.mkdtemp(prefix="metafuse-users-", dir="/tmp"))
    shared.chmod(0o777)
    try:
        _check_other_user_writer(shared / "catalog.db")
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _check_other_user_writer(path: Path) -> None:
    with Catalog(path) as catalog:
        catalog.create(make("a", description="v1"))
    path.chmod(0o666)
    Path(sidecar_path(str(path))).unlink()  # re-made by the next open, with the catalog's mode
    catalog = Catalog(path)
    try:
        for extra in ("-wal", "-shm"):
            if Path(f"{path}{extra}").exists():
                Path(f"{path}{extra}").chmod(0o666)
        _warm(catalog, "a")
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        child = ctx.Process(target=_write_as_nobody, args=(str(path), queue))
        child.start()
        outcome = queue.get(timeout=60)
        child.join(30)
        assert outcome == ("ok", "shared-memory slots + WAL index")
        seen = catalog.get("a")
        assert seen is not None
        assert seen.description == "by nobody"
    finally:
        catalog.close()


def _shm_locks(path: Path) -> int:
    """POSIX locks this process holds on the catalog's `-shm` file (from /proc/locks)."""
    inode = os.stat(f"{path}-shm").st_ino
    held = 0
    with open("/proc/locks", encoding="ascii") as locks:
        for line in locks:
            fields = line.split()
            if "->" in fields:
                continue  # a waiter, not a holder
            if fields[4] == str(os.getpid()) and fields[5].endswith(f":{inode}"):
                held += 1
    return held


@pytest.mark.skipif(not os.path.exists("/proc/locks"), reason="needs /proc/locks (Linux)")
def test_opening_and_closing_a_catalog_keeps_sqlites_locks_on_shm(catalog_path: Path) -> None:
    # Closing any descriptor of a file drops every POSIX lock the process holds on it. A catalog
    # must never do that to `-shm`, or another process would rebuild it under live connections.
    Catalog(catalog_path).close()
    conn = sqlite3.connect(catalog_path)
    try:
        conn.execute("SELECT count(*) FROM datasets").fetchone()
        before = _shm_locks(catalog_path)
        assert before > 0, "SQLite holds a lock on -shm while a connection is open"
        for _ in range(3):
            with Catalog(catalog_path) as catalog:
                catalog.create(make(f"n{_}"))
                catalog.get(f"n{_}")
            assert _shm_locks(catalog_path) >= before
    finally:
        conn.close()


class _RecordingSlots:
    """Wraps a catalog's change slots and records the order a hit loads `known` and the epoch."""

    def __init__(self, inner: object, order: list[str]) -> None:
        self._inner = inner
        self._order = order

    def known(self) -> bytes:
        self._order.append("known")
        return self._inner.known()  # type: ignore[attr-defined, no-any-return]

    def valid(self, offset: int, token: int, epoch: int) -> bool:
        self._order.append("epoch")
        return self._inner.valid(offset, token, epoch)  # type: ignore[attr-defined, no-any-return]

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def test_a_hit_loads_known_before_the_epoch(catalog: Catalog) -> None:
    # Accounting for an outside commit stores the epoch, then `known`. A hit that loaded the epoch
    # first could pair the old epoch with the new `known` and serve an entry from before the
    # commit (a stale read the outside_writer scenario caught once in 204 runs under load).
    catalog.create(make("a"))
    _warm(catalog, "a")
    guard = catalog._life.guard
    assert guard is not None
    order: list[str] = []
    guard.slots = _RecordingSlots(guard.slots, order)  # type: ignore[assignment]
    assert catalog.get("a") is not None
    assert order == ["known", "epoch"]
