"""Stress tests run only when RUN_STRESS_TESTS is on; each uses the same runners as the CLI.

The settings are checked once per session, before collection where this file is loaded early
(`pytest tests/stress`, with or without xdist): a bad `STRESS_TEST_*` or `RUN_STRESS_TESTS`
value ends the session with one line naming it, not a traceback per test. Where it is loaded
late inside an xdist worker, each stress test fails with that same one line and no traceback.

Half the sessions perturb their schedule (`metafuse.perturb`), chosen by the session's seed, so a
seed that failed repeats with the same choice; `METAFUSE_PERTURB` in the environment wins.
"""

from __future__ import annotations

import dataclasses
import os
import random

import pytest

from metafuse import perturb
from metafuse.errors import ValidationError
from metafuse.stress import config as stress_config
from metafuse.stress.config import StressConfig
from metafuse.stress.report import announce, format_result


def _enabled() -> bool:
    return stress_config.parse_enabled(os.environ.get(stress_config.ENABLE_ENV))


def pytest_configure(config: pytest.Config) -> None:
    """Stop the session with one line on a bad RUN_STRESS_TESTS or STRESS_TEST_* value."""
    if hasattr(config, "workerinput"):  # xdist worker: the controller (or the fixture) reports it
        return
    try:
        if _enabled():
            stress_config.from_environment()
    except ValidationError as error:
        raise pytest.UsageError(f"metafuse: error: {error}") from None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip every stress test, saying how to enable them, unless RUN_STRESS_TESTS is on."""
    try:
        if _enabled():
            return
    except ValidationError:
        return  # reported by pytest_configure, or by the fixture in an xdist worker
    skip = pytest.mark.skip(reason=f"stress tests are off; enable them with {stress_config.ENABLE_ENV}=1")
    for item in items:
        if "tests/stress" in str(item.path).replace(os.sep, "/"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def stress_settings() -> StressConfig:
    """The run's configuration from STRESS_TEST_* (clamped above the maximum)."""
    try:
        settings = stress_config.from_environment()
    except ValidationError as error:
        pytest.fail(f"metafuse: error: {error}", pytrace=False)
    if perturbed(settings.seed) and perturb.current() is None:
        settings = dataclasses.replace(settings, perturb=stress_config.perturb_for(settings.seed))
    print(
        f"\nstress seed {settings.seed} (set {stress_config.SEED_ENV} to repeat),"
        f" perturbation {settings.perturb or 'as METAFUSE_PERTURB has it'}"
    )
    return settings


def perturbed(seed: int) -> bool:
    """Whether the session with `seed` perturbs its schedule: a seeded coin, heads half the time."""
    return random.Random(seed).random() < 0.5


__all__ = ["announce", "format_result"]
