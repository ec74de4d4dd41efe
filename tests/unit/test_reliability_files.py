"""Reliability: full disks and unusable files give a clear `CatalogError` naming the path; nothing is lost."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from metafuse import Catalog, CatalogError, CatalogFileError, StorageError, limits
from metafuse._schema import SCHEMA_VERSION

from .reliability_helpers import make, pattern, run_helper


def _catalog_with_data(path: Path, count: int = 20) -> None:
    """Create a catalog of `count` datasets and fold its WAL into the main file."""
    with Catalog(path) as catalog:
        catalog.create_many(
            make(f"files.{index:03d}", description=pattern(index, 500)) for index in range(count)
        )
        assert catalog.checkpoint()


def _assert_intact(path: Path, count: int = 20) -> None:
    with Catalog(path, cache_size=0) as catalog:
        assert catalog.integrity_check() == ["ok"]
        assert catalog.count == count
        first = catalog.get("files.000")
        assert first is not None
        assert first.description == pattern(0, 500)


def _refuse(path: Path, *words: str, read_only: bool = False) -> CatalogFileError:
    """Open `path`, expecting a refusal that names the path and `words`; return the error."""
    with pytest.raises(CatalogFileError) as info:
        Catalog(path, read_only=read_only)
    message = str(info.value)
    assert str(path) in message, message
    for word in words:
        assert word in message, message
    assert info.value.path == str(path)
    assert "\n" not in message
    return info.value


# -- full disk -------------------------------------------------------------------------------------


def test_full_disk_is_a_storage_error_and_loses_no_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    with Catalog(path) as catalog:
        catalog.create(make("fill.small"))
        catalog.create(make("fill.big"))
    done = run_helper("fill-disk", str(path), str(256 * 1024))
    assert done.returncode == 0, done.stderr
    reports = [json.loads(line) for line in done.stdout.splitlines()]
    acks = [report for report in reports if "ack" in report]
    failure = next(report for report in reports if "error" in report)
    assert failure["error"] is not None, "the write never failed: the file-size limit did not bite"
    assert failure["error"] in ("StorageError", "CatalogFileError"), failure
    assert failure["file_error"], failure
    assert failure["catalog_error"], failure
    assert str(path) in failure["message"], failure
    acked: dict[str, tuple[int, int]] = {}
    for ack in acks:
        acked[ack["ack"]] = max(acked.get(ack["ack"], (0, 0)), (ack["version"], ack["seq"]))
    assert acked["fill.small"][0] == 4, "the three small writes before the disk filled were acknowledged"
    big_version = acked.get("fill.big", (1, 0))[0]
    # The process that met the full disk could still read, and saw no trace of the failed write.
    assert reports[-1] == {"after_version": big_version}

    with Catalog(path, cache_size=0) as catalog:
        assert catalog.integrity_check() == ["ok"]
        for name, (version, seq) in acked.items():
            stored = catalog.get(name)
            assert stored is not None
            assert stored.version == version, f"{name}: stored v{stored.version}, acknowledged v{version}"
            assert stored.description == pattern(seq, 100 if name == "fill.small" else 60_000)
        # The refused write is absent: exactly the acknowledged ones happened.
        assert catalog.version == 2 + len(acks)
        catalog.create(make("fill.after"))


def test_full_disk_through_the_cli_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    with Catalog(path) as catalog:
        catalog.create(make("fill.cli"))
        version = catalog.version
    data = make("fill.huge", description=pattern(1, limits.DESCRIPTION_MAX)).content()
    data["fields"] = [
        {"name": f"c{index}", "data_type": "string", "description": pattern(index, 2_000)}
        for index in range(200)
    ]
    source = tmp_path / "huge.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    done = run_helper("cli-fsize", str(path), str(64 * 1024), "--catalog", str(path), "put", str(source))
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("metafuse: error:"), lines[0]
    assert str(path) in lines[0]
    with Catalog(path) as catalog:
        assert catalog.integrity_check() == ["ok"]
        assert catalog.version == version
        assert catalog.get("fill.huge") is None


@pytest.mark.parametrize("limit", [1_000, 8_192, 40_000])
def test_full_disk_while_creating_a_catalog_fails_cleanly_and_leaves_nothing(
    tmp_path: Path, limit: int
) -> None:
    path = tmp_path / "catalog.db"
    done = run_helper("create-fsize", str(path), str(limit))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["error"] is not None, "a catalog fitted in the limit: the test needs a smaller one"
    assert report["file_error"], report
    assert str(path) in report["message"], report
    assert "damaged" not in report["message"], f"a catalog that could not be created is not damaged: {report}"
    assert sorted(os.listdir(tmp_path)) == [], (
        "a failed creation must leave no catalog and no temporary files"
    )
    with Catalog(path) as catalog:  # and it must not stand in the way of the next attempt
        catalog.create(make("fill.first"))
        assert catalog.integrity_check() == ["ok"]


# -- files that are not (usable) catalogs ---------------------------------------------------------


def test_text_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("shopping list\nmilk\n", encoding="utf-8")
    before = path.read_bytes()
    _refuse(path, "not a MetaFuse catalog")
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"], "no WAL or sidecar beside a refused file"


def test_empty_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    _refuse(path, "empty")
    assert path.read_bytes() == b""
    assert sorted(os.listdir(tmp_path)) == ["empty.db"]


def test_short_sqlite_header_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "short.db"
    path.write_bytes(b"SQLite format 3\x00\x10\x00")
    _refuse(path, "truncated")
    assert path.read_bytes() == b"SQLite format 3\x00\x10\x00"


def test_catalog_truncated_mid_page_is_refused_untouched(tmp_path: Path) -> None:
    real = tmp_path / "real.db"
    _catalog_with_data(real)
    whole = real.read_bytes()
    page = int.from_bytes(whole[16:18], "big")  # the page size, from the SQLite header
    assert len(whole) > 3 * page, "the data must live in the main file, not only in the WAL"
    assert not real.with_name("real.db-wal").exists() or real.with_name("real.db-wal").stat().st_size == 0
    cut = tmp_path / "cut.db"
    cut.write_bytes(whole[: page + page // 2])
    _refuse(cut, "damaged")
    assert cut.read_bytes() == whole[: page + page // 2]
    _assert_intact(real)


def test_catalog_cut_anywhere_is_refused_or_answers_only_with_catalog_errors(tmp_path: Path) -> None:
    """Wherever a copy is cut, no operation may escape with a raw `sqlite3` error or a wrong answer."""
    real = tmp_path / "real.db"
    _catalog_with_data(real)
    whole = real.read_bytes()
    page = int.from_bytes(whole[16:18], "big")
    raw: list[str] = []
    for cut in range(page // 2, len(whole), page // 2):
        path = tmp_path / f"cut-{cut}.db"
        path.write_bytes(whole[:cut])
        try:
            catalog = Catalog(path)
        except CatalogError:
            continue
        with catalog:
            calls = {
                "count": lambda c=catalog: c.count,
                "get": lambda c=catalog: c.get("files.019"),
                "list": lambda c=catalog: c.list(limit=100),
                "search": lambda c=catalog: c.search("files"),
                "lineage": lambda c=catalog: c.lineage("files.000"),
                "integrity_check": lambda c=catalog: c.integrity_check(),
                "create": lambda c=catalog: c.create(make("files.new")),
            }
            for name, call in calls.items():
                try:
                    call()
                except CatalogError:
                    pass
                except Exception as error:  # collected, so one run lists every escape
                    raw.append(f"cut at {cut} bytes, {name}: {type(error).__name__}: {error}")
    assert raw == []


def test_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a-directory.db"
    path.mkdir()
    _refuse(path, "directory")
    assert path.is_dir()
    assert list(path.iterdir()) == []


def test_missing_parent_directory_is_refused_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "catalog.db"
    _refuse(path, "does not exist")
    assert not (tmp_path / "no").exists()


def test_a_file_where_a_parent_directory_should_be_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    _refuse(blocker / "sub" / "catalog.db", f"{blocker} is a file, not a directory")
    assert blocker.read_text() == "not a directory"


def test_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    _catalog_with_data(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    _refuse(path, f"schema version {SCHEMA_VERSION + 1}", str(SCHEMA_VERSION), "upgrade")
    assert path.read_bytes() == before
    _refuse(path, f"schema version {SCHEMA_VERSION + 1}", read_only=True)
    assert path.read_bytes() == before
    # Still the same intact catalog underneath, readable by a newer MetaFuse.
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM datasets").fetchone() == (20,)
    finally:
        conn.close()


def test_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    """`_schema.migrate` promises a foreign schema is "refused untouched"; this is the file's word."""
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (9.5)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    _refuse(path, "not a MetaFuse catalog")
    after = path.read_bytes()
    assert after[18:20] == before[18:20], (
        f"the header's journal-mode bytes went from {before[18:20]!r} to {after[18:20]!r}:"
        " the refused database was switched to WAL mode"
    )
    assert after == before


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(":memory:", id="memory"),
        pytest.param("file:catalog.db", id="file-uri"),
        pytest.param("file:catalog.db?mode=memory", id="file-uri-memory"),
        pytest.param("", id="empty-string"),
    ],
)
def test_path_that_sqlite_reads_specially_is_refused_or_is_one_real_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A catalog path is a file name: writes must go where later opens, by any means, will look.

    SQLite gives ':memory:', '' and 'file:' names their own meanings. A catalog either refuses
    them with a `CatalogFileError` or stores every acknowledged write in the file they name.
    """
    monkeypatch.chdir(tmp_path)
    try:
        catalog = Catalog(name)
    except CatalogFileError:
        return  # refused clearly: fine
    with catalog:
        catalog.create(make("paths.kept"))
        seen_by_another_thread: list[object] = []
        thread = threading.Thread(target=lambda: seen_by_another_thread.append(_count_or_error(catalog)))
        thread.start()
        thread.join(30)
        assert seen_by_another_thread == [1], "another thread of the same catalog sees the write"
    with Catalog(name) as reopened:
        assert reopened.count == 1, f"{name!r}: an acknowledged write vanished on reopen"
    with Catalog(name, read_only=True) as reader:
        assert reader.count == 1, f"{name!r}: a read-only open reads a different file than the writer"


def _count_or_error(catalog: Catalog) -> object:
    try:
        return catalog.count
    except Exception as error:  # reported as a value: the assertion shows which error it was
        return f"{type(error).__name__}: {error}"


# -- read-only -------------------------------------------------------------------------------------


def test_read_only_catalog_reads_and_refuses_every_write(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    _catalog_with_data(path)
    before = path.read_bytes()
    with Catalog(path, read_only=True) as catalog:
        assert catalog.count == 20
        first = catalog.get("files.000")
        assert first is not None
        assert len(catalog.list(limit=5)) == 5
        assert catalog.search("files")
        writes = [
            lambda: catalog.create(make("files.new")),
            lambda: catalog.save(first.replace(description="changed"), expected_version=first.version),
            lambda: catalog.delete("files.000", expected_version=first.version),
            lambda: catalog.update("files.000", lambda d: d.replace(description="changed")),
        ]
        for write in writes:
            with pytest.raises(CatalogFileError) as info:
                write()
            assert "read-only" in str(info.value)
            assert str(path) in str(info.value)
        with pytest.raises(CatalogFileError, match="read-only"), catalog.transaction():
            pass
        assert catalog.version == 20
    assert path.read_bytes() == before
    _assert_intact(path)


def test_read_only_open_of_a_missing_catalog_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    with pytest.raises(CatalogError) as info:
        Catalog(path, read_only=True)
    assert str(path) in str(info.value)
    assert not path.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions, so 0o444 cannot be tested")
def test_file_without_write_permission_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    _catalog_with_data(path)
    path.chmod(0o444)
    before = path.read_bytes()
    with Catalog(path) as catalog:
        assert catalog.count == 20
        assert catalog.get("files.000") is not None
        with pytest.raises(CatalogFileError, match="read-only") as info:
            catalog.create(make("files.new"))
        assert str(path) in str(info.value)
    assert path.read_bytes() == before
    path.chmod(0o644)
    _assert_intact(path)


def test_storage_error_is_a_catalog_file_error() -> None:
    error = StorageError("/data/cat.db", "the disk refused a write")
    assert isinstance(error, CatalogFileError)
    assert isinstance(error, CatalogError)
    assert str(error) == "catalog /data/cat.db: the disk refused a write"
