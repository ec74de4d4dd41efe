"""The watchdog's judgement: clients past the end get the grace past their last progress, up to the cap,
and the progress readings change when clients (or what they started) use CPU or finish operations.

That clients which only wait make no progress is shown where it matters, end to end: a planted hang
is judged hung (tests/unit/test_stress_runner.py)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Hashable

import pytest

from metafuse.stress import _watchdog
from metafuse.stress._watchdog import (
    SAMPLE_EVERY,
    WATCHDOG_CAP,
    WATCHDOG_GRACE,
    ProcessClientsProgress,
    ThreadClientsProgress,
    Watchdog,
)

DEADLINE = 1_000.0

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


class Readings:
    """A progress reading the test sets by hand."""

    def __init__(self) -> None:
        self.value = 0
        self.reads = 0

    def __call__(self) -> Hashable:
        self.reads += 1
        return self.value


def test_clients_that_make_no_progress_past_the_end_are_hung_after_the_grace() -> None:
    reading = Readings()
    watch = Watchdog(DEADLINE, reading)
    assert watch.limit(DEADLINE - 1) == DEADLINE + WATCHDOG_GRACE
    assert reading.reads == 0  # nothing is read before the end
    reading.value += 1  # before the first reading past the end: that reading is the baseline
    assert not watch.expired(DEADLINE + WATCHDOG_GRACE - SAMPLE_EVERY)
    assert watch.expired(DEADLINE + WATCHDOG_GRACE)


def test_progress_moves_the_limit_to_a_grace_past_it() -> None:
    reading = Readings()
    watch = Watchdog(DEADLINE, reading)
    watch.limit(DEADLINE)
    reading.value += 1
    progress = DEADLINE + WATCHDOG_GRACE - 1
    assert watch.limit(progress) == progress + WATCHDOG_GRACE
    assert not watch.expired(DEADLINE + WATCHDOG_GRACE)
    assert watch.expired(progress + WATCHDOG_GRACE)


def test_progress_that_never_stops_is_hung_at_the_cap() -> None:
    reading = Readings()
    watch = Watchdog(DEADLINE, reading)
    now = DEADLINE
    while now < DEADLINE + WATCHDOG_CAP:
        assert not watch.expired(now)
        reading.value += 1
        now += 1.0
    assert watch.expired(DEADLINE + WATCHDOG_CAP)


def test_readings_closer_than_the_sampling_interval_are_read_once() -> None:
    reading = Readings()
    watch = Watchdog(DEADLINE, reading)
    watch.limit(DEADLINE)
    watch.limit(DEADLINE + SAMPLE_EVERY / 2)
    assert reading.reads == 1


def _spin(cpu_seconds: float) -> None:
    """Use `cpu_seconds` of this thread's CPU time (however long a loaded machine takes)."""
    until = time.thread_time() + cpu_seconds
    while time.thread_time() < until:
        pass


def test_the_thread_reading_changes_with_the_cpu_of_threads_started_after_it() -> None:
    read = ThreadClientsProgress([0, 0, 0])
    go, spun, done = threading.Event(), threading.Event(), threading.Event()

    def client() -> None:
        go.wait()
        _spin(0.1)
        spun.set()
        done.wait()

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        waiting = read()
        go.set()
        spun.wait()
        assert read() != waiting
    finally:
        done.set()
        thread.join()


def test_the_thread_reading_counts_finished_operations() -> None:
    live = [0, 0, 0]
    read = ThreadClientsProgress(live)
    before = read()
    live[0] += 1
    assert read() != before


_FAMILY = """
import os, sys, time
pid = os.fork()
if pid == 0:
    sys.stdin.readline()
    until = time.process_time() + 0.1
    while time.process_time() < until:
        pass
    print("spun", flush=True)
    sys.stdin.readline()
    os._exit(0)
print("forked", flush=True)
os.waitpid(pid, 0)
"""
"""A client process that waits for its forked child, which does the work (as fork scenarios do)."""


def test_the_process_reading_counts_the_cpu_of_a_client_process_s_children() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _FAMILY], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as family:
        assert family.stdin is not None
        assert family.stdout is not None
        assert family.stdout.readline() == "forked\n"
        read = ProcessClientsProgress([0], lambda: [family.pid])
        waiting = read()
        family.stdin.write("go\n")
        family.stdin.flush()
        assert family.stdout.readline() == "spun\n"
        assert read() != waiting  # the client itself only waited
        family.stdin.close()  # the child reads its end and exits, then the client


def test_bounds_are_read_when_used_so_tests_can_shorten_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_watchdog, "WATCHDOG_GRACE", 1.0)
    monkeypatch.setattr(_watchdog, "WATCHDOG_CAP", 3.0)
    assert Watchdog(DEADLINE, Readings()).limit(DEADLINE) == DEADLINE + 1.0
