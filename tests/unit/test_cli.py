"""Tests for metafuse.cli: every command, its exit codes, one-line errors, JSON output, help text."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from metafuse import Catalog, Dataset, Field
from metafuse.cli import CATALOG_ENV, build_parser, main

from ._support import make

REPO_ROOT = Path(__file__).parents[2]


@pytest.fixture(autouse=True)
def _no_catalog_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CATALOG_ENV, raising=False)


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A catalog path (as a string) with three datasets in it."""
    path = tmp_path / "cli.db"
    with Catalog(path) as catalog:
        catalog.create_many(
            [
                make("raw.orders", domain="sales", tags=["pii"], description="raw customer orders"),
                make(
                    "clean.orders",
                    domain="sales",
                    owner="bo",
                    tags=[],
                    upstream=["raw.orders"],
                    description="cleaned",
                ),
                make("hr.staff", domain="hr", tags=[], description="employees"),
            ]
        )
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str) -> None:
    assert err.startswith("metafuse: error: ")
    assert err.endswith("\n")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def write_json(path: Path, value: Any) -> str:
    path.write_text(json.dumps(value), encoding="utf-8")
    return str(path)


# -- init ------------------------------------------------------------------------------------


def test_init_creates_the_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "new.db"
    code, out, err = run(capsys, "--catalog", str(path), "init")
    assert code == 0
    assert err == ""
    assert out == f"catalog {path} ready: 0 datasets, version 0\n"
    with Catalog(path) as catalog:
        assert catalog.count == 0


def test_init_on_an_existing_catalog_reports_its_contents(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--catalog", db, "init")
    assert code == 0
    assert "3 datasets, version 3" in out


def test_init_on_a_file_that_is_not_a_catalog_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    code, out, err = run(capsys, "--catalog", str(path), "init")
    assert code == 2
    assert out == ""
    assert_one_line_error(err)
    assert str(path) in err
    assert path.read_text() == "hello"


def test_catalog_env_var_is_used_when_no_option_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "from-env.db"
    monkeypatch.setenv(CATALOG_ENV, str(path))
    assert run(capsys, "init")[0] == 0
    assert path.exists()


def test_catalog_option_beats_the_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env_path = tmp_path / "env.db"
    option_path = tmp_path / "option.db"
    monkeypatch.setenv(CATALOG_ENV, str(env_path))
    assert run(capsys, "--catalog", str(option_path), "init")[0] == 0
    assert option_path.exists()
    assert not env_path.exists()


def test_default_catalog_path_is_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "init")[0] == 0
    assert (tmp_path / "metafuse_catalog.db").exists()


# -- put -------------------------------------------------------------------------------------


def test_put_creates_a_dataset(tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]) -> None:
    source = make("new.set", fields=[Field("k", "int")], upstream=["raw.orders"])
    code, out, err = run(capsys, "--catalog", db, "put", write_json(tmp_path / "d.json", source.to_dict()))
    assert (code, out, err) == (0, "new.set version 1\n", "")
    with Catalog(db) as catalog:
        stored = catalog.get("new.set")
        assert stored is not None
        assert stored.content() == source.content()


def test_put_reads_stdin(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({"name": "piped", "uri": "s3://p"})))
    assert run(capsys, "--catalog", db, "put", "-") == (0, "piped version 1\n", "")


def test_put_existing_without_expected_version_is_a_conflict(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "--catalog", db, "put", write_json(tmp_path / "d.json", make("hr.staff").to_dict())
    )
    assert code == 1
    assert out == ""
    assert_one_line_error(err)
    assert "already exists" in err


