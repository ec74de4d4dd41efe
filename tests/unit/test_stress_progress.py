"""The status line: drawn on a terminal, absent otherwise or when quiet."""

from __future__ import annotations

import io

from metafuse.stress.progress import Progress


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


def test_no_progress_when_quiet_or_not_a_terminal() -> None:
    assert not Progress.wanted(True, _Terminal())
    assert not Progress.wanted(False, io.StringIO())
    stream = io.StringIO()
    progress = Progress("demo", 10, enabled=Progress.wanted(False, stream), stream=stream)
    progress.update([1, 0, 0], elapsed=1.0)
    progress.clear()
    assert stream.getvalue() == ""
