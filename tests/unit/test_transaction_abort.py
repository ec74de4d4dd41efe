"""A transaction is all or nothing under every error: full disk, interrupts, at every nesting depth.

The sweep tests stop SQLite at every point of a write (a progress handler interrupts the statement
running after K virtual-machine steps, for K = 1, 2, ...) and check that what is committed is one of
the states the caller could legitimately expect, never a mixture: an interrupted INSERT, UPDATE or
DELETE inside an explicit transaction makes SQLite roll back the *whole* transaction, which is the
case that used to let the rest of an outer block commit on its own in autocommit mode.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from metafuse import Catalog, CatalogError, Dataset, TransactionAbortedError

from ._support import make

Op = Callable[[Catalog], object]


def _conn(catalog: Catalog) -> sqlite3.Connection:
    """This thread's own connection of `catalog` (to set SQLite test knobs on it)."""
    return catalog._pool.session().check(catalog.path)


def _snapshot(path: Path) -> list[tuple[str, int, str]]:
    """What is committed: (name, version, description) of every dataset, read with plain SQL."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name, version, coalesce(description, '') FROM datasets ORDER BY name")
        return [(str(name), int(version), str(text)) for name, version, text in rows]
    finally:
        conn.close()


OPS: dict[str, Op] = {
    "create": lambda cat: cat.create(make("op.new", tags=["t1", "t2"])),
    "create_many": lambda cat: cat.create_many([make(f"op.batch{i}") for i in range(3)]),
    "save": lambda cat: cat.save(
        make("op.target", description="saved", tags=["changed"]), expected_version=1
    ),
    "update": lambda cat: cat.update(
        "op.target", lambda d: d.replace(description="updated", tags=("u",)), max_attempts=2
    ),
    "delete": lambda cat: cat.delete("op.target", expected_version=1),
}


@contextlib.contextmanager
def _nested(catalog: Catalog, depth: int) -> Iterator[None]:
    """Enter `depth` nested transaction blocks (0: none); exceptions pass through all of them."""
    with contextlib.ExitStack() as stack:
        for _ in range(depth):
            stack.enter_context(catalog.transaction())
        yield


def _interrupt_after(conn: sqlite3.Connection, ticks: int) -> list[int]:
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 1 if count[0] >= ticks else 0

    conn.set_progress_handler(tick, 1)
    return count


def _run(path: Path, op: Op, depth: int, ticks: int) -> tuple[str, list[str]]:
    """Run `op` (interrupted after `ticks` steps) at `depth`, with a write before and after it."""
    events: list[str] = []
    catalog = Catalog(path)
    try:
        conn = _conn(catalog)
        try:
            with _nested(catalog, depth):
                if depth:
                    catalog.create(make("before"))
                count = _interrupt_after(conn, ticks)
                try:
                    op(catalog)
                    events.append("op ok")
                except CatalogError as error:
                    events.append(f"op {type(error).__name__}")
                finally:
                    # An interrupted ROLLBACK makes the catalog drop that connection.
                    with contextlib.suppress(sqlite3.ProgrammingError):
                        conn.set_progress_handler(None, 1)
                del count
                if depth:
                    try:
                        catalog.create(make("after"))
                        events.append("after ok")
                    except TransactionAbortedError:
                        events.append("after aborted")
            events.append("block ok")
        except TransactionAbortedError:
            events.append("block aborted")
        except CatalogError as error:
            events.append(f"block {type(error).__name__}")
    finally:
        catalog.close()
    return ";".join(events), events


def _seed(path: Path) -> None:
    with Catalog(path) as catalog:
        catalog.create(make("op.target", description="original", tags=["orig"]))


@pytest.mark.parametrize("depth", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(OPS))
def test_every_interruption_point_leaves_all_or_nothing(tmp_path: Path, name: str, depth: int) -> None:
    op = OPS[name]
    # The states a caller may legitimately find afterwards, computed by running without faults.
    reference = tmp_path / "reference.db"
    _seed(reference)
    initial = _snapshot(reference)
    assert _run(reference, op, depth, ticks=10**9)[0].endswith("block ok")
    complete = _snapshot(reference)
    allowed = {tuple(initial), tuple(complete)}
    if depth:
        # The op failed and was rolled back to its savepoint; the block went on and committed.
        without_op = tmp_path / "without-op.db"
        _seed(without_op)
        with Catalog(without_op) as catalog, catalog.transaction():
            catalog.create(make("before"))
            catalog.create(make("after"))
        allowed.add(tuple(_snapshot(without_op)))

    template = tmp_path / "template.db"
    _seed(template)  # closed cleanly: the whole catalog is this one file
    seen_abort = False
    ticks = 1
    while True:
        path = tmp_path / f"run{ticks}.db"
        shutil.copyfile(template, path)
        summary, events = _run(path, op, depth, ticks)
        state = tuple(_snapshot(path))
        assert state in allowed, f"interrupted after {ticks} steps ({summary}): committed {state}"
        if depth and "after aborted" in events:
            seen_abort = True
            # The transaction was lost: the block must end in the abort with nothing committed.
            assert events[-1] == "block aborted", summary
            assert state == tuple(initial), summary
        if events[0] == "op ok" or ticks > 5_000:
            break
        for leftover in tmp_path.glob(f"run{ticks}.db*"):
            leftover.unlink()
        # Every step at first, then a widening stride: the statements of one write are all hit.
        ticks += 1 if ticks < 30 else ticks // 8
    assert events[0] == "op ok", "the sweep never let the op finish"
    if depth and name != "delete":
        assert seen_abort, "no interruption point ended the whole transaction: the sweep proved nothing"


def _fill_disk(catalog: Catalog, spare_pages: int = 1) -> None:
    conn = _conn(catalog)
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    conn.execute(f"PRAGMA max_page_count = {pages + spare_pages}")


BIG = "x" * 60_000

FILLING: dict[str, Op] = {
    "create": lambda cat: cat.create(make("big.new", description=BIG)),
    "create_many": lambda cat: cat.create_many([make(f"big.{i}", description=BIG) for i in range(4)]),
    "save": lambda cat: cat.save(make("op.target", description=BIG), expected_version=1),
    "update": lambda cat: cat.update("op.target", lambda d: d.replace(description=BIG), max_attempts=1),
}


@pytest.mark.parametrize("depth", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(FILLING))
def test_a_full_disk_inside_a_block_is_all_or_nothing(tmp_path: Path, name: str, depth: int) -> None:
    path = tmp_path / "catalog.db"
    _seed(path)
    initial = _snapshot(path)
    events = _fill_and_go_on(path, FILLING[name], depth)
    if "after aborted" in events:
        # SQLite ended the whole transaction: the block ended in that error, nothing committed.
        assert events[-1] == "block aborted", events
        expected = initial
    elif depth:
        # SQLite undid only the statement: the op was rolled back to its savepoint, and the
        # rest of the block, which the caller chose to go on with, committed.
        assert events[-2:] == ["after ok", "block ok"], events
        expected = sorted([*initial, ("after", 1, "rows of after"), ("before", 1, "rows of before")])
    else:
        expected = initial
    assert _snapshot(path) == sorted([*expected, ("next", 1, "rows of next")])


def test_a_full_disk_that_ends_the_transaction_refuses_the_rest_of_the_block(tmp_path: Path) -> None:
    # The reported case: a nested create_many hits the full disk, SQLite rolls back everything,
    # the caller catches the error and writes on. Before, that write was committed on its own.
    path = tmp_path / "catalog.db"
    _seed(path)
    initial = _snapshot(path)
    events = _fill_and_go_on(path, FILLING["create_many"], 1)
    assert events == ["op StorageError", "after aborted", "read aborted", "block aborted"]
    assert _snapshot(path) == sorted([*initial, ("next", 1, "rows of next")])


def _fill_and_go_on(path: Path, op: Op, depth: int) -> list[str]:
    """Fill the disk, run `op` inside `depth` blocks, catch its error and go on; return what happened."""
    events: list[str] = []
    catalog = Catalog(path)
    try:
        _fill_disk(catalog)
        try:
            with _nested(catalog, depth):
                if depth:
                    catalog.create(make("before"))
                try:
                    op(catalog)
                    events.append("op ok")
                except CatalogError as error:
                    events.append(f"op {type(error).__name__}")
                if depth:
                    try:
                        catalog.create(make("after"))
                        events.append("after ok")
                    except TransactionAbortedError:
                        events.append("after aborted")
                        try:
                            catalog.get("op.target")
                        except TransactionAbortedError:
                            events.append("read aborted")
            events.append("block ok")
        except TransactionAbortedError:
            events.append("block aborted")
        _conn(catalog).execute("PRAGMA max_page_count = 1073741823")
        catalog.create(make("next"))  # usable again at once
    finally:
        catalog.close()
    assert events[0] == "op StorageError", events
    return events


def test_no_raw_sqlite_error_escapes_a_public_method(catalog: Catalog) -> None:
    catalog.create(make("a"))
    conn = _conn(catalog)
    conn.set_progress_handler(lambda: 1, 1)  # every statement is interrupted
    try:
        for call in (
            lambda: catalog.create(make("b")),
            lambda: catalog.get("a"),
            catalog.list,
            lambda: catalog.search("a"),
            lambda: catalog.lineage("a"),
            lambda: catalog.count,
            lambda: catalog.version,
            catalog.integrity_check,
            lambda: catalog.update("a", lambda d: d, max_attempts=1),
        ):
            with pytest.raises(CatalogError) as caught:
                call()
            assert not isinstance(caught.value, sqlite3.Error)
    finally:
        conn.set_progress_handler(None, 1)
    stored = catalog.get("a")
    assert isinstance(stored, Dataset)