def test_put_with_expected_version_saves_and_a_stale_one_conflicts(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--catalog", db, "get", "hr.staff", "--json")
    assert code == 0
    data = json.loads(out)
    data["description"] = "edited by the CLI"
    file = write_json(tmp_path / "d.json", data)  # get --json output is valid put input
    assert run(capsys, "--catalog", db, "put", file, "--expected-version", "1") == (
        0,
        "hr.staff version 2\n",
        "",
    )
    code, out, err = run(capsys, "--catalog", db, "put", file, "--expected-version", "1")
    assert code == 1
    assert out == ""
    assert_one_line_error(err)
    assert "version 2, not the expected 1" in err
    with Catalog(db) as catalog:
        stored = catalog.get("hr.staff")
        assert stored is not None
        assert (stored.version, stored.description) == (2, "edited by the CLI")


def test_put_with_expected_version_of_a_missing_dataset_exits_1(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write_json(tmp_path / "d.json", {"name": "ghost", "uri": "s3://g"})
    code, _, err = run(capsys, "--catalog", db, "put", file, "--expected-version", "3")
    assert code == 1
    assert_one_line_error(err)
    assert "'ghost' does not exist" in err


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"name": "a", "uri": ', "not valid JSON"),
        ("{'name': 'a'}", "not valid JSON"),
        ("", "not valid JSON"),
        ('{"name": "a", "uri": "s3://a", "colour": "red"}', "unknown key(s) colour"),
        ('{"name": "a", "uri": "s3://a", "fields": [{"name": "f", "type": "int"}]}', "unknown key(s) type"),
        ('["a"]', "must be a JSON object"),
        ('{"uri": "s3://a"}', "needs 'name'"),
        ('{"name": "-a", "uri": "s3://a"}', "dataset name"),
        ('{"name": "a", "uri": "file:///x/../y"}', "'..'"),
        ('{"name": "a", "uri": "s3://a", "description": "\\ud800"}', "description"),
    ],
)
def test_put_bad_input_exits_2_with_one_line(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str], content: str, fragment: str
) -> None:
    file = tmp_path / "bad.json"
    file.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "--catalog", db, "put", str(file))
    assert code == 2
    assert out == ""
    assert_one_line_error(err)
    assert fragment in err
    with Catalog(db) as catalog:
        assert catalog.count == 3


