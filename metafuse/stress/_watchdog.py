"""The watchdog: when clients still running past a run's end are hung, judged by their progress.

A client still running after the duration is not hung while it makes progress: on a machine
loaded far beyond its cores a client gets a few percent of a CPU, and the last operation, the
close and the report of a starved client can take many seconds of wall-clock time. So the
watchdog gives clients still running `WATCHDOG_GRACE` seconds past the last progress any of them
made, and never more than `WATCHDOG_CAP` seconds past the end (a client that spins without end
is hung too). Progress is CPU time used by the clients and by the threads and processes they
started, or operations they finished.

Owns these bounds, `Watchdog` and the progress readings; the thread and process runs
(`_thread_run`, `_process_run`) apply them. Starts, stops and kills nothing itself, and imports
nothing of the runner. Reads `/proc` (Linux); where there is none, progress is operations only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence

WATCHDOG_GRACE = 5.0
"""Seconds past the duration, and past the last progress of any client still running, that
clients get to finish before they are declared hung."""
WATCHDOG_CAP = 60.0
"""Seconds past the duration after which clients still running are declared hung, progress or not."""
STARTUP_TIMEOUT = 60.0
"""Seconds client processes get to start before the run begins without the stragglers."""
SAMPLE_EVERY = 0.25
"""Seconds between two readings of the clients' progress (taken only past the duration)."""
_UNREAD = object()


class Watchdog:
    """Says until when the clients still running past `deadline` may run before they are hung.

    `read` returns the clients' progress reading; any change between two samples is progress. The
    deadline itself counts as progress (the first sample past it is the baseline), so clients that
    make none past it are hung at `deadline` + `WATCHDOG_GRACE`, as under a fixed grace; each
    change seen moves that limit to the time it was seen + the grace, up to `deadline` +
    `WATCHDOG_CAP`. Not thread-safe: one watching thread calls `limit`.
    """

    def __init__(self, deadline: float, read: Callable[[], Hashable]) -> None:
        self.deadline = deadline
        self._read = read
        self._last: Hashable = _UNREAD
        self._progress_at = deadline
        self._sampled_at = float("-inf")

    def limit(self, now: float) -> float:
        """When the clients still running at `now` are hung, unless they make progress before then.

        Samples the reading first, when `now` is past the deadline and the last sample is
        `SAMPLE_EVERY` old. The limit never moves back, and never beyond `deadline` + the cap.
        """
        if now >= self.deadline and now - self._sampled_at >= SAMPLE_EVERY:
            self._sampled_at = now
            reading, last = self._read(), self._last
            self._last = reading
            if last is not _UNREAD and reading != last:
                self._progress_at = now
        return min(self._progress_at + WATCHDOG_GRACE, self.deadline + WATCHDOG_CAP)

    def expired(self, now: float) -> bool:
        """Whether the clients still running at `now` are hung (`limit` has passed)."""
        return now >= self.limit(now)


class ThreadClientsProgress:
    """The progress reading of clients run as threads of this process, from the moment it is made.

    Counts the threads started after it was made (the clients and every thread they start), the
    processes this one started after it was made with all their descendants, and the operations
    in `live`. Make it just before the client threads start.
    """

    def __init__(self, live: Sequence[int]) -> None:
        self._live = live
        self._threads_before = set(_task_ids())
        self._children_before = set(_children(_process_table(), os.getpid()))

    def __call__(self) -> Hashable:
        """The operations finished and the CPU ticks used so far by what the clients run on."""
        table = _process_table()
        started = [pid for pid in _children(table, os.getpid()) if pid not in self._children_before]
        watcher = threading.get_native_id()
        threads = sum(
            _thread_ticks(tid) for tid in _task_ids() if tid not in self._threads_before and tid != watcher
        )
        return sum(self._live), threads, _tree_ticks(table, started)


class ProcessClientsProgress:
    """The progress reading of clients run as processes: the operations in `live`, and the CPU
    ticks used by the client processes `pids()` names, by their descendants and by the children
    they have reaped."""

    def __init__(self, live: Sequence[int], pids: Callable[[], Iterable[int]]) -> None:
        self._live = live
        self._pids = pids

    def __call__(self) -> Hashable:
        """The operations finished and the CPU ticks used so far by the client processes' trees."""
        return sum(self._live), _tree_ticks(_process_table(), list(self._pids()))


_Table = dict[int, tuple[int, int]]
"""Every process: pid -> (parent pid, CPU ticks of its own and of the children it reaped)."""


def _stat_fields(path: str) -> list[bytes] | None:
    """The fields of a `/proc` stat file after the command name (field 3 first); None if unreadable."""
    try:
        with open(path, "rb") as stat:
            data = stat.read()
        return data[data.rindex(b")") + 2 :].split()
    except (OSError, ValueError):
        return None


def _process_table() -> _Table:
    """Every process `/proc` shows now (empty where there is no `/proc`)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return {}
    table: _Table = {}
    for name in names:
        if not name.isdigit():
            continue
        fields = _stat_fields(f"/proc/{name}/stat")
        if fields is None or len(fields) < 15:
            continue  # ended since the listing
        utime, stime, cutime, cstime = (int(field) for field in fields[11:15])
        table[int(name)] = (int(fields[1]), utime + stime + cutime + cstime)
    return table


def _children(table: _Table, pid: int) -> list[int]:
    return [child for child, (parent, _) in table.items() if parent == pid]


def _tree_ticks(table: _Table, roots: list[int]) -> int:
    """CPU ticks of the processes `roots` and all their descendants (each counted once)."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    seen: set[int] = set()
    pending = [pid for pid in roots if pid in table]
    while pending:
        pid = pending.pop()
        if pid not in seen:
            seen.add(pid)
            pending += children.get(pid, [])
    return sum(table[pid][1] for pid in seen)


def _task_ids() -> list[int]:
    """The native ids of this process's threads (empty where there is no `/proc`)."""
    try:
        return [int(name) for name in os.listdir("/proc/self/task") if name.isdigit()]
    except OSError:
        return []


def _thread_ticks(tid: int) -> int:
    """CPU ticks thread `tid` of this process has used (0 once it has ended)."""
    fields = _stat_fields(f"/proc/self/task/{tid}/stat")
    return 0 if fields is None or len(fields) < 13 else int(fields[11]) + int(fields[12])
