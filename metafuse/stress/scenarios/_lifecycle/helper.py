"""Thread mode's fork helper: a spawned process that runs the fork rounds the test process must not.

In thread mode the clients are threads of the test process, which never forks. Setup spawns this
helper (`start`) before the run's clock, so a slow start costs the run nothing; it shares the
`Quiet` board of the run's working threads, runs fork rounds until the run's deadline, and sends
their metrics back to client 0 (`finish`), which kills it if it is still running 4 s past the
deadline.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import threading
import time
from collections import Counter
from typing import Any, NamedTuple

from .... import faults
from ...client import Board, ClientContext
from .datasets import dataset_names
from .fork import Forker, first_round_patience
from .quiet import Quiet
from .shelf import Shelf
from .timing import FORK_SLOT, HELPER_READY_TIMEOUT


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


class Helper(NamedTuple):
    """Thread mode: the fork helper process, the pipe to it, and the run's `Quiet`."""

    process: Any
    conn: multiprocessing.connection.Connection
    quiet: Quiet


_helpers: dict[str, Helper] = {}
"""Thread mode: the helper started by setup for the run on each path, until client 0 takes it."""


def start(path: str) -> None:
    """Spawn the fork helper for a thread-mode run on `path` and wait until it has opened the
    catalog; it stays registered for that path until `take`. Raises RuntimeError if it does not
    start within `HELPER_READY_TIMEOUT`."""
    _helpers[path] = _start_helper(path)


def quiet(path: str) -> Quiet:
    """The `Quiet` of the run on `path`, shared with its helper (which stays registered)."""
    return _helpers[path].quiet


def take(path: str) -> Helper:
    """Unregister the helper of the run on `path` and return it; the caller must `finish` it."""
    return _helpers.pop(path)


def _start_helper(path: str) -> Helper:
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
    return Helper(process, mine, Quiet(Board(values, lock)))


def finish(ctx: ClientContext, helper: Helper, metrics: dict[str, Any]) -> None:
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
