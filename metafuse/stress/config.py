"""Stress-run configuration: the STRESS_TEST_* environment, clamped to documented bounds."""

from __future__ import annotations

import dataclasses
import logging
import os
import random
from collections.abc import Mapping

from ..errors import ValidationError

log = logging.getLogger("metafuse.stress")

MODES = ("thread", "process")
"""Client kinds: threads sharing one Catalog, or processes each with their own."""


@dataclasses.dataclass(frozen=True)
class Bound:
    """One numeric setting: its environment variable, default and inclusive bounds."""

    env: str
    default: int
    low: int
    high: int


CLIENTS = Bound("STRESS_TEST_CLIENTS", 10, 1, 50)
"""Concurrent clients per scenario."""
DURATION = Bound("STRESS_TEST_DURATION_SECS", 30, 1, 300)
"""Seconds each scenario runs."""
MODE_ENV = "STRESS_TEST_MODE"
"""Environment variable choosing `thread` (default) or `process` clients."""
SEED_ENV = "STRESS_TEST_SEED"
"""Environment variable fixing the random seed (random and printed when unset)."""
ENABLE_ENV = "RUN_STRESS_TESTS"
"""Set to 1 to run `tests/stress` under pytest."""


@dataclasses.dataclass(frozen=True)
class StressConfig:
    """Everything one stress run needs; plain data, so it crosses process boundaries.

    `clients` and `duration` are None when neither the environment nor a flag chose them, so a
    scenario may apply its own default (read-heavy runs 20 clients, the cache race 15 s).
    """

    clients: int | None = None
    duration: int | None = None
    mode: str = "thread"
    seed: int = 0
    synchronous: str = "FULL"
    kills: int = 50
    record: bool = True
    backoff_scale: float = 1.0
    max_attempts: int = 5
    lockstep: bool = False
    """optimistic_lock_resolution: every optimistic attempt of a round conflicts (selfcheck)."""
    history: str | None = None
    """A file to write every operation to as JSON lines (`stress run --history`; stress/history.py)."""
    rate: float | None = None
    ramp_up: float = 0.0
    warmup: float = 0.0

    def clients_for(self, default: int | None) -> int:
        """Return the client count for a scenario whose own default is `default`."""
        if self.clients is not None:
            return self.clients
        return default if default is not None else CLIENTS.default

    def duration_for(self, default: int | None) -> int:
        """Return the duration for a scenario whose own default is `default`."""
        if self.duration is not None:
            return self.duration
        return default if default is not None else DURATION.default


def parse_bounded(bound: Bound, text: str, source: str) -> int:
    """Parse `text` as an integer for `bound`; clamp out-of-range values with a warning.

    A value that is not an integer is a `ValidationError` naming `source` (the variable or flag).
    """
    try:
        value = int(text.strip())
    except ValueError:
        raise ValidationError(source, "must be a whole number", text) from None
    if value < bound.low or value > bound.high:
        clamped = min(max(value, bound.low), bound.high)
        log.warning("%s=%s is outside %d-%d; using %d", source, value, bound.low, bound.high, clamped)
        return clamped
    return value


def parse_mode(text: str, source: str) -> str:
    """Return `text` if it names a client mode, else a `ValidationError` naming `source`."""
    mode = text.strip().lower()
    if mode not in MODES:
        raise ValidationError(source, f"must be one of {', '.join(MODES)}", text)
    return mode


def parse_seed(text: str, source: str) -> int:
    """Return `text` as a non-negative integer seed, else a `ValidationError` naming `source`."""
    try:
        seed = int(text.strip())
    except ValueError:
        raise ValidationError(source, "must be a whole number", text) from None
    if seed < 0:
        raise ValidationError(source, "must not be negative", text)
    return seed


def from_environment(
    environ: Mapping[str, str] | None = None,
    *,
    clients: int | None = None,
    duration: int | None = None,
    mode: str | None = None,
    seed: int | None = None,
    kills: int | None = None,
) -> StressConfig:
    """Build a config from `environ` (default `os.environ`); explicit arguments (flags) win."""
    env = os.environ if environ is None else environ
    if clients is not None:
        clients = parse_bounded(CLIENTS, str(clients), "--clients")
    elif env.get(CLIENTS.env, "").strip():
        clients = parse_bounded(CLIENTS, env[CLIENTS.env], CLIENTS.env)
    if duration is not None:
        duration = parse_bounded(DURATION, str(duration), "--duration")
    elif env.get(DURATION.env, "").strip():
        duration = parse_bounded(DURATION, env[DURATION.env], DURATION.env)
    if mode is not None:
        mode = parse_mode(mode, "--mode")
    elif env.get(MODE_ENV, "").strip():
        mode = parse_mode(env[MODE_ENV], MODE_ENV)
    if seed is None and env.get(SEED_ENV, "").strip():
        seed = parse_seed(env[SEED_ENV], SEED_ENV)
    if seed is None:
        seed = random.SystemRandom().randrange(1, 2**31)
    if kills is not None and kills < 1:
        raise ValidationError("--kills", "must be at least 1", kills)
    return StressConfig(
        clients=clients,
        duration=duration,
        mode=mode or "thread",
        seed=seed,
        kills=kills or 50,
    )
