"""Progress: a redrawn line on a terminal, a plain line every N seconds elsewhere, none when quiet."""

from __future__ import annotations

import io

from metafuse.stress.progress import DEFAULT_EVERY, Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_one_line_and_clears_it() -> None:
    stream = _Terminal()
    progress = Progress("demo", 10, enabled=Progress.wanted(False, stream), stream=stream)
    progress.update([100, 3, 1, 50, 2, 0], elapsed=2.0)
    text = stream.getvalue()
    assert text.startswith("\r")
    assert "\n" not in text
    assert "ops 150" in text
    assert "75 ops/s" in text
    assert "conflicts 5" in text
    assert "errors 1" in text
    progress.clear()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_no_progress_when_quiet() -> None:
    assert Progress.wanted(True, _Terminal()) is False
    assert Progress.wanted(True, io.StringIO(), every=2.0) is False
    stream = io.StringIO()
    progress = Progress("demo", 10, enabled=Progress.wanted(True, stream), stream=stream)
    progress.update([1, 0, 0], elapsed=1.0)
    progress.update([9, 0, 0], elapsed=9.0)
    progress.clear()
    assert stream.getvalue() == ""


def test_without_a_terminal_a_line_every_five_seconds_by_default() -> None:
    assert Progress.wanted(False, io.StringIO()) == DEFAULT_EVERY == 5.0
    assert Progress.wanted(False, _Terminal(), every=2.0) == 2.0


def test_periodic_lines_are_plain_lines_with_the_rate_since_the_last_one() -> None:
    stream = io.StringIO()
    progress = Progress("demo", 30, enabled=5.0, stream=stream)
    progress.update([10, 0, 0], elapsed=1.0)  # too early: nothing yet
    assert stream.getvalue() == ""
    progress.update([500, 2, 0, 500, 1, 1], elapsed=5.0)
    progress.update([600, 2, 0, 600, 1, 1], elapsed=6.0)  # within the next interval: nothing
    progress.update([1000, 4, 0, 1000, 2, 1], elapsed=10.0)
    progress.clear()
    lines = stream.getvalue().splitlines()
    assert lines == [
        "progress: demo 5/30 s: 1,000 ops, 200.0 ops/s, 3 conflicts, 1 error",
        "progress: demo 10/30 s: 2,000 ops, 200.0 ops/s, 6 conflicts, 1 error",
    ]
    assert "\r" not in stream.getvalue()
    assert "\x1b" not in stream.getvalue()
