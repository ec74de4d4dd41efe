"""Shared fixtures: a fresh catalog file per test (xdist-safe), no faults, no Hypothesis database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from metafuse import Catalog, faults

# No example database: the tests must not write outside their temp directories.
settings.register_profile(
    "metafuse-unit",
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.load_profile("metafuse-unit")


@pytest.fixture(autouse=True)
def _no_faults() -> Iterator[None]:
    """Every test starts and ends with no fault switched on (a leak would poison later tests)."""
    assert faults.current() == frozenset(), f"faults on before the test: {sorted(faults.current())}"
    yield
    assert faults.current() == frozenset(), f"faults left on by the test: {sorted(faults.current())}"


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    """Path of a catalog file that does not exist yet, private to this test."""
    return tmp_path / "catalog.db"


@pytest.fixture
def catalog(catalog_path: Path) -> Iterator[Catalog]:
    """A new catalog in this test's temp directory, closed afterwards."""
    cat = Catalog(catalog_path)
    try:
        yield cat
    finally:
        cat.close()


@pytest.fixture
def other(catalog: Catalog, catalog_path: Path) -> Iterator[Catalog]:
    """A second `Catalog` object on the same file: another client of the same catalog."""
    cat = Catalog(catalog_path)
    try:
        yield cat
    finally:
        cat.close()
