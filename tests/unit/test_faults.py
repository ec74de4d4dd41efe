"""Tests for metafuse.faults: the switches work, unknown names are refused, and each hook bites."""

from __future__ import annotations

from pathlib import Path

import pytest

from metafuse import Catalog, ConflictError, Dataset, faults
from metafuse.errors import ValidationError

from ._support import make


def test_all_faults_are_off_by_default() -> None:
    assert faults.current() == frozenset()
    assert not any(faults.active(name) for name in faults.FAULTS)


def test_every_fault_has_a_description() -> None:
    assert set(faults.FAULTS) == {
        "lost_update",
        "stale_cache",
        "connection_leak",
        "torn_write",
        "unbounded_retry",
        "outside_blind",
        "path_spelling",
        "close_unguarded",
        "fork_unsafe",
        "stall",
        "unvalidated_reads",
        "unchecked_log",
        "trusting_probe",
        "group_abort",
        "early_ack",
        "fork_queue",
        "unchecked_group",
    }
    assert all(text.strip() for text in faults.FAULTS.values())


def test_enabled_switches_on_for_the_block_only() -> None:
    with faults.enabled("lost_update", "stale_cache"):
        assert faults.active("lost_update")
        assert faults.active("stale_cache")
        assert faults.current() == frozenset({"lost_update", "stale_cache"})
        with faults.enabled("torn_write"):
            assert faults.current() == frozenset({"lost_update", "stale_cache", "torn_write"})
        assert not faults.active("torn_write")
    assert faults.current() == frozenset()


def test_enabled_restores_after_an_exception() -> None:
    with pytest.raises(RuntimeError), faults.enabled("lost_update"):
        raise RuntimeError
    assert faults.current() == frozenset()


def test_unknown_fault_names_are_a_validation_error_naming_them() -> None:
    with pytest.raises(ValidationError) as caught, faults.enabled("lost_update", "no_such_fault"):
        pass
    assert caught.value.value == "no_such_fault"
    assert "lost_update" in str(caught.value)  # lists the known ones
    assert faults.current() == frozenset()


def test_parse() -> None:
    assert faults.parse("") == frozenset()
    assert faults.parse(" lost_update , ,stale_cache ") == frozenset({"lost_update", "stale_cache"})
    with pytest.raises(ValidationError, match=faults.ENV_VAR):
        faults.parse("lost_update,typo")


def test_lost_update_makes_a_stale_save_succeed(catalog: Catalog, other: Catalog) -> None:
    first = catalog.create(make("a", description="v1"))
    other.save(first.replace(description="other's write"), expected_version=1)
    with pytest.raises(ConflictError):
        catalog.save(first.replace(description="stale"), expected_version=1)
    with faults.enabled("lost_update"):
        saved = catalog.save(first.replace(description="stale"), expected_version=1)
    assert saved.version == 2  # the other client's version 2 was silently overwritten
    stored = other.get("a")
    assert stored is not None
    assert stored.description == "stale"


def test_stale_cache_serves_an_outdated_copy(catalog: Catalog, other: Catalog) -> None:
    first = catalog.create(make("a"))
    assert catalog.get("a") is catalog.get("a")
    other.save(first.replace(description="new"), expected_version=1)
    with faults.enabled("stale_cache"):
        stale = catalog.get("a")
    assert stale is not None
    assert stale.description == first.description
    fresh = catalog.get("a")
    assert fresh is not None
    assert fresh.description == "new"


def test_unbounded_retry_ignores_max_attempts(catalog: Catalog, other: Catalog) -> None:
    catalog.create(make("a"))
    calls = {"n": 0}

    def change(current: Dataset) -> Dataset:
        calls["n"] += 1
        if calls["n"] <= 4:
            other.save(current, expected_version=current.version)
        return current.replace(description="done")

    with faults.enabled("unbounded_retry"):
        updated = catalog.update("a", change, max_attempts=2, backoff=0)
    assert calls["n"] == 5
    assert updated.version == 6
    assert updated.description == "done"


def test_connection_leak_keeps_connections_after_close(catalog_path: Path) -> None:
    from metafuse._connections import _leaked

    before = len(_leaked)
    catalog = Catalog(catalog_path)
    try:
        with faults.enabled("connection_leak"):
            catalog.close()
        assert catalog.stats().open_connections == 1
        assert len(_leaked) == before + 1
    finally:
        for conn in _leaked[before:]:
            conn.close()
        del _leaked[before:]


def test_torn_write_still_ends_with_the_whole_dataset(catalog: Catalog, other: Catalog) -> None:
    first = catalog.create(make("a", tags=["x"]))
    with faults.enabled("torn_write"):
        saved = catalog.save(first.replace(tags=["y", "z"], description="torn"), expected_version=1)
    fetched = other.get("a")
    assert fetched == saved
    assert fetched.tags == ("y", "z")


def test_a_bad_environment_value_breaks_neither_import_nor_unrelated_code(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import metafuse\n"
        "from metafuse import faults\n"
        "print('imported')\n"
        "try:\n"
        "    faults.active('lost_update')\n"
        "except metafuse.ValidationError as error:\n"
        "    print('raised', error.value)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**__import__("os").environ, faults.ENV_VAR: "bogus"},
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["imported", "raised", "bogus"]
