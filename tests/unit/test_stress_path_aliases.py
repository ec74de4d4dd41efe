"""path_aliases: the spellings, the hard-link check, and that each invariant can fail."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from metafuse import Catalog
from metafuse.errors import CatalogFileError
from metafuse.stress.config import StressConfig
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY
from metafuse.stress.scenarios import path_aliases as scenario

from ._stress_views import view


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    with Catalog(tmp_path / "catalog.db") as opened:
        yield opened


def _check(name: str, run: object) -> tuple[bool, str]:
    invariant = next(i for i in scenario.SCENARIO.invariants if i.name == name)
    return invariant.check(run)  # type: ignore[arg-type]


def test_every_spelling_names_the_same_file(tmp_path: Path) -> None:
    path = str(tmp_path / "catalog.db")
    Path(path).touch()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    names = scenario.spellings(path, str(elsewhere))
    assert set(names) == {"absolute", "relative", "dotdot"}
    assert os.path.isabs(names["absolute"])
    assert not os.path.isabs(names["relative"])
    assert ".." in names["dotdot"].split(os.sep)
    real = os.path.realpath(path)
    assert os.path.realpath(os.path.join(elsewhere, names["relative"])) == real
    assert os.path.realpath(names["dotdot"]) == real


class _Refusing:
    """Stands in for Catalog: refuses a file with more than one hard link, as the contract says."""

    def __init__(self, path: str, **_: Any) -> None:
        if os.stat(path).st_nlink > 1:
            raise CatalogFileError(path, "has more than one hard link")
        Path(f"{path}-mfgen").touch()

    def __enter__(self) -> _Refusing:
        return self

    def __exit__(self, *_: object) -> None:
        pass


class _Opening(_Refusing):
    """Stands in for a Catalog that opens a hard-linked file (the bug), leaving side files behind."""

    def __init__(self, path: str, **_: Any) -> None:
        for suffix in ("-wal", "-shm", "-mfgen"):
            Path(f"{path}{suffix}").touch()


@pytest.mark.parametrize(("opener", "expected"), [(_Refusing, "refused"), (_Opening, "opened")])
def test_hard_link_check_reports_the_outcome_and_removes_the_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opener: type, expected: str
) -> None:
    target = tmp_path / "catalog.db"
    target.write_bytes(b"x")
    link = tmp_path / "hard.db"
    monkeypatch.setattr(scenario, "Catalog", opener)
    assert scenario.hard_link_check(str(target), str(link)) == expected
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("hard")) == []
    assert os.stat(target).st_nlink == 1


def test_hard_link_refused_fails_unless_every_check_refused(catalog: Catalog) -> None:
    refused = {"setup_hard_link": "refused"}
    good = [{"hard_links_refused": 2}, {"hard_links_refused": 2}]
    assert _check("hard_link_refused", view(catalog, good, shared=refused))[0]
    opened_in_setup = {"setup_hard_link": "opened"}
    assert not _check("hard_link_refused", view(catalog, good, shared=opened_in_setup))[0]
    one_opened = [{"hard_links_refused": 1, "hard_links_opened": 1}]
    assert not _check("hard_link_refused", view(catalog, one_opened, shared=refused))[0]
    control = [{"hard_links_refused": 2, "hard_link_controls_failed": 1}]
    assert not _check("hard_link_refused", view(catalog, control, shared=refused))[0]
    assert not _check("hard_link_refused", view(catalog, [{}], shared=refused))[0]


def test_hard_link_refused_is_not_applicable_without_hard_links(catalog: Catalog) -> None:
    ok, detail = _check(
        "hard_link_refused", view(catalog, [{}], shared={"setup_hard_link": "unsupported (x)"})
    )
    assert ok
    assert "not applicable" in detail


def test_no_stale_read_fails_on_a_stale_read(catalog: Catalog) -> None:
    assert _check("no_stale_read", view(catalog, [{"stale_reads": 0}]))[0]
    assert not _check("no_stale_read", view(catalog, [{"stale_reads": 0}, {"stale_reads": 1}]))[0]


def test_every_spelling_read_is_inconclusive_when_a_spelling_was_not_used(catalog: Catalog) -> None:
    # A spelling nobody opened, or versions that never moved, leave the run unable to judge the
    # freshness of every spelling: too little progress, which is INCONCLUSIVE, never a pass.
    used = [{"spelling": s, "catalogs_opened": 1, "versions_seen": 5} for s in scenario.SPELLINGS]
    assert _check("every_spelling_read", view(catalog, used))[0] is True
    unopened = [dict(m) for m in used]
    unopened[2]["catalogs_opened"] = 0
    assert _check("every_spelling_read", view(catalog, unopened))[0] is None
    still = [dict(m, versions_seen=scenario.DATASETS) for m in used]
    assert _check("every_spelling_read", view(catalog, still))[0] is None


@pytest.mark.parametrize("fault", [(), ("path_spelling",)], ids=["clean", "path_spelling"])
def test_the_handshake_makes_the_stale_interleaving_happen(fault: tuple[str, ...]) -> None:
    # Not a race left to chance: each reader's handshake caches, writes elsewhere and reads again,
    # so with the bug the symlink reader's second pass is stale for every dataset, every run.
    config = StressConfig(clients=4, duration=1, mode="thread", seed=3)
    result = run_scenario(REGISTRY["path_aliases"], config, faults=fault)
    expected_symlink = scenario.DATASETS if fault else 0
    assert result.metrics["handshake_stale_reads"] == {
        "relative": 0,
        "symlink": expected_symlink,
        "dotdot": 0,
    }
