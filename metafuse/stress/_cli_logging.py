"""How the stress commands log and what they print while they run: `METAFUSE_LOG`, --verbose, --quiet.

Owns the log level's environment variable, the `metafuse` logger's stderr handler and the two
output options every running command takes. Runs and judges nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ..errors import ValidationError

LOG_ENV = "METAFUSE_LOG"
"""Log level of `metafuse` on stderr: `debug` logs every conflict, retry, busy wait and invariant
check; `info`, `warning` (the default when unset), `error` and `critical` log less."""
LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
"""The values `METAFUSE_LOG` accepts (any case)."""


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument(
        "--verbose", action="store_true", help=f"log every conflict, retry and check (or {LOG_ENV}=debug)"
    )


def check_log_level() -> int:
    """Return the level `METAFUSE_LOG` names (WARNING when unset); an unknown value is a
    `ValidationError` listing the known ones."""
    raw = os.environ.get(LOG_ENV, "")
    word = raw.strip().lower()
    if not word:
        return logging.WARNING
    if word not in LOG_LEVELS:
        raise ValidationError(LOG_ENV, f"must be one of {', '.join(LOG_LEVELS)}", raw)
    return LOG_LEVELS[word]


def configure_logging(verbose: bool) -> None:
    """Send `metafuse` logs to stderr: warnings by default, the `METAFUSE_LOG` level when set,
    everything with --verbose."""
    level = logging.DEBUG if verbose else check_log_level()
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("metafuse: %(levelname)s: %(message)s"))
    logger = logging.getLogger("metafuse")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(level)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of each record, not at setup."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)
