"""Test-only fault hooks: deliberate bugs the stress suite must catch. All are off by default.

In the spirit of FoundationDB's BUGGIFY and SQLite's test hooks, each named fault switches on one
known-wrong behaviour inside the catalog, so `metafuse stress selfcheck` can prove that an invariant
fails when the bug it names is present. Never enable a fault outside a test: every one of them
loses or corrupts data on purpose.

Faults are enabled with `enabled(...)` in-process, or with `METAFUSE_FAULTS=name,...` in the
environment, which child processes inherit. The variable is read at import but checked lazily:
an unknown name does not break `import metafuse`; it raises `ValidationError` the first time a
fault is consulted (and the CLI reports it up front as one line, exit 2).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from .errors import ValidationError

FAULTS: dict[str, str] = {
    "lost_update": "save skips the expected-version check",
    "stale_cache": "the read cache ignores commits made through other connections (threads or processes)",
    "connection_leak": "Catalog.close leaves its connections open",
    "torn_write": "a write commits the dataset row and its fields in separate transactions",
    "unbounded_retry": "update never takes its locked last attempt and retries conflicts past max_attempts",
    "outside_blind": "the read cache ignores commits made by other SQLite clients (no WAL-index check)",
    "path_spelling": "change slots are keyed by the path as spelled, and trusted without the WAL-index check",
    "close_unguarded": "close() closes connections other threads are using, and later calls are not refused",
    "fork_unsafe": "a forked child keeps the parent's locks and connections instead of fresh ones",
    "stall": "about one write in 100 holds the writer lock for 0.2 s (a planted pause, for latency demos)",
    "unvalidated_reads": "a transaction on an object store checks only what it wrote, not what it read",
    "unchecked_log": "an object-store append is acknowledged without checking where it landed in the log",
    "trusting_probe": "an object-store read takes an absent next log entry for the end (a HEAD, no listing)",
    "group_abort": "one conflicting write aborts its whole group commit: every write of the group fails",
    "early_ack": "group-commit followers are acknowledged before the shared COMMIT",
    "fork_queue": "a forked child keeps the parent's group-commit write queue instead of an empty one",
    "unchecked_group": "one save of a group on an object store is acknowledged though the log entry it lost"
    " to changed its dataset",
}
"""Every fault's name and the bug it introduces."""

ENV_VAR = "METAFUSE_FAULTS"
"""Environment variable naming the faults to enable, comma-separated."""

_active: frozenset[str] = frozenset()
_env_error: ValidationError | None = None


def parse(text: str) -> frozenset[str]:
    """Return the fault names in a comma-separated list; unknown names are a `ValidationError`."""
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(names - FAULTS.keys())
    if unknown:
        raise ValidationError(
            f"fault name in {ENV_VAR}", f"known faults: {', '.join(sorted(FAULTS))}", unknown[0]
        )
    return names


def check_environment() -> None:
    """Raise the `ValidationError` for a bad `METAFUSE_FAULTS`, if it has one (the CLI calls this first)."""
    if _env_error is not None:
        raise _env_error


def active(name: str) -> bool:
    """Return whether the fault `name` is switched on (cheap enough for hot paths)."""
    if _env_error is not None:
        raise _env_error
    return name in _active


def current() -> frozenset[str]:
    """Return the names of the faults switched on now."""
    check_environment()
    return _active


@contextlib.contextmanager
def enabled(*names: str) -> Iterator[None]:
    """Switch faults on for the duration of a `with` block (process-wide, not thread-local)."""
    global _active
    check_environment()
    previous = _active
    _active = previous | parse(",".join(names))
    try:
        yield
    finally:
        _active = previous


try:
    _active = parse(os.environ.get(ENV_VAR, ""))
except ValidationError as _error:
    _env_error = _error
