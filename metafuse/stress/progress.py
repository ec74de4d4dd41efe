"""Progress of a running scenario on stderr: a redrawn status line on a terminal, or a plain line
every N seconds for logs (as pgbench `-P N` does), so a CI log shows the run is alive.

Owns `Progress`. It only reads the live counters it is handed and writes to its stream: it opens no
catalog, starts nothing and imports nothing of metafuse.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO, Union

DEFAULT_EVERY = 5.0
"""Seconds between progress lines when stderr is not a terminal and `--progress` is not given."""

Setting = Union[bool, float]
"""True: a redrawn line; a number of seconds: a line that often; False (or 0): silent."""


class Progress:
    """Shows the live counters of one scenario run; silent when disabled.

    On a terminal (`enabled=True`) one status line is redrawn at most four times a second. With
    `enabled` a number of seconds, one line is printed every that many seconds, each with the rate
    over the seconds since the line before, and nothing is ever redrawn or erased.
    """

    def __init__(self, label: str, duration: float, *, enabled: Setting, stream: TextIO | None = None):
        self._label = label
        self._duration = duration
        self._stream = stream or sys.stderr
        self._redraw = enabled is True
        self._every = 0.0 if isinstance(enabled, bool) else max(0.0, float(enabled))
        self._last = 0.0
        self._drawn = False
        self._next_line = self._every
        self._previous = (0.0, 0)  # elapsed and ops at the last periodic line

    @staticmethod
    def wanted(quiet: bool, stream: TextIO | None = None, every: float | None = None) -> Setting:
        """What to show: nothing when quiet; a line every `every` s when given; else a redrawn
        line on a terminal, or a line every `DEFAULT_EVERY` s when stderr is not a terminal."""
        if quiet:
            return False
        if every is not None:
            return every
        target = stream or sys.stderr
        return True if target.isatty() else DEFAULT_EVERY

    def update(self, live: Sequence[int], elapsed: float) -> None:
        """Show the live counters (ops, conflicts, errors per client) if it is time to."""
        if self._redraw:
            self._draw(live, elapsed)
        elif self._every and elapsed >= self._next_line:
            self._line(live, elapsed)

    def _draw(self, live: Sequence[int], elapsed: float) -> None:
        now = time.monotonic()
        if now - self._last < 0.25:
            return
        self._last = now
        ops, conflicts, errors = _totals(live)
        rate = ops / elapsed if elapsed > 0 else 0.0
        shown = min(elapsed, self._duration)
        self._stream.write(
            f"\r{self._label}: {shown:5.1f}/{self._duration:.0f}s  ops {ops}  {rate:,.0f} ops/s"
            f"  conflicts {conflicts}  errors {errors}\x1b[K"
        )
        self._stream.flush()
        self._drawn = True

    def _line(self, live: Sequence[int], elapsed: float) -> None:
        ops, conflicts, errors = _totals(live)
        since, ops_before = self._previous
        rate = (ops - ops_before) / (elapsed - since) if elapsed > since else 0.0
        self._previous = (elapsed, ops)
        while self._next_line <= elapsed:
            self._next_line += self._every
        shown = min(elapsed, self._duration)
        self._stream.write(
            f"progress: {self._label} {shown:.0f}/{self._duration:.0f} s: {ops:,} ops,"
            f" {rate:,.1f} ops/s, {_count(conflicts, 'conflict')}, {_count(errors, 'error')}\n"
        )
        self._stream.flush()

    def clear(self) -> None:
        """Erase the status line (periodic lines stay)."""
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._drawn = False


def _totals(live: Sequence[int]) -> tuple[int, int, int]:
    return sum(live[0::3]), sum(live[1::3]), sum(live[2::3])


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"