def test_put_missing_file_exits_2(tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--catalog", db, "put", str(tmp_path / "nope.json"))
    assert code == 2
    assert_one_line_error(err)
    assert "cannot be read" in err


def test_put_non_utf8_file_exits_2(tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "latin1.json"
    file.write_bytes(b'{"name": "a", "uri": "caf\xe9"}')
    code, _, err = run(capsys, "--catalog", db, "put", str(file))
    assert code == 2
    assert_one_line_error(err)
    assert "UTF-8" in err


def test_put_bad_json_does_not_create_the_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog_file = tmp_path / "never.db"
    file = tmp_path / "bad.json"
    file.write_text("{")
    assert run(capsys, "--catalog", str(catalog_file), "put", str(file))[0] == 2
    assert not catalog_file.exists()


@pytest.mark.parametrize("value", ["-1", "x", "1.5", ""])
def test_put_bad_expected_version_is_a_usage_error(
    db: str, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--catalog", db, "put", "x.json", "--expected-version", value])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--expected-version" in err


# -- get -------------------------------------------------------------------------------------


def test_get_prints_the_dataset(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--catalog", db, "get", "clean.orders")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert "name: clean.orders" in lines
    assert "owner: bo" in lines
    assert "upstream: raw.orders" in lines
    assert "version: 1" in lines
    assert "fields:" in lines
    assert "  id bigint not null" in lines
    assert "  amount decimal(10,2)" in lines
    assert "format: parquet" in lines


def test_get_json_is_the_dataset_dict(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--catalog", db, "get", "raw.orders", "--json")
    assert code == 0
    data = json.loads(out)
    with Catalog(db) as catalog:
        stored = catalog.get("raw.orders")
    assert stored is not None
    assert data == stored.to_dict()
    assert Dataset.from_dict(data).name == "raw.orders"


def test_get_keeps_non_ascii_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "u.db"
    with Catalog(path) as catalog:
        catalog.create(make("u", description="caf\u00e9 \U0001f600 '; DROP TABLE datasets; --"))
    code, out, _ = run(capsys, "--catalog", str(path), "get", "u", "--json")
    assert code == 0
    assert json.loads(out)["description"] == "caf\u00e9 \U0001f600 '; DROP TABLE datasets; --"


def test_get_missing_exits_1(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--catalog", db, "get", "nope")
    assert code == 1
    assert out == ""
    assert_one_line_error(err)
    assert "'nope' does not exist" in err


def test_get_invalid_name_exits_2(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--catalog", db, "get", "bad name")
    assert code == 2
    assert_one_line_error(err)


# -- list, search, lineage, stats ------------------------------------------------------------


def test_list_prints_one_line_per_dataset(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--catalog", db, "list")
    assert code == 0
    assert out.splitlines() == [
        "clean.orders  v1  sales  bo",
        "hr.staff  v1  hr  ana",
        "raw.orders  v1  sales  ana",
    ]


def test_list_filters_and_pages(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    def listed(*args: str) -> list[str]:
        code, out, _ = run(capsys, "--catalog", db, "list", "--json", *args)
        assert code == 0
        return [d["name"] for d in json.loads(out)]

    assert listed("--domain", "sales") == ["clean.orders", "raw.orders"]
    assert listed("--owner", "bo") == ["clean.orders"]
    assert listed("--tag", "pii") == ["raw.orders"]
    assert listed("--limit", "1") == ["clean.orders"]
    assert listed("--limit", "1", "--after", "clean.orders") == ["hr.staff"]
    assert listed("--domain", "nowhere") == []


def test_list_empty_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Catalog(tmp_path / "e.db").close()
    assert run(capsys, "--catalog", str(tmp_path / "e.db"), "list") == (0, "", "")


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "--limit", "abc"],
        ["list", "--limit", "0"],
        ["list", "--limit", "-3"],
        ["list", "--limit", "2.5"],
        ["search", "x", "--limit", "zero"],
        ["search", "x", "--limit", "0"],
        ["lineage", "a", "--depth", "0"],
        ["lineage", "a", "--depth", "deep"],
        ["lineage", "a", "--direction", "sideways"],
        ["get"],
        ["frobnicate"],
        [],
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    db: str, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--catalog", db, *argv])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "error:" in err
    assert "--help" in err


def test_limit_out_of_the_library_range_exits_2(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--catalog", db, "list", "--limit", "10001")
    assert code == 2
    assert_one_line_error(err)
    assert "limit" in err


def test_search(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--catalog", db, "search", "customer")
    assert code == 0
    assert out.splitlines() == ["raw.orders  v1  sales  ana"]
    code, out, _ = run(capsys, "--catalog", db, "search", "orders OR employees", "--json", "--limit", "5")
    assert code == 0
    assert {d["name"] for d in json.loads(out)} == {"raw.orders", "clean.orders", "hr.staff"}
    code, out, _ = run(capsys, "--catalog", db, "search", '"unbalanced', "--json")
    assert (code, json.loads(out)) == (0, [])


def test_search_empty_query_exits_2(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--catalog", db, "search", "  ")
    assert code == 2
    assert_one_line_error(err)


def test_lineage(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--catalog", db, "lineage", "clean.orders")
    assert (code, out) == (0, "1  clean.orders <- raw.orders\n")
    code, out, _ = run(
        capsys, "--catalog", db, "lineage", "raw.orders", "--direction", "downstream", "--json"
    )
    assert code == 0
    assert json.loads(out) == [{"downstream": "clean.orders", "upstream": "raw.orders", "depth": 1}]
    code, out, _ = run(capsys, "--catalog", db, "lineage", "hr.staff", "--depth", "4", "--json")
    assert (code, json.loads(out)) == (0, [])


def test_lineage_missing_exits_1(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--catalog", db, "lineage", "nope")
    assert code == 1
    assert_one_line_error(err)


def test_stats(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--catalog", db, "stats")
    assert code == 0
    assert "datasets: 3" in out.splitlines()
    assert "catalog_version: 3" in out.splitlines()
    code, out, _ = run(capsys, "--catalog", db, "stats", "--json")
    facts = json.loads(out)
    assert (facts["datasets"], facts["catalog_version"], facts["path"]) == (3, 3, db)
    assert facts["search_backend"] == "fts5"
    assert facts["cache_freshness"] == "shared-memory slots + WAL index"


@pytest.mark.parametrize(
    "argv",
    [
        ["get", "raw.orders"],
        ["list"],
        ["list", "--domain", "none"],
        ["search", "orders"],
        ["search", "nothing-matches"],
        ["lineage", "clean.orders"],
        ["lineage", "raw.orders", "--direction", "downstream"],
        ["stats"],
    ],
)
def test_json_output_of_every_read_command_parses(
    db: str, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(capsys, "--catalog", db, *argv, "--json")
    assert (code, err) == (0, "")
    parsed = json.loads(out)
    assert isinstance(parsed, (dict, list))


def test_every_read_command_has_a_json_flag() -> None:
    parser = build_parser()
    for name in ("get", "list", "search", "lineage", "stats"):
        sub = _subcommands(parser)[name]
        assert any("--json" in action.option_strings for action in sub._actions), name


# -- help ------------------------------------------------------------------------------------


def _subparsers_action(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = _subparsers_action(parser)
    return {} if action is None else dict(action.choices)


def _walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], str | None]]:
    """Yield (command path, help text) for every subcommand, nested ones included."""
    action = _subparsers_action(parser)
    if action is None:
        return
    # Help is recorded under each command's main name; aliases share the same parser object.
    helps = {id(action.choices[choice.dest]): choice.help for choice in action._choices_actions}
    for name, sub in action.choices.items():
        yield (*path, name), helps.get(id(sub))
        yield from _walk(sub, (*path, name))


def test_every_subcommand_has_help_text() -> None:
    commands = list(_walk(build_parser()))
    names = {path for path, _ in commands}
    assert {("init",), ("put",), ("get",), ("list",), ("search",), ("lineage",), ("stats",)} <= names
    missing = [" ".join(path) for path, text in commands if not (text and text.strip())]
    assert missing == []


def test_every_option_has_help_text() -> None:
    def parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
        yield parser.prog, parser
        for sub in _subcommands(parser).values():
            yield from parsers(sub)

    undocumented = []
    for prog, parser in parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if action.option_strings and not action.help and not action.choices:
                undocumented.append(f"{prog} {action.option_strings[0]}")
    assert undocumented == []


@pytest.mark.parametrize("command", ["init", "put", "get", "list", "search", "lineage", "stats"])
def test_subcommand_help_exits_0(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([command, "--help"])
    assert caught.value.code == 0
    assert f"metafuse {command}" in capsys.readouterr().out


def test_python_dash_m_metafuse_help() -> None:
    env = {k: v for k, v in os.environ.items() if k not in (CATALOG_ENV, "METAFUSE_FAULTS")}
    done = subprocess.run(
        [sys.executable, "-m", "metafuse", "--help"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: metafuse")
    for command in ("init", "put", "get", "list", "search", "lineage", "stats"):
        assert command in done.stdout
    assert done.stderr == ""


# -- edges: missing catalogs, closed pipes, locks, bad environment -----------------------------------

READ_COMMANDS = [
    ["get", "sales.orders"],
    ["list"],
    ["search", "orders"],
    ["lineage", "sales.orders"],
    ["stats"],
]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda argv: argv[0])
def test_a_read_command_never_creates_a_missing_catalog(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    path = tmp_path / "typo.db"
    code, out, err = run(capsys, "--catalog", str(path), *command)
    assert code == 2
    assert out == ""
    assert_one_line_error(err)
    assert str(path) in err
    assert "does not exist" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "nothing was created"


@pytest.mark.parametrize("command", [["init"], ["put", "-"]], ids=["init", "put"])
def test_only_init_and_put_create_a_catalog(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"name": "a.b", "uri": "s3://a/b"})))
    path = tmp_path / "new.db"
    code, _, err = run(capsys, "--catalog", str(path), *command)
    assert (code, err) == (0, "")
    assert path.exists()


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_catalog_option_is_refused(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--catalog", value, "stats"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--catalog must name a file" in err


def test_an_empty_catalog_variable_means_unset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CATALOG_ENV, "")
    code, out, _ = run(capsys, "init")
    assert code == 0
    assert "metafuse_catalog.db" in out


def test_a_locked_catalog_exits_3_not_2(
    db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """BusyError is not bad input: it has its own status, so scripts can retry on 3."""
    import sqlite3

    import metafuse.cli

    class ShortTimeout(Catalog):
        def __init__(self, *args: Any, **options: Any) -> None:
            super().__init__(*args, **{**options, "busy_timeout": 0.05})

    monkeypatch.setattr(metafuse.cli, "Catalog", ShortTimeout)
    source = write_json(tmp_path / "d.json", {"name": "new.one", "uri": "s3://x/y"})
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        code, out, err = run(capsys, "--catalog", db, "put", source)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 3
    assert out == ""
    assert_one_line_error(err)
    assert "locked" in err


def test_help_documents_every_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    from metafuse._cli_base import EXIT_BUSY, EXIT_INTERRUPTED, EXIT_THRESHOLD
    from metafuse.cli import EXIT_BROKEN_PIPE

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit status:" in out
    for code in (0, 1, 2, EXIT_BUSY, EXIT_THRESHOLD, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE):
        assert f"\n  {code} " in out, code
    assert "locked" in out


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFUSE_", "STRESS_TEST_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def _into_a_closed_pipe(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `metafuse ARGV` with stdout a pipe whose reader is gone before the first write."""
    reader, writer = os.pipe()
    os.close(reader)  # as `head` does once it has its lines
    try:
        return subprocess.run(
            [sys.executable, "-m", "metafuse", *argv],
            cwd=REPO_ROOT,
            env=env or _child_env(),
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(writer)


@pytest.mark.parametrize(
    "argv",
    [["list"], ["get", "raw.orders"], ["stats", "--json"], ["--help"], ["stress", "list"]],
    ids=" ".join,
)
def test_output_into_a_closed_pipe_ends_quietly(db: str, argv: list[str]) -> None:
    done = _into_a_closed_pipe("--catalog", db, *argv)
    assert "Traceback" not in done.stderr
    assert "BrokenPipeError" not in done.stderr
    assert done.stderr == ""
    assert done.returncode in (141, 0)  # --help exits through argparse, which may finish first


def test_a_long_listing_piped_into_head_stops_quietly_with_141(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    with Catalog(path) as catalog:
        catalog.create_many([make(f"bulk.set{index:04d}") for index in range(300)])
    with subprocess.Popen(
        [sys.executable, "-m", "metafuse", "--catalog", str(path), "list", "--limit", "300", "--json"],
        cwd=REPO_ROOT,
        env=_child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stderr is not None
        first = child.stdout.readline()  # `head -1`: one line, then the reader goes away
        child.stdout.close()
        err = child.stderr.read()
        code = child.wait(timeout=120)
    assert first == "[\n"
    assert err == ""
    assert code == 141


def test_stress_run_into_a_closed_pipe_runs_quietly_to_its_verdict(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    done = _into_a_closed_pipe(
        "stress",
        "run",
        "concurrent_writers",
        "--clients",
        "1",
        "--duration",
        "1",
        "--quiet",
        "--json",
        str(target),
    )
    assert done.stderr == ""
    assert done.returncode == 0
    assert json.loads(target.read_text())["passed"] is True


def test_a_bad_metafuse_faults_is_one_line_exit_2_for_every_command(db: str) -> None:
    for argv in (["stats"], ["stress", "list"]):
        done = subprocess.run(
            [sys.executable, "-m", "metafuse", "--catalog", db, *argv],
            cwd=REPO_ROOT,
            env=_child_env(METAFUSE_FAULTS="bogus"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        assert_one_line_error(done.stderr)
        assert "METAFUSE_FAULTS" in done.stderr
        assert "bogus" in done.stderr


def test_import_survives_a_bad_metafuse_faults() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import metafuse, metafuse.cli; print('imported')"],
        cwd=REPO_ROOT,
        env=_child_env(METAFUSE_FAULTS="bogus"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "imported\n", "")


@pytest.mark.parametrize("level", ["verbose", "5", "debugging"])
def test_an_unknown_metafuse_log_level_is_one_line_exit_2(
    db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, level: str
) -> None:
    monkeypatch.setenv("METAFUSE_LOG", level)
    code, out, err = run(capsys, "--catalog", db, "stats")
    assert (code, out) == (2, "")
    assert_one_line_error(err)
    assert "METAFUSE_LOG" in err
    assert "debug, info, warning, error, critical" in err


@pytest.mark.parametrize("level", ["", "debug", "WARNING", " info "])
def test_known_metafuse_log_levels_are_accepted(
    db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, level: str
) -> None:
    monkeypatch.setenv("METAFUSE_LOG", level)
    assert run(capsys, "--catalog", db, "stats")[0] == 0


def _command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every runnable command of `parser`: ('list',), ('stress', 'run'), ..."""
    found: set[tuple[str, ...]] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= _command_paths(sub, (*prefix, name)) or {(*prefix, name)}
    return found


def _full_disk_argv(db: str, tmp_path: Path) -> dict[tuple[str, ...], list[str]]:
    """A working invocation of every command, each of which prints something."""
    from metafuse.stress.report import results_document, write_json

    results = tmp_path / "results.json"
    write_json(str(results), results_document([]) | {"results": [_stress_result()]})
    history = tmp_path / "history.jsonl"
    history.write_text("")
    dataset = tmp_path / "new.json"
    dataset.write_text(json.dumps(make("new.set").to_dict()))
    return {
        ("init",): ["--catalog", db, "init"],
        ("put",): ["--catalog", db, "put", str(dataset)],
        ("get",): ["--catalog", db, "get", "raw.orders"],
        ("list",): ["--catalog", db, "list"],
        ("search",): ["--catalog", db, "search", "orders"],
        ("lineage",): ["--catalog", db, "lineage", "clean.orders"],
        ("stats",): ["--catalog", db, "stats"],
        ("stress", "list"): ["stress", "list"],
        ("stress", "run"): ["stress", "run", "concurrent_writers", "--clients", "1", "--duration", "1"],
        ("stress", "check-history"): ["stress", "check-history", str(history)],
        ("stress", "selfcheck"): [
            "stress",
            "selfcheck",
            "--bug",
            "lost_update",
            "--mode",
            "thread",
            "--duration",
            "1",
            "--clients",
            "2",
        ],
        ("stress", "compare"): ["stress", "compare", str(results), str(results)],
    }


def _stress_result() -> dict[str, Any]:
    return {
        "scenario": "concurrent_writers",
        "mode": "thread",
        "clients": 4,
        "duration": 5,
        "throughput": 100.0,
        "passed": True,
        "operations": {"write": {"latency_ms": {"p99": 1.0}}},
        "settings": {"rate": None},
    }


def test_the_full_disk_table_names_every_command(db: str, tmp_path: Path) -> None:
    assert set(_full_disk_argv(db, tmp_path)) == _command_paths(build_parser())


@pytest.mark.parametrize(
    "command",
    [*sorted(_command_paths(build_parser())), ("--help",), ("--version",)],
    ids=" ".join,
)
def test_output_to_a_full_disk_is_one_line_and_exit_2(
    db: str, tmp_path: Path, command: tuple[str, ...]
) -> None:
    argv = list(command) if command[0].startswith("--") else _full_disk_argv(db, tmp_path)[command]
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "metafuse", *argv],
            cwd=tmp_path,
            env=_child_env(),
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr == "metafuse: error: cannot write to standard output (No space left on device)\n"


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from metafuse import __version__

    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"metafuse {__version__}\n"


def test_stress_run_piped_into_head_runs_on_and_writes_its_json(tmp_path: Path) -> None:
    target = tmp_path / "hd.json"
    argv = [
        "stress",
        "run",
        "concurrent_writers",
        "--clients",
        "1",
        "--duration",
        "1",
        "--json",
        str(target),
        "--quiet",
    ]
    with subprocess.Popen(
        [sys.executable, "-m", "metafuse", *argv],
        cwd=REPO_ROOT,
        env=_child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stderr is not None
        first = child.stdout.readline()  # `head -1`: one line, then the reader goes away
        child.stdout.close()
        err = child.stderr.read()
        code = child.wait(timeout=120)
    assert first.startswith("Seed: ")
    assert "Traceback" not in err
    assert code == 0, err
    document = json.loads(target.read_text())
    assert document["passed"] is True
    assert document["results"][0]["scenario"] == "concurrent_writers"
