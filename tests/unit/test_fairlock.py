"""FairLock hands the lock to waiters in the order they asked, and withdraws those that time out."""

from __future__ import annotations

import threading
import time

import pytest

from metafuse._fairlock import FairLock


def _wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.001)


def test_waiters_get_the_lock_in_arrival_order() -> None:
    lock = FairLock()
    order: list[int] = []
    assert lock.acquire()
    threads = []
    for index in range(4):
        thread = threading.Thread(target=lambda i=index: (lock.acquire(), order.append(i), lock.release()))
        thread.start()
        threads.append(thread)
        _wait_for(lambda n=index + 1: len(lock._waiting) == n, "a waiter never queued")
    lock.release()
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3]


def test_a_releaser_asking_again_queues_behind_the_waiters() -> None:
    lock = FairLock()
    got: list[str] = []
    assert lock.acquire()
    waiter = threading.Thread(target=lambda: (lock.acquire(), got.append("waiter"), lock.release()))
    waiter.start()
    _wait_for(lambda: len(lock._waiting) == 1, "the waiter never queued")
    lock.release()
    assert lock.acquire()  # returns only after the waiter has had its turn
    got.append("releaser")
    lock.release()
    waiter.join()
    assert got == ["waiter", "releaser"]


def test_a_timed_out_waiter_leaves_the_queue() -> None:
    lock = FairLock()
    assert lock.acquire()
    assert lock.acquire(timeout=0.01) is False
    assert len(lock._waiting) == 0
    lock.release()
    assert lock.acquire(timeout=0)
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()
