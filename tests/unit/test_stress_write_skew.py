"""The write_skew scenario: serial on a file, write skew in every round on a store without read validation.

On a catalog file the writer lock serializes the transactions of a round, so exactly one flag of
each pair turns on per round. On a store (`log+file://`), every client reads both flags before any
of them writes; once transactions validate their reads, all but one of a pair's transactions
conflict and the run is as serial as on a file. With the `unvalidated_reads` fault (and on code
that never validated reads) both flags of every pair turn on in every round, by construction.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from metafuse.cli import main
from metafuse.stress.config import StressConfig
from metafuse.stress.history import read_history
from metafuse.stress.result import ScenarioResult
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY
from metafuse.stress.selfcheck import PROBES

SCENARIO = REGISTRY["write_skew"]


def _run(
    mode: str, path: str | None = None, *, faults: tuple[str, ...] = (), **options: object
) -> ScenarioResult:
    config = StressConfig(clients=4, duration=1, mode=mode, seed=5, **options)  # type: ignore[arg-type]
    return run_scenario(SCENARIO, config, path=path, faults=faults)


def _verdicts(result: ScenarioResult) -> dict[str, tuple[bool, str]]:
    return {invariant.name: (invariant.ok, invariant.detail) for invariant in result.invariants}


def _store(tmp_path: Path) -> str:
    return f"log+file://{tmp_path / 'store'}"


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_on_a_file_the_writer_lock_turns_on_exactly_one_flag_per_pair_and_round(mode: str) -> None:
    result = _run(mode)
    assert result.passed, _verdicts(result)
    metrics = result.metrics
    assert metrics["rounds"] > 0
    assert metrics["flags_turned_on"] == metrics["rounds"] * metrics["pairs"]
    assert metrics["overlapped"] == metrics["rounds"] * metrics["pairs"]  # every round raced
    assert (metrics["conflicts"], metrics["meetings_broken"]) == (0, 0)


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_on_a_store_transactions_are_serializable(tmp_path: Path, mode: str) -> None:
    """Issue 19: fails until transactions on a store validate their reads (write skew every round)."""
    result = _run(mode, _store(tmp_path))
    assert result.passed, _verdicts(result)
    metrics = result.metrics
    assert metrics["flags_turned_on"] == metrics["rounds"] * metrics["pairs"]
    assert metrics["conflicts"] > 0  # the read validation refused the other side of each pair


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_without_read_validation_every_round_is_a_write_skew(tmp_path: Path, mode: str) -> None:
    result = _run(mode, _store(tmp_path), faults=("unvalidated_reads",))
    verdicts = _verdicts(result)
    assert not verdicts["never_both_on"][0]
    assert not verdicts["serializable"][0]
    assert "G2 anti-dependency cycle" in verdicts["serializable"][1]
    assert "-rw-> read stress.skew." in verdicts["serializable"][1]
    assert verdicts["transactions_overlapped"][0]
    metrics = result.metrics
    assert metrics["rounds"] > 0
    assert metrics["both_on"] == metrics["rounds"] * metrics["pairs"]


def test_every_client_owns_its_catalog_even_when_the_run_asks_to_share_one(tmp_path: Path) -> None:
    """The clients meet inside their transactions: on one shared Catalog they would queue on its
    writer lock instead. The runner opens the catalogs before the run's clock starts; opened by the
    clients, they once took a whole 1 s run on a loaded machine (no round, INCONCLUSIVE)."""
    result = _run("thread", _store(tmp_path), catalogs="shared")
    assert result.passed, _verdicts(result)
    assert result.settings["catalogs"] == "per-client"
    assert result.metrics["meetings_broken"] == 0


def test_the_selfcheck_probe_runs_on_a_store() -> None:
    (probe,) = PROBES["unvalidated_reads"]
    assert (probe.scenario, probe.store) == ("write_skew", True)
    assert set(probe.invariants) <= {invariant.name for invariant in SCENARIO.invariants}


def test_one_client_races_no_one_and_says_inconclusive() -> None:
    config = StressConfig(clients=1, duration=1, mode="thread", seed=5)
    result = run_scenario(SCENARIO, config)
    verdicts = _verdicts(result)
    overlapped = next(i for i in result.invariants if i.name == "transactions_overlapped")
    assert overlapped.inconclusive
    assert not overlapped.failed
    assert overlapped.detail.startswith("1 client has no one to race")
    assert result.inconclusive
    assert verdicts["serializable"][0]
    assert verdicts["never_both_on"][0]


def test_the_history_holds_each_transaction_and_check_history_judges_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "skew.jsonl"
    argv = ["stress", "run", "write_skew", "--clients", "2", "--duration", "1", "--seed", "3", "--quiet"]
    assert main([*argv, "--history", str(target)]) == 0
    operations = read_history(str(target))
    transactions = [op for op in operations if op.op == "txn"]
    assert [op.op for op in operations if op.op != "txn"] == ["create", "create"]  # the setup
    assert transactions
    assert all([mop.f for mop in op.mops][:2] == ["get", "get"] for op in transactions)
    capsys.readouterr()
    assert main(["stress", "check-history", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"{len(transactions) + 2} transactions ({len(transactions) + 2} committed" in out
    assert "serializable" in out
    assert "NOT" not in out
