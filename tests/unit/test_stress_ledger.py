"""The write ledger: duplicates, gaps and the newest content, in bitmap-sized memory."""

from __future__ import annotations

import pickle

from metafuse.stress.scenarios._ledger import WriteLedger


def _ledger(*writes: tuple[str, int, str]) -> WriteLedger:
    ledger = WriteLedger()
    for write in writes:
        ledger.append(write)
    return ledger


def test_a_complete_chain_and_its_newest_content() -> None:
    ledger = _ledger(("a", 2, "x"), ("a", 4, "z"), ("a", 3, "y"))
    assert ledger.chain_complete("a", first=2)
    assert ledger.newest("a") == (4, {"z"})
    assert ledger.total() == 3


def test_a_gap_or_a_duplicate_breaks_the_chain() -> None:
    gap = _ledger(("a", 2, "x"), ("a", 4, "z"))
    assert not gap.chain_complete("a", first=2)
    duplicate = _ledger(("a", 2, "x"), ("a", 3, "y"), ("a", 3, "y2"))
    assert duplicate.duplicates("a") == 1
    assert not duplicate.chain_complete("a", first=2)
    assert duplicate.newest("a") == (3, {"y", "y2"})


def test_merging_clients_finds_versions_both_were_given() -> None:
    left = _ledger(("a", 2, "x"), ("a", 3, "y"))
    right = _ledger(("a", 3, "w"), ("a", 4, "z"), ("b", 2, "q"))
    left.merge(right)
    assert left.duplicates("a") == 1
    assert not left.chain_complete("a", first=2)
    assert left.chain_complete("b", first=2)
    assert left.names() == ["a", "b"]
    assert left.newest("a") == (4, {"z"})


def test_a_ledger_crosses_process_boundaries() -> None:
    ledger = _ledger(("a", 2, "x"), ("a", 9000, "far"))
    copy = pickle.loads(pickle.dumps(ledger))
    copy.append(("a", 3, "y"))
    assert copy.newest("a") == (9000, {"far"})
    assert copy.writes("a") == 3
