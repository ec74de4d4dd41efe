"""`ClientContext`: what a scenario's client function uses to act, time, and report.

Owns `ClientContext`, `Board`, `Schedule` and the `Gate` protocol. It opens and closes no catalog
(the runner hands one over, or none), starts no client and judges nothing; of the catalog it imports
only the public `Catalog` and two errors.
"""

from __future__ import annotations

import logging
import math
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
_STEP_NS = 200_000_000  # between folds of pending latencies and updates of the live counters
_STOP_POLL_NS = 20_000_000  # how often should_stop (and a paced wait) consults the stop request
_LATE_JOIN_NS = 100_000_000  # operations due this long before a paced client exists are skipped
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

    def add(self, index: int, amount: int = 1) -> None:
        """Add `amount` to the value at `index` (a count every client can contribute to)."""
        with self._lock:
            self._values[index] += amount


class Schedule:
    """Intended start times of one client's operations under an open-model load.

    The scenario's total `rate` (operations/s) is divided evenly among `clients`; client `c`'s
    operations are spaced `clients / rate` seconds apart and offset by `c / clients` of that
    spacing, so together the clients start operations at a constant rate from the run start.
    With `ramp_up` S > 0 the rate grows linearly from 0 to `rate` over the first S seconds (the
    n-th operation is due when the integral of the rate reaches n). Times are `monotonic_ns`.
    """

    def __init__(self, rate: float, clients: int, client: int, start_ns: int, ramp_up: float = 0.0) -> None:
        if not 0 < rate < math.inf:  # also refuses NaN
            raise ValueError(f"rate must be a positive number of operations per second, not {rate}")
        self.per_client = rate / clients
        self.phase = client / clients
        self.start_ns = start_ns
        self.ramp_up = max(0.0, ramp_up)

    def due(self, index: int) -> int:
        """When operation `index` (from 0) of this client is due, in `monotonic_ns` nanoseconds."""
        ops = index + self.phase  # how many of this client's operations are due before it
        rate, ramp = self.per_client, self.ramp_up
        if ramp > 0 and ops < rate * ramp / 2:
            offset = math.sqrt(2 * ramp * ops / rate)  # inside the ramp: ops = rate t^2 / 2S
        else:
            offset = ops / rate + ramp / 2
        return self.start_ns + int(offset * 1e9)

    def first_at_or_after(self, ns: int) -> int:
        """The index of the first operation due at or after `ns`."""
        index = 0
        seconds = (ns - self.start_ns) / 1e9
        if seconds > 0:  # invert `due` approximately, then step to the exact answer
            rate, ramp = self.per_client, self.ramp_up
            ops = rate * seconds * seconds / (2 * ramp) if seconds < ramp else rate * (seconds - ramp / 2)
            index = max(0, int(ops - self.phase) - 1)
        while self.due(index) < ns:
            index += 1
        return index


