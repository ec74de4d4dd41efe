"""Reliability: bad input on the command line is exit 2 and one line naming the problem; nothing is written.

Covers `metafuse put` with malformed or hostile JSON, `metafuse stress run` with bad arguments,
and every `STRESS_TEST_*` variable with garbage (refused) or out-of-range numbers (clamped).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from metafuse import Catalog, ValidationError, limits
from metafuse.cli import main
from metafuse.stress import config as stress_config

from .reliability_helpers import child_env, make, run_metafuse


@dataclass
class Outcome:
    """What one in-process `metafuse` command did."""

    code: int
    out: str
    err: str


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    """Run `metafuse ARGV` in-process; an exception escaping `main` fails the test with its name."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except Exception as error:
        shown = " ".join(arg if len(arg) < 40 else "..." for arg in argv)
        pytest.fail(
            f"metafuse {shown} raised {type(error).__name__}: {error!s:.200} (a traceback, not exit 2)"
        )
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def _assert_one_line_error(err: str, *words: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err[:2000]}"
    assert "Traceback" not in err
    line = lines[0]
    assert line.startswith("metafuse"), line
    assert "error" in line, line
    for word in words:
        assert word in line, line
    return line


@pytest.fixture
def metafuse_logging() -> Iterator[None]:
    """Undo what `metafuse stress` does to the `metafuse` logger, so later caplog tests see records."""
    logger = logging.getLogger("metafuse")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers[:] = []
    logger.propagate = True
    logger.setLevel(logging.NOTSET)
    try:
        yield
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    """A catalog with one dataset in it, closed."""
    path = tmp_path / "catalog.db"
    with Catalog(path) as catalog:
        catalog.create(make("cli.existing"))
    return path


def _state(path: Path) -> tuple[int, int]:
    with Catalog(path) as catalog:
        return catalog.version, catalog.count


# -- metafuse put -----------------------------------------------------------------------------------

MALFORMED = [
    pytest.param("", ("not valid JSON",), id="empty"),
    pytest.param("{", ("not valid JSON", "line 1"), id="unclosed"),
    pytest.param('{"name": "x", "uri": "s3://x",}', ("not valid JSON",), id="trailing-comma"),
    pytest.param("{'name': 'x'}", ("not valid JSON",), id="single-quotes"),
    pytest.param("[1, 2]", ("JSON object",), id="array"),
    pytest.param('"just text"', ("JSON object",), id="string"),
    pytest.param("null", ("JSON object",), id="null"),
    pytest.param('{"name": "x"}', ("'uri'",), id="missing-uri"),
    pytest.param('{"uri": "s3://x"}', ("'name'",), id="missing-name"),
    pytest.param('{"name": "x", "uri": "s3://x", "colour": "red"}', ("colour",), id="unknown-key"),
    pytest.param('{"name": "-x", "uri": "s3://x"}', ("dataset name",), id="bad-name"),
    pytest.param('{"name": "x", "uri": "s3://x", "size_bytes": -1}', ("size_bytes",), id="negative-size"),
    pytest.param('{"name": "x", "uri": "s3://x", "size_bytes": NaN}', ("size_bytes",), id="nan-size"),
    pytest.param('{"name": "x", "uri": "s3://x", "size_bytes": 1e999}', ("size_bytes",), id="infinite-size"),
    pytest.param('{"name": "x", "uri": "s3://x", "fields": "id"}', ("fields",), id="fields-string"),
    pytest.param('{"name": "x", "uri": "s3://x", "fields": [{"name": "a"}]}', ("field",), id="field-no-type"),
    pytest.param('{"name": "x", "uri": "s3://x", "tags": "pii"}', ("tags",), id="tags-string"),
    pytest.param(
        '{"name": "x", "uri": "s3://x", "last_modified": "yesterday"}', ("last_modified",), id="bad-time"
    ),
    pytest.param(
        '{"name": "x", "uri": "s3://x", "description": "\\ud800"}', ("description",), id="lone-surrogate"
    ),
    pytest.param(
        '{"name": "x", "uri": "s3://x", "size_bytes": 9223372036854775808}',
        ("size_bytes",),
        id="size-over-int64",
    ),
    pytest.param(
        '{"name": "x", "uri": "s3://x", "row_count": ' + "9" * 5000 + "}", (), id="5000-digit-number"
    ),
    pytest.param("[" * 100_000 + "]" * 100_000, (), id="nested-100000-deep"),
    pytest.param('{"name": "x", "uri": "s3://x", "tags": {"pii": true}}', ("tags",), id="tags-object"),
    pytest.param(
        json.dumps({"name": "x", "uri": "s3://x", "description": "d" * (limits.DESCRIPTION_MAX + 1)}),
        ("description", str(limits.DESCRIPTION_MAX)),
        id="description-max+1",
    ),
    pytest.param(
        json.dumps(
            {
                "name": "x",
                "uri": "s3://x",
                "fields": [{"name": f"f{i}", "data_type": "int"} for i in range(limits.FIELDS_MAX + 1)],
            }
        ),
        ("fields", str(limits.FIELDS_MAX)),
        id="fields-max+1",
    ),
]


