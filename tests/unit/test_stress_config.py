"""STRESS_TEST_* parsing: defaults, flags over environment, clamping with a warning, clear errors."""

from __future__ import annotations

import logging

import pytest

from metafuse.errors import ValidationError
from metafuse.stress import config as stress_config
from metafuse.stress.config import from_environment


def test_defaults_leave_scenario_defaults_free() -> None:
    config = from_environment({})
    assert config.clients is None
    assert config.duration is None
    assert config.clients_for(20) == 20
    assert config.clients_for(None) == stress_config.CLIENTS.default == 10
    assert config.duration_for(15) == 15
    assert config.duration_for(None) == stress_config.DURATION.default == 30
    assert config.mode == "thread"
    assert config.seed > 0


def test_environment_is_read() -> None:
    config = from_environment(
        {
            "STRESS_TEST_CLIENTS": "7",
            "STRESS_TEST_DURATION_SECS": "3",
            "STRESS_TEST_MODE": "process",
            "STRESS_TEST_SEED": "42",
        }
    )
    assert (config.clients, config.duration, config.mode, config.seed) == (7, 3, "process", 42)
    assert config.clients_for(20) == 7


def test_flags_override_environment() -> None:
    env = {"STRESS_TEST_CLIENTS": "7", "STRESS_TEST_MODE": "process", "STRESS_TEST_SEED": "1"}
    config = from_environment(env, clients=3, mode="thread", seed=9)
    assert (config.clients, config.mode, config.seed) == (3, "thread", 9)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("STRESS_TEST_CLIENTS", "500", 50),
        ("STRESS_TEST_CLIENTS", "0", 1),
        ("STRESS_TEST_CLIENTS", "-4", 1),
        ("STRESS_TEST_DURATION_SECS", "301", 300),
        ("STRESS_TEST_DURATION_SECS", "0", 1),
    ],
)
def test_out_of_range_is_clamped_with_one_warning(variable: str, value: str, expected: int) -> None:
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logger = logging.getLogger("metafuse.stress")
    logger.addHandler(handler)
    try:
        config = from_environment({variable: value})
    finally:
        logger.removeHandler(handler)
    got = config.clients if variable == "STRESS_TEST_CLIENTS" else config.duration
    assert got == expected
    warnings = [record for record in seen if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert variable in message
    assert str(expected) in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STRESS_TEST_CLIENTS", "abc"),
        ("STRESS_TEST_CLIENTS", "1.5"),
        ("STRESS_TEST_DURATION_SECS", "ten"),
        ("STRESS_TEST_MODE", "fibre"),
        ("STRESS_TEST_SEED", "-1"),
        ("STRESS_TEST_SEED", "x"),
    ],
)
def test_garbage_is_an_error_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ValidationError, match=variable):
        from_environment({variable: value})


def test_blank_values_mean_unset() -> None:
    config = from_environment({"STRESS_TEST_CLIENTS": "  ", "STRESS_TEST_MODE": ""})
    assert config.clients is None
    assert config.mode == "thread"