class ClientContext:
    """One client's view of a run. Used by exactly one client (thread or process).

    `call` times an operation and classifies its outcome: `ConflictError` is a conflict,
    `BusyError` is busy, anything else is an unexpected error (its message is kept). After a
    call, `last_start`, `last_end` and `last_error` describe it.

    Load models. Closed (no `rate`): each client starts its next operation when the last one
    returns; with `ramp_up` S, client `c` of N starts working S * c / N seconds into the run.
    Open (`rate` operations/s for the whole scenario): `call` waits for each operation's
    intended start (see `Schedule`) and measures its latency from that intended start, so a
    stall counts against every operation that should have started during it, not only the one
    it delayed (no coordinated omission). Operations that start within the first `warmup`
    seconds are counted (invariants judge them) but not measured: they are left out of the
    latency histograms, the per-second series and `Recorder.measured_counts`.

    Recording cost: a successful call appends its latency to a per-operation list; every
    200 ms of run time (at a call that ends past the mark) the lists are summarised into the
    histograms and the per-second series, and the live progress counters are updated.
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
        rate: float | None = None,
        ramp_up: float = 0.0,
        warmup: float = 0.0,
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
        self.rate = rate
        self.ramp_up = ramp_up
        self.warmup = warmup
        self._recorder = Recorder(client=client, warmup=warmup)
        self._start_ns = self._end_ns = 0
        self._run_start_ns = int(start * 1e9)
        self._deadline_ns = int(deadline * 1e9)
        self._stop_ns = self._deadline_ns  # should_stop turns true here (earlier when paced)
        self._next_stop_poll = 0
        self.last_error: Exception | None = None
        self._live = live
        self._gate = gate
        self._report = report
        self._stopped = stopped
        self.board = board
        # This client's operations, when the run records a history (`--history`); else None.
        self.history = None if history is None else HistoryWriter(history, client)
        # Recording state: successful calls append latencies to `_pending[op]`; `_tick` runs
        # when a call ends at or after `_mark` and folds them into the recorder.
        self._pending: dict[str, list[int]] = {}
        self._mark = 0
        self._grid = 0
        self._second = 0
        self._warm_end_ns = self._run_start_ns + int(max(0.0, warmup) * 1e9)
        self._measuring = warmup <= 0
        self._ok_flushed = 0
        self._ok_at_conflict = -1
        self._streak = 0
        self._begin: Callable[[], int] = monotonic_ns
        self._schedule: Schedule | None = None
        self._next = self._begun_ns = 0
        if rate is not None:
            self._schedule = Schedule(rate, clients, client, self._run_start_ns, ramp_up)
            # A client that joins late (a replacement for a killed one) starts at the schedule's
            # current point rather than bursting through operations due before it existed.
            self._next = self._schedule.first_at_or_after(monotonic_ns() - _LATE_JOIN_NS)
            self._begin = self._paced_begin
            self._plan_stop()
        elif ramp_up > 0 and client > 0:
            self._active_at = self._run_start_ns + int(ramp_up * 1e9 * client / clients)
            self._begin = self._ramped_begin

    @property
    def catalog(self) -> Catalog:
        """The catalog this client shares (thread mode) or owns (process mode)."""
        if self._catalog is None:
            raise RuntimeError("this scenario opens its own catalogs (shared_catalog=False)")
        return self._catalog

    @property
    def recorder(self) -> Recorder:
        """This client's record, with every call so far folded in."""
        self._flush()
        return self._recorder

    def should_stop(self) -> bool:
        """Return True once the run's time is up or the runner asked clients to stop.

        Under an open-model load, also once this client's next operation is due after the
        deadline. A stop request is noticed within `_STOP_POLL_NS` (checking it takes a lock
        in process mode, too slow for every operation).
        """
        now = monotonic_ns()
        if now >= self._stop_ns:
            return True
        if now >= self._next_stop_poll:
            self._next_stop_poll = now + _STOP_POLL_NS
            return self._stopped()
        return False

    def time_left(self) -> float:
        """Seconds until the run's deadline (negative once it has passed)."""
        return self.deadline - time.monotonic()

    def call(self, op: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[str, T | None]:
        """Run `fn(*args, **kwargs)` as operation `op`; return (outcome, value or None)."""
        start = self._begin()
        self.last_error = None
        try:
            # A plain call of one argument skips the unpacking call path (about 50 ns).
            value = fn(args[0]) if len(args) == 1 and not kwargs else fn(*args, **kwargs)
        except ConflictError as error:
            log.debug("client %d: %s conflict: %s", self.client, op, error)
            return self._failed(op, CONFLICT, start, error)
        except BusyError as error:
            log.debug("client %d: %s busy: %s", self.client, op, error)
            return self._failed(op, BUSY, start, error)
        except Exception as error:  # an unexpected error is a result to report, not a crash
            log.debug("client %d: %s error", self.client, op, exc_info=True)
            return self._failed(op, ERROR, start, error)
        end = monotonic_ns()
        self._start_ns = start
        self._end_ns = end
        if end < self._mark or self._tick(start, end):
            try:
                self._pending[op].append(end - start)
            except KeyError:
                self._pending[op] = [end - start]
        else:
            self._recorder.count_only(op, OK)
            self._ok_flushed += 1
        return "ok", value

    def _failed(self, op: str, outcome: int, start: int, error: Exception) -> tuple[str, None]:
        """Record a call that raised: the slow path, taken at most once per exception."""
        end = monotonic_ns()
        self._start_ns, self._end_ns = start, end
        self.last_error = error
        recorder = self._recorder
        if outcome == CONFLICT:
            ok_now = self._ok_flushed + sum(map(len, self._pending.values()))
            self._streak = self._streak + 1 if ok_now == self._ok_at_conflict else 1
            self._ok_at_conflict = ok_now
            recorder.conflict_streak(self._streak)
        elif outcome == ERROR:
            recorder.error(f"{op}: {type(error).__name__}: {error}")
        measured = self._measuring if end < self._mark else self._tick(start, end)
        if self.recording:
            recorder.add(op, outcome, end - start, self._second, measured)
        elif measured:
            stats = recorder.stats(op)
            stats.counts[outcome] += 1
            stats.measured[outcome] += 1
            stats.tally(self._second).counts[outcome] += 1
        else:
            recorder.count_only(op, outcome)
        return OUTCOMES[outcome], None

    def _tick(self, start: int, end: int) -> bool:
        """Called when a call ends at or after `_mark`; return whether that call is measured.

        At each 200 ms step of run time (and at the end of the warm-up) it folds the pending
        latencies into the recorder, moves to the step holding `end`, and publishes the live
        counters. Steps divide seconds, so everything pending ended in one run second.
        """
        if end >= self._grid:
            self.publish()  # folds what is pending into the step that just ended
            relative = max(0, end - self._run_start_ns)
            self._grid = self._run_start_ns + (relative // _STEP_NS + 1) * _STEP_NS
            if end < self._warm_end_ns < self._grid:
                self._grid = self._warm_end_ns
            self._second = relative // 1_000_000_000
            self._measuring = end >= self._warm_end_ns
        self._mark = self._grid
        return start >= self._warm_end_ns

    def _flush(self) -> None:
        """Fold the pending latencies into the recorder (they all ended in `_second`)."""
        for op, latencies in self._pending.items():
            if latencies:
                self._ok_flushed += self._recorder.add_many(
                    op, OK, latencies, self._second, measured=self._measuring, timed=self.recording
                )
                latencies.clear()

    def _paced_begin(self) -> int:
        """Open model: wait for the next operation's intended start and return it (ns)."""
        assert self._schedule is not None
        due = self._schedule.due(self._next)
        self._next += 1
        self._plan_stop()
        now = self._begun_ns = self._wait_until(due)
        if due < self._warm_end_ns:
            self._mark = 0  # make the call consult `_tick`, which leaves it unmeasured
        elif self.recording and now >= due:
            self._recorder.lag.add_ns(now - due)
        # The wait ends early at the deadline or a stop request: an operation that starts before
        # its intended time is timed from when it starts (never a negative latency).
        return min(due, now)

    def _plan_stop(self) -> None:
        assert self._schedule is not None
        if self._schedule.due(self._next) >= self._deadline_ns:
            self._stop_ns = 0  # nothing more is due before the deadline

    def _ramped_begin(self) -> int:
        """Closed model with a ramp-up: wait until this client's turn to join, once."""
        self._wait_until(self._active_at)
        self._begin = monotonic_ns
        return monotonic_ns()

    def _wait_until(self, due: int) -> int:
        """Sleep until `due` (ns), the deadline or a stop request, whichever comes first."""
        now = monotonic_ns()
        while now < due and now < self._deadline_ns and not self._stopped():
            time.sleep(min(due - now, _STOP_POLL_NS) / 1e9)
            now = monotonic_ns()
        return now

    @property
    def last_start(self) -> float:
        """When the last `call` started (`time.monotonic` seconds, comparable across processes).

        Under an open-model load this is when it actually started; its latency is measured from
        its intended start, which may be earlier.
        """
        if self._schedule is not None:
            return self._begun_ns / 1e9
        return self._start_ns / 1e9

    @property
    def last_end(self) -> float:
        """When the last `call` returned (`time.monotonic` seconds)."""
        return self._end_ns / 1e9

    def publish(self) -> None:
        """Fold pending latencies into the recorder and copy this client's running totals to the
        live counters the progress line reads.

        Done a few times a second, not per operation: in process mode the counters are shared
        memory, and writing them on every operation would bounce one cache line between cores.
        """
        self._flush()
        ops = conflicts = errors = 0
        for stats in self._recorder.ops.values():
            counts = stats.counts
            ops += counts[OK] + counts[CONFLICT] + counts[BUSY] + counts[ERROR]
            conflicts += counts[CONFLICT]
            errors += counts[ERROR]
        base = self.client * 3
        self._live[base] = ops
        self._live[base + 1] = conflicts
        self._live[base + 2] = errors

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
            self._recorder.events.append(values)

    def report(self, value: Any) -> None:
        """Send `value` to the runner now (survives this client being killed afterwards)."""
        self._report(value)

    def next_round(self) -> bool:
        """Wait until every client reaches this point; False for all when the run is over."""
        return self._gate.next_round(self)