@pytest.mark.parametrize(("text", "words"), MALFORMED)
def test_put_with_bad_json_is_exit_2_one_line_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], catalog_file: Path, tmp_path: Path, text: str, words: tuple[str, ...]
) -> None:
    before = _state(catalog_file)
    source = tmp_path / "dataset.json"
    source.write_text(text, encoding="utf-8", errors="surrogatepass")
    done = _cli(capsys, "--catalog", str(catalog_file), "put", str(source))
    assert done.code == 2, (done.code, done.out, done.err[:500])
    _assert_one_line_error(done.err, *words)
    assert done.out == ""
    assert _state(catalog_file) == before


def test_put_bad_json_on_stdin_is_exit_2(
    capsys: pytest.CaptureFixture[str], catalog_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _state(catalog_file)
    monkeypatch.setattr("sys.stdin", io.StringIO('{"name": "x", "uri": '))
    done = _cli(capsys, "--catalog", str(catalog_file), "put", "-")
    assert done.code == 2
    _assert_one_line_error(done.err, "not valid JSON")
    assert _state(catalog_file) == before


@pytest.mark.parametrize(
    ("content", "words"),
    [
        pytest.param(b"\xff\xfe{\x00", ("UTF-8",), id="not-utf8"),
        pytest.param(None, ("cannot be read",), id="missing-file"),
    ],
)
def test_put_unreadable_file_is_exit_2_naming_the_file(
    capsys: pytest.CaptureFixture[str],
    catalog_file: Path,
    tmp_path: Path,
    content: bytes | None,
    words: tuple[str, ...],
) -> None:
    before = _state(catalog_file)
    source = tmp_path / "dataset.json"
    if content is not None:
        source.write_bytes(content)
    done = _cli(capsys, "--catalog", str(catalog_file), "put", str(source))
    assert done.code == 2
    _assert_one_line_error(done.err, "dataset.json", *words)
    assert _state(catalog_file) == before


def test_put_then_get_round_trips_hostile_text_verbatim(
    capsys: pytest.CaptureFixture[str], catalog_file: Path, tmp_path: Path
) -> None:
    text = '\'; DROP TABLE datasets; -- "quoted" 🙂 名前 tab\there'
    data = make("cli.hostile", description=text).content()
    source = tmp_path / "dataset.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    done = _cli(capsys, "--catalog", str(catalog_file), "put", str(source))
    assert (done.code, done.out.strip()) == (0, "cli.hostile version 1"), done.err
    shown = _cli(capsys, "--catalog", str(catalog_file), "get", "cli.hostile", "--json")
    assert shown.code == 0
    assert json.loads(shown.out)["description"] == text
    assert _state(catalog_file)[1] == 2


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        pytest.param("text", ("not a MetaFuse catalog",), id="text-file"),
        pytest.param("empty", ("empty",), id="empty-file"),
        pytest.param("directory", ("directory",), id="directory"),
        pytest.param("missing-dir", ("does not exist",), id="missing-directory"),
    ],
)
def test_unusable_catalog_file_is_exit_2_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, setup: str, words: tuple[str, ...]
) -> None:
    path = tmp_path / "catalog.db"
    if setup == "text":
        path.write_text("not a catalog\n", encoding="utf-8")
    elif setup == "empty":
        path.touch()
    elif setup == "directory":
        path.mkdir()
    else:
        path = tmp_path / "absent" / "catalog.db"
    before = path.read_bytes() if path.is_file() else None
    done = _cli(capsys, "--catalog", str(path), "stats")
    assert done.code == 2
    _assert_one_line_error(done.err, str(path), *words)
    if before is not None:
        assert path.read_bytes() == before


