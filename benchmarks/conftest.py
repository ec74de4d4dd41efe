"""Benchmark fixtures: the 10,000-dataset catalog, built once and cached under .benchmarks/fixtures/.

Read benchmarks open the cached file itself (they never write to it); write benchmarks get a
copy in this session's temp directory, so the cached file stays as built.

Every `[catalog]` / `[raw_sqlite]` benchmark runs in `--bench-rounds` rounds (default 5), ordered
so that each round measures the catalog side and then its raw side back to back: round r of a
group gives one ratio, and the spread of a group's per-round ratios is the noise that
`tools/bench_ratios.py` weighs a change against.

`METAFUSE_BENCH_SLOWDOWN=GROUP:FACTOR` (e.g. `get-miss:2`) makes the catalog side of one group
FACTOR times slower by spinning after each timed call for (FACTOR - 1) times the CPU time the
call took (the benchmarks time CPU): a planted regression for proving that the compare catches
one. Only these benchmarks read it.
"""

from __future__ import annotations

import functools
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from _bigcatalog import FIXTURE_NAME, ensure, raw_connect
from pytest_benchmark.fixture import BenchmarkFixture

from metafuse import Catalog

_BUILD = pytest.StashKey[str]()
ROUNDS = 5
"""Default rounds of every catalog/raw benchmark pair (`--bench-rounds`)."""
SLOWDOWN_ENV = "METAFUSE_BENCH_SLOWDOWN"
"""`GROUP:FACTOR`: slow the catalog side of one benchmark group down FACTOR times (planted regression)."""
IMPLS = ("catalog", "raw_sqlite")


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--bench-rounds N`: how many rounds of each catalog/raw pair to measure."""
    parser.addoption(
        "--bench-rounds",
        type=int,
        default=ROUNDS,
        help=f"rounds of each catalog/raw benchmark pair, interleaved (default {ROUNDS})",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give every `impl`-parametrized benchmark a `bench_round` parameter: 0 .. rounds-1."""
    if "bench_round" in metafunc.fixturenames and "impl" in metafunc.fixturenames:
        rounds = max(1, int(metafunc.config.getoption("bench_rounds")))
        metafunc.parametrize("bench_round", range(rounds), indirect=True, ids=lambda r: f"r{r}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order each benchmark's items round by round, catalog before raw within a round, so the
    two sides of a round's ratio are measured back to back under the same machine load."""

    def key(item: pytest.Item) -> tuple[int, int]:
        params = getattr(item, "callspec", None)
        values = params.params if params is not None else {}
        impl = values.get("impl")
        return int(values.get("bench_round", 0)), IMPLS.index(impl) if impl in IMPLS else 0

    start = 0
    while start < len(items):
        end = start
        function = getattr(items[start], "originalname", items[start].name)
        while end < len(items) and getattr(items[end], "originalname", items[end].name) == function:
            end += 1
        items[start:end] = sorted(items[start:end], key=key)
        start = end


@pytest.fixture(autouse=True)
def bench_round(request: pytest.FixtureRequest) -> int:
    """This item's round (0 when the test is not a catalog/raw pair)."""
    return int(getattr(request, "param", 0))


def planted_slowdown(group: str, impl: str) -> float:
    """The slowdown factor `METAFUSE_BENCH_SLOWDOWN` asks for on this side of `group` (1: none)."""
    spec = os.environ.get(SLOWDOWN_ENV, "").strip()
    if not spec or impl != "catalog":
        return 1.0
    target, _, factor = spec.rpartition(":")
    try:
        value = float(factor)
    except ValueError:
        raise pytest.UsageError(f"{SLOWDOWN_ENV}={spec!r}: use GROUP:FACTOR, e.g. get-miss:2") from None
    if value < 1:
        raise pytest.UsageError(f"{SLOWDOWN_ENV}={spec!r}: FACTOR must be 1 or more")
    return value if target == group else 1.0


def slowed(target: Callable[..., Any], factor: float) -> Callable[..., Any]:
    """`target`, then a spin for (factor - 1) times the process CPU time it took."""

    @functools.wraps(target)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        result = target(*args, **kwargs)
        until = time.process_time() + (time.process_time() - start) * (factor - 1)
        while time.process_time() < until:
            pass
        return result

    return wrapper


class _SlowedFixture(BenchmarkFixture):
    """pytest-benchmark's fixture with every timed target wrapped by `slowed` (the plugin insists
    on its own class, so the fixture's class is swapped rather than the fixture wrapped)."""

    slowdown = 1.0

    def __call__(self, function_to_benchmark: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return super().__call__(slowed(function_to_benchmark, self.slowdown), *args, **kwargs)  # type: ignore[no-untyped-call]

    def pedantic(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return super().pedantic(slowed(target, self.slowdown), *args, **kwargs)  # type: ignore[no-untyped-call]


@pytest.fixture
def benchmark(benchmark: BenchmarkFixture, request: pytest.FixtureRequest) -> BenchmarkFixture:
    """pytest-benchmark's fixture, slowed down when `METAFUSE_BENCH_SLOWDOWN` names this group."""
    marker = request.node.get_closest_marker("benchmark")
    group = str(marker.kwargs.get("group", "")) if marker is not None else ""
    callspec = getattr(request.node, "callspec", None)
    impl = str(callspec.params.get("impl", "")) if callspec is not None else ""
    factor = planted_slowdown(group, impl)
    if factor != 1.0:
        benchmark.__class__ = _SlowedFixture
        cast(_SlowedFixture, benchmark).slowdown = factor
    return benchmark


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
