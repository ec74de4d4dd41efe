"""Helpers shared by the unit tests: a dataset factory and the targets of spawned processes.

Spawn targets live here, not in the test modules, so a child process imports only `metafuse`
and this module (fast), and so they are module-level functions as `spawn` requires.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from metafuse import Catalog, Dataset, Field


def make(name: str = "sales.orders", **changes: Any) -> Dataset:
    """Return a valid dataset called `name`, with `changes` applied over typical values."""
    values: dict[str, Any] = {
        "uri": f"s3://bucket/{name}",
        "format": "parquet",
        "description": f"rows of {name}",
        "owner": "ana",
        "domain": "sales",
        "tags": ("pii",),
        "fields": (Field("id", "bigint", nullable=False), Field("amount", "decimal(10,2)")),
    }
    values.update(changes)
    return Dataset(name=name, **values)


def child_save(path: str, name: str, description: str, result: Any) -> None:
    """Spawn target: save `name` with a new description through a catalog of its own."""
    try:
        with Catalog(path) as catalog:
            current = catalog.get(name)
            assert current is not None
            saved = catalog.save(current.replace(description=description), expected_version=current.version)
            result.put(("saved", saved.version))
    except BaseException as error:  # report, so the parent fails with the reason, not a timeout
        result.put(("error", repr(error)))


def child_cache_then_reread(path: str, name: str, result: Any, go: Any) -> None:
    """Spawn target: read `name` twice (second from cache), report, wait for `go`, read again."""
    try:
        with Catalog(path) as catalog:
            first = catalog.get(name)
            second = catalog.get(name)
            assert first is not None
            assert second is not None
            result.put(("cached", first.version, second is first, catalog.stats().cache_hits))
            if not go.wait(60):
                result.put(("error", "parent never signalled"))
                return
            again = catalog.get(name)
            assert again is not None
            result.put(("reread", again.version, again.description))
    except BaseException as error:
        result.put(("error", repr(error)))


@contextlib.contextmanager
def logged(name: str) -> Iterator[list[logging.LogRecord]]:
    """The records logger `name` emits inside the block, read from the logger itself.

    Not through pytest's caplog, which sees only what reaches the root logger: a stress CLI test
    earlier on the same worker may have stopped the `metafuse` logger's propagation.
    """
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
