"""lifecycle's machinery (`metafuse/stress/scenarios/_lifecycle/`): descriptor counting, the shelf,
the workers, the pause, the lock holder, reaping children, and the refusal check. Nothing here forks
the test process: children are spawned."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from metafuse import Catalog
from metafuse.stress.client import Board
from metafuse.stress.resources import catalog_fds
from metafuse.stress.scenarios._content import recreate, rewrite, tokened
from metafuse.stress.scenarios._lifecycle import fork
from metafuse.stress.scenarios._lifecycle.calls import Tally
from metafuse.stress.scenarios._lifecycle.datasets import dataset_names
from metafuse.stress.scenarios._lifecycle.holder import LockHolder
from metafuse.stress.scenarios._lifecycle.quiet import Quiet
from metafuse.stress.scenarios._lifecycle.shelf import CLOSED, Shelf, closed_ok, refusal_check
from metafuse.stress.scenarios._lifecycle.watch import Watch
from metafuse.stress.scenarios._lifecycle.worker import Worker

NAMES = dataset_names(0)


@pytest.fixture
def path(tmp_path: Path) -> str:
    catalog_path = str(tmp_path / "catalog.db")
    with Catalog(catalog_path) as catalog:
        recreate(catalog, [tokened(name, "initial") for name in NAMES.values()])
    return catalog_path


def test_catalog_fds_counts_descriptors_on_the_catalog_files_only(path: str, tmp_path: Path) -> None:
    before = catalog_fds(path)
    other = open(tmp_path / "unrelated", "w")  # noqa: SIM115 - held open on purpose
    try:
        with open(path, "rb"), open(f"{path}-mfgen", "ab"):
            assert catalog_fds(path) == before + 2
    finally:
        other.close()
    assert catalog_fds(path) == before


def test_shelf_replace_closes_the_old_catalog_and_shelves_a_working_one(path: str) -> None:
    shelf = Shelf(path)
    old, generation = shelf.current()
    assert not shelf.closed(generation)
    shelf.replace()
    new, new_generation = shelf.current()
    assert shelf.closed(generation)
    assert not shelf.closed(new_generation)
    assert new is not old
    assert new.get(NAMES["w0"]) is not None
    assert closed_ok(old.get, NAMES["w0"]) is CLOSED
    shelf.close()
    assert shelf.closed(new_generation)


def test_a_worker_switches_catalogs_and_proves_the_old_one_refuses(path: str) -> None:
    shelf = Shelf(path)
    tally = Tally()
    worker = Worker(shelf, NAMES["w0"], tally, "w")
    for _ in range(8):
        worker.step()
    shelf.replace()
    for _ in range(8):
        worker.step()
    shelf.close()
    assert tally.counts[("closed_call", "ok")] == 1  # the call on the closed catalog, refused
    assert worker.closed_seen == 1
    assert worker.closed_served == 0
    assert worker.half_written == 0
    assert tally.errors == []
    found = worker.metrics()["acked"][NAMES["w0"]]
    with Catalog(path) as catalog:
        stored = catalog.get(NAMES["w0"])
    assert stored is not None
    assert (stored.version, stored.description) == found


def test_a_worker_counts_a_call_a_closed_catalog_served(path: str) -> None:
    shelf = Shelf(path)
    tally = Tally()
    worker = Worker(shelf, NAMES["w0"], tally, "w")
    shelf._closed_through = 0  # claims generation 0 closed while its catalog still serves calls
    worker.step()
    shelf.close()
    assert worker.closed_served == 1


@pytest.mark.parametrize(
    ("seen", "half"),
    [((3, "w-write-1"), 0), ((4, "w-write-2"), 0), ((4, "someone-else"), 1), ((2, "older"), 1)],
)
def test_a_write_cut_off_by_close_must_land_whole_or_not_at_all(
    path: str, seen: tuple[int, str], half: int
) -> None:
    shelf = Shelf(path)
    worker = Worker(shelf, NAMES["w0"], Tally(), "w")
    worker.acked, worker.pending = (3, "w-write-1"), "w-write-2"
    version, token = seen
    worker._settle(rewrite(tokened(NAMES["w0"], "x"), token).replace(version=version))
    shelf.close()
    assert worker.half_written == half
    assert worker.pending is None


def test_a_read_with_torn_tokens_counts_as_half_written(path: str) -> None:
    shelf = Shelf(path)
    worker = Worker(shelf, NAMES["w0"], Tally(), "w")
    worker._settle(tokened(NAMES["w0"], "field-token").replace(description="row-token"))
    shelf.close()
    assert worker.half_written == 1


def _thread_quiet() -> Quiet:
    return Quiet(Board([0] * Board.SIZE, threading.Lock()))


def test_quiet_waits_for_every_worker_at_a_checkpoint() -> None:
    quiet = _thread_quiet()
    arrived = threading.Barrier(3)
    stop = threading.Event()
    steps = [0, 0]

    def work(index: int) -> None:
        quiet.arrive()
        arrived.wait()
        while not stop.is_set():
            quiet.checkpoint()
            steps[index] += 1
        quiet.leave()

    threads = [threading.Thread(target=work, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    arrived.wait()
    assert quiet.pause(30)
    parked = list(steps)
    time.sleep(0.05)
    assert steps == parked, "a worker took a step while paused"
    quiet.resume()
    stop.set()
    for thread in threads:
        thread.join(30)
    assert quiet.pause(30)  # both left: nobody to wait for
    quiet.resume()


class _PauseAsItUnparks(Board):
    """A board on which the first pause is withdrawn as soon as a thread has parked for it, and a
    second one is requested the moment the thread uncounts itself (withdrawn 0.2 s later)."""

    def __init__(self) -> None:
        super().__init__([0] * Board.SIZE, threading.Lock())
        self.parked = False
        self.second: threading.Timer | None = None

    def add(self, index: int, amount: int = 1) -> None:
        if index == Quiet.PARKED and amount < 0 and self.second is None:
            super().add(Quiet.REQUESTS)
            self.second = threading.Timer(0.2, super().add, (Quiet.REQUESTS, -1))
            self.second.start()
        super().add(index, amount)
        if index == Quiet.PARKED and amount > 0 and not self.parked:
            self.parked = True
            super().add(Quiet.REQUESTS, -1)


def test_a_pause_requested_as_a_thread_unparks_keeps_it_parked() -> None:
    # Otherwise the second pause would count the thread as parked while it went on to its next
    # call: a fork could then find it inside SQLite's C code.
    board = _PauseAsItUnparks()
    quiet = Quiet(board)
    quiet.arrive()
    board.add(Quiet.REQUESTS)
    quiet.checkpoint()
    assert board.second is not None, "the thread never uncounted itself"
    assert board.read(Quiet.REQUESTS) == 0, "left its checkpoint while a pause was requested"
    board.second.join(30)


def test_quiet_gives_up_on_a_worker_that_never_checks_in() -> None:
    quiet = _thread_quiet()
    quiet.arrive()
    assert not quiet.pause(0.01)
    quiet.checkpoint()  # the request was withdrawn: a late checkpoint does not park


def _step_in_another_process(values: Any, lock: Any, steps: Any, stop: Any) -> None:
    quiet = Quiet(Board(values, lock))
    quiet.arrive()
    while not stop.is_set():
        quiet.checkpoint()
        steps.value += 1
    quiet.leave()


def test_quiet_parks_the_workers_of_other_processes() -> None:
    spawn = multiprocessing.get_context("spawn")
    values, lock = spawn.RawArray("q", Board.SIZE), spawn.Lock()
    steps, stop = spawn.RawValue("q", 0), spawn.Event()
    quiet = Quiet(Board(values, lock))
    other = spawn.Process(target=_step_in_another_process, args=(values, lock, steps, stop), daemon=True)
    other.start()
    try:
        while steps.value == 0 and other.is_alive():  # it has arrived and is working
            time.sleep(0.01)
        assert quiet.pause(60)
        parked = steps.value
        time.sleep(0.05)
        assert steps.value == parked, "the other process's worker took a step while paused"
        quiet.resume()
        while steps.value == parked and other.is_alive():  # and it goes on
            time.sleep(0.01)
    finally:
        stop.set()
        other.join(60)
    assert other.exitcode == 0


def test_a_fork_round_keeps_the_workers_parked_until_its_child_has_exited(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The child must have the write lock to itself: a worker that went on writing while it ran
    # could keep it waiting (SQLite's busy wait is not fair) until it counted as hung. This test
    # process must not fork, so the fork is a stand-in that returns a child's pid to the parent.
    quiet = _thread_quiet()
    seen: list[int] = []
    monkeypatch.setattr(os, "fork", lambda: 12345)

    def wait_child(pid: int, timeout: float) -> str:
        seen.append(quiet._board.read(quiet.REQUESTS))
        return "exit 5"

    monkeypatch.setattr(fork, "wait_child", wait_child)
    shelf = Shelf(path)
    stop = threading.Event()
    forker = fork.Forker(shelf, NAMES, "f", quiet, stop.is_set)
    try:
        forker.round(30)
    finally:
        stop.set()
        forker.holder.join(30)
        shelf.close()
    assert seen == [1], "the workers were let go before the child had exited"
    assert quiet._board.read(quiet.REQUESTS) == 0
    assert forker.outcomes == {"exit 5": 1}


def test_lock_holder_holds_the_writer_lock_until_released(path: str) -> None:
    shelf = Shelf(path)
    stop = threading.Event()
    holder = LockHolder(shelf, NAMES["hold"], "h", stop.is_set)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        assert holder.hold(30)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        holder.release()
        stop.set()
        holder.join(30)
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()
        shelf.close()
    assert holder.acked is not None
    assert holder.acked[1] == "h-hold-1"
    assert holder.errors == []


def _spawn(code: str) -> int:
    return os.posix_spawn(sys.executable, [sys.executable, "-c", code], dict(os.environ))


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("import os; os._exit(0)", "exit 0"),
        ("import os; os._exit(5)", "exit 5"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "signal 11"),
    ],
)
def test_wait_child_reports_how_a_child_ended(code: str, outcome: str) -> None:
    assert fork.wait_child(_spawn(code), 60) == outcome


def _blocked_child() -> subprocess.Popen[bytes]:
    """A child that has started and now waits forever on its stdin, using no CPU: a hang."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; print('ready', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    return child


