"""Extra scenario: catalogs closed under working threads, and processes forked mid-transaction.

Threads that share a `Catalog` (a "shelf") keep reading, writing and searching while one thread
closes it under their feet and puts a new one on the shelf. Calls on the closed object must raise
`CatalogClosedError` and nothing else; a call that starts after `close()` has returned must be
refused; the others switch to the new catalog. Each working thread is the only writer of its own
dataset, so it knows exactly what it had acknowledged; a write cut off by the close is resolved on
the new catalog (it either landed whole or not at all).

Fork: a process `os.fork()`s while another of its threads holds the catalog's writer lock inside
an open transaction; the child saves through the inherited `Catalog` and through a new one, checks
each sees the other's write, and `os._exit`s with a status the parent checks (a child that does
not exit within `CHILD_TIMEOUT` is killed and counted as hung). The working threads are paused at
a safe point for the fork: a thread inside SQLite's C code may hold one of SQLite's own global
mutexes, which a child would inherit locked whatever the catalog does, so only the catalog's own
state (writer lock, transaction, connections, change slots) is under test. They stay paused, in
every process of the run, until the child has exited, so that no writer competes with the child
for the write lock (see `Quiet`). In process mode every
client process does this itself; in thread mode clients are threads of the test process, which
must never fork, so client 0 runs the same fork rounds in one spawned helper process.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
import warnings
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from ... import faults
from ...catalog import Catalog
from ...errors import BusyError, CatalogClosedError, ConflictError
from ...model import Dataset
from ..client import Board, ClientContext
from ..recorder import OUTCOMES
from ..resources import catalog_fds
from ..scenario import RunView, SetupContext, Verdict, scenario
from ._content import recreate, rewrite, tokened

WORKERS = 2
"""Working threads inside each client process (process mode)."""
CHILD_TIMEOUT = 3.0
"""Seconds a forked child gets to exit before it is killed and counted as hung."""
HOLD_SECONDS = 10.0
"""Seconds the lock holder keeps its transaction open at most, if no fork comes to release it."""
FORK_SLOT = 1.5
"""Seconds of each process client's turn to fork (client 0 first): a fork holds the write lock
while it waits for the transaction it interrupts, so forks by every process at once would keep
each other's threads from reaching their safe points."""
QUIESCE_TIMEOUT = 1.0
"""Seconds to wait for working threads to pause, or the lock holder to hold, before a fork is skipped."""
FIRST_ROUND_OVERRUN = 1.0
"""Seconds past the run's end the first fork round may still wait to set up: with the child's own
`CHILD_TIMEOUT` after it, the client still ends within the runner's 5 s watchdog grace."""
CHILD_OK, CHILD_ERROR, CHILD_BUSY, CHILD_STALE = 0, 5, 3, 4
CLOSED = object()
"""What a call returns instead of raising `CatalogClosedError` (see `_closed_ok`)."""


def dataset_names(client: int) -> dict[str, str]:
    """The datasets client `client` writes: one per working thread, its lock holder's, its children's."""
    base = f"stress.life.{client}"
    names = {f"w{index}": f"{base}.w{index}" for index in range(WORKERS)}
    names.update(hold=f"{base}.hold", fork=f"{base}.fork")
    return names


HELPER_READY_TIMEOUT = 120.0
"""Seconds setup waits for the thread-mode helper to start: only a broken machine takes that long."""


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    names = [name for client in range(setup.clients) for name in dataset_names(client).values()]
    recreate(catalog, [tokened(name, "initial") for name in names])
    if setup.config.mode == "thread":
        # Start the forking helper now, before the run's clock: a spawned interpreter can take
        # seconds to start on a loaded machine, which must not eat into the run it measures.
        _helpers[setup.path] = _start_helper(setup.path)
    return {}


