"""Benchmark fixtures: the 10,000-dataset catalog, built once and cached under .benchmarks/fixtures/.

Read benchmarks open the cached file itself (they never write to it); write benchmarks get a
copy in this session's temp directory, so the cached file stays as built.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _bigcatalog import FIXTURE_NAME, ensure, raw_connect

from metafuse import Catalog

_BUILD = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def fixture_path(request: pytest.FixtureRequest) -> Path:
    """The cached benchmark catalog (10,000 datasets), built first if missing or out of date."""
    path = request.config.rootpath / ".benchmarks" / "fixtures" / FIXTURE_NAME
    start = time.perf_counter()
    seconds = ensure(path)
    if seconds is None:
        note = f"reused {path} (checked in {time.perf_counter() - start:.2f} s)"
    else:
        total = time.perf_counter() - start
        note = f"built {path}: create_many {seconds:.2f} s, {total:.2f} s with generation"
    request.config.stash[_BUILD] = note
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Say whether the fixture catalog was built (and how long that took) or reused."""
    note = config.stash.get(_BUILD, None)
    if note is not None:
        terminalreporter.write_line(f"benchmark fixture: {note}")


@pytest.fixture(scope="session")
def read_catalog(fixture_path: Path) -> Iterator[Catalog]:
    """The cached catalog with the default cache (reads only)."""
    with Catalog(fixture_path) as catalog:
        yield catalog


@pytest.fixture(scope="session")
def cold_catalog(fixture_path: Path) -> Iterator[Catalog]:
    """The cached catalog with no cache: every `get` reads SQLite."""
    with Catalog(fixture_path, cache_size=0) as catalog:
        yield catalog


@pytest.fixture(scope="session")
def raw_read(fixture_path: Path) -> Iterator[sqlite3.Connection]:
    """A plain `sqlite3` connection to the cached catalog, set up as the catalog sets its own."""
    conn = raw_connect(fixture_path)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def write_path(fixture_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the cached catalog for benchmarks that write."""
    path = tmp_path_factory.mktemp("bench-write") / "catalog.db"
    shutil.copyfile(fixture_path, path)
    return path


@pytest.fixture(scope="session")
def write_catalog(write_path: Path) -> Iterator[Catalog]:
    """The writable copy, opened with the default settings (synchronous FULL)."""
    with Catalog(write_path) as catalog:
        yield catalog


@pytest.fixture(scope="session")
def raw_write(write_path: Path) -> Iterator[sqlite3.Connection]:
    """A plain `sqlite3` connection to the writable copy (WAL, synchronous FULL, busy timeout)."""
    conn = raw_connect(write_path)
    yield conn
    conn.close()
