"""Stress tests run only when RUN_STRESS_TESTS=1; each uses the same runners as the CLI."""

from __future__ import annotations

import os

import pytest

from metafuse.stress import config as stress_config
from metafuse.stress.config import StressConfig
from metafuse.stress.report import announce, format_result


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip every stress test, saying how to enable them, unless RUN_STRESS_TESTS=1."""
    if os.environ.get(stress_config.ENABLE_ENV, "").strip() == "1":
        return
    skip = pytest.mark.skip(reason=f"stress tests are off; enable them with {stress_config.ENABLE_ENV}=1")
    for item in items:
        if "tests/stress" in str(item.path).replace(os.sep, "/"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def stress_settings() -> StressConfig:
    """The run's configuration from STRESS_TEST_* (clamped; a bad value fails the session)."""
    settings = stress_config.from_environment()
    print(f"\nstress seed {settings.seed} (set {stress_config.SEED_ENV} to repeat)")
    return settings


__all__ = ["announce", "format_result"]
