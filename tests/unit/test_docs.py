"""The docs name only real things: every `nox`, `metafuse` and `pytest` command they show must exist.

Commands are taken from README.md and docs/*.md, from fenced code blocks and from inline
backticks. A nox command must name sessions of noxfile.py; a `metafuse` command must walk real
subcommands with options they define and parse as the CLI would; a pytest command's paths must
exist and its `-k` words must select a test. Every CLI subcommand must have help text and appear
in a documented command.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import functools
import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from metafuse.cli import build_parser
from metafuse.stress.scenario import REGISTRY
from metafuse.stress.scenarios import CORE

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
TOOLS = ("nox", "metafuse", "pytest")
"""Programs whose commands are checked; `python -m <tool>` counts as the tool."""

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)$")
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PYTHON = re.compile(r"^python(?:3(?:\.\d+)?)?$")
_SEPARATOR = re.compile(r"\s*(?:&&|\|\||;|\|)\s*")
_REDIRECT = re.compile(r"(?:^|\s)\d*(?:>>?|<)(?:&\d+|\s*\S+)")
_SKIPPED_BLOCKS = frozenset({"python", "py", "pycon", "json", "toml", "yaml", "yml", "mermaid"})
"""Fenced blocks whose lines are not shell commands."""
_WRAPPERS = frozenset({"time", "env", "exec", "command"})
"""Words that may come before a command without changing what it names."""

_PYTEST_VALUE_OPTIONS = frozenset(
    {
        "-k",
        "-m",
        "-n",
        "-p",
        "-o",
        "-c",
        "-W",
        "--maxfail",
        "--tb",
        "--durations",
        "--rootdir",
        "--basetemp",
        "--deselect",
        "--ignore",
        "--confcutdir",
        "--junitxml",
        "--log-level",
        "--dist",
        "--numprocesses",
        "--benchmark-json",
        "--benchmark-save",
        "--benchmark-columns",
        "--benchmark-sort",
        "--benchmark-group-by",
        "--benchmark-min-rounds",
        "--benchmark-max-time",
    }
)
"""pytest options (core, xdist, pytest-benchmark) that take the next word as their value."""
_NOX_SESSION_OPTIONS = frozenset({"-s", "-e", "--session", "--sessions"})


@dataclasses.dataclass(frozen=True)
class Command:
    """One documented command: which tool, its arguments, and where the docs show it."""

    tool: str
    args: tuple[str, ...]
    source: str
    text: str

    def __str__(self) -> str:
        return f"{self.source}: {self.text}"


# -- extraction ---------------------------------------------------------------------------------


def shell_lines(markdown: str) -> list[tuple[int, str]]:
    """Return (line number, text) of every code-block line and inline code span in `markdown`."""
    found: list[tuple[int, str]] = []
    lines = markdown.splitlines()
    fence: str | None = None
    skip_block = False
    pending: tuple[int, str] | None = None  # a block line ending in a backslash continuation
    for number, line in enumerate(lines, 1):
        opening = _FENCE.match(line)
        if fence is None:
            if opening:
                fence = opening["fence"]
                words = opening["info"].strip().split()
                skip_block = bool(words) and words[0].lower() in _SKIPPED_BLOCKS
                continue
            found += [(number, span) for span in _INLINE.findall(line)]
            continue
        if opening is not None and _closes(opening, fence):
            fence, pending = None, None
            continue
        if skip_block:
            continue
        start, text = (
            (number, line.strip()) if pending is None else (pending[0], f"{pending[1]} {line.strip()}")
        )
        pending = None
        if text.endswith("\\"):
            pending = (start, text[:-1].rstrip())
            continue
        found.append((start, text))
    return found


def _closes(line: re.Match[str], fence: str) -> bool:
    """Whether a fence line ends the block that `fence` opened (same character, as long, no info)."""
    return line["fence"][0] == fence[0] and len(line["fence"]) >= len(fence) and not line["info"].strip()


def commands_in(text: str, source: str) -> list[Command]:
    """Return the tool commands in one line of shell (prompts, env prefixes, comments removed)."""
    line = text.strip()
    if line.startswith("$ "):
        line = line[2:]
    line = _REDIRECT.sub(" ", line)
    commands = []
    for segment in _SEPARATOR.split(line):
        words = segment.split()
        if not words:
            continue
        head = _strip_prefixes(words)
        if not head or not _names_tool(head):
            continue
        try:
            argv = _strip_prefixes(shlex.split(segment, comments=True))
        except ValueError as error:
            raise AssertionError(f"{source}: cannot split {segment!r} as shell ({error})") from None
        if _PYTHON.match(argv[0]):
            tool, args = argv[2], argv[3:]
        else:
            tool, args = argv[0], argv[1:]
        commands.append(Command(tool, tuple(args), source, segment.strip()))
    return commands


def _strip_prefixes(words: list[str]) -> list[str]:
    """Drop leading `VAR=value` assignments and wrappers such as `time` or `env`."""
    index = 0
    while index < len(words) and (_ENV_ASSIGNMENT.match(words[index]) or words[index] in _WRAPPERS):
        index += 1
    return words[index:]


def _names_tool(words: list[str]) -> bool:
    if words[0] in TOOLS:
        return True
    return bool(_PYTHON.match(words[0])) and len(words) >= 3 and words[1] == "-m" and words[2] in TOOLS


def extract(markdown: str, name: str) -> list[Command]:
    """Return every tool command shown in `markdown` (a file called `name`)."""
    commands = []
    for number, text in shell_lines(markdown):
        commands += commands_in(text, f"{name}:{number}")
    return commands


@functools.cache
def documented() -> tuple[Command, ...]:
    """Every tool command in README.md and docs/*.md."""
    commands: list[Command] = []
    for path in DOC_FILES:
        commands += extract(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    return tuple(commands)


def _of(tool: str) -> list[Command]:
    return [command for command in documented() if command.tool == tool]


def _ids(commands: list[Command]) -> list[str]:
    return [str(command) for command in commands]


# -- nox ----------------------------------------------------------------------------------------


def noxfile_sessions(source: str) -> set[str]:
    """Return the session names in a noxfile's source, with `name-python` for each Python."""
    tree = ast.parse(source)
    constants: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            with contextlib.suppress(ValueError, TypeError, SyntaxError):
                constants[node.targets[0].id] = ast.literal_eval(node.value)
    names: set[str] = set()
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call is not None else decorator
            if not (
                isinstance(target, ast.Attribute)
                and target.attr == "session"
                and isinstance(target.value, ast.Name)
                and target.value.id == "nox"
            ):
                continue
            keywords = {kw.arg: kw.value for kw in call.keywords} if call is not None else {}
            given = keywords.get("name")
            name = (
                given.value if isinstance(given, ast.Constant) and isinstance(given.value, str) else node.name
            )
            names.add(name)
            for python in _pythons(keywords.get("python"), constants):
                names.add(f"{name}-{python}")
    return names


def _pythons(node: ast.expr | None, constants: dict[str, object]) -> list[str]:
    value: object = None
    if isinstance(node, ast.Name):
        value = constants.get(node.id)
    elif node is not None:
        with contextlib.suppress(ValueError, TypeError, SyntaxError):
            value = ast.literal_eval(node)
    # nox adds `-<python>` to a session's name only when it runs on several Pythons.
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return []


@functools.cache
def nox_sessions() -> frozenset[str]:
    """Session names (and `name-python` ids): from `nox -l --json` if nox is importable, else the AST."""
    if importlib.util.find_spec("nox") is None:
        return frozenset(noxfile_sessions((ROOT / "noxfile.py").read_text(encoding="utf-8")))
    listing = _nox_listing()
    return frozenset({item["name"] for item in listing} | {item["session"] for item in listing})


def _nox_listing() -> list[dict[str, str]]:
    # `nox -l --json` lists only the default sessions; a keyword expression every name
    # satisfies lists the rest too.
    completed = subprocess.run(
        [sys.executable, "-m", "nox", "--list", "--json", "-k", "not no_such_session_zz"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, f"nox --list failed: {completed.stderr.strip()}"
    listing: list[dict[str, str]] = json.loads(completed.stdout)
    return listing


def nox_selected(args: tuple[str, ...]) -> list[str]:
    """Return the session names a nox command selects (`-s a b`, `--session=a`), before `--`."""
    selected: list[str] = []
    collecting = False
    for word in args:
        if word == "--":
            break
        if word.startswith("-"):
            option, _, value = word.partition("=")
            collecting = option in _NOX_SESSION_OPTIONS and not value
            if option in _NOX_SESSION_OPTIONS and value:
                selected += [part for part in value.split(",") if part]
            continue
        if collecting:
            selected.append(word)
    return selected


# -- metafuse -----------------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _subcommand_help(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {choice.dest: choice.help or "" for choice in action._choices_actions}
    return {}


def walk(args: tuple[str, ...]) -> tuple[tuple[str, ...], list[str], list[str]]:
    """Follow `args` through the CLI's subcommands; return (path, problems, positional values)."""
    parser: argparse.ArgumentParser = build_parser()
    path: list[str] = []
    problems: list[str] = []
    positionals: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word == "--":
            positionals += args[index:]
            break
        if word.startswith("-") and word != "-":
            option, has_value, _ = word.partition("=")
            action = parser._option_string_actions.get(option)
            if action is None:
                where = " ".join(["metafuse", *path])
                problems.append(f"`{where}` has no option {option}")
                continue
            if not has_value and isinstance(action.nargs, int):
                index += action.nargs
            elif not has_value and action.nargs in (None, "?"):
                index += 1
            continue
        children = _subcommands(parser)
        if children and not positionals:
            if word not in children:
                where = " ".join(["metafuse", *path])
                problems.append(f"`{where}` has no subcommand {word!r} (known: {', '.join(children)})")
                break
            parser = children[word]
            path.append(word)
            continue
        positionals.append(word)
    return tuple(path), problems, positionals


def cli_paths() -> list[tuple[str, ...]]:
    """Every subcommand path of the CLI, e.g. ('init',), ('stress',), ('stress', 'run')."""
    found: list[tuple[str, ...]] = []

    def visit(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        for name, child in _subcommands(parser).items():
            found.append((*path, name))
            visit(child, (*path, name))

    visit(build_parser(), ())
    return found


def _parser_at(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = build_parser()
    for name in path:
        parser = _subcommands(parser)[name]
    return parser


def _help_of(path: tuple[str, ...]) -> str:
    return _subcommand_help(_parser_at(path[:-1])).get(path[-1], "")


# -- pytest -------------------------------------------------------------------------------------


def pytest_targets(args: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Return (path arguments, -k expressions) of a pytest command."""
    paths: list[str] = []
    keywords: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word.startswith("-"):
            option, has_value, value = word.partition("=")
            if option == "-k":
                keywords.append(value if has_value else args[index] if index < len(args) else "")
            elif word.startswith("-k") and len(word) > 2 and not word.startswith("--"):
                keywords.append(word[2:])
                continue
            if option in _PYTEST_VALUE_OPTIONS and not has_value:
                index += 1
            continue
        paths.append(word)
    return paths, keywords


def _test_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths or ["tests"]:
        target = ROOT / raw.split("::", 1)[0]
        if target.is_file():
            files.append(target)
        elif target.is_dir():
            files += sorted({*target.rglob("test_*.py"), *target.rglob("*_test.py")})
    return files


def _test_names(files: list[Path]) -> set[str]:
    """Module, class and function names pytest's `-k` matches against, from the files' AST."""
    names: set[str] = set()
    for file in files:
        names.add(file.stem)
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                prefix = "Test" if isinstance(node, ast.ClassDef) else "test"
                if node.name.startswith(prefix):
                    names.add(node.name)
    return names


# -- the checks ---------------------------------------------------------------------------------


def problems_of(command: Command) -> list[str]:
    """Return what is wrong with a documented command (empty when it names only real things)."""
    if command.tool == "nox":
        unknown = [name for name in nox_selected(command.args) if name not in nox_sessions()]
        return [f"no nox session {name!r} (known: {sorted(nox_sessions())})" for name in unknown]
    if command.tool == "metafuse":
        return _metafuse_problems(command.args)
    return _pytest_problems(command.args)


def _metafuse_problems(args: tuple[str, ...]) -> list[str]:
    path, problems, positionals = walk(args)
    if problems:
        return problems
    if path == ("stress", "run"):
        problems += [
            f"no scenario {name!r} (known: {', '.join(REGISTRY)})"
            for name in positionals
            if name not in REGISTRY
        ]
    if args == path and _subcommands(_parser_at(path)):
        return problems  # a command group named in prose (`metafuse stress`), not a line to run
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            build_parser().parse_args(list(args))
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                problems.append(err.getvalue().strip())
    return problems


def _pytest_problems(args: tuple[str, ...]) -> list[str]:
    paths, keywords = pytest_targets(args)
    problems = []
    for raw in paths:
        file, _, node = raw.partition("::")
        if not (ROOT / file).exists():
            problems.append(f"{file} does not exist")
        elif node:
            test = node.split("::")[-1].split("[")[0]
            if test not in _test_names([ROOT / file]):
                problems.append(f"no test {test} in {file}")
    names = _test_names(_test_files(paths))
    for expression in keywords:
        words = [w for w in re.findall(r"[A-Za-z_]\w*", expression) if w not in {"and", "or", "not"}]
        if not words:
            problems.append("empty -k expression")
        problems += [
            f"-k {word!r} selects no test in {', '.join(paths) or 'tests'}"
            for word in words
            if not any(word.lower() in name.lower() for name in names)
        ]
    return problems


# -- the tests ----------------------------------------------------------------------------------


def test_the_docs_exist() -> None:
    """The user guide, the architecture notes and the benchmarks page are where README says."""
    names = {path.name for path in DOC_FILES}
    assert {"README.md", "stress-testing.md", "architecture.md", "benchmarks.md"} <= names


def test_extraction_handles_prompts_env_comments_and_chains() -> None:
    """Prefixes, prompts, comments, continuations and `&&` chains do not hide a command."""
    markdown = "\n".join(
        [
            "Run `RUN_STRESS_TESTS=1 pytest tests/stress -k test_kill_writers -s` or `metafuse/` alone.",
            "```console",
            "$ STRESS_TEST_CLIENTS=4 python -m metafuse stress run --mode process  # two cores",
            "python -m pip install nox && python -m nox -s tests",
            "time nox -s stress-matrix \\",
            "    -- --clients 1,4",
            "Reproduce with: python -m metafuse stress run",
            "```",
            "```python",
            "pytest = 'not a command'",
            "```",
        ]
    )
    found = [(c.tool, c.args) for c in extract(markdown, "sample.md")]
    assert found == [
        ("pytest", ("tests/stress", "-k", "test_kill_writers", "-s")),
        ("metafuse", ("stress", "run", "--mode", "process")),
        ("nox", ("-s", "tests")),
        ("nox", ("-s", "stress-matrix", "--", "--clients", "1,4")),
    ]


def test_the_docs_show_every_kind_of_command() -> None:
    """Extraction found nox, metafuse and pytest commands (an empty list would pass vacuously)."""
    assert {command.tool for command in documented()} == set(TOOLS)


def test_noxfile_parse_finds_the_sessions() -> None:
    """The AST fallback sees every session, under its `name=` and with its Python versions."""
    names = noxfile_sessions((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    assert {"tests", "tests-3.11", "lint", "stress-matrix", "soak"} <= names
    assert "stress_matrix" not in names


@pytest.mark.skipif(importlib.util.find_spec("nox") is None, reason="nox is not installed here")
def test_nox_listing_agrees_with_the_noxfile_parse() -> None:
    """nox itself lists exactly the sessions the AST fallback finds."""
    listing = _nox_listing()
    listed = {item["name"] for item in listing} | {item["session"] for item in listing}
    assert listed == noxfile_sessions((ROOT / "noxfile.py").read_text(encoding="utf-8"))


@pytest.mark.parametrize("command", _of("nox"), ids=_ids(_of("nox")))
def test_nox_command_names_real_sessions(command: Command) -> None:
    """`nox -s NAME ...` names only sessions defined in noxfile.py."""
    assert not problems_of(command), f"{command}: {'; '.join(problems_of(command))}"


@pytest.mark.parametrize("command", _of("metafuse"), ids=_ids(_of("metafuse")))
def test_metafuse_command_exists_and_parses(command: Command) -> None:
    """Each subcommand and option exists where it is used, and the CLI's parser accepts the line."""
    assert not problems_of(command), f"{command}: {'; '.join(problems_of(command))}"


@pytest.mark.parametrize("command", _of("pytest"), ids=_ids(_of("pytest")))
def test_pytest_command_targets_exist(command: Command) -> None:
    """Paths exist (and `file::test` names a test in it); every `-k` word selects a test."""
    assert not problems_of(command), f"{command}: {'; '.join(problems_of(command))}"


@pytest.mark.parametrize(
    "line",
    [
        "nox -s stress-matix",
        "nox -s lint typecheck benchmarks",
        "python -m metafuse stress frobnicate",
        "python -m metafuse stress run --clientz 4",
        "python -m metafuse stress selfcheck --kills 3",
        "python -m metafuse stress run no_such_scenario",
        "python -m metafuse stress run --mode fiber",
        "metafuse --catalog x.db gett sales.orders",
        "pytest tests/nowhere",
        "RUN_STRESS_TESTS=1 pytest tests/stress -k test_no_such_test -s",
        "pytest tests/stress/test_stress.py::test_no_such_test",
    ],
)
def test_the_checks_reject_wrong_commands(line: str) -> None:
    """A misspelt session, subcommand, option, value, path or test is reported, not waved through."""
    (command,) = commands_in(line, "sample.md:1")
    assert problems_of(command)


@pytest.mark.parametrize("path", cli_paths(), ids=" ".join)
def test_every_cli_command_has_help_and_is_documented(path: tuple[str, ...]) -> None:
    """Every subcommand, nested ones included, has help text and appears in a documented command."""
    assert _help_of(path).strip(), f"metafuse {' '.join(path)} has no help text"
    shown = {walk(command.args)[0][: len(path)] for command in _of("metafuse")}
    assert path in shown, f"`metafuse {' '.join(path)}` appears in no command in README.md or docs/"


_BUILT_IN = sorted(name for name, s in REGISTRY.items() if s.client.__module__.startswith("metafuse.stress."))


@pytest.mark.parametrize("name", _BUILT_IN)
def test_the_guide_lists_each_scenarios_invariants(name: str) -> None:
    """The user guide has a section per scenario listing its invariants as `stress list` prints them."""
    guide = (ROOT / "docs" / "stress-testing.md").read_text(encoding="utf-8")
    assert f"### {name}" in guide, f"docs/stress-testing.md has no section for {name}"
    missing = [
        f"{invariant.name}: {invariant.promise}"
        for invariant in REGISTRY[name].invariants
        if f"- `{invariant.name}`: {invariant.promise}" not in guide
    ]
    assert not missing, f"docs/stress-testing.md does not list {name}'s invariants {missing}"


# -- generated samples and quoted defaults ------------------------------------------------------


def _render_samples() -> object:
    spec = importlib.util.spec_from_file_location("render_samples", ROOT / "tools" / "render_samples.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["render_samples"] = module
    spec.loader.exec_module(module)
    return module


_SAMPLES = _render_samples()


@pytest.mark.parametrize("sample", _SAMPLES.SAMPLES, ids=lambda s: s.name)  # type: ignore[attr-defined]
def test_each_generated_sample_matches_what_the_code_prints(sample: Any) -> None:
    """The docs show what the command prints now (numbers normalised): re-render after a change."""
    documented = _SAMPLES.shown(sample.doc, sample.name)  # type: ignore[attr-defined]
    assert documented, f"{sample.doc} has no rendered <!-- sample: {sample.name} --> block"
    assert documented.startswith(f"$ {sample.command}\n"), "the doc shows the sample's own command"
    output = _SAMPLES.run(sample, quick=True)  # type: ignore[attr-defined]
    assert _SAMPLES.agrees(sample, output, documented), (  # type: ignore[attr-defined]
        f"{sample.doc}: sample {sample.name} is out of date; run python tools/render_samples.py"
    )


def test_the_shape_check_notices_a_changed_report() -> None:
    """A report whose layout changed (a line gone, a verdict renamed) does not pass as the same."""
    skeleton = _SAMPLES.skeleton  # type: ignore[attr-defined]
    before = "Results:\n  Successful writes: 12\n  [ok  ] no_errors: 0 errors\nPASSED: x (thread, seed 1)\n"
    assert skeleton(before) == skeleton(before.replace("12", "9,999").replace("[ok  ]", "[FAIL]"))
    assert skeleton(before) != skeleton(before.replace("  Successful writes: 12\n", ""))
    assert skeleton(before) != skeleton(before.replace("PASSED", "OK"))
    assert skeleton("Attempts histogram: 1: 5, 2: 7") == skeleton("Attempts histogram: 1: 5")


def _scenario_table() -> dict[str, tuple[int, int]]:
    guide = (ROOT / "docs" / "stress-testing.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)`(?: \(extra\))? \| \**(\d+)\** \| \**(\d+) s\** \|", guide, re.M)
    return {name: (int(clients), int(duration)) for name, clients, duration in rows}


def test_the_guide_quotes_each_scenarios_real_defaults() -> None:
    """The defaults table (read-heavy 20 clients, cache race 15 s, ...) equals the code's."""
    from metafuse.stress import config as stress_config

    table = _scenario_table()
    assert set(table) == set(_BUILT_IN)
    for name, (clients, duration) in table.items():
        scenario = REGISTRY[name]
        expected = (
            scenario.default_clients or stress_config.CLIENTS.default,
            scenario.default_duration or stress_config.DURATION.default,
        )
        assert (clients, duration) == expected, name


def test_the_readme_quotes_the_real_defaults_and_total_time() -> None:
    from metafuse.stress import config as stress_config

    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert f"{stress_config.CLIENTS.default} clients and {stress_config.DURATION.default} s each" in readme
    assert f"{REGISTRY['read_heavy_workload'].default_clients} clients for the read-heavy one" in readme
    assert f"{REGISTRY['cache_invalidation_race'].default_duration} s for the cache race" in readme
    total = sum(REGISTRY[name].default_duration or stress_config.DURATION.default for name in CORE)
    quoted = 150  # "about two and a half minutes": the running time plus set-up of each scenario
    assert total <= quoted <= total + 30, f"{total} s of running is not about two and a half minutes"
    guide = (ROOT / "docs" / "stress-testing.md").read_text(encoding="utf-8")
    assert "the five core scenarios, about 2.5 minutes" in guide


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    (line,) = [line for line in quick.splitlines() if "nox -s tests" in line]
    return line.strip()


def test_the_readme_test_command_works_where_pip_install_is_refused() -> None:
    """PEP 668 systems refuse a bare `pip install`: the one command installs into a venv it makes."""
    command = _readme_test_command()
    steps = [step.split() for step in command.split("&&")]
    assert steps[0][:3] == ["python3", "-m", "venv"], "it makes its own virtual environment first"
    venv = steps[0][3]
    for step in steps[1:]:
        assert step[0] == f"{venv}/bin/python", f"{' '.join(step)} must run in the venv"
    assert any(step[1:4] == ["-m", "pip", "install"] for step in steps[1:])
    assert steps[-1][1:] == ["-m", "nox", "-s", "tests"]
    assert "python3-venv" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert _readme_test_command() in [line.strip() for line in ci]


def test_the_readme_library_example_runs_twice_in_a_row(tmp_path: Path) -> None:
    """It must not fail the second time (the dataset then exists) and must say what it did."""
    script = tmp_path / "example.py"
    script.write_text(_SAMPLES.library_example(), encoding="utf-8")  # type: ignore[attr-defined]
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAFUSE_")}
    env["PYTHONPATH"] = str(ROOT)
    outputs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0].startswith("created sales.orders\n")
    assert "created" not in outputs[1]
    assert "version 4" in outputs[1]


def test_the_example_dataset_file_is_accepted_by_put(tmp_path: Path) -> None:
    from metafuse.cli import main

    catalog = str(tmp_path / "c.db")
    assert main(["--catalog", catalog, "put", str(ROOT / "examples" / "dataset.json")]) == 0
    assert (
        main(
            ["--catalog", catalog, "put", str(ROOT / "examples" / "dataset.json"), "--expected-version", "1"]
        )
        == 0
    )


def _readme_cli_commands() -> list[list[str]]:
    """The commands of the README's command-line block, each as words after `python3 -m metafuse`."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("The same from the command line", 1)[1]
    block = section.split("```console\n", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line) for line in block.splitlines() if line.strip()]
    assert commands
    for words in commands:
        assert words[:3] == ["python3", "-m", "metafuse"], "the README writes python3 (Debian has no python)"
    return [words[3:] for words in commands]


def test_the_readme_cli_block_works_after_the_library_example(tmp_path: Path) -> None:
    """A reader who runs the example (twice, as the README shows) and then the CLI block, in the
    same folder, meets no error."""
    script = tmp_path / "example.py"
    script.write_text(_SAMPLES.library_example(), encoding="utf-8")  # type: ignore[attr-defined]
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "dataset.json").write_bytes((ROOT / "examples" / "dataset.json").read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAFUSE_")}
    env["PYTHONPATH"] = str(ROOT)
    steps = [[str(script)], [str(script)]] + [["-m", "metafuse", *words] for words in _readme_cli_commands()]
    for step in steps:
        done = subprocess.run(
            [sys.executable, *step],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{' '.join(step)}: {done.stderr}"
        assert "Traceback" not in done.stderr


def test_the_readme_writes_python3() -> None:
    """Debian and Ubuntu have no `python` command: every command the README shows says python3."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for number, line in shell_lines(readme):
        words = line.lstrip("$ ").split()
        assert not words or words[0] != "python", f"README.md:{number}: {line}"


def test_the_readme_says_how_long_the_test_command_takes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = " ".join(readme.split("## Quick start", 1)[1].split("\n## ", 1)[0].split())
    second = quick.split("The second", 1)[1]
    assert re.search(r"about (half an hour|an hour|\d+ minutes)", second), "no duration for the test command"
