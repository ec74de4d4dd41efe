"""Closing a catalog under the threads that use it: the `Shelf` they share, and the check that a
closed catalog refuses every later call.

A call on a closed catalog must raise `CatalogClosedError`; `closed_ok` turns that one expected
error into the `CLOSED` marker, so any other error still counts as one.

It writes no dataset and forks nothing, and reaches the catalog only through the public `Catalog`;
what a thread does with the shelved catalog is `worker`'s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ....catalog import Catalog
from ....errors import CatalogClosedError

CLOSED = object()
"""What a call returns instead of raising `CatalogClosedError` (see `closed_ok`)."""


def closed_ok(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
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
