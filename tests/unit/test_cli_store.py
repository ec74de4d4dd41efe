"""The CLI on a catalog on an object store (`log+file:///dir`): same commands, same exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metafuse import Catalog

from .test_cli import assert_one_line_error, run


def test_commands_work_on_a_store_catalog(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"log+file://{tmp_path / 'store'}"
    assert run(capsys, "--catalog", url, "init")[1] == f"catalog {url} ready: 0 datasets, version 0\n"
    spec = tmp_path / "ds.json"
    spec.write_text(json.dumps({"name": "sales.orders", "uri": "s3://x/orders", "description": "orders"}))
    assert run(capsys, "--catalog", url, "put", str(spec)) == (0, "sales.orders version 1\n", "")
    assert run(capsys, "--catalog", url, "init")[1] == f"catalog {url} ready: 1 dataset, version 1\n"
    code, out, _ = run(capsys, "--catalog", url, "get", "sales.orders")
    assert code == 0
    assert "name: sales.orders" in out
    code, _, err = run(capsys, "--catalog", url, "put", str(spec), "--expected-version", "7")
    assert code == 1
    assert_one_line_error(err)
    with Catalog.open(url) as catalog:  # another client sees what the CLI wrote
        assert catalog.get("sales.orders").version == 1  # type: ignore[union-attr]


def test_a_read_of_a_missing_store_catalog_fails_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere"
    code, out, err = run(capsys, "--catalog", f"log+file://{missing}", "get", "a.b")
    assert (code, out) == (2, "")
    assert_one_line_error(err)
    assert "does not exist" in err
    assert not missing.exists()


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("s3://Bad_Bucket/x", "bucket 'Bad_Bucket'"),
        ("log+file://host/x", "host 'host'"),
        ("s3://bucket/x?colour=red", "colour"),
    ],
)
def test_a_bad_store_url_is_one_line_naming_the_part(
    capsys: pytest.CaptureFixture[str], url: str, named: str
) -> None:
    code, out, err = run(capsys, "--catalog", url, "list")
    assert (code, out) == (2, "")
    assert_one_line_error(err)
    assert named in err


def test_a_file_only_scenario_on_a_store_is_refused_by_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"log+file://{tmp_path / 'store'}"
    code, out, err = run(capsys, "stress", "run", "path_aliases", "--catalog", url, "--duration", "1")
    assert (code, out) == (2, "")
    assert_one_line_error(err)
    assert "path_aliases" in err
    assert "concurrent_writers" in err  # the message lists what does run on a store
    assert not (tmp_path / "store").exists()


def test_an_unwritable_replica_directory_is_one_line_and_makes_no_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METAFUSE_REPLICA_DIR", str(tmp_path / "missing"))
    code, out, err = run(capsys, "--catalog", f"log+file://{tmp_path / 'store'}", "init")
    assert (code, out) == (2, "")
    assert_one_line_error(err)
    assert "METAFUSE_REPLICA_DIR" in err
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("ftp://host/catalog.db", "(ftp://)"),
        ("file:///tmp/catalog.db", "(file://)"),
        ("log+s3://bucket/x", "(log+s3://)"),
    ],
)
def test_a_url_metafuse_does_not_open_is_refused_not_taken_for_a_path(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    says: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "--catalog", target, "init")
    assert (code, out) == (2, "")
    assert_one_line_error(err)
    assert says in err
    assert list(tmp_path.iterdir()) == []


def test_catalog_of_a_store_url_says_to_use_open() -> None:
    from metafuse.errors import CatalogFileError

    with pytest.raises(CatalogFileError, match=r"Catalog\.open"):
        Catalog("log+file:///tmp/somewhere")


def test_init_sets_the_retention_once(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"log+file://{tmp_path / 'store'}"
    assert run(capsys, "--catalog", url, "init", "--retention", "3600")[0] == 0
    assert json.loads((tmp_path / "store" / "catalog.json").read_text())["retention_seconds"] == 3600
    code, out, _ = run(capsys, "--catalog", url, "stats")
    assert code == 0
    assert "retention_seconds: 3600.0\n" in out
    assert run(capsys, "--catalog", url, "init", "--retention", "3600")[0] == 0
    code, _, err = run(capsys, "--catalog", url, "init", "--retention", "60")
    assert code == 2
    assert_one_line_error(err)
    assert "retention (got 60): is fixed when the catalog is created (this one keeps 3600 s)" in err
    code, _, err = run(capsys, "--catalog", str(tmp_path / "local.db"), "init", "--retention", "60")
    assert code == 2
    assert "applies only to a catalog on an object store" in err
    assert not (tmp_path / "local.db").exists()
    with pytest.raises(SystemExit) as caught:
        run(capsys, "--catalog", url, "init", "--retention", "soon")
    assert caught.value.code == 2
    assert "argument --retention: 'soon' is not a whole number" in capsys.readouterr().err
