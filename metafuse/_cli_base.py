"""What every `metafuse` subcommand shares: exit codes and a parser whose errors are one line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

EXIT_OK = 0
"""Success."""
EXIT_FAILED = 1
"""A conflict, a missing dataset, or (for stress) an invariant that did not hold."""
EXIT_USAGE = 2
"""Bad input or an unusable catalog."""
EXIT_BUSY = 3
"""The catalog stayed locked by another writer for longer than the busy timeout: try again."""
EXIT_THRESHOLD = 4
"""(stress) Every invariant held, but a `--threshold` on a figure did not."""
EXIT_INCONCLUSIVE = 5
"""(stress) No invariant failed, but one could not be judged: the run made too little progress."""
EXIT_INTERRUPTED = 130
"""Stopped by Ctrl-C (SIGINT); a stress run still prints and writes what it measured."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        """Print `prog: error: message (see prog --help)` and exit 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def whole_number(minimum: int, maximum: int | None = None) -> type[int]:
    """Return an argparse `type` accepting whole numbers from `minimum` to `maximum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"{text!r} must be {bound}")
        return value

    parse.__name__ = "whole number"
    return parse  # type: ignore[return-value]


def file_path(option: str) -> Callable[[str], str]:
    """Return an argparse `type` for `option` that refuses an empty (or blank) path."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{option} must name a file, not an empty string")
        return text

    parse.__name__ = "path"
    return parse