def _closed_ok(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `fn`; return `CLOSED` instead of raising `CatalogClosedError` (the expected outcome)."""
    try:
        return fn(*args, **kwargs)
    except CatalogClosedError:
        return CLOSED


def refusal_check(path: str, name: str) -> tuple[int, list[str]]:
    """Close a catalog two threads have used, then call it from both: each call must be refused.

    Returns (calls served or failed otherwise, their descriptions). Single-threaded at each step,
    so it cannot crash on the race it guards against; a catalog that fails it would not be safe
    to close under working threads (the scenario then skips doing so: the run has failed anyway).
    """
    catalog = Catalog(path)
    catalog.get(name)
    used = threading.Thread(target=catalog.get, args=(name,))
    used.start()
    used.join()
    catalog.close()
    problems: list[str] = []

    def call(where: str) -> None:
        try:
            catalog.get(name)
            problems.append(f"get from {where} thread was served after close()")
        except CatalogClosedError:
            pass
        except Exception as error:
            problems.append(f"get from {where} thread raised {type(error).__name__}: {error}")

    call("the same")
    other = threading.Thread(target=call, args=("a new",))
    other.start()
    other.join()
    return len(problems), problems


class Caller(Protocol):
    """What a working thread records its calls with: a `ClientContext` or a `Tally`."""

    last_error: Exception | None

    def call(self, op: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, Any]:
        """Run one operation; return (outcome, value)."""
        ...


class Tally:
    """A thread-confined `Caller`, for threads of one client (its `ClientContext` is not thread-safe).

    Counts outcomes per operation and keeps error samples; the client folds it into its recorder.
    """

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.errors: list[str] = []
        self.last_error: Exception | None = None

    def call(self, op: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, Any]:
        """Run `fn`; classify it as `ClientContext.call` does."""
        self.last_error = None
        try:
            value, outcome = fn(*args, **kwargs), "ok"
        except ConflictError as error:
            value, outcome, self.last_error = None, "conflict", error
        except BusyError as error:
            value, outcome, self.last_error = None, "busy", error
        except Exception as error:
            value, outcome, self.last_error = None, "error", error
            if len(self.errors) < 20:
                self.errors.append(f"{op}: {type(error).__name__}: {error}")
        self.counts[(op, outcome)] += 1
        return outcome, value

    def fold_into(self, ctx: ClientContext) -> None:
        """Add these counts and error samples to `ctx`'s recorder (call from the client's own thread)."""
        for (op, outcome), count in self.counts.items():
            for _ in range(count):
                ctx.recorder.count_only(op, OUTCOMES.index(outcome))
        for message in self.errors:
            ctx.recorder.error(message)


class Shelf:
    """The catalog a group of threads shares now, its generation, and which generations are closed.

    Thread-safe. `replace` closes the current catalog (while others may be using it), then puts a
    new one on the shelf; `closed(generation)` is true once that generation's `close()` returned.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._catalog = Catalog(path)
        self._generation = 0
        self._closed_through = -1

    def current(self) -> tuple[Catalog, int]:
        """The catalog on the shelf and its generation."""
        with self._lock:
            return self._catalog, self._generation

    def closed(self, generation: int) -> bool:
        """Whether generation `generation`'s `close()` has returned."""
        return generation <= self._closed_through

    def replace(self) -> None:
        """Close the current catalog under its users, then shelve a newly opened one."""
        catalog, generation = self.current()
        catalog.close()
        self._closed_through = generation
        fresh = Catalog(self.path)
        with self._lock:
            self._catalog, self._generation = fresh, generation + 1

    def close(self) -> None:
        """Close the current catalog for good."""
        catalog, generation = self.current()
        catalog.close()
        self._closed_through = generation


class Quiet:
    """Parks the run's working threads, in every process, at a safe point (between calls).

    A fork round parks them from before the fork until its child has exited. Parked at a safe
    point, the forking process's own threads hold no lock a child could inherit (only the
    catalog's state is under test). Parked everywhere, no thread competes with the child for
    SQLite's write lock, whose busy wait is not fair: on a loaded machine a child racing the
    run's writers could wait seconds for it, and a clean child would look hung or busy. The
    child's only obstacle is then the bug under test, a lock it inherited.

    The counts live on a `Board` that every process of the run shares: pause requests, working
    threads, parked threads.
    """

    REQUESTS, ACTIVE, PARKED = 0, 1, 2
    """The board's slots this uses."""

    def __init__(self, board: Board) -> None:
        self._board = board

    def arrive(self) -> None:
        """A working thread starts: from now on a pause waits for it to park."""
        self._board.add(self.ACTIVE)

    def checkpoint(self) -> None:
        """Called by a working thread between calls: wait here while a pause is requested.

        At most `HOLD_SECONDS`: a forker that died without resuming cannot stop the run.
        """
        if not self._board.read(self.REQUESTS):
            return
        give_up = time.monotonic() + HOLD_SECONDS
        self._board.add(self.PARKED)
        while True:
            while self._board.read(self.REQUESTS) and time.monotonic() < give_up:
                time.sleep(0.001)
            # Uncount first, then look again: a pause requested in between either sees this
            # thread uncounted (and waits for it) or is seen here (and keeps it parked). Looking
            # first would let a pause count it as parked while it went on to its next call.
            self._board.add(self.PARKED, -1)
            if not self._board.read(self.REQUESTS) or time.monotonic() >= give_up:
                return
            self._board.add(self.PARKED)

    def leave(self) -> None:
        """A working thread that stops for good no longer needs to be paused."""
        self._board.add(self.ACTIVE, -1)

    def pause(self, timeout: float) -> bool:
        """Request a pause; return whether every working thread parked in time (if not, the
        request is withdrawn)."""
        self._board.add(self.REQUESTS)
        give_up = time.monotonic() + timeout
        while self._board.read(self.PARKED) < self._board.read(self.ACTIVE):
            if time.monotonic() >= give_up:
                self.resume()
                return False
            time.sleep(0.001)
        return True

    def resume(self) -> None:
        """Withdraw this pause request; the threads go on once no other is pending."""
        self._board.add(self.REQUESTS, -1)

    def work(self, worker: Worker, stop: Callable[[], bool]) -> None:
        """A working thread's loop: `worker.step()` until `stop()`, parking between steps."""
        self.arrive()
        try:
            while not stop():
                self.checkpoint()
                worker.step()
        finally:
            self.leave()


