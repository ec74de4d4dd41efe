"""STRESS_TEST_* parsing: defaults, flags over environment, clamping with a warning, clear errors."""

from __future__ import annotations

import logging

import pytest

from metafuse.errors import ValidationError
from metafuse.stress import config as stress_config
from metafuse.stress.config import check_timing, from_environment, parse_enabled


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
        ("STRESS_TEST_DURATION_SECS", "301", 300),
    ],
)
def test_above_the_maximum_is_clamped_with_one_warning(variable: str, value: str, expected: int) -> None:
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
        ("STRESS_TEST_CLIENTS", "0"),
        ("STRESS_TEST_CLIENTS", "-4"),
        ("STRESS_TEST_DURATION_SECS", "0"),
    ],
)
def test_garbage_is_an_error_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ValidationError, match=variable):
        from_environment({variable: value})


def test_blank_values_mean_unset() -> None:
    config = from_environment({"STRESS_TEST_CLIENTS": "  ", "STRESS_TEST_MODE": ""})
    assert config.clients is None
    assert config.mode == "thread"


@pytest.mark.parametrize(
    ("variable", "flag"),
    [("STRESS_TEST_CLIENTS", "--clients"), ("STRESS_TEST_DURATION_SECS", "--duration")],
)
def test_zero_is_refused_alike_from_a_flag_and_its_variable(variable: str, flag: str) -> None:
    """One rule for both sources: below the minimum is an error, with the same words."""
    with pytest.raises(ValidationError) as from_env:
        from_environment({variable: "0"})
    with pytest.raises(ValidationError) as from_flag:
        from_environment({}, **{flag.lstrip("-"): 0})  # type: ignore[arg-type]
    assert from_env.value.rule == from_flag.value.rule == "must be at least 1"
    assert from_env.value.what == variable
    assert from_flag.value.what == flag


@pytest.mark.parametrize("word", ["1", "true", "TRUE", "yes", "on", " Yes "])
def test_run_stress_tests_accepts_the_usual_words_for_on(word: str) -> None:
    assert parse_enabled(word) is True


@pytest.mark.parametrize("word", [None, "", "0", "false", "no", "off", "OFF"])
def test_run_stress_tests_accepts_the_usual_words_for_off(word: str | None) -> None:
    assert parse_enabled(word) is False


@pytest.mark.parametrize("word", ["2", "enable", "y", "si"])
def test_run_stress_tests_refuses_other_words_saying_what_it_expects(word: str) -> None:
    with pytest.raises(ValidationError, match="RUN_STRESS_TESTS") as info:
        parse_enabled(word)
    assert "1, true, yes or on" in str(info.value)


def test_load_model_fields_default_to_a_closed_model() -> None:
    config = from_environment({})
    assert (config.rate, config.ramp_up, config.warmup) == (None, 0.0, 0.0)
    config = from_environment({}, rate=250.5, ramp_up=2, warmup=1.5)
    assert (config.rate, config.ramp_up, config.warmup) == (250.5, 2.0, 1.5)


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("rate", 0, "greater than 0"),
        ("rate", -5, "greater than 0"),
        ("rate", float("nan"), "greater than 0"),
        ("rate", float("inf"), "greater than 0"),
        ("ramp_up", -1, "0 or more"),
        ("warmup", float("nan"), "0 or more"),
    ],
)
def test_bad_load_model_values_are_refused_naming_the_flag(field: str, value: float, rule: str) -> None:
    with pytest.raises(ValidationError, match=rule) as info:
        from_environment({}, **{field: value})  # type: ignore[arg-type]
    assert info.value.what == "--" + field.replace("_", "-")


def test_a_warmup_as_long_as_the_run_is_refused() -> None:
    config = from_environment({}, warmup=5)
    check_timing(config, 6)
    with pytest.raises(ValidationError, match="--warmup"):
        check_timing(config, 5)
    with pytest.raises(ValidationError, match="--ramp-up"):
        check_timing(from_environment({}, ramp_up=10), 10)
