"""The watchdog's bounds: how long the runner waits for clients before it declares them hung.

Owns the limits only; the thread and process runs (`thread_run`, `process_run`) apply them. Starts,
stops and kills nothing itself, and imports nothing of the runner.
"""

from __future__ import annotations

WATCHDOG_GRACE = 5.0
"""Seconds past the duration that clients get to finish before they are declared hung."""
STARTUP_TIMEOUT = 60.0
"""Seconds client processes get to start before the run begins without the stragglers."""
