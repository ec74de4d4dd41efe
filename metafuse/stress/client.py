"""`ClientContext`: what a scenario's client function uses to act, time, and report."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, MutableSequence
from typing import Any, Protocol, TypeVar

from ..catalog import Catalog
from ..errors import BusyError, ConflictError
from .recorder import Recorder

T = TypeVar("T")
log = logging.getLogger("metafuse.stress")


class Gate(Protocol):
    """Round synchronisation shared by every client of a run."""

    def next_round(self, client: ClientContext) -> bool:
        """Wait for every client; return False (for all of them alike) when the run is over."""
        ...


class ClientContext:
    """One client's view of a run. Used by exactly one client (thread or process).

    `call` times an operation and classifies its outcome: `ConflictError` is a conflict,
    `BusyError` is busy, anything else is an unexpected error (its message is kept).
    """

    def __init__(
        self,
        *,
        client: int,
        clients: int,
        mode: str,
        path: str,
        catalog: Catalog | None,
        shared: dict[str, Any],
        seed: int,
        start: float,
        deadline: float,
        record: bool,
        live: MutableSequence[int],
        gate: Gate,
        report: Callable[[Any], None],
        stopped: Callable[[], bool],
    ) -> None:
        self.client = client
        self.clients = clients
        self.mode = mode
        self.path = path
        self._catalog = catalog
        self.shared = shared
        self.rng = random.Random(seed * 1_000_003 + client)
        self.start = start
        self.deadline = deadline
        self.recording = record
        self.recorder = Recorder(client=client)
        self.last_start = 0.0
        self.last_end = 0.0
        self._live = live
        self._gate = gate
        self._report = report
        self._stopped = stopped

    @property
    def catalog(self) -> Catalog:
        """The catalog this client shares (thread mode) or owns (process mode)."""
        if self._catalog is None:
            raise RuntimeError("this scenario opens its own catalogs (shared_catalog=False)")
        return self._catalog

    def should_stop(self) -> bool:
        """Return True once the run's time is up or the runner asked clients to stop."""
        return time.monotonic() >= self.deadline or self._stopped()

    def call(self, op: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[str, T | None]:
        """Run `fn(*args, **kwargs)` as operation `op`; return (outcome, value or None)."""
        start = time.monotonic()
        value: T | None = None
        try:
            value = fn(*args, **kwargs)
            outcome = "ok"
        except ConflictError as error:
            outcome = "conflict"
            log.debug("client %d: %s conflict: %s", self.client, op, error)
        except BusyError as error:
            outcome = "busy"
            log.debug("client %d: %s busy: %s", self.client, op, error)
        except Exception as error:  # an unexpected error is a result to report, not a crash
            outcome = "error"
            self.recorder.error(f"{op}: {type(error).__name__}: {error}")
            log.debug("client %d: %s error", self.client, op, exc_info=True)
        end = time.monotonic()
        self.last_start, self.last_end = start, end
        base = self.client * 3
        live = self._live
        live[base] += 1
        if outcome == "conflict":
            live[base + 1] += 1
        elif outcome == "error":
            live[base + 2] += 1
        if self.recording:
            self.recorder.add(op, outcome, end - start, int(end - self.start))
        else:
            self.recorder.count_only(op, outcome)
        return outcome, value

    def event(self, *values: Any) -> None:
        """Append one history event (kept only when recording is on)."""
        if self.recording:
            self.recorder.events.append(values)

    def report(self, value: Any) -> None:
        """Send `value` to the runner now (survives this client being killed afterwards)."""
        self._report(value)

    def next_round(self) -> bool:
        """Wait until every client reaches this point; False for all when the run is over."""
        return self._gate.next_round(self)
