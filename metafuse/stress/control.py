"""`ProcessControl`: what a scenario's driver may do to a process run while it runs.

The process runner implements it; scenarios (kill_writers) depend on this interface only, so they
never import the runner that imports them.
"""

from __future__ import annotations

import random
from typing import Any, Protocol


class ProcessControl(Protocol):
    """A running process run, as a driver sees it: look at it, kill and replace clients.

    The runner calls the driver from its own loop, never concurrently, so a driver needs no lock
    for `state`.
    """

    rng: random.Random
    """A generator seeded from the run's seed, for the driver's random choices."""
    state: dict[str, Any]
    """The driver's own memory between calls (empty at the start of the run)."""

    @property
    def elapsed(self) -> float:
        """Seconds since the clients started."""
        ...

    @property
    def duration(self) -> int:
        """The run's duration in seconds."""
        ...

    @property
    def kills_wanted(self) -> int:
        """How many kills the run's configuration asks for."""
        ...

    def running(self) -> list[int]:
        """Client slots whose process is alive and has not finished."""
        ...

    def kill_and_replace(self, slot: int) -> None:
        """SIGKILL the client in `slot` and start a new one in its place."""
        ...