def test_bad_json_through_a_real_process_has_no_traceback(catalog_file: Path, tmp_path: Path) -> None:
    source = tmp_path / "dataset.json"
    source.write_text("[" * 100_000, encoding="utf-8")
    done = run_metafuse("--catalog", str(catalog_file), "put", str(source))
    assert done.returncode == 2, done.stderr[-500:]
    _assert_one_line_error(done.stderr, "dataset")
    assert _state(catalog_file) == (1, 1)


# -- metafuse stress run: arguments ----------------------------------------------------------------


@pytest.mark.usefixtures("metafuse_logging")
@pytest.mark.parametrize(
    "scenarios",
    [
        pytest.param(["no_such_scenario"], id="unknown"),
        pytest.param(["concurrent_writers", "nope"], id="one-unknown"),
    ],
)
def test_unknown_scenario_is_exit_2_before_anything_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, scenarios: list[str]
) -> None:
    path = tmp_path / "stress.db"
    done = _cli(capsys, "stress", "run", *scenarios, "--catalog", str(path), "--duration", "1", "--quiet")
    assert done.code == 2
    line = _assert_one_line_error(done.err, scenarios[-1], "concurrent_writers")
    assert "known scenarios" in line
    assert done.out == "", "nothing ran"
    assert not path.exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--clients", "-1"),
        ("--clients", "0"),
        ("--clients", "abc"),
        ("--clients", "1.5"),
        ("--clients", ""),
        ("--duration", "-5"),
        ("--duration", "0"),
        ("--duration", "ten"),
        ("--duration", "0.5"),
        ("--seed", "-1"),
        ("--seed", "x"),
        ("--kills", "0"),
        ("--mode", "fibre"),
    ],
)
def test_bad_stress_run_option_is_exit_2_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, option: str, value: str
) -> None:
    path = tmp_path / "stress.db"
    done = _cli(capsys, "stress", "run", "concurrent_writers", "--catalog", str(path), option, value)
    assert done.code == 2
    _assert_one_line_error(done.err, option)
    assert done.out == ""
    assert not path.exists()


# -- STRESS_TEST_* environment -----------------------------------------------------------------------

GARBAGE = [
    pytest.param("STRESS_TEST_CLIENTS", "abc", ["--duration", "1"], id="clients-abc"),
    pytest.param("STRESS_TEST_CLIENTS", "1.5", ["--duration", "1"], id="clients-float"),
    pytest.param("STRESS_TEST_DURATION_SECS", "1.5", ["--clients", "1"], id="duration-float"),
    pytest.param("STRESS_TEST_DURATION_SECS", "soon", ["--clients", "1"], id="duration-word"),
    pytest.param("STRESS_TEST_MODE", "fibre", ["--clients", "1", "--duration", "1"], id="mode-fibre"),
    pytest.param("STRESS_TEST_SEED", "-1", ["--clients", "1", "--duration", "1"], id="seed-negative"),
    pytest.param("STRESS_TEST_SEED", "lucky", ["--clients", "1", "--duration", "1"], id="seed-word"),
    pytest.param("STRESS_TEST_CLIENTS", "0", ["--duration", "1"], id="clients-0"),
    pytest.param("STRESS_TEST_CLIENTS", "-3", ["--duration", "1"], id="clients-negative"),
    pytest.param("STRESS_TEST_DURATION_SECS", "0", ["--clients", "1"], id="duration-0"),
]


@pytest.mark.parametrize(("variable", "value", "flags"), GARBAGE)
def test_garbage_stress_variable_is_rejected_by_the_library(
    variable: str, value: str, flags: list[str]
) -> None:
    with pytest.raises(ValidationError) as info:
        stress_config.from_environment(environ={variable: value})
    assert info.value.what == variable
    assert variable in str(info.value)


