"""Stress-run configuration: the STRESS_TEST_* environment, clamped to documented bounds.

Owns `StressConfig`, each setting's bounds and the parsers of their text. It reads the environment
and never changes it, switches no fault or perturbation on (it parses the perturbation's text;
`runner` switches it on) and opens no catalog.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
from collections.abc import Mapping
from typing import Optional

from .. import perturb
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
"""Set to 1 (or true, yes, on) to run `tests/stress` under pytest; 0, false, no, off or unset skip them."""
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


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
    history: Optional[str] = None  # noqa: UP045 - evaluated at runtime on Python 3.9
    """A file to write every operation to as JSON lines (`stress run --history`; stress/history.py)."""
    rate: Optional[float] = None  # noqa: UP045 - evaluated at runtime on Python 3.9
    """Open model: operations per second per scenario, started on a schedule (None: closed model)."""
    ramp_up: float = 0.0
    """Seconds over which the load (clients, or the open-model rate) grows from nothing to full."""
    warmup: float = 0.0
    """Seconds at the start whose operations are left out of the figures (not of the invariants)."""
    perturb: Optional[str] = None  # noqa: UP045
    """Schedule perturbation for the run, as `seed=N,p=P` (`metafuse.perturb`; None: as the
    environment has it, normally off)."""
    check_history: bool = True
    """Record and check the history of a scenario declared `history_checked` even without `history`."""
    catalogs: Optional[str] = None  # noqa: UP045
    """Thread mode: `shared` (one Catalog for every client), `per-client` or `mixed` (every other
    client owns one); None: the scenario's own choice (`Scenario.catalogs`)."""

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
    """Parse `text` as an integer for `bound`; clamp values above the maximum with a warning.

    The same rule holds for a flag and its variable: a value that is not an integer, or is below
    the minimum (0 clients, 0 seconds: a run that measures nothing), is a `ValidationError` naming
    `source`; a value above the maximum (a safety cap) runs at the maximum, with a warning.
    """
    try:
        value = int(text.strip())
    except ValueError:
        raise ValidationError(source, "must be a whole number", text) from None
    if value < bound.low:
        raise ValidationError(source, f"must be at least {bound.low}", text)
    if value > bound.high:
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


CATALOGS = ("shared", "per-client", "mixed")
"""How thread-mode clients get their Catalog: all one, one each, or every other client one of its own."""


def parse_catalogs(text: str, source: str) -> str:
    """Return `text` if it names a catalogs shape (`CATALOGS`), else a `ValidationError` naming `source`."""
    shape = text.strip().lower()
    if shape not in CATALOGS:
        raise ValidationError(source, f"must be one of {', '.join(CATALOGS)}", text)
    return shape


def parse_perturb(text: str, source: str) -> str:
    """Return perturbation settings as `seed=N,p=P` from a bare seed or from that text itself.

    Anything else is a `ValidationError` naming `source`.
    """
    word = text.strip()
    try:
        if word.isdigit():
            return str(perturb.Settings(int(word), perturb.DEFAULT_P))
        return str(perturb.parse(word))
    except ValidationError:
        raise ValidationError(
            source, "must be a seed (a whole number) or seed=N,p=P with 0 < P <= 1", text
        ) from None


def perturb_for(seed: int) -> str:
    """The perturbation settings selfcheck and the campaign run with: `seed`, the default `p`."""
    return str(perturb.Settings(seed, perturb.DEFAULT_P))


def parse_enabled(text: str | None, source: str = ENABLE_ENV) -> bool:
    """Return whether `text` switches something on: 1/true/yes/on, or 0/false/no/off/empty.

    Anything else is a `ValidationError` naming `source` and the accepted words.
    """
    word = (text or "").strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValidationError(source, "must be 1, true, yes or on (or 0, false, no, off)", text)


def parse_number(value: float | str, source: str, *, positive: bool = False) -> float:
    """Return `value` as a finite number (seconds, or operations/s), >= 0 (> 0 when `positive`), else a
    `ValidationError` naming `source`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(source, "must be a number", value) from None
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise ValidationError(
            source, "must be a number greater than 0" if positive else "must be 0 or more", value
        )
    return number


def check_timing(config: StressConfig, duration: int, source: str = "--warmup") -> None:
    """Refuse a warm-up and ramp-up that would leave nothing of a `duration`-second run to measure."""
    if config.warmup >= duration:
        raise ValidationError(source, f"must be shorter than the run ({duration} s)", config.warmup)
    if config.ramp_up >= duration:
        raise ValidationError("--ramp-up", f"must be shorter than the run ({duration} s)", config.ramp_up)


def from_environment(
    environ: Mapping[str, str] | None = None,
    *,
    clients: int | None = None,
    duration: int | None = None,
    mode: str | None = None,
    seed: int | None = None,
    kills: int | None = None,
    rate: float | None = None,
    ramp_up: float = 0.0,
    warmup: float = 0.0,
) -> StressConfig:
    """Build a config from `environ` (default `os.environ`); explicit arguments (flags) win.

    `rate` (operations/s, > 0), `ramp_up` and `warmup` (seconds, >= 0) come from flags only.
    """
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
        rate=None if rate is None else parse_number(rate, "--rate", positive=True),
        ramp_up=parse_number(ramp_up, "--ramp-up"),
        warmup=parse_number(warmup, "--warmup"),
    )
