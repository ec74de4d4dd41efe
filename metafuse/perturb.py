"""Schedule perturbation: named interleaving points that, when switched on, make races likely.

In the spirit of FoundationDB's BUGGIFY. Each entry of `POINTS` names a place in the catalog's
concurrent code where another thread or process may run between two steps, and says which two
steps it separates. A call site reads

    if perturb.ON:
        perturb.point("hit: validated -> served")

so with the mode off (the default) a point costs one module-attribute test and nothing else.
With the mode on, each point, with probability `p`, either yields the GIL (`time.sleep(0)`) or
sleeps a random time of up to `MAX_SLEEP` seconds, chosen half and half. A yield lets another
ready thread run a few bytecodes in the gap; a sleep lets another thread or process finish a
whole cache hit, read or commit (tens of microseconds to about a millisecond) inside it, which
is what turns a window of a few instructions into a race that a short run meets every time.

The mode is switched on with `METAFUSE_PERTURB="seed=5,p=0.1"` in the environment (read at import,
so child processes inherit it), or in-process with `enabled(seed, p)`. Invalid text does not
break `import metafuse`: the mode stays off and `check_environment()` raises the
`ValidationError` naming the variable (the CLI reports it up front as one line, exit 2).

Holding a thread at a point (`hold`) makes one interleaving certain instead of likely: the
thread that arms a hold stops at the next point of that name it reaches, and stays there until
another thread releases it, so a probe can run other steps inside the window the point names.

Reproducing a schedule: every thread draws from its own `random.Random`, seeded from the seed,
the process's name (`multiprocessing`'s, when it is in use) and the thread's name, so the same
seed gives each named thread the same sequence of choices in every run. Which thread gets to a
point first is still up to the operating system: a seed reproduces a schedule as closely as
threads allow, not exactly.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from typing import NamedTuple

from .errors import ValidationError

POINTS: dict[str, str] = {
    "read: stamp loaded -> database read": (
        "a cache miss has loaded its freshness stamp (slot token, epoch) and not yet read the row"
    ),
    "stamp: token loaded -> epoch loaded": "a stamp has its dataset's slot token but not yet the epoch",
    "hit: entry found -> validated": "a cache hit has taken an entry and not yet checked its stamp",
    "hit: known checked -> slot and epoch checked": (
        "a hit's WAL-index check passed and its slot token and epoch are not yet compared"
    ),
    "hit: validated -> served": "a cache hit's stamp passed its check and the entry is not yet returned",
    "read: database read -> cached": "a cache miss has read the row and not yet stored it in the cache",
    "group: lead taken -> batch collected": (
        "a group-commit leader holds the writer lock and has not yet taken the waiting writes"
    ),
    "commit: changes made -> COMMIT": "a write transaction ran its SQL and has not yet committed",
    "commit: COMMIT -> accounted": (
        "a transaction committed and has not yet accounted for it (epoch/known, slot tokens, cache)"
    ),
    "settle: known accounted -> slots finished": (
        "a commit's WAL-index header is accounted for and its slot tokens are still PENDING"
    ),
    "slot: mark checked -> fresh token stored": (
        "a finishing writer found its PENDING mark in the slot (under the slot lock) and has not yet"
        " replaced it"
    ),
    "settle: header read -> known accounted": (
        "a writer read the WAL-index header under the slot lock and has not yet recorded it as known"
    ),
    "group: COMMIT -> followers acknowledged": (
        "a group's shared transaction has ended and its writes are not yet told how they ended"
    ),
    "log: entry put -> placement checked": (
        "an object-store append's PUT returned and where it landed in the log is not yet confirmed"
    ),
    "fork: before -> calls drained": "a fork is about to hold new calls back and wait for those in flight",
    "fork: call in flight -> waited out": (
        "a fork found another thread inside a catalog call or transaction and waits for it to end"
    ),
    "fork: child renewed -> child runs": "a forked child renewed its locks and connections and goes on",
    "fork: parent resumed -> parent runs": "the parent of a fork let its held-back calls go and goes on",
    "close: closed flag set -> connections closed": (
        "close() has marked the catalog closed and dropped its guard, and not yet closed connections"
    ),
}
"""Every interleaving point by name ("step before -> step after"), with what lies between the two."""

ENV_VAR = "METAFUSE_PERTURB"
"""Environment variable switching the mode on: `seed=N,p=P` (p a probability; default 0.1)."""

MAX_SLEEP = 0.001
"""Longest pause at a point, in seconds (see the module docstring for why about a millisecond)."""

DEFAULT_P = 0.1
"""Probability that a point pauses, when `p=` is not given."""


class Settings(NamedTuple):
    """The mode's seed and the probability that each point pauses."""

    seed: int
    p: float

    def __str__(self) -> str:
        return f"seed={self.seed},p={self.p:g}"


ON = False
"""Whether the mode is on. Call sites test this before calling `point` (the only cost when off)."""

_settings: Settings | None = None
_env_error: ValidationError | None = None
_local = threading.local()
_generation = 0  # bumped by every switch and fork: a thread's generator from before is not reused
_fired: dict[str, int] = {}
_holds: dict[int, Hold] = {}  # thread ident -> the hold it armed
_holds_lock = threading.Lock()
HOLD_LIMIT = 5.0
"""Longest a held thread waits for its release, in seconds: a probe that fails never hangs a run."""
_forks = 0  # forks in this process's line of descent: a child's threads draw a sequence of their own


