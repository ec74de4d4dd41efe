"""What every `metafuse` subcommand shares: exit codes and a parser whose errors are one line.

Owns the exit codes, `OneLineParser`, the argument types and the guard on standard output that
`cli`, the stress commands and the test store's command share. It imports nothing of the catalog,
opens no catalog and defines no command.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from typing import NoReturn, TextIO

EXIT_OK = 0
"""Success."""
EXIT_FAILED = 1
"""A conflict, a missing dataset, or (for stress) an invariant that did not hold."""
EXIT_USAGE = 2
"""Bad input, an unusable catalog, or standard output that cannot be written (a full disk)."""
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


class OutputError(Exception):
    """Standard output refused a write for a reason other than a closed pipe (a full disk, an I/O
    error): the command stops, with one line on stderr naming the reason."""

    def __init__(self, error: OSError) -> None:
        self.reason = error.strerror or str(error)
        super().__init__(f"cannot write to standard output ({self.reason})")


class GuardedStdout:
    """Stands in for `sys.stdout` while one command runs, so that a failed write ends one way.

    A closed pipe (the reader went away, as `head` does) raises `BrokenPipeError` as before,
    unless `keep_going` is set: then the first failed write points standard output at /dev/null
    and every later write is dropped, so a command whose real product is its files (a stress
    run's --json) finishes them. Any other failed write raises `OutputError`.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.keep_going = False
        self.closed_early = False
        """True once a closed pipe was met under `keep_going`: what follows is dropped."""

    def write(self, text: str) -> int:
        """Write `text`, or drop it once the reader has gone (see the class)."""
        if self.closed_early:
            return len(text)
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self._reader_gone()
            return len(text)
        except OSError as error:
            raise OutputError(error) from None

    def flush(self) -> None:
        """Flush, with the same rules as `write`."""
        if self.closed_early:
            return
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._reader_gone()
        except OSError as error:
            raise OutputError(error) from None

    def _reader_gone(self) -> None:
        if not self.keep_going:
            raise BrokenPipeError(32, "Broken pipe")
        self.closed_early = True
        discard_stdout(self.stream)

    def __getattr__(self, name: str) -> object:
        return getattr(self.stream, name)


def discard_stdout(stream: TextIO | None = None) -> None:
    """Point standard output's descriptor at /dev/null, so that flushing what is still buffered
    (at interpreter exit, say) cannot fail a second time."""
    stream = stream if stream is not None else sys.stdout
    with contextlib.suppress(OSError, ValueError):  # the failure this follows, met again
        stream.flush()
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (captured in tests)
        pass
