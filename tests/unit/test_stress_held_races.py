"""held_races: each invariant can fail, and a round of each kind makes its race on the real code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from metafuse import Catalog
from metafuse.stress.scenarios import held_races as scenario
from metafuse.stress.scenarios._content import tokened

from ._stress_views import view


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    with Catalog(tmp_path / "catalog.db") as opened:
        opened.create(tokened(scenario.dataset_of(0), "v1-initial"))
        yield opened


def _check(name: str, run: object) -> tuple[bool, str]:
    invariant = next(i for i in scenario.SCENARIO.invariants if i.name == name)
    return invariant.check(run)  # type: ignore[arg-type]


def test_no_stale_read_fails_on_a_stale_read(catalog: Catalog) -> None:
    assert _check("no_stale_read", view(catalog, [{"stale_reads": 0}, {"stale_reads": 0}]))[0]
    ok, detail = _check("no_stale_read", view(catalog, [{"stale_reads": 0}, {"stale_reads": 2}]))
    assert not ok
    assert "2 stale" in detail


def test_races_made_is_inconclusive_without_a_round_of_each_kind(catalog: Catalog) -> None:
    both = [{"entry_rounds": 3, "handoff_rounds": 0}, {"entry_rounds": 0, "handoff_rounds": 2}]
    assert _check("races_made", view(catalog, both))[0]
    ok, detail = _check("races_made", view(catalog, [{"entry_rounds": 3, "handoff_rounds": 0}]))
    assert not ok
    assert "too little progress" in detail


class _Ctx:
    """What a round uses of a client's context: its number and the run's file."""

    def __init__(self, path: str) -> None:
        self.client = 0
        self.path = path


@pytest.mark.parametrize("kind", ["entry", "handoff"])
def test_each_round_makes_its_race_and_reads_fresh_on_the_real_code(catalog: Catalog, kind: str) -> None:
    rounds = scenario._Round(_Ctx(catalog.path))  # type: ignore[arg-type]
    try:
        for _ in range(3):
            assert getattr(rounds, kind)() is True  # every hold was reached
        assert rounds.stale == 0
        assert rounds.newest == 1 + 3 * 2  # two acknowledged saves a round
    finally:
        rounds.close()
    stored = catalog.get(scenario.dataset_of(0))
    assert stored is not None
    assert stored.version == rounds.newest