class Worker:
    """One working thread's state: its dataset, what it had acknowledged, and what it saw go wrong."""

    def __init__(self, shelf: Shelf, name: str, caller: Caller, label: str) -> None:
        self.shelf = shelf
        self.name = name
        self.caller = caller
        self.label = label
        self.catalog, self.generation = shelf.current()
        self.acked: tuple[int, str] | None = None  # (version, token) of the newest acknowledged write
        self.pending: str | None = None  # token of a write cut off by a close: landed or not?
        self.steps = self.sequence = 0
        self.closed_seen = self.closed_served = self.half_written = 0

    def step(self) -> None:
        """Make one call on the shelved catalog; switch to a new one once the old one is closed."""
        _, generation = self.shelf.current()
        if generation != self.generation:
            self._switch()
        self.steps += 1
        kind = self.steps % 4
        if self.pending is not None or self.acked is None:
            value = self._call("read", self.catalog.get, self.name)
            if isinstance(value, Dataset):
                self._settle(value)
        elif kind == 1:
            self._write("write", self._save)
        elif kind == 2:
            self._call("search", self.catalog.search, "stress", limit=5)
        elif kind == 3:
            self._write("update", self._update)
        else:
            value = self._call("read", self.catalog.get, self.name)
            if isinstance(value, Dataset) and self.acked is not None and value.version < self.acked[0]:
                self.half_written += 1  # an acknowledged write went missing

    def _call(self, op: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One call on `self.catalog`; a call that starts after its close() returned must be refused."""
        must_refuse = self.shelf.closed(self.generation)
        outcome, value = self.caller.call(op, _closed_ok, fn, *args, **kwargs)
        if value is CLOSED:
            self.closed_seen += 1
        elif must_refuse and outcome == "ok":
            self.closed_served += 1
        return value

    def _save(self, token: str) -> Dataset:
        assert self.acked is not None
        current = tokened(self.name, token)
        return self.catalog.save(current, expected_version=self.acked[0])

    def _update(self, token: str) -> Dataset:
        return self.catalog.update(self.name, lambda current: rewrite(current, token), max_attempts=3)

    def _write(self, op: str, write: Callable[[str], Dataset]) -> None:
        self.sequence += 1
        token = f"{self.label}-{op}-{self.sequence}"
        value = self._call(op, write, token)
        if value is CLOSED:
            self.pending = token  # cut off by the close: resolved by the next read
        elif isinstance(value, Dataset):
            self.acked = (value.version, token)

    def _settle(self, seen: Dataset) -> None:
        """Resolve a write cut off by a close: it landed whole, or not at all."""
        field = next((f.description for f in seen.fields if f.name == "token"), None)
        if field != seen.description:
            self.half_written += 1
        elif self.acked is None:
            pass  # first read: nothing acknowledged yet
        elif (seen.version, seen.description) == self.acked:
            pass  # the cut-off write did not land
        elif seen.version == self.acked[0] + 1 and seen.description == self.pending:
            pass  # it landed whole
        else:
            self.half_written += 1
        self.acked = (seen.version, seen.description or "")
        self.pending = None

    def _switch(self) -> None:
        """Move to the newly shelved catalog; first prove the closed one refuses a later call."""
        if self.shelf.closed(self.generation):
            self._call("closed_call", self.catalog.get, self.name)
        self.catalog, self.generation = self.shelf.current()

    def metrics(self) -> dict[str, Any]:
        """What the invariants need from this thread."""
        return {
            "closed_seen": self.closed_seen,
            "closed_served": self.closed_served,
            "half_written": self.half_written,
            "acked": {self.name: self.acked} if self.acked is not None and self.pending is None else {},
        }


# -- fork rounds ------------------------------------------------------------------------------


class LockHolder:
    """A thread that, on request, saves inside a transaction and holds it (writer lock and all).

    Rounds are numbered, so a late signal from an earlier round can never pass for the current
    one: `hold` returns True only while this round's transaction is open and the thread waits,
    in Python, for `release`.
    """

    def __init__(self, shelf: Shelf, name: str, label: str, stop: Callable[[], bool]) -> None:
        self.shelf = shelf
        self.name = name
        self.label = label
        self._stop = stop
        self._cond = threading.Condition()
        self._wanted = self._holding = self._released = self._done = 0
        self.acked: tuple[int, str] | None = None
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name=f"{label}-holder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop():
            with self._cond:
                if not self._cond.wait_for(lambda: self._wanted > self._done, 0.05):
                    continue
                number = self._wanted
            catalog, _ = self.shelf.current()
            token = f"{self.label}-hold-{number}"
            try:
                with catalog.transaction():
                    current = catalog.get(self.name)
                    if current is None:
                        raise LookupError(f"{self.name} is missing")
                    stored = catalog.save(rewrite(current, token), expected_version=current.version)
                    self._hold_until_released(number)
                self.acked = (stored.version, token)
            except (BusyError, CatalogClosedError):
                pass
            except Exception as error:
                if len(self.errors) < 20:
                    self.errors.append(f"hold: {type(error).__name__}: {error}")
            finally:
                with self._cond:
                    self._done = number
                    self._cond.notify_all()

    def _hold_until_released(self, number: int) -> None:
        # Released by the fork itself (see `_release_holders_before_fork`): the catalog's own
        # before-fork hook then waits for this transaction to commit, so the child starts clean.
        # With the `fork_unsafe` fault that wait is skipped and the child inherits the open
        # transaction and the writer lock: the bug shows in every round, not by chance.
        with self._cond:
            self._holding = number
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._released >= number, HOLD_SECONDS)

    def hold(self, timeout: float) -> bool:
        """Ask the thread to enter and hold a write transaction; True once it holds this round's."""
        with self._cond:
            self._wanted += 1
            number = self._wanted
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._holding == number or self._done >= number, timeout)
            return self._holding == number and self._done < number

    def release(self) -> None:
        """Let the held transaction (if any) commit."""
        with self._cond:
            self._released = self._wanted
            self._cond.notify_all()

    def __enter__(self) -> LockHolder:
        _holders.add(self)
        return self

    def __exit__(self, *_: object) -> None:
        _holders.discard(self)

    def join(self, timeout: float) -> None:
        """Wait for the thread to stop (it stops when the run does)."""
        self.release()
        self._thread.join(timeout)


