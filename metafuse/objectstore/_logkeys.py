"""The commit log's objects on the store: entry keys, listings, the known end, the retry budget.

Owns how an entry's number becomes a key and back, one LIST of the log's keys, the highest
sequence this client has seen, and the pause between tries when the store is away. It may not
read or write an entry, or decide anything about the log's history: `_logread`, `_logplacement`
and `_logappend` build on it, and `log.CommitLog` puts them together.
"""

from __future__ import annotations

import random
import re
import threading
import time
from typing import Callable, TypeVar

from ._base import ObjectStore
from .errors import LogCorrupt, StoreUnavailable

T = TypeVar("T")

SEQUENCE_DIGITS = 20
"""Digits of the zero-padded sequence in an entry's key; lexical order is then numeric order."""

TRUNCATED_KEY = "truncated.json"
"""Created under the prefix before the first entry is ever deleted (read by older clients)."""

SETTLE_SECONDS = 60.0
"""Default: how long an append keeps re-sending an entry whose write was ambiguous."""

RACE_BACKOFF_CAP = 0.2
"""Default: the longest pause, in seconds, between two tries of an append that keeps losing."""

MAX_WAIT = 30.0
"""Default: how many seconds one append may spend losing log numbers before it gives up."""

_ENTRY_NAME = re.compile(r"^(\d{" + str(SEQUENCE_DIGITS) + r"})\.json$")


class LogKeys:
    """The settings of a commit log and its keys on the store (see `log.CommitLog` for each
    argument); `known_end` and `key` are safe to use from any thread."""

    def __init__(
        self,
        store: ObjectStore,
        prefix: str = "",
        *,
        max_races: int = 1000,
        max_unavailable: int = 12,
        backoff: float = 0.01,
        sleep: Callable[[float], None] = time.sleep,
        retention: float | None = None,
        read_workers: int = 8,
        settle_seconds: float = SETTLE_SECONDS,
        race_backoff_cap: float = RACE_BACKOFF_CAP,
        max_wait: float | None = MAX_WAIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.store = store
        self.directory = prefix + "log/"
        self.truncated_key = prefix + TRUNCATED_KEY
        self.retention = retention
        self.read_workers = read_workers
        """Entries a catch-up reads at once (each a GET): round trips overlap, not bytes."""
        self.max_races = max_races
        self.max_unavailable = max_unavailable
        self.backoff = backoff
        self.settle_seconds = settle_seconds
        self.race_backoff_cap = race_backoff_cap
        self.max_wait = max_wait
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._known_end = 0
        self.skip_placement_check = False
        """Acknowledge appends without `_check_placed` (the `unchecked_log` fault; never in use)."""
        self.trust_absent_next = False
        """`moved` takes an absent next entry for the end (the `trusting_probe` fault; never in use)."""

    def key(self, sequence: int) -> str:
        """The object key of entry `sequence`."""
        if sequence < 1:
            raise ValueError(f"log sequences start at 1, got {sequence}")
        return f"{self.directory}{sequence:0{SEQUENCE_DIGITS}d}.json"

    @property
    def known_end(self) -> int:
        """The highest sequence this object has seen exist (0 before it has seen any)."""
        with self._lock:
            return self._known_end

    def _list(self, start_after: str, limit: int | None = None) -> list[str]:
        """The log's keys after `start_after` (one LIST), without a folder marker: the empty
        object `log/` that some tools create for a "folder", which sorts before every entry."""
        if start_after:
            return self.store.list(self.directory, start_after=start_after, limit=limit)
        keys = self.store.list(self.directory, limit=None if limit is None else limit + 1)
        keys = [key for key in keys if key != self.directory]
        return keys if limit is None else keys[:limit]

    def _before(self, sequence: int) -> str:
        """The `start_after` of a listing that begins with entry `sequence` (all for 0 and 1)."""
        return self.key(sequence - 1) if sequence > 1 else ""

    def _with_store(self, call: Callable[[], T]) -> T:
        """Run a read, retrying `StoreUnavailable` within the unavailability budget."""
        rng = random.Random()
        for attempt in range(1, self.max_unavailable + 2):
            try:
                return call()
            except StoreUnavailable:
                if attempt > self.max_unavailable:
                    raise
                self._pause(attempt, rng)
        raise AssertionError("unreachable")  # pragma: no cover

    def _pause(self, attempt: int, rng: random.Random) -> float:
        """Sleep a jittered exponential backoff for `attempt`; return the seconds asked for."""
        seconds: float = min(1.0, self.backoff * 2 ** min(attempt - 1, 30)) * (0.5 + rng.random())
        self._sleep(seconds)
        return seconds

    def _saw(self, sequence: int) -> None:
        with self._lock:
            if sequence > self._known_end:
                self._known_end = sequence

    def _sequence_of(self, key: str) -> int:
        match = _ENTRY_NAME.match(key[len(self.directory) :]) if key.startswith(self.directory) else None
        if match is None:
            raise LogCorrupt(key, f"not an entry name (<{SEQUENCE_DIGITS} digits>.json) in {self.directory}")
        return int(match.group(1))
