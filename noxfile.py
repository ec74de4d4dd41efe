"""Developer and CI sessions: `nox -l` lists them; `nox` runs tests, lint and typecheck."""

from __future__ import annotations

import argparse
import atexit
import glob
import json
import os
import shutil
import sys
from collections.abc import Mapping

import nox

nox.needs_version = ">=2024.4.15"
nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_venv = "yes"

# Tools are pinned so a new release cannot turn CI red without a change here.
RUFF = "ruff==0.17.6"
MYPY = "mypy==2.4.1"
CHECK_JSONSCHEMA = "check-jsonschema==0.39.0"
ZIZMOR = "zizmor==1.32.0"
MOTO_SERVER = "moto[server]==5.2.1"
PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
"""Every supported Python, in one place."""
TOOLS_PYTHON = "3.11"
"""The Python that runs single-version sessions (lint, typecheck, stress, benchmarks)."""
WORKFLOWS = sorted(glob.glob(".github/workflows/*.yml"))
SMOKE_ENV = {"RUN_STRESS_TESTS": "1", "STRESS_TEST_DURATION_SECS": "2", "STRESS_TEST_CLIENTS": "4"}


_TESTED: dict[str, str] = {}
"""Python version -> outcome of this invocation's `tests` sessions, for the closing summary."""


def _report_pythons() -> None:
    """Say which Pythons the unit tests ran on and which were missing (nox only logs a skip).

    Only a Python this invocation selected for `tests` (and not found on PATH) is called missing:
    `nox -s tests-3.9` says nothing of 3.10 being absent.
    """
    if not _TESTED:
        return
    selected = _selected_test_pythons(sys.argv[1:], os.environ)
    ran = [f"{version} ({outcome})" for version, outcome in _TESTED.items()]
    missing = [
        v
        for v in PYTHONS
        if v not in _TESTED and selected is not None and v in selected and shutil.which(f"python{v}") is None
    ]
    unselected = [v for v in PYTHONS if v not in _TESTED and v not in missing]
    print(f"nox > tests ran on Python {', '.join(ran)}")
    if missing:
        strict = " (an error under CI=true)" if os.environ.get("CI") else ""
        print(f"nox > tests NOT run, interpreter missing: Python {', '.join(missing)}{strict}")
    if unselected:
        print(f"nox > tests not run, not selected or not found by nox: Python {', '.join(unselected)}")


def _selected_test_pythons(argv: list[str], environ: Mapping[str, str]) -> list[str] | None:
    """The Pythons nox's command line (`argv`, without the program) asks `tests` to run on, from
    -s/--session (or $NOXSESSION) and -p/--python (or $NOXPYTHON); None when -k, -t or a forced
    or extra Python make the selection more than these options say."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("-s", "-e", "--session", "--sessions", dest="sessions", nargs="*", action="extend")
    parser.add_argument("-p", "--python", "--pythons", dest="pythons", nargs="*", action="extend")
    for option in ("-k", "--keywords", "-t", "--tags", "-P", "--force-python", "--force-pythons"):
        parser.add_argument(option, dest="unknown", nargs="*", action="append")
    parser.add_argument("--extra-python", "--extra-pythons", dest="unknown", nargs="*", action="append")
    own = argv[: argv.index("--")] if "--" in argv else argv
    options, _ = parser.parse_known_args(own)
    if options.unknown:
        return None
    sessions = options.sessions
    if sessions is None and environ.get("NOXSESSION"):
        sessions = environ["NOXSESSION"].split(",")
    if sessions is None:
        sessions = list(nox.options.sessions or ["tests"])
    chosen = [
        version
        for version in PYTHONS
        if any(name.strip() in ("tests", f"tests-{version}") for name in sessions)
    ]
    pythons = options.pythons
    if pythons is None and environ.get("NOXPYTHON"):
        pythons = environ["NOXPYTHON"].split(",")
    return chosen if pythons is None else [v for v in chosen if v in {p.strip() for p in pythons}]


atexit.register(_report_pythons)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Unit tests on every supported Python (pytest -n auto); posargs go to pytest.

    Tests marked `slow` (whole selfcheck runs, each tens of seconds of stress runs) run once, on
    TOOLS_PYTHON; the others run on every Python.
    """
    version = str(session.python)
    _TESTED[version] = "failed"  # until pytest returns
    session.install("-e", ".[test]")
    only_fast = [] if version == TOOLS_PYTHON else ["-m", "not slow"]
    session.run("pytest", "-n", "auto", *only_fast, *session.posargs)
    _TESTED[version] = "passed"