@pytest.mark.parametrize(("variable", "value", "flags"), GARBAGE)
def test_garbage_stress_variable_is_exit_2_one_line_naming_it(
    tmp_path: Path, variable: str, value: str, flags: list[str]
) -> None:
    path = tmp_path / "stress.db"
    done = run_metafuse(
        "stress",
        "run",
        "optimistic_lock_resolution",
        "--quiet",
        "--catalog",
        str(path),
        *flags,
        env=child_env(**{variable: value}),
    )
    assert done.returncode == 2, (done.stdout[-500:], done.stderr[-500:])
    _assert_one_line_error(done.stderr, variable, repr(value))
    assert done.stdout == "", "nothing ran"
    assert not path.exists()


@pytest.mark.usefixtures("metafuse_logging")
@pytest.mark.parametrize(
    ("variable", "value", "used", "bound"),
    [
        ("STRESS_TEST_CLIENTS", "500", 50, "1-50"),
        ("STRESS_TEST_DURATION_SECS", "100000", 300, "1-300"),
    ],
)
def test_out_of_range_stress_variable_is_clamped_with_one_warning(
    caplog: pytest.LogCaptureFixture, variable: str, value: str, used: int, bound: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="metafuse.stress"):
        config = stress_config.from_environment(environ={variable: value})
    assert (config.clients if variable == "STRESS_TEST_CLIENTS" else config.duration) == used
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1, [record.getMessage() for record in warnings]
    message = warnings[0].getMessage()
    assert "\n" not in message
    for word in (variable, bound, f"using {used}"):
        assert word in message, message


@pytest.mark.usefixtures("metafuse_logging")
def test_out_of_range_clients_flag_is_clamped_naming_the_flag(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="metafuse.stress"):
        config = stress_config.from_environment(environ={}, clients=51, duration=301)
    assert (config.clients, config.duration) == (50, 300)
    messages = sorted(record.getMessage() for record in caplog.records)
    assert len(messages) == 2
    assert "--clients" in messages[0]
    assert "1-50" in messages[0]
    assert "--duration" in messages[1]
    assert "1-300" in messages[1]


@pytest.mark.usefixtures("metafuse_logging")
def test_in_range_stress_variables_are_used_silently(caplog: pytest.LogCaptureFixture) -> None:
    environ = {
        "STRESS_TEST_CLIENTS": " 7 ",
        "STRESS_TEST_DURATION_SECS": "3",
        "STRESS_TEST_MODE": "Process",
        "STRESS_TEST_SEED": "42",
    }
    with caplog.at_level(logging.DEBUG, logger="metafuse"):
        config = stress_config.from_environment(environ=environ)
    assert (config.clients, config.duration, config.mode, config.seed) == (7, 3, "process", 42)
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    ("variable", "value", "flags", "announced"),
    [
        pytest.param("STRESS_TEST_CLIENTS", "51", ["--duration", "1"], "50 clients, 1s", id="clients-51"),
    ],
)
def test_out_of_range_stress_variable_runs_clamped_with_a_one_line_warning(
    tmp_path: Path, variable: str, value: str, flags: list[str], announced: str
) -> None:
    path = tmp_path / "stress.db"
    done = run_metafuse(
        "stress",
        "run",
        "optimistic_lock_resolution",
        "--quiet",
        "--seed",
        "1",
        "--catalog",
        str(path),
        *flags,
        env=child_env(**{variable: value}),
    )
    assert done.returncode == 0, (done.stdout[-1000:], done.stderr[-1000:])
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "WARNING" in lines[0]
    assert variable in lines[0]
    assert "using 50" in lines[0]
    assert announced in done.stdout


@pytest.mark.parametrize(
    ("flag", "variable"), [("--clients", "STRESS_TEST_CLIENTS"), ("--duration", "STRESS_TEST_DURATION_SECS")]
)
def test_zero_from_a_flag_or_its_variable_is_refused_the_same_way(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flag: str,
    variable: str,
) -> None:
    """`--clients 0` and `STRESS_TEST_CLIENTS=0` agree: exit 2, one line, 'must be at least 1'."""
    path = tmp_path / "stress.db"
    by_flag = _cli(capsys, "stress", "run", "concurrent_writers", "--catalog", str(path), flag, "0")
    monkeypatch.setenv(variable, "0")
    by_variable = _cli(capsys, "stress", "run", "concurrent_writers", "--catalog", str(path))
    for done, name in ((by_flag, flag), (by_variable, variable)):
        assert done.code == 2
        line = _assert_one_line_error(done.err, name, "must be at least 1")
        assert done.out == "", line
    assert not path.exists()
