"""Watching a forked child: whether it ran out of time, or was never given any.

A child that has not exited within its allowance is either hung (blocked on something it will
never get: a lock it inherited locked, a busy wait that cannot end) or starved (on a machine at
load 40 it spent its allowance queued for a CPU, or waiting on a saturated disk). Both look the
same from outside: the child is still there. What tells them apart is what the kernel says the
child was waiting for, so a `Watch` samples `/proc/<pid>/stat` (runnable, `R`; in uninterruptible
disk I/O, `D`; or blocked, sleeping) and `/proc/<pid>/schedstat` (the time it really ran), and
judges a child hung only if it had the machine for at least half of its allowance: it was blocked,
or ran, rather than queued for a CPU or waiting on the disk.

Where `/proc` cannot be read, every child still running at its deadline counts as hung, as before.
"""

from __future__ import annotations

import dataclasses
import time

HAD_THE_MACHINE = 0.5
"""Fraction of its allowance a child must have spent neither queued for a CPU nor in disk I/O
before a child still running at its deadline counts as hung. A clean child needs a few tens of
milliseconds of CPU; one that had the machine for half its allowance and is still there is stuck."""


@dataclasses.dataclass
class Watch:
    """What a child process waited for while it was watched (seconds, since `start`).

    Each `sample` reads the child's state and gives it the time since the previous sample:
    `runnable` (state `R`: running or queued for a CPU), `disk` (state `D`: uninterruptible, in
    practice disk I/O such as an fsync), and `cpu`, the time it really ran (`/proc/<pid>/schedstat`,
    in nanoseconds). The kernel's own queue-delay figure is not used: it only counts a wait once
    the task gets a CPU, so a child still queued at its deadline would show none.
    `readable` is False if `/proc` could not be read at the first sample.
    """

    pid: int
    start: float = dataclasses.field(default_factory=time.monotonic)
    runnable: float = 0.0
    disk: float = 0.0
    cpu: float = 0.0
    readable: bool = True
    _cpu_at_start: float | None = None
    _last: float | None = None

    def sample(self) -> None:
        """Read the child's figures now; call it as often as the caller polls the child."""
        now = time.monotonic()
        ran = _ran(self.pid)
        state = _state(self.pid)
        if ran is None or state is None:
            self.readable = self.readable and self._last is not None
            return
        if self._cpu_at_start is None:
            self._cpu_at_start = ran
        self.cpu = ran - self._cpu_at_start
        since = now - (self.start if self._last is None else self._last)
        if state == "R":
            self.runnable += since
        elif state == "D":
            self.disk += since
        self._last = now

    @property
    def elapsed(self) -> float:
        """Seconds from the start of the watch to its last sample (or to now, before any)."""
        return (time.monotonic() if self._last is None else self._last) - self.start

    @property
    def queued(self) -> float:
        """Seconds the child was runnable but not running: queued for a CPU."""
        return max(0.0, self.runnable - self.cpu)

    def starved(self) -> bool:
        """Whether the child spent more than `1 - HAD_THE_MACHINE` of its watched time queued for
        a CPU or in disk I/O (then a child that has not exited cannot be judged hung). A child
        blocked on a lock, or sleeping in a busy wait, is neither: it had the machine."""
        if not self.readable:
            return False
        elapsed = self.elapsed
        return elapsed - self.queued - self.disk < HAD_THE_MACHINE * elapsed

    def describe(self) -> str:
        """The figures, for a report: watched, queued for a CPU, in disk I/O, on a CPU."""
        return (
            f"{self.elapsed:.1f} s watched, {self.queued:.1f} s queued for a CPU,"
            f" {self.disk:.1f} s in disk I/O, {self.cpu:.2f} s on a CPU"
        )


def _ran(pid: int) -> float | None:
    """Seconds `pid` has run on a CPU (first field of /proc/<pid>/schedstat)."""
    try:
        with open(f"/proc/{pid}/schedstat", encoding="ascii") as file:
            return int(file.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def _state(pid: int) -> str | None:
    """The scheduler state letter of `pid` (R, S, D, Z...), from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
            return file.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
