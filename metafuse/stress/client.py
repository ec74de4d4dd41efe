"""`ClientContext`: what a scenario's client function uses to act, time, and report."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, MutableSequence
from time import monotonic_ns
from typing import Any, Protocol, TypeVar

from ..catalog import Catalog
from ..errors import BusyError, ConflictError
from .history import HistoryWriter
from .recorder import BUSY, CONFLICT, ERROR, OK, OUTCOMES, Recorder

T = TypeVar("T")
_PUBLISH_EVERY_NS = 200_000_000  # between updates of the live progress counters
log = logging.getLogger("metafuse.stress")


class Gate(Protocol):
    """Round synchronisation shared by every client of a run."""

    def next_round(self, client: ClientContext) -> bool:
        """Wait for every client; return False (for all of them alike) when the run is over."""
        ...


class Board:
    """A few integers every client of a run can read at any time, without a lock or a syscall.

    Threads share a list; processes share memory (`multiprocessing.RawArray`). Readers load a
    value directly; `raise_to` takes a lock, so concurrent writers never lower a value.
    """

    SIZE = 8

    def __init__(self, values: MutableSequence[int], lock: Any) -> None:
        self._values = values
        self._lock = lock

    def read(self, index: int) -> int:
        """Return the value at `index`."""
        return int(self._values[index])

    def raise_to(self, index: int, value: int) -> None:
        """Set the value at `index` to `value` if that is larger."""
        with self._lock:
            if value > self._values[index]:
                self._values[index] = value


class ClientContext:
    """One client's view of a run. Used by exactly one client (thread or process).

    `call` times an operation and classifies its outcome: `ConflictError` is a conflict,
    `BusyError` is busy, anything else is an unexpected error (its message is kept). After a
    call, `last_start`, `last_end` and `last_error` describe it.
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
        board: Board,
        history: str | None = None,
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
        self._start_ns = self._end_ns = 0
        self._run_start_ns = int(start * 1e9)
        self.last_error: Exception | None = None
        self._live = live
        self._ops = self._conflicts = self._errors = 0
        self._next_publish = 0
        self._gate = gate
        self._report = report
        self._stopped = stopped
        self.board = board
        # This client's operations, when the run records a history (`--history`); else None.
        self.history = None if history is None else HistoryWriter(history, client)

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
        start = monotonic_ns()
        value: T | None = None
        self.last_error = None
        try:
            value = fn(*args, **kwargs)
            outcome = OK
        except ConflictError as error:
            self.last_error = error
            outcome = CONFLICT
            self._conflicts += 1
            log.debug("client %d: %s conflict: %s", self.client, op, error)
        except BusyError as error:
            self.last_error = error
            outcome = BUSY
            log.debug("client %d: %s busy: %s", self.client, op, error)
        except Exception as error:  # an unexpected error is a result to report, not a crash
            self.last_error = error
            outcome = ERROR
            self._errors += 1
            self.recorder.error(f"{op}: {type(error).__name__}: {error}")
            log.debug("client %d: %s error", self.client, op, exc_info=True)
        end = monotonic_ns()
        self._start_ns, self._end_ns = start, end
        self._ops += 1
        if end >= self._next_publish:
            self.publish()
            self._next_publish = end + _PUBLISH_EVERY_NS
        if self.recording:
            self.recorder.add(op, outcome, end - start, (end - self._run_start_ns) // 1_000_000_000)
        else:
            self.recorder.count_only(op, outcome)
        return OUTCOMES[outcome], value

    @property
    def last_start(self) -> float:
        """When the last `call` started (`time.monotonic` seconds, comparable across processes)."""
        return self._start_ns / 1e9

    @property
    def last_end(self) -> float:
        """When the last `call` returned (`time.monotonic` seconds)."""
        return self._end_ns / 1e9

    def publish(self) -> None:
        """Copy this client's running totals to the live counters the progress line reads.

        Done a few times a second, not per operation: in process mode the counters are shared
        memory, and writing them on every operation would bounce one cache line between cores.
        """
        base = self.client * 3
        self._live[base] = self._ops
        self._live[base + 1] = self._conflicts
        self._live[base + 2] = self._errors

    def record(
        self, op: str, key: str, value: Any, *, expected: int | None = None, token: str | None = None
    ) -> None:
        """Add the last `call` to the history as `op` ("get", "create" or "save") on `key`.

        `value` is what the call returned; `expected` and `token` are the save's expected version
        and the token a write wrote. Scenarios call this only when `self.history` is not None,
        so a run without a history allocates nothing per operation.
        """
        if self.history is not None:
            self.history.call(
                op, key, self._start_ns, self._end_ns, value, self.last_error, expected=expected, token=token
            )

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
