"""A single self-updating status line on stderr, shown only on a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO


class Progress:
    """Redraws one status line at most four times a second; silent when disabled."""

    def __init__(self, label: str, duration: float, *, enabled: bool, stream: TextIO | None = None):
        self._label = label
        self._duration = duration
        self._stream = stream or sys.stderr
        self._enabled = enabled
        self._last = 0.0
        self._drawn = False

    @staticmethod
    def wanted(quiet: bool, stream: TextIO | None = None) -> bool:
        """Whether to show progress: not quiet and writing to a terminal."""
        target = stream or sys.stderr
        return not quiet and target.isatty()

    def update(self, live: Sequence[int], elapsed: float) -> None:
        """Redraw from the live counters (ops, conflicts, errors per client)."""
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.25:
            return
        self._last = now
        ops = sum(live[0::3])
        conflicts = sum(live[1::3])
        errors = sum(live[2::3])
        rate = ops / elapsed if elapsed > 0 else 0.0
        shown = min(elapsed, self._duration)
        self._stream.write(
            f"\r{self._label}: {shown:5.1f}/{self._duration:.0f}s  ops {ops}  {rate:,.0f} ops/s"
            f"  conflicts {conflicts}  errors {errors}\x1b[K"
        )
        self._stream.flush()
        self._drawn = True

    def clear(self) -> None:
        """Erase the status line."""
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._drawn = False
