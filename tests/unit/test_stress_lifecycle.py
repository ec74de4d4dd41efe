"""lifecycle: descriptor counting, the shelf, the pause, the lock holder, reaping children, and
that each invariant can fail. Nothing here forks the test process: children are spawned."""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import multiprocessing.process
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from metafuse import Catalog
from metafuse.stress.client import Board
from metafuse.stress.config import StressConfig
from metafuse.stress.runner import WATCHDOG_GRACE, run_scenario
from metafuse.stress.scenarios import lifecycle as scenario
from metafuse.stress.scenarios._content import recreate, rewrite, tokened

from ._stress_views import view

NAMES = scenario.dataset_names(0)


@pytest.fixture
def path(tmp_path: Path) -> str:
    catalog_path = str(tmp_path / "catalog.db")
    with Catalog(catalog_path) as catalog:
        recreate(catalog, [tokened(name, "initial") for name in NAMES.values()])
    return catalog_path


def _check(name: str, run: object) -> tuple[bool, str]:
    invariant = next(i for i in scenario.SCENARIO.invariants if i.name == name)
    return invariant.check(run)  # type: ignore[arg-type]


def test_catalog_fds_counts_descriptors_on_the_catalog_files_only(path: str, tmp_path: Path) -> None:
    before = scenario.catalog_fds(path)
    other = open(tmp_path / "unrelated", "w")  # noqa: SIM115 - held open on purpose
    try:
        with open(path, "rb"), open(f"{path}-mfgen", "ab"):
            assert scenario.catalog_fds(path) == before + 2
    finally:
        other.close()
    assert scenario.catalog_fds(path) == before


def test_shelf_replace_closes_the_old_catalog_and_shelves_a_working_one(path: str) -> None:
    shelf = scenario.Shelf(path)
    old, generation = shelf.current()
    assert not shelf.closed(generation)
    shelf.replace()
    new, new_generation = shelf.current()
    assert shelf.closed(generation)
    assert not shelf.closed(new_generation)
    assert new is not old
    assert new.get(NAMES["w0"]) is not None
    assert scenario._closed_ok(old.get, NAMES["w0"]) is scenario.CLOSED
    shelf.close()
    assert shelf.closed(new_generation)


def test_a_worker_switches_catalogs_and_proves_the_old_one_refuses(path: str) -> None:
    shelf = scenario.Shelf(path)
    tally = scenario.Tally()
    worker = scenario.Worker(shelf, NAMES["w0"], tally, "w")
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
    shelf = scenario.Shelf(path)
    tally = scenario.Tally()
    worker = scenario.Worker(shelf, NAMES["w0"], tally, "w")
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
    shelf = scenario.Shelf(path)
    worker = scenario.Worker(shelf, NAMES["w0"], scenario.Tally(), "w")
    worker.acked, worker.pending = (3, "w-write-1"), "w-write-2"
    version, token = seen
    worker._settle(rewrite(tokened(NAMES["w0"], "x"), token).replace(version=version))
    shelf.close()
    assert worker.half_written == half
    assert worker.pending is None


def test_a_read_with_torn_tokens_counts_as_half_written(path: str) -> None:
    shelf = scenario.Shelf(path)
    worker = scenario.Worker(shelf, NAMES["w0"], scenario.Tally(), "w")
    worker._settle(tokened(NAMES["w0"], "field-token").replace(description="row-token"))
    shelf.close()
    assert worker.half_written == 1


def _thread_quiet() -> scenario.Quiet:
    return scenario.Quiet(Board([0] * Board.SIZE, threading.Lock()))


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
        if index == scenario.Quiet.PARKED and amount < 0 and self.second is None:
            super().add(scenario.Quiet.REQUESTS)
            self.second = threading.Timer(0.2, super().add, (scenario.Quiet.REQUESTS, -1))
            self.second.start()
        super().add(index, amount)
        if index == scenario.Quiet.PARKED and amount > 0 and not self.parked:
            self.parked = True
            super().add(scenario.Quiet.REQUESTS, -1)


def test_a_pause_requested_as_a_thread_unparks_keeps_it_parked() -> None:
    # Otherwise the second pause would count the thread as parked while it went on to its next
    # call: a fork could then find it inside SQLite's C code.
    board = _PauseAsItUnparks()
    quiet = scenario.Quiet(board)
    quiet.arrive()
    board.add(scenario.Quiet.REQUESTS)
    quiet.checkpoint()
    assert board.second is not None, "the thread never uncounted itself"
    assert board.read(scenario.Quiet.REQUESTS) == 0, "left its checkpoint while a pause was requested"
    board.second.join(30)


def test_quiet_gives_up_on_a_worker_that_never_checks_in() -> None:
    quiet = _thread_quiet()
    quiet.arrive()
    assert not quiet.pause(0.01)
    quiet.checkpoint()  # the request was withdrawn: a late checkpoint does not park


def _step_in_another_process(values: Any, lock: Any, steps: Any, stop: Any) -> None:
    quiet = scenario.Quiet(Board(values, lock))
    quiet.arrive()
    while not stop.is_set():
        quiet.checkpoint()
        steps.value += 1
    quiet.leave()


