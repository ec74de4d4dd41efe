"""The pytest entry point of the stress suite: RUN_STRESS_TESTS words, and one line for a bad setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _pytest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("STRESS_TEST_", "METAFUSE_", "PYTEST_"))
    }
    clean.pop("RUN_STRESS_TESTS", None)
    clean["PYTHONPATH"] = str(ROOT)
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/stress", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [("STRESS_TEST_CLIENTS", "abc"), ("STRESS_TEST_MODE", "fibre"), ("RUN_STRESS_TESTS", "maybe")],
)
@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_bad_setting_is_one_line_per_session(variable: str, value: str, xdist: list[str]) -> None:
    env = {"RUN_STRESS_TESTS": "1", variable: value}
    done = _pytest(*xdist, **env)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if variable in line]
    assert len(errors) == 1, output[-3000:]
    assert errors[0].startswith("ERROR: metafuse: error: invalid")
    assert repr(value) in errors[0]


@pytest.mark.parametrize("word", ["1", "true", "yes"])
def test_run_stress_tests_accepts_true_and_yes(word: str) -> None:
    done = _pytest("-k", "test_every_scenario_has_a_test", RUN_STRESS_TESTS=word)
    assert done.returncode == 0, done.stdout[-2000:]
    assert " passed" in done.stdout
    assert "skipped" not in done.stdout


def test_without_run_stress_tests_they_are_skipped_saying_how_to_enable_them() -> None:
    done = _pytest("-k", "test_concurrent_writers", "-rs")
    assert done.returncode == 0
    assert "enable them with RUN_STRESS_TESTS=1" in done.stdout