_holders: weakref.WeakSet[LockHolder] = weakref.WeakSet()


def _release_holders_before_fork() -> None:
    # Registered after metafuse's own hooks, so it runs before them (Python runs before-fork
    # hooks in reverse order of registration).
    for holder in list(_holders):
        holder.release()


os.register_at_fork(before=_release_holders_before_fork)


def _child(inherited: Catalog, path: str, name: str, token: str) -> int:
    """In a forked child: save through the inherited catalog and a new one; each must see the other."""
    try:
        current = inherited.get(name)
        if current is None:
            return CHILD_STALE
        first = inherited.save(rewrite(current, f"{token}a"), expected_version=current.version)
        with Catalog(path) as fresh:
            seen = fresh.get(name)
            if seen is None or (seen.version, seen.description) != (first.version, first.description):
                return CHILD_STALE
            second = fresh.save(rewrite(seen, f"{token}b"), expected_version=seen.version)
        again = inherited.get(name)
        if again is None or (again.version, again.description) != (second.version, second.description):
            return CHILD_STALE
        return CHILD_OK
    except BusyError:
        return CHILD_BUSY
    except BaseException:
        return CHILD_ERROR


def wait_child(pid: int, timeout: float) -> str:
    """Reap child `pid`: "exit 0", "exit N", "signal N", or "hung" (killed after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "hung"
        time.sleep(0.005)
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit {os.WEXITSTATUS(status)}"


class Forker:
    """Runs fork rounds in this process: pause the workers, hold a transaction, fork, check the child."""

    def __init__(
        self, shelf: Shelf, names: dict[str, str], label: str, quiet: Quiet, stop: Callable[[], bool]
    ):
        self.shelf = shelf
        self.name = names["fork"]
        self.label = label
        self.quiet = quiet
        self.holder = LockHolder(shelf, names["hold"], label, stop)
        self.outcomes: Counter[str] = Counter()
        self.acked: dict[str, tuple[int, str]] = {}
        self.errors: list[str] = []
        self.rounds = 0

    def round(self, patience: float = QUIESCE_TIMEOUT) -> None:
        """One fork while the lock holder holds a write transaction and the run's working threads
        are parked, until the child has exited (see `Quiet`).

        `patience` bounds each wait (workers parked, transaction held). A later round that cannot
        set up within it is skipped; the first round of a run waits as long as the run allows
        (see `first_round_patience`), so every run forks at least once however loaded the machine.
        """
        if not self.quiet.pause(patience):
            self.outcomes["skipped: workers did not pause"] += 1
            return
        try:
            self._fork(patience)
        finally:
            self.quiet.resume()

    def _fork(self, patience: float) -> None:
        try:
            if not self.holder.hold(patience):
                self.outcomes["skipped: no transaction held"] += 1
                return
            self.rounds += 1
            token = f"{self.label}-fork-{self.rounds}"
            inherited, _ = self.shelf.current()
            with self.holder, warnings.catch_warnings():
                # Python 3.12+ warns that forking a process with threads may deadlock the child;
                # that hazard is what this scenario tests, with the threads parked at safe points.
                warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork")
                pid = os.fork()
            if pid == 0:
                code = CHILD_ERROR
                try:
                    code = _child(inherited, self.shelf.path, self.name, token)
                finally:
                    os._exit(code)
        finally:
            self.holder.release()
        outcome = wait_child(pid, CHILD_TIMEOUT)
        self.outcomes[outcome] += 1
        if outcome == f"exit {CHILD_OK}":
            self._confirm(f"{token}b")

    def _confirm(self, token: str) -> None:
        """The parent must read what its child acknowledged (exit 0) through its own catalog."""
        catalog, _ = self.shelf.current()
        try:
            seen = catalog.get(self.name)
        except CatalogClosedError:
            return
        except Exception as error:
            self.errors.append(f"confirm: {type(error).__name__}: {error}")
            return
        if seen is None or seen.description != token:
            self.outcomes["parent missed child's write"] += 1
        else:
            self.acked[self.name] = (seen.version, token)

    def metrics(self) -> dict[str, Any]:
        """Fork outcomes and the writes they acknowledged (lock holder's included)."""
        acked = dict(self.acked)
        if self.holder.acked is not None:
            acked[self.holder.name] = self.holder.acked
        return {"forks": dict(self.outcomes), "acked": acked, "errors": self.errors + self.holder.errors}


def first_round_patience(deadline: float) -> float:
    """How long the first fork round may wait: until `FIRST_ROUND_OVERRUN` past the run's end."""
    return max(QUIESCE_TIMEOUT, deadline + FIRST_ROUND_OVERRUN - time.monotonic())


def fork_helper(
    path: str,
    client: int,
    conn: multiprocessing.connection.Connection,
    quiet_board: tuple[Any, Any],
    fault_names: tuple[str, ...] = (),
) -> None:
    """Spawned helper for thread mode: open the catalog, say "ready", wait for the run's deadline,
    run fork rounds until it, then send their metrics.

    `quiet_board` (shared values and their lock) is the `Quiet` board of the run's working
    threads, which are in the process that spawned this one. The run's faults are passed along:
    a spawned process does not inherit those switched on in-process with `faults.enabled` (as
    selfcheck does)."""
    with faults.enabled(*fault_names):
        shelf = Shelf(path)
        try:
            conn.send("ready")
            started = conn.poll(HELPER_READY_TIMEOUT + 600)
            deadline = float(conn.recv()) if started else None
        except (EOFError, OSError):
            deadline = None  # the run gave up on this helper
        if deadline is None:  # the run never started: nothing to do
            shelf.close()
            return
        _fork_rounds(shelf, client, deadline, conn, Quiet(Board(*quiet_board)))


def _fork_rounds(
    shelf: Shelf,
    client: int,
    deadline: float,
    sender: multiprocessing.connection.Connection,
    quiet: Quiet,
) -> None:
    stop = threading.Event()
    forker = Forker(shelf, dataset_names(client), f"helper-{client}", quiet, stop.is_set)
    try:
        forker.round(first_round_patience(deadline))
        while time.monotonic() < deadline:
            time.sleep(FORK_SLOT / 3)  # leave the write lock to the working threads in between
            forker.round()
    finally:
        stop.set()
        forker.holder.join(5)
        shelf.close()
        with contextlib.suppress(OSError):  # the client gave up waiting: nobody to tell
            sender.send(forker.metrics())
        sender.close()


# -- the clients ------------------------------------------------------------------------------


class _Group:
    """The threads of one thread-mode run: their shelf, and who closes it last."""

    def __init__(self, path: str, members: int, quiet: Quiet) -> None:
        self.fd_before = catalog_fds(path)
        self.shelf = Shelf(path)
        self.members = members
        self.quiet = quiet
        self.lock = threading.Lock()

    def leave(self) -> int | None:
        """One member is done; the last one closes the shelf and returns the descriptors left open."""
        with self.lock:
            self.members -= 1
            last = self.members == 0
        if not last:
            return None
        self.shelf.close()
        return catalog_fds(self.shelf.path)


_groups: dict[tuple[str, float], _Group] = {}
_groups_lock = threading.Lock()


def _group(ctx: ClientContext) -> _Group:
    with _groups_lock:
        key = (ctx.path, ctx.start)
        group = _groups.get(key)
        if group is None:
            group = _groups[key] = _Group(ctx.path, ctx.clients, _helpers[ctx.path].quiet)
        return group


@scenario(
    "lifecycle",
    title="lifecycle: close and fork",
    summary="Catalogs are closed under working threads and replaced; processes fork mid-transaction.",
    setup=_setup,
    default_clients=4,
    default_duration=8,
    shared_catalog=False,
    file_only="forked children would share the parent's private replica; open a store catalog per process",
)
def lifecycle(ctx: ClientContext) -> None:
    """Thread mode: client 0 closes the shared catalog under the others; process mode: each client does it
    to its own threads, and forks."""
    if ctx.mode == "thread":
        _thread_client(ctx)
    else:
        _process_client(ctx)


def _thread_client(ctx: ClientContext) -> None:
    names = dataset_names(ctx.client)
    metrics: dict[str, Any] = {"acked": {}, "forks": {}}
    helper = None
    group = _group(ctx)
    try:
        if ctx.client == 0:
            helper = _helpers.pop(ctx.path)
            helper.conn.send(ctx.deadline)
            unsafe = _refusal(ctx, names["fork"], metrics)
            reopens = 0
            while not ctx.should_stop():
                time.sleep(ctx.rng.uniform(0.01, 0.05))
                if not unsafe:
                    outcome, _ = ctx.call("reopen", group.shelf.replace)
                    reopens += outcome == "ok"
            metrics["reopens"] = reopens
        else:
            worker = Worker(group.shelf, names["w0"], ctx, f"client-{ctx.client}")
            group.quiet.work(worker, ctx.should_stop)
            metrics.update(worker.metrics())
    finally:
        fds_after = group.leave()
        if fds_after is not None:
            metrics.update(fd_before=group.fd_before, fd_after=fds_after)
            with _groups_lock:
                _groups.pop((ctx.path, ctx.start), None)
        if helper is not None:
            _finish_helper(ctx, helper, metrics)
        ctx.recorder.metrics.update(metrics)


def _refusal(ctx: ClientContext, name: str, metrics: dict[str, Any]) -> bool:
    """Run `refusal_check`; record its failures; return whether closing under use is unsafe."""
    served, problems = refusal_check(ctx.path, name)
    metrics["refusal_failures"] = served
    for problem in problems:
        ctx.recorder.error(f"refusal check: {problem}")
    return served > 0


class _Helper(NamedTuple):
    """Thread mode: the fork helper process, the pipe to it, and the run's `Quiet`."""

    process: Any
    conn: multiprocessing.connection.Connection
    quiet: Quiet


_helpers: dict[str, _Helper] = {}
"""Thread mode: the helper started by setup for the run on each path, until client 0 takes it."""


def _start_helper(path: str) -> _Helper:
    """Spawn the fork helper for a thread-mode run and wait until it has opened the catalog."""
    spawn = multiprocessing.get_context("spawn")
    mine, theirs = spawn.Pipe()
    values, lock = spawn.RawArray("q", Board.SIZE), spawn.Lock()
    process = spawn.Process(
        target=fork_helper,
        args=(path, 0, theirs, (values, lock), tuple(sorted(faults.current()))),
        name="lifecycle-forks",
        daemon=True,
    )
    process.start()
    theirs.close()
    if not mine.poll(HELPER_READY_TIMEOUT) or mine.recv() != "ready":
        process.kill()
        process.join(5)
        mine.close()
        raise RuntimeError(f"lifecycle: the fork helper did not start within {HELPER_READY_TIMEOUT:g} s")
    return _Helper(process, mine, Quiet(Board(values, lock)))


def _finish_helper(ctx: ClientContext, helper: _Helper, metrics: dict[str, Any]) -> None:
    """Collect the helper's fork metrics; a helper still running 4 s past the deadline is killed."""
    process, receiver = helper.process, helper.conn
    wait = max(0.0, ctx.deadline + 4.0 - time.monotonic())
    forks: Counter[str] = Counter()
    if receiver.poll(wait):
        try:
            found = receiver.recv()
            forks.update(found["forks"])
            metrics["acked"].update(found["acked"])
            for message in found["errors"]:
                ctx.recorder.error(message)
        except (EOFError, OSError):
            forks["helper died"] += 1
    else:
        forks["helper hung"] += 1
    process.join(1)
    if process.is_alive():
        process.kill()
        process.join(5)
    elif process.exitcode != 0:
        forks[f"helper exit {process.exitcode}"] += 1
    receiver.close()
    metrics["forks"] = dict(forks)


def _process_client(ctx: ClientContext) -> None:
    fd_before = catalog_fds(ctx.path)
    names = dataset_names(ctx.client)
    label = f"client-{ctx.client}"
    shelf = Shelf(ctx.path)
    quiet = Quiet(ctx.board)
    tallies = [Tally() for _ in range(WORKERS)]
    workers = [
        Worker(shelf, names[f"w{index}"], tallies[index], f"{label}.{index}") for index in range(WORKERS)
    ]

    forker = Forker(shelf, names, label, quiet, ctx.should_stop)
    threads = [
        threading.Thread(target=quiet.work, args=(w, ctx.should_stop), name=f"{label}-w", daemon=True)
        for w in workers
    ]
    reopens = 0
    checked: dict[str, Any] = {}
    unsafe = _refusal(ctx, names["fork"], checked)
    try:
        for thread in threads:
            thread.start()
        forked_in = -1
        if ctx.client == 0:  # the first slot's round, at once and patiently: every run forks
            forked_in = 0
            forker.round(first_round_patience(ctx.deadline))
        while not ctx.should_stop():
            time.sleep(ctx.rng.uniform(0.01, 0.05))
            turn = int((time.monotonic() - ctx.start) / FORK_SLOT)
            if turn % ctx.clients == ctx.client and turn != forked_in:
                forked_in = turn
                forker.round()
            elif not unsafe:
                outcome, _ = ctx.call("reopen", shelf.replace)
                reopens += outcome == "ok"
    finally:
        for thread in threads:
            thread.join(10)
        forker.holder.join(10)
        shelf.close()
    acked: dict[str, Any] = {}
    totals: Counter[str] = Counter()
    for worker, tally in zip(workers, tallies):
        tally.fold_into(ctx)
        found = worker.metrics()
        acked.update(found.pop("acked"))
        totals.update(found)
    fork_metrics = forker.metrics()
    acked.update(fork_metrics["acked"])
    for message in fork_metrics["errors"]:
        ctx.recorder.error(message)
    totals.update(checked)
    ctx.recorder.metrics.update(
        totals,
        acked=acked,
        forks=fork_metrics["forks"],
        reopens=reopens,
        fd_before=fd_before,
        fd_after=catalog_fds(ctx.path),
    )


SCENARIO = lifecycle


def _forks(run: RunView) -> Counter[str]:
    total: Counter[str] = Counter()
    for recorder in run.recorders:
        total.update(recorder.metrics.get("forks", {}))
    return total


@lifecycle.invariant(
    "only_closed_errors", "calls on closed catalogs raised CatalogClosedError; no call raised anything else"
)
def _only_closed_errors(run: RunView) -> Verdict:
    errors = run.merged.total("error")
    first = f", first: {run.merged.errors[0]}" if run.merged.errors else ""
    return errors == 0 and not run.merged.errors, (
        f"{run.metric_sum('closed_seen')} CatalogClosedError (expected), {errors} other errors{first}"
    )


@lifecycle.invariant("closed_refused", "every call that started after close() had returned was refused")
def _closed_refused(run: RunView) -> Verdict:
    served = run.metric_sum("closed_served")
    checks = run.metric_sum("refusal_failures")
    return served + checks == 0, (
        f"{checks} calls after close() not refused in the single-threaded check,"
        f" {served} calls served by a catalog already closed while threads worked"
    )


@lifecycle.invariant(
    "children_ok", "every forked child exited 0 in time, using its inherited catalog and a new one"
)
def _children_ok(run: RunView) -> Verdict:
    forks = _forks(run)
    # A busy child is a failure too: its one save cannot wait out the busy timeout at these sizes,
    # and a child that inherited its parent's SQLite lock state shows exactly as busy.
    bad = {k: v for k, v in forks.items() if k != f"exit {CHILD_OK}" and not k.startswith("skipped")}
    ok = not bad and forks[f"exit {CHILD_OK}"] > 0
    return ok, f"forks: {dict(forks) or 'none'}"


@lifecycle.invariant("fds_restored", "after the last close no descriptor on the catalog's files stayed open")
def _fds_restored(run: RunView) -> Verdict:
    pairs = [
        (int(r.metrics["fd_before"]), int(r.metrics["fd_after"]))
        for r in run.recorders
        if "fd_after" in r.metrics
    ]
    if not pairs:
        return False, "no client measured its descriptors"
    if any(before < 0 for before, _ in pairs):
        return False, "cannot count file descriptors here (no /proc/self/fd)"
    leaked = [(before, after) for before, after in pairs if after != before]
    return not leaked, f"{len(pairs)} measured, {len(leaked)} left descriptors open: {leaked[:3]}"


@lifecycle.invariant("nothing_lost", "every acknowledged write is readable at the end; none landed by halves")
def _nothing_lost(run: RunView) -> Verdict:
    acked: dict[str, tuple[int, str]] = {}
    for recorder in run.recorders:
        acked.update(recorder.metrics.get("acked", {}))
    problems = []
    for name, (version, token) in sorted(acked.items()):
        stored = run.catalog.get(name)
        if stored is None or stored.version < version:
            problems.append(
                f"{name}: acknowledged v{version}, stored {stored.version if stored else 'nothing'}"
            )
        elif stored.version == version and stored.description != token:
            problems.append(f"{name} v{version}: stored {stored.description!r}, acknowledged {token!r}")
    halves = run.metric_sum("half_written")
    ok = bool(acked) and not problems and halves == 0
    detail = f"{len(acked)} datasets checked, {len(problems)} lost, {halves} half-written or missing reads"
    return ok, detail + (f": {'; '.join(problems[:3])}" if problems else "")


@lifecycle.invariant("integrity_ok", "PRAGMA integrity_check reports ok")
def _integrity(run: RunView) -> Verdict:
    report = run.catalog.integrity_check()
    return report == ["ok"], "; ".join(report[:3])


@lifecycle.invariant("lifecycle_exercised", "catalogs were closed under working threads, and children forked")
def _exercised(run: RunView) -> Verdict:
    reopens = run.metric_sum("reopens")
    closed = run.metric_sum("closed_seen")
    children = _forks(run)[f"exit {CHILD_OK}"]
    workers = run.clients > 1 or run.mode == "process"
    ok = reopens > 0 and children > 0 and (closed > 0 or not workers)
    return ok, f"{reopens} closes under use, {closed} calls met a closed catalog, {children} children ok"


def _metrics(run: RunView) -> dict[str, Any]:
    return {
        "reopens": run.metric_sum("reopens"),
        "closed_calls": run.metric_sum("closed_seen"),
        "forks": dict(_forks(run)),
    }


def _headline(result: dict[str, Any]) -> list[tuple[str, Any]]:
    metrics = result["metrics"]
    return [
        ("Catalogs closed under use", metrics.get("reopens", 0)),
        ("Calls refused as closed", metrics.get("closed_calls", 0)),
        ("Forks", metrics.get("forks", {})),
        ("Errors", sum(op.get("error", 0) for op in result["operations"].values())),
    ]


lifecycle.metrics = _metrics
lifecycle.headline = _headline