def test_wait_child_kills_a_hung_child() -> None:
    child = _blocked_child()
    try:
        assert fork.wait_child(child.pid, 0.5) == "hung"
        with pytest.raises(ChildProcessError):
            os.waitpid(child.pid, os.WNOHANG)  # reaped
    finally:
        child.returncode = -9  # reaped above: Popen must not wait for it again
        for stream in (child.stdin, child.stdout):
            assert stream is not None
            stream.close()


def _pinned_spinner(cpu: int, idle: bool) -> subprocess.Popen[bytes]:
    """A child on CPU `cpu` that says it is ready, then spins (at idle priority if `idle`)."""
    code = (
        "import os, sys\n"
        f"os.sched_setaffinity(0, {{{cpu}}})\n"
        + ("os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\n" if idle else "")
        + "print('ready', flush=True)\n"
        "while True: pass\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    return child


@pytest.mark.skipif(not os.path.exists("/proc/self/schedstat"), reason="needs Linux's schedstat")
def test_wait_child_tells_a_starved_child_from_a_hung_one() -> None:
    # Once ready the child wants a CPU all along but never gets one: it shares its CPU with a
    # busy process and runs at idle priority, as a child does on a machine at load 40. Killed
    # at its deadline like a hung one, it must not count as hung.
    cpu = min(os.sched_getaffinity(0))
    hog = _pinned_spinner(cpu, idle=False)
    try:
        starved = _pinned_spinner(cpu, idle=True)
        try:
            assert fork.wait_child(starved.pid, 1.0) == fork.STARVED
        finally:
            starved.returncode = -9  # reaped by wait_child
            assert starved.stdout is not None
            starved.stdout.close()
    finally:
        hog.kill()
        hog.wait()
        assert hog.stdout is not None
        hog.stdout.close()


def test_watch_judges_from_what_the_child_waited_for() -> None:
    watch = Watch(os.getpid(), start=time.monotonic() - 2.0)
    watch._last = watch.start + 2.0
    assert not watch.starved()  # two seconds with the machine and nothing waited for: hung
    watch.runnable, watch.cpu = 1.5, 0.3  # 1.2 s queued for a CPU
    assert watch.starved()
    watch.runnable, watch.cpu = 1.5, 1.5  # a child that ran all along (a livelock) had the machine
    assert not watch.starved()
    watch.disk = 1.2
    assert watch.starved()
    watch.readable = False
    assert not watch.starved()  # without /proc nothing tells a starved child from a hung one


def test_refusal_check_passes_on_a_catalog_that_refuses_calls_after_close(path: str) -> None:
    assert refusal_check(path, NAMES["w0"]) == (0, [])