@nox.session(python=TOOLS_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and format; schema check and zizmor on the GitHub workflows."""
    session.install(RUFF, CHECK_JSONSCHEMA, ZIZMOR)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    if WORKFLOWS:
        session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOWS)
        session.run("zizmor", "--offline", ".github/workflows")


@nox.session(python=TOOLS_PYTHON, default=False)
def s3(session: nox.Session) -> None:
    """Object-store contract and commit-log tests (tests/s3) on a fresh single-threaded moto S3 server."""
    session.install("-e", ".[s3,test]", MOTO_SERVER)
    session.run("pytest", "tests/s3", "-p", "no:xdist", *session.posargs)


@nox.session(python=TOOLS_PYTHON, default=False)
def locust(session: nox.Session) -> None:
    """Locust runs (a master and two workers on loopback, against a catalog file and moto's S3):
    clean runs pass and planted faults fail at the master; and the catalog under gevent."""
    session.install("-e", ".[locust,s3,test]", MOTO_SERVER)
    session.run("pytest", "tests/multihost", "-p", "no:xdist", *session.posargs)


@nox.session(python=TOOLS_PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".", MYPY)
    session.run("mypy", "--strict", "metafuse", *session.posargs)


@nox.session(python=TOOLS_PYTHON, default=False)
def stress(session: nox.Session) -> None:
    """The stress tests (RUN_STRESS_TESTS=1 pytest tests/stress), honouring STRESS_TEST_*."""
    session.install("-e", ".[test]")
    session.run(
        "pytest", "tests/stress", "-p", "no:xdist", "-s", *session.posargs, env={"RUN_STRESS_TESTS": "1"}
    )


@nox.session(name="stress-smoke", python=TOOLS_PYTHON, default=False)
def stress_smoke(session: nox.Session) -> None:
    """Every stress test for 2 s with 4 clients, in thread and in process mode (CI)."""
    session.install("-e", ".[test]")
    for mode in ("thread", "process"):
        session.run(
            "pytest", "tests/stress", "-n", "2", *session.posargs, env={**SMOKE_ENV, "STRESS_TEST_MODE": mode}
        )


@nox.session(name="stress-matrix", python=TOOLS_PYTHON, default=False)
def stress_matrix(session: nox.Session) -> None:
    """Sweep scenarios x clients x durations x modes into .stress/<timestamp>/ with a chart."""
    session.install("-e", ".", "matplotlib")
    before = set(glob.glob(os.path.join(".stress", "*", "summary.json")))
    session.run("python", "-m", "metafuse.stress.matrix", *session.posargs, success_codes=[0, 1])
    new = sorted(set(glob.glob(os.path.join(".stress", "*", "summary.json"))) - before)
    if not new:
        session.error("the sweep wrote no summary.json")
    session.run("python", "tools/plot_matrix.py", os.path.dirname(new[-1]))
    with open(new[-1], encoding="utf-8") as handle:
        if not json.load(handle)["passed"]:
            session.error(f"some cells failed an invariant: see {os.path.dirname(new[-1])}/summary.md")


@nox.session(python=TOOLS_PYTHON, default=False)
def benchmark(session: nox.Session) -> None:
    """pytest-benchmark over benchmarks/, saved under .benchmarks/ (xdist off: it disables them)."""
    session.install("-e", ".[bench]")
    session.run("pytest", "benchmarks", "-p", "no:xdist", "--benchmark-autosave", *session.posargs)


@nox.session(name="benchmark-compare", python=TOOLS_PYTHON, default=False)
def benchmark_compare(session: nox.Session) -> None:
    """Benchmarks against the newest saved run, as ratios to raw sqlite3 measured in the same run
    (a change of machine cancels out), each pair in 5 interleaved rounds of CPU time; fails only
    when a ratio's median grows past BENCHMARK_COMPARE_TOLERANCE (20%) and a rank test on the
    rounds (p <= BENCHMARK_COMPARE_ALPHA, 0.01) puts the growth beyond their noise; a growth within
    the noise is reported as inconclusive. BENCHMARK_COMPARE=absolute compares absolute means
    instead (pytest-benchmark's own check: same machine only)."""
    saved = [p for p in glob.glob(".benchmarks/*/*.json") if "fixtures" not in p]
    if not saved:
        session.error("no saved benchmark run to compare with: run `nox -s benchmark` first")
    session.install("-e", ".[bench]")
    if os.environ.get("BENCHMARK_COMPARE", "ratio") == "absolute":
        threshold = os.environ.get("BENCHMARK_COMPARE_FAIL", "mean:20%")
        session.run(
            "pytest",
            "benchmarks",
            "-p",
            "no:xdist",
            "--benchmark-compare",
            f"--benchmark-compare-fail={threshold}",
            *session.posargs,
        )
        return
    current = os.path.join(session.create_tmp(), "current.json")
    session.run("pytest", "benchmarks", "-p", "no:xdist", f"--benchmark-json={current}", *session.posargs)
    tolerance = os.environ.get("BENCHMARK_COMPARE_TOLERANCE", "20%")
    alpha = os.environ.get("BENCHMARK_COMPARE_ALPHA", "0.01")
    session.run(
        "python",
        "tools/bench_ratios.py",
        "--newest-in",
        ".benchmarks",
        current,
        "--tolerance",
        tolerance,
        "--alpha",
        alpha,
    )


@nox.session(python=TOOLS_PYTHON, default=False)
def report(session: nox.Session) -> None:
    """The stress HTML report in headless Chromium (tests/browser); screenshots in .stress/browser/.

    Chromium comes from the system (Debian: apt-get install -y chromium); without it the session
    fails rather than skip the check.
    """
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        session.error("chromium is not installed: the report session needs it (apt-get install -y chromium)")
    session.install("-e", ".[test]")
    session.run("pytest", "tests/browser", "-p", "no:xdist", *session.posargs)


@nox.session(python=TOOLS_PYTHON, default=False)
def soak(session: nox.Session) -> None:
    """Long run (~1 h): every scenario, 50 clients, 300 s, thread and process; not for CI."""
    session.install("-e", ".")
    session.run("python", "-m", "metafuse.stress.soak", *session.posargs)


@nox.session(name="false-alarms", python=TOOLS_PYTHON, default=False)
def false_alarms(session: nox.Session) -> None:
    """Every scenario again and again under CPU overload, then every planted fault (~30 min)."""
    session.install("-e", ".")
    session.run("python", "-m", "metafuse.stress.campaign", *session.posargs)


@nox.session(python=TOOLS_PYTHON, default=False)
def mutants(session: nox.Session) -> None:
    """Plant each mutant of mutants/mutants.json in a copy and check the stress suite catches it, in
    thread and process mode, 5 runs each beside a clean control (~30 min); posargs go to the runner.

    Nothing is installed: the runner is stdlib-only, and its workers must import the mutated
    copy, which an installed package would shadow.
    """
    session.run("python", "tools/mutants.py", *session.posargs)


@nox.session(python=TOOLS_PYTHON, default=False)
def perf(session: nox.Session) -> None:
    """The performance targets as ratios to raw sqlite3, median of 5 rounds (~4 min); a report, not a gate."""
    session.install("-e", ".")
    session.run("python", "benchmarks/perf.py", *session.posargs)
