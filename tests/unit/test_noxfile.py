"""noxfile.py's closing summary names as missing only the Pythons a run selected."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("nox") is None, reason="nox is not installed here")


@pytest.fixture(scope="module")
def noxfile() -> ModuleType:
    spec = importlib.util.spec_from_file_location("noxfile_under_test", ROOT / "noxfile.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argv", "environ", "selected"),
    [
        (["-s", "tests-3.9"], {}, ["3.9"]),
        (["--session", "tests-3.9", "tests-3.13", "lint"], {}, ["3.9", "3.13"]),
        (["-s", "lint"], {}, []),
        ([], {}, ["3.9", "3.10", "3.11", "3.12", "3.13"]),
        (["-s", "tests", "-p", "3.11"], {}, ["3.11"]),
        (["-s", "tests-3.9", "--", "-s", "tests"], {}, ["3.9"]),
        ([], {"NOXSESSION": "tests-3.10,lint"}, ["3.10"]),
        (["-s", "tests"], {"NOXPYTHON": "3.12"}, ["3.12"]),
        (["-k", "tests"], {}, None),
        (["-s", "tests", "--force-python", "3.14"], {}, None),
    ],
)
def test_the_selection_is_read_from_the_command_line(
    noxfile: ModuleType, argv: list[str], environ: dict[str, str], selected: list[str] | None
) -> None:
    assert noxfile._selected_test_pythons(argv, environ) == selected


def test_a_python_the_run_did_not_select_is_not_called_missing(
    noxfile: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no Python at all on PATH
    monkeypatch.setenv("CI", "1")
    monkeypatch.delenv("NOXSESSION", raising=False)
    monkeypatch.delenv("NOXPYTHON", raising=False)
    monkeypatch.setattr("sys.argv", ["nox", "-s", "tests-3.9"])
    monkeypatch.setattr(noxfile, "_TESTED", {"3.9": "passed"})
    noxfile._report_pythons()
    out = capsys.readouterr().out
    assert "tests ran on Python 3.9 (passed)" in out
    assert "interpreter missing" not in out
    assert "not selected or not found by nox: Python 3.10, 3.11, 3.12, 3.13" in out
    monkeypatch.setattr("sys.argv", ["nox", "-s", "tests-3.9", "tests-3.10"])
    noxfile._report_pythons()
    assert "NOT run, interpreter missing: Python 3.10 (an error under CI=true)" in capsys.readouterr().out