def test_quiet_parks_the_workers_of_other_processes() -> None:
    spawn = multiprocessing.get_context("spawn")
    values, lock = spawn.RawArray("q", Board.SIZE), spawn.Lock()
    steps, stop = spawn.RawValue("q", 0), spawn.Event()
    quiet = scenario.Quiet(Board(values, lock))
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
    monkeypatch.setattr(scenario.os, "fork", lambda: 12345)

    def wait_child(pid: int, timeout: float) -> str:
        seen.append(quiet._board.read(quiet.REQUESTS))
        return "exit 5"

    monkeypatch.setattr(scenario, "wait_child", wait_child)
    shelf = scenario.Shelf(path)
    stop = threading.Event()
    forker = scenario.Forker(shelf, NAMES, "f", quiet, stop.is_set)
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
    shelf = scenario.Shelf(path)
    stop = threading.Event()
    holder = scenario.LockHolder(shelf, NAMES["hold"], "h", stop.is_set)
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
    assert scenario.wait_child(_spawn(code), 60) == outcome


def test_wait_child_kills_a_hung_child() -> None:
    pid = _spawn("import time; time.sleep(600)")
    assert scenario.wait_child(pid, 0.01) == "hung"
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped


def test_children_ok_fails_on_a_hung_crashed_or_failed_child(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as catalog:
        good = [{"forks": {"exit 0": 3, "skipped": 2}}]
        assert _check("children_ok", view(catalog, good))[0]
        bad_ends = (
            "hung",
            "signal 11",
            "exit 5",
            "exit 4",
            "exit 3",
            "helper hung",
            "parent missed child's write",
        )
        for bad in bad_ends:
            assert not _check("children_ok", view(catalog, [{"forks": {"exit 0": 3, bad: 1}}]))[0], bad
        assert not _check("children_ok", view(catalog, [{"forks": {"skipped": 2}}]))[0]


def test_closed_refused_and_only_closed_errors_fail_on_what_they_name(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as catalog:
        assert _check("closed_refused", view(catalog, [{"closed_served": 0}]))[0]
        assert not _check("closed_refused", view(catalog, [{"closed_served": 0}, {"closed_served": 2}]))[0]
        assert _check("only_closed_errors", view(catalog, [{"closed_seen": 5}]))[0]
        mmap = ["read: ValueError: mmap closed or invalid"]
        ok, detail = _check("only_closed_errors", view(catalog, [{"closed_seen": 5}], errors=mmap))
        assert not ok
        assert "mmap closed" in detail


def test_fds_restored_fails_on_a_leak_or_no_measurement(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as catalog:
        assert _check("fds_restored", view(catalog, [{"fd_before": 0, "fd_after": 0}, {}]))[0]
        assert not _check("fds_restored", view(catalog, [{"fd_before": 0, "fd_after": 2}]))[0]
        assert not _check("fds_restored", view(catalog, [{}]))[0]
        assert not _check("fds_restored", view(catalog, [{"fd_before": -1, "fd_after": -1}]))[0]


def test_nothing_lost_fails_on_a_missing_write_or_other_content(path: str) -> None:
    with Catalog(path) as catalog:
        name = NAMES["w0"]
        stored = catalog.get(name)
        assert stored is not None
        assert _check("nothing_lost", view(catalog, [{"acked": {name: (1, "initial")}}]))[0]
        assert not _check("nothing_lost", view(catalog, [{"acked": {name: (2, "initial")}}]))[0]
        assert not _check("nothing_lost", view(catalog, [{"acked": {name: (1, "other")}}]))[0]
        halves = [{"acked": {name: (1, "initial")}, "half_written": 1}]
        assert not _check("nothing_lost", view(catalog, halves))[0]
        assert not _check("nothing_lost", view(catalog, [{}]))[0]


def test_refusal_check_passes_on_a_catalog_that_refuses_calls_after_close(path: str) -> None:
    assert scenario.refusal_check(path, NAMES["w0"]) == (0, [])


def test_closed_refused_fails_when_the_refusal_check_failed(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as catalog:
        checked = [{"closed_served": 0, "refusal_failures": 1}]
        ok, detail = _check("closed_refused", view(catalog, checked))
        assert not ok
        assert "1 calls after close() not refused" in detail


def test_a_fork_helper_slow_to_start_does_not_eat_into_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a loaded machine a spawned interpreter can take seconds to start. The thread-mode
    # helper is started by setup, before the run's clock, so a slow start costs the run nothing:
    # here it takes longer than the run and the watchdog's grace together.
    start = multiprocessing.context.SpawnProcess.start

    def slow_start(process: multiprocessing.process.BaseProcess) -> None:
        time.sleep(WATCHDOG_GRACE + 2)
        start(process)  # type: ignore[arg-type]

    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", slow_start)
    config = StressConfig(clients=2, duration=1, mode="thread", seed=5)
    result = run_scenario(scenario.SCENARIO, config, path=str(tmp_path / "catalog.db"))
    failed = {check.name: check.detail for check in result.invariants if not check.ok}
    assert failed == {}
    assert result.passed
