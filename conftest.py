"""`pytest --benchmark-compare` from the repository root runs the benchmarks, not the unit tests.

pytest's `testpaths` point at `tests/`, so the option alone would compare nothing; with it and no
paths, the run collects `benchmarks/` instead. Without pytest-benchmark the option is still
understood here, so the error names the extra to install rather than "unrecognized arguments".
"""

from __future__ import annotations

import glob
import os

import pytest

_PLUGIN = "benchmark"
"""pytest-benchmark's plugin name (absent when not installed, or blocked with -p no:benchmark)."""
_INSTALL = (
    "pytest-benchmark is not installed: python -m pip install -e '.[bench]' (or run nox -s benchmark-compare)"
)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """Stand in for pytest-benchmark's compare options when it is missing, to say what to install."""
    if not pluginmanager.has_plugin(_PLUGIN):
        group = parser.getgroup("benchmark (missing)")
        group.addoption("--benchmark-compare", nargs="?", const="", default=None, help=_INSTALL)
        group.addoption("--benchmark-compare-fail", action="append", default=None, help=_INSTALL)


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark loads the saved runs
def pytest_configure(config: pytest.Config) -> None:
    """Point a bare `pytest --benchmark-compare` at benchmarks/."""
    compare = config.getoption("benchmark_compare", default=None)
    if compare is None or compare == []:  # pytest-benchmark's default: not asked to compare
        return
    if not config.pluginmanager.has_plugin(_PLUGIN):
        raise pytest.UsageError(_INSTALL)
    saved = glob.glob(os.path.join(config.rootpath, ".benchmarks", "*", "*.json"))
    if compare in (True, "") and not [path for path in saved if "fixtures" not in path]:
        raise pytest.UsageError(
            "no saved benchmark run to compare with under .benchmarks/: save one first with"
            " `pytest benchmarks -p no:xdist --benchmark-autosave` (or `nox -s benchmark`)"
        )
    if config.args_source == pytest.Config.ArgsSource.TESTPATHS:
        config.args[:] = [str(config.rootpath / "benchmarks")]
