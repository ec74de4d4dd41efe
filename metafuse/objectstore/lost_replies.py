"""A network that loses replies and delivers requests late, for a `LocalDirStore`.

`LostReplies` is a put hook for `metafuse.objectstore.local.misbehaving`: conditional puts whose
reply is lost after they landed, or whose request lands late, after its client has given up on
it: the ambiguity an S3 client meets on a read timeout, without a network. The stress scenarios
on `log+file://` use it. It owns that hook only: it may not touch the store's files itself
(every write goes through the `land` the store hands it) nor import the catalog.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable

from ._base import PutMode
from .errors import AmbiguousWrite, ObjectStoreError

LOST_REPLY = "ReadTimeoutError: Read timeout on endpoint URL (no reply: the request may have landed)"
"""The cause `LostReplies` gives its `AmbiguousWrite`s, worded as `S3Store` words a read timeout."""


class LostReplies:
    """A put hook for `metafuse.objectstore.local.misbehaving`: a network that loses replies and
    delays requests, for the conditional puts (`create`, `update`) of keys under `prefix`.

    Each such put draws once from a `random.Random(seed)`:

    - with probability `lost`, it lands, then raises `AmbiguousWrite` (the reply was lost);
    - with probability `late`, it raises `AmbiguousWrite` at once, and lands `late_delay` seconds
      later from a thread of its own (the request arrived after its client timed out), whatever
      it then meets: an `AlreadyExists` or a changed tag goes nowhere, as a late request's reply
      goes to a client that stopped listening.

    Other puts pass through untouched. Safe to share between threads; `counts` says how many
    puts got each fate ("lost", "late" or "" for none). `drain()` waits until every late put
    has landed (or failed), so that a caller can check the store once nothing is in flight.
    """

    def __init__(
        self,
        seed: int | str,
        *,
        lost: float = 0.0,
        late: float = 0.0,
        late_delay: float = 0.02,
        prefix: str = "",
    ) -> None:
        if lost < 0 or late < 0 or lost + late > 1:
            raise ValueError(f"lost ({lost}) and late ({late}) must be probabilities adding up to at most 1")
        self.lost = lost
        self.late = late
        self.late_delay = late_delay
        self.prefix = prefix
        self.counts: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._in_flight: list[threading.Thread] = []

    def __call__(self, key: str, data: bytes, mode: PutMode, land: Callable[[], str]) -> str:
        if mode.kind not in ("create", "update") or not key.startswith(self.prefix):
            return land()
        with self._lock:
            roll = self._rng.random()
            fate = "lost" if roll < self.lost else "late" if roll < self.lost + self.late else ""
            self.counts[fate] += 1
        if fate == "lost":
            with contextlib.suppress(ObjectStoreError):
                land()  # whatever the store answered, the answer is lost on the way back
            raise AmbiguousWrite(key, str(mode), LOST_REPLY)
        if fate == "late":
            request = threading.Thread(target=self._land_late, args=(land,), name="late-put", daemon=True)
            with self._lock:
                self._in_flight = [t for t in self._in_flight if t.is_alive()]
                self._in_flight.append(request)
            request.start()
            raise AmbiguousWrite(key, str(mode), LOST_REPLY)
        return land()

    def _land_late(self, land: Callable[[], str]) -> None:
        time.sleep(self.late_delay)
        with contextlib.suppress(Exception):  # nobody is listening for this reply any more
            land()

    def drain(self) -> None:
        """Wait until every late put made so far has landed or failed."""
        with self._lock:
            in_flight, self._in_flight = self._in_flight, []
        for request in in_flight:
            request.join()