def parse(text: str) -> Settings:
    """Return the settings in `seed=N,p=P` text; anything else is a `ValidationError` naming the variable."""
    rule = "expected seed=N (a whole number >= 0) and optionally p=P (0 < P <= 1), e.g. seed=5,p=0.1"
    fields: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in ("seed", "p") or key in fields:
            raise ValidationError(ENV_VAR, rule, text)
        fields[key] = value.strip()
    if "seed" not in fields:
        raise ValidationError(ENV_VAR, rule, text)
    try:
        seed = int(fields["seed"])
        p = float(fields.get("p", DEFAULT_P))
    except ValueError:
        raise ValidationError(ENV_VAR, rule, text) from None
    if seed < 0 or not 0 < p <= 1:
        raise ValidationError(ENV_VAR, rule, text)
    return Settings(seed, p)


def check_environment() -> None:
    """Raise the `ValidationError` for a bad `METAFUSE_PERTURB`, if it has one (the CLI calls this first)."""
    if _env_error is not None:
        raise _env_error


def current() -> Settings | None:
    """The settings in force, or None when the mode is off."""
    return _settings


def fired() -> dict[str, int]:
    """How often each point paused in this process since the mode was last switched (approximate
    under threads: two threads pausing at once may count once)."""
    return dict(_fired)


def _switch(settings: Settings | None) -> None:
    global ON, _settings, _generation
    _settings = settings
    _generation += 1
    _fired.clear()
    ON = settings is not None or bool(_holds)


class Hold:
    """One thread stopped at one point until another thread releases it (see `hold`).

    `reached` is set when the thread that armed the hold arrives at the point; it then waits
    until `release()` (or `HOLD_LIMIT` seconds), and goes on. A hold fires once.
    """

    def __init__(self, name: str) -> None:
        if name not in POINTS:
            raise ValueError(f"unknown interleaving point {name!r}: add it to metafuse.perturb.POINTS")
        self.point = name
        self.reached = threading.Event()
        self._released = threading.Event()

    def release(self) -> None:
        """Let the held thread go on (at once, if it has not arrived yet)."""
        self._released.set()

    def _wait_released(self) -> None:
        self._released.wait(HOLD_LIMIT)


@contextlib.contextmanager
def hold(name: str) -> Iterator[Hold]:
    """Arm a hold at point `name` for the calling thread, for a `with` block; yield it.

    Works whether or not the mode is on (it switches call sites on while any hold is armed,
    without pausing anywhere else). On leaving the block the hold is disarmed and released, so
    a thread is never left waiting for a release that will not come.
    """
    global ON
    armed = Hold(name)
    ident = threading.get_ident()
    with _holds_lock:
        _holds[ident] = armed
        ON = True
    try:
        yield armed
    finally:
        armed.release()
        with _holds_lock:
            if _holds.get(ident) is armed:
                del _holds[ident]
            ON = _settings is not None or bool(_holds)


@contextlib.contextmanager
def enabled(seed: int, p: float = DEFAULT_P) -> Iterator[Settings]:
    """Switch the mode on for a `with` block (process-wide), and in child processes started meanwhile.

    Sets `METAFUSE_PERTURB` for the block too, so clients started as processes perturb alike.
    """
    settings = parse(f"seed={seed},p={p!r}")
    previous, previous_env = _settings, os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = str(settings)
    _switch(settings)
    try:
        yield settings
    finally:
        _switch(previous)
        if previous_env is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = previous_env


def _identity() -> str:
    process = sys.modules.get("multiprocessing")
    name = process.current_process().name if process is not None else "MainProcess"
    return f"{name}/{_forks}/{threading.current_thread().name}"


def rng() -> random.Random:
    """The calling thread's generator of choices (derived from the seed, process and thread names)."""
    chooser: random.Random | None = getattr(_local, "rng", None)
    if chooser is None or getattr(_local, "generation", -1) != _generation:
        settings = _settings or Settings(0, DEFAULT_P)
        key = zlib.crc32(_identity().encode("utf-8"))
        chooser = _local.rng = random.Random(settings.seed * 2**32 + key)
        _local.generation = _generation
    return chooser


def point(name: str) -> None:
    """An interleaving point named in `POINTS`: with the mode on, maybe yield or sleep a moment.

    Call only under `if perturb.ON:`. Guarantees nothing about the order of threads; it only makes
    a different order likely. Never raises for a known name, never holds a lock.
    """
    if _holds:
        armed = _holds.get(threading.get_ident())
        if armed is not None and armed.point == name:
            with _holds_lock:
                _holds.pop(threading.get_ident(), None)
            armed.reached.set()
            armed._wait_released()
            return
    settings = _settings
    if settings is None:
        return
    if name not in POINTS:
        raise ValueError(f"unknown interleaving point {name!r}: add it to metafuse.perturb.POINTS")
    chooser = rng()
    if chooser.random() >= settings.p:
        return
    _fired[name] = _fired.get(name, 0) + 1
    time.sleep(0 if chooser.random() < 0.5 else chooser.random() * MAX_SLEEP)


def _after_fork_in_child() -> None:
    global _forks, _generation, _holds_lock
    _forks += 1
    _generation += 1
    _holds.clear()  # the threads that armed them did not come along
    _holds_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)

try:
    _text = os.environ.get(ENV_VAR, "").strip()
    _switch(parse(_text) if _text else None)
except ValidationError as _error:
    _env_error = _error
