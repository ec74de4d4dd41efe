"""ReplicaSync's catch-up: threads that found the log moved share one catch-up when they can."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from metafuse._replicasync import ReplicaSync


class CountingTransaction:
    """Stands for the catalog's `transaction()`: counts how many ran, and holds the first."""

    def __init__(self) -> None:
        self.ran = 0
        self.first_entered = threading.Event()
        self.release = threading.Event()

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self.ran += 1
        if self.ran == 1:
            self.first_entered.set()
            assert self.release.wait(10)
        yield


def test_readers_waiting_behind_a_later_catch_up_take_its_result() -> None:
    transaction = CountingTransaction()
    sync = ReplicaSync(None, None, None, transaction, None, "unused")  # type: ignore[arg-type]
    read_began = time.monotonic()  # these readers' calls began before the catch-up below
    first = threading.Thread(target=sync.catch_up, args=(read_began,))
    first.start()
    assert transaction.first_entered.wait(10)
    waiting = [threading.Thread(target=sync.catch_up, args=(read_began,)) for _ in range(4)]
    for thread in waiting:
        thread.start()
    transaction.release.set()
    for thread in [first, *waiting]:
        thread.join(10)
    assert transaction.ran == 1


def test_a_read_that_began_after_the_last_catch_up_began_catches_up_itself() -> None:
    transaction = CountingTransaction()
    transaction.release.set()
    sync = ReplicaSync(None, None, None, transaction, None, "unused")  # type: ignore[arg-type]
    sync.catch_up(time.monotonic())
    sync.catch_up(time.monotonic())
    sync.catch_up()  # no time given: always looks at the log
    assert transaction.ran == 3


def test_a_failed_catch_up_is_not_taken_for_one() -> None:
    calls: list[int] = []

    @contextlib.contextmanager
    def failing() -> Iterator[None]:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("store away")
        yield

    sync = ReplicaSync(None, None, None, failing, None, "unused")  # type: ignore[arg-type]
    began = time.monotonic()
    with contextlib.suppress(OSError):
        sync.catch_up(began)
    sync.catch_up(began)
    assert len(calls) == 2
