"""Histories: the line format, concurrent appends, validation, recording in runs, the CLI, selfcheck."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest

from metafuse.cli import main
from metafuse.errors import BusyError, ConflictError, NotFoundError
from metafuse.model import Dataset, Field
from metafuse.stress import history
from metafuse.stress.client import ClientContext
from metafuse.stress.config import StressConfig
from metafuse.stress.history import HistoryFileError, HistoryWriter, Operation, read_history
from metafuse.stress.linearizability import check
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY
from metafuse.stress.scenarios._content import tokened
from metafuse.stress.selfcheck import HISTORY_PROBES, run_history_probe

# -- format and writer ---------------------------------------------------------------------------


def test_lines_round_trip_through_the_writer_and_the_reader(tmp_path: Path) -> None:
    path = str(tmp_path / "h.jsonl")
    writer = HistoryWriter(path, 3)
    writer.add("create", "a", 1, 2, "ok", version=1, token="t1")
    writer.add("get", "a", 3, 4, "ok", version=1, token='quote " and \\ and é')
    writer.add("save", "a", 5, 6, "conflict", expected=1, token="t2", stored=2)
    writer.add("save", "a", 7, 8, "conflict", expected=1, token="t3")
    writer.add("save", "a", 9, 10, "not_found", expected=4, token="t4")
    writer.add("get", "a", 11, 12, "unknown")
    writer.add("create", "a", 13, 14, "unknown", token="t5")
    assert not Path(path).exists()  # buffered until flushed
    writer.flush()
    operations = read_history(path)
    assert [op.line for op in operations] == [1, 2, 3, 4, 5, 6, 7]
    assert operations[1] == Operation(3, "get", "a", "ok", 3, 4, 'quote " and \\ and é', 1, line=2)
    assert operations[2] == Operation(3, "save", "a", "conflict", 5, 6, "t2", None, 1, 2, line=3)
    assert operations[3].stored is None
    for operation in operations:  # the documented formatter writes what the writer writes
        assert json.loads(history.format_line(operation)) == json.loads(
            Path(path).read_text(encoding="utf-8").splitlines()[operation.line - 1]
        )
    assert writer.written == 7


def test_outcomes_are_classified_from_the_value_or_the_error() -> None:
    dataset = Dataset(name="a", uri="file:///a", format="csv").replace(version=4)
    assert history.outcome_of("save", dataset, None) == ("ok", 4, None)
    assert history.outcome_of("get", None, None) == ("not_found", None, None)
    assert history.outcome_of("save", None, ConflictError("a", 3, 5)) == ("conflict", None, 5)
    assert history.outcome_of("create", None, ConflictError("a", None, 2)) == ("conflict", None, 2)
    assert history.outcome_of("save", None, NotFoundError("a")) == ("not_found", None, None)
    assert history.outcome_of("save", None, BusyError("db", 5.0)) == ("unknown", None, None)
    assert history.outcome_of("get", None, RuntimeError("boom")) == ("unknown", None, None)


def test_a_read_whose_row_and_fields_disagree_records_a_token_no_write_wrote() -> None:
    whole = tokened("a", "t2")
    assert history.read_token(whole) == "t2"
    torn = whole.replace(fields=[Field("id", "int64"), Field("token", "string", description="t1")])
    assert history.read_token(torn) == "t2 | t1"


def test_several_names_get_one_file_per_scenario() -> None:
    assert history.path_for("out/h.jsonl", "concurrent_writers", False) == "out/h.jsonl"
    assert history.path_for("out/h.jsonl", "concurrent_writers", True) == "out/h.concurrent_writers.jsonl"
    assert history.path_for("out/h", "read_heavy_workload", True) == "out/h.read_heavy_workload.jsonl"


def _append(path: str, client: int, count: int) -> None:
    history.BUFFER_BYTES = 300  # small: many flushes interleave with the other writers'
    writer = HistoryWriter(path, client)
    for index in range(count):
        writer.add(
            "save",
            f"key-{index % 3}",
            index,
            index + 1,
            "ok",
            version=index + 2,
            expected=index + 1,
            token="x" * (index % 50),
        )
    writer.flush()


def test_threads_and_processes_append_whole_lines_to_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "shared.jsonl")
    history.start(path)
    monkeypatch.setattr(history, "BUFFER_BYTES", 300)
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=_append, args=(path, 100 + n, 2_000)) for n in range(2)]
    threads = [threading.Thread(target=_append, args=(path, n, 2_000)) for n in range(4)]
    workers: list[Any] = [*processes, *threads]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert all(process.exitcode == 0 for process in processes)
    operations = read_history(path)  # every line whole and valid
    per_client: dict[int, list[int]] = {}
    for operation in operations:
        per_client.setdefault(operation.client, []).append(operation.invoke)
    assert sorted(per_client) == [0, 1, 2, 3, 100, 101]
    for invokes in per_client.values():
        assert invokes == list(range(2_000))  # one client's lines stay in its order


def test_start_truncates_and_an_unwritable_path_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text("old\n", encoding="utf-8")
    history.start(str(path))
    assert path.read_text(encoding="utf-8") == ""
    with pytest.raises(HistoryFileError, match="cannot be written"):
        history.start(str(tmp_path / "missing" / "h.jsonl"))


# -- validation ----------------------------------------------------------------------------------

GOOD = '{"client": 0, "op": "get", "key": "k", "outcome": "not_found", "invoke": 1, "return": 2}'


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "not a JSON object"),
        ("[1, 2]", "not a JSON object"),
        (GOOD.replace('"op": "get"', '"op": "delete"'), "'op' must be one of get, create, save"),
        (
            GOOD.replace('"not_found"', '"conflict"'),
            "'outcome' of a get must be one of ok, not_found, unknown",
        ),
        (GOOD.replace('"client": 0', '"client": "zero"'), "'client' must be a whole number"),
        (GOOD.replace('"client": 0', '"client": -2'), "'client' must be at least -1"),
        (GOOD.replace('"client": 0', '"client": true'), "'client' must be a whole number"),
        (GOOD.replace('"return": 2', '"return": 0'), "'return' (0) is before 'invoke' (1)"),
        (GOOD.replace(', "key": "k"', ""), "'key' is missing"),
        (GOOD.replace('"invoke": 1', '"invoke": 1, "when": 3'), "unknown field 'when'"),
        (GOOD.replace('"not_found"', '"ok"'), "'token' is missing"),
        (GOOD.replace('"not_found"', '"ok", "token": "t"'), "'version' is missing"),
        (GOOD.replace('"not_found"', '"not_found", "version": 3'), "'version' is only for an ok outcome"),
        (GOOD.replace('"not_found"', '"not_found", "token": "t"'), "read no 'token'"),
        (
            GOOD.replace('"get", ', '"save", ').replace('"not_found"', '"not_found", "token": "t"'),
            "'expected' is missing",
        ),
        (GOOD.replace('"not_found"', '"not_found", "expected": 2'), "'expected' is only for a save"),
        (GOOD.replace('"not_found"', '"not_found", "stored": 2'), "'stored' is only for a conflict"),
        (
            GOOD.replace('"get", ', '"create", ').replace('"not_found"', '"ok", "version": 1'),
            "'token' is missing",
        ),
    ],
)
def test_a_bad_line_is_named_by_file_and_line_number(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(f"{GOOD}\n\n{line}\n", encoding="utf-8")
    with pytest.raises(HistoryFileError) as raised:
        read_history(str(path))
    assert str(raised.value).startswith(f"history {path}:3: ")
    assert problem in str(raised.value)


def test_a_missing_or_binary_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(HistoryFileError, match="cannot be read"):
        read_history(str(tmp_path / "nope.jsonl"))
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(HistoryFileError, match="not UTF-8"):
        read_history(str(binary))


# -- recording in runs ---------------------------------------------------------------------------


def test_a_client_without_a_history_records_nothing() -> None:
    ctx = ClientContext(
        client=0, clients=1, mode="thread", path="x", catalog=None, shared={}, seed=1, start=0.0,
        deadline=0.0, record=False, live=[0, 0, 0], gate=None,  # type: ignore[arg-type]
        report=print, stopped=lambda: True, board=None,  # type: ignore[arg-type]
    )  # fmt: skip
    assert ctx.history is None
    ctx.record("get", "k", None)  # a no-op, not an error


RECORDING = ("concurrent_writers", "cache_invalidation_race", "read_heavy_workload")


@pytest.mark.parametrize("mode", ["thread", "process"])
@pytest.mark.parametrize("name", RECORDING)
def test_a_clean_run_records_a_linearizable_history(tmp_path: Path, name: str, mode: str) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text("left over from an earlier run\n", encoding="utf-8")
    config = StressConfig(clients=3, duration=1, mode=mode, seed=5, history=str(path))
    result = run_scenario(REGISTRY[name], config)
    assert result.invariants[0].name == "clients_finished"
    assert result.invariants[0].ok
    assert not result.errors
    operations = read_history(str(path))
    setup = [op for op in operations if op.client == history.SETUP_CLIENT]
    assert setup
    assert all(op.op == "create" and op.outcome == "ok" and op.version == 1 for op in setup)
    assert {op.client for op in operations} <= {history.SETUP_CLIENT, 0, 1, 2}
    # A starved 1 s run may end before a kind of operation was made: its count is then 0 on both
    # sides, and the comparison still holds.
    counted = {kind: stats["total"] for kind, stats in result.operations.items()}
    assert sum(op.op == "get" for op in operations) == counted.get("read", 0)
    assert sum(op.op == "save" for op in operations) == counted.get("write", 0)
    results = check(operations)
    assert all(r.linearizable for r in results)
    assert max(op.ret for op in setup) <= min(op.invoke for op in operations if op.client >= 0)


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_concurrent_writers_first_saves_race_by_construction(tmp_path: Path, mode: str) -> None:
    """Every client's first save goes to one dataset over the version all of them read, so one
    succeeds and the others conflict: the run has conflicts however slow the machine is."""
    path = tmp_path / "h.jsonl"
    config = StressConfig(clients=4, duration=1, mode=mode, seed=5, history=str(path))
    result = run_scenario(REGISTRY["concurrent_writers"], config)
    assert result.passed, result.invariants
    operations = read_history(str(path))
    first_saves = [
        next(op for op in operations if op.client == client and op.op == "save") for client in range(4)
    ]
    assert {op.key for op in first_saves} == {"stress.writers.0"}
    assert {op.expected for op in first_saves} == {1}
    assert sorted(op.outcome for op in first_saves) == ["conflict", "conflict", "conflict", "ok"]


def test_a_run_without_history_writes_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_scenario(REGISTRY["concurrent_writers"], StressConfig(clients=2, duration=1, seed=5))
    assert list(tmp_path.iterdir()) == []


# -- the CLI ---------------------------------------------------------------------------------------


def _planted(path: Path) -> None:
    """Key a: two saves from version 1 both succeed (a lost update); key b: a plain miss."""
    writer = HistoryWriter(str(path), -1)
    writer.add("create", "a", 0, 1, "ok", version=1, token="t1")
    writer.client = 0
    writer.add("save", "a", 5, 9, "ok", version=2, expected=1, token="t2")
    writer.client = 1
    writer.add("save", "a", 6, 8, "ok", version=2, expected=1, token="t3")
    writer.add("get", "b", 6, 8, "not_found")
    writer.flush()


def test_run_with_history_then_check_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "h.jsonl"
    # One client: every invariant of both scenarios holds by construction (nothing to race).
    argv = ["stress", "run", "concurrent_writers", "cache_invalidation_race", "--clients", "1"]
    assert main([*argv, "--duration", "1", "--seed", "3", "--quiet", "--history", str(target)]) == 0
    out = capsys.readouterr().out
    for name in ("concurrent_writers", "cache_invalidation_race"):
        recorded = tmp_path / f"h.{name}.jsonl"
        assert f"History written to {recorded}" in out
        assert main(["stress", "check-history", str(recorded)]) == 0
        assert "linearizable (0 keys failed, 0 undecided)" in capsys.readouterr().out


def test_check_history_names_the_failing_key_and_its_counterexample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    _planted(path)
    assert main(["stress", "check-history", str(path)]) == 1
    out = capsys.readouterr().out
    assert "a: NOT LINEARIZABLE (3 operations)" in out
    # Client 0's save, invoked first, is placed first; then client 1's cannot be placed anywhere.
    assert "cannot linearize client 1: a save(expected=1, token='t3') -> ok v2" in out
    assert "longest linearizable prefix: 2 operations, ending in state v2 token='t2'" in out
    assert "b: " not in out
    assert "4 operations on 2 keys: NOT linearizable (1 key failed, 0 undecided)" in out
    assert main(["stress", "check-history", str(path), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["linearizable"] is False
    assert [(r["key"], r["linearizable"]) for r in document["results"]] == [("a", False), ("b", True)]
    assert document["results"][0]["counterexample"]["operation"]["token"] == "t3"
    assert document["results"][0]["counterexample"]["line"] == 3


def test_check_history_of_a_bad_file_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(GOOD + "\n{}\n", encoding="utf-8")
    assert main(["stress", "check-history", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"metafuse: error: history {path}:2: 'op' is missing\n"
    assert main(["stress", "check-history", str(tmp_path / "none.jsonl")]) == 2


def test_history_with_a_scenario_named_twice_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["stress", "run", "concurrent_writers", "concurrent_writers", "--history", str(tmp_path / "h")]
    assert main(argv) == 2
    assert "each scenario named once" in capsys.readouterr().err


# -- selfcheck -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["thread", "process"])
def test_selfcheck_history_probe_catches_every_data_fault(mode: str) -> None:
    controls: dict[tuple[str, str], list[str]] = {}
    for bug in HISTORY_PROBES:
        verdict = run_history_probe(bug, mode, duration=1, clients=4, seed=9, controls=controls)
        assert verdict.caught, verdict
        assert verdict.example.startswith("cannot linearize ")
    assert set(controls) == {("concurrent_writers", mode), ("cache_invalidation_race", mode)}
    assert all(failing == [] for failing in controls.values())


# -- transactions ---------------------------------------------------------------------------------

TXN = (
    '{"client": 0, "op": "txn", "mops": [{"f": "get", "key": "a", "version": 1, "token": "a0"},'
    ' {"f": "save", "key": "a", "expected": 1, "token": "a1"}], "outcome": "ok", "invoke": 1, "return": 2}'
)


def _v1(name: str, token: str) -> Dataset:
    return tokened(name, token).replace(version=1)


def _skew(path: Path) -> None:
    """Setup creates a and b; two transactions each read both and each write its own: write skew."""
    history.record_setup(str(path), [_v1("a", "a0"), _v1("b", "b0")], 1, 2)
    for client, mine in ((0, "a"), (1, "b")):
        writer = HistoryWriter(str(path), client)
        reads = [history.MicroOp("get", "a", 1, "a0"), history.MicroOp("get", "b", 1, "b0")]
        write = history.MicroOp("save", mine, token=f"{mine}-on", expected=1)
        writer.transaction(3 + client, 10 + client, "ok", [*reads, write])
        writer.flush()


def test_a_transaction_round_trips_through_the_writer_and_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    _skew(path)
    operations = read_history(str(path))
    txn = operations[2]
    assert (txn.op, txn.key, txn.outcome, txn.invoke, txn.ret) == ("txn", "", "ok", 3, 10)
    assert txn.mops[1] == history.MicroOp("get", "b", 1, "b0")
    assert txn.mops[2].writes == 2
    assert json.loads(history.format_line(txn)) == json.loads(path.read_text().splitlines()[2])
    parsed = history.parse_line(json.dumps({**json.loads(TXN), "outcome": "unknown"}), "x", 1)
    assert parsed.mops[0] == history.MicroOp("get", "a", 1, "a0")


def test_linearizability_leaves_keys_written_by_transactions_to_the_serializability_check(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.jsonl"
    _skew(path)
    writer = HistoryWriter(str(path), 2)
    writer.add("get", "c", 20, 21, "not_found")  # a key no transaction writes
    writer.flush()
    assert [result.key for result in check(read_history(str(path)))] == ["c"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"key": "a"}, "'key' belongs in a transaction's 'mops'"),
        ({"mops": []}, "'mops' of a txn must be a non-empty list"),
        ({"outcome": "not_found"}, "'outcome' of a txn must be one of ok, conflict, unknown"),
        ({"mops": [1]}, "mops[0] is not a JSON object"),
        ({"mops": [{"f": "delete", "key": "a"}]}, "mops[0]: 'f' must be one of get, create, save"),
        ({"mops": [{"f": "get", "key": "a"}]}, "mops[0]: a get needs 'version'"),
        ({"mops": [{"f": "get", "key": "a", "version": 1}]}, "a get has a 'token' exactly when"),
        ({"mops": [{"f": "get", "key": 3, "version": None}]}, "mops[0]: 'key' must be a string"),
        ({"mops": [{"f": "save", "key": "a", "token": "t"}]}, "a save needs its 'expected' version"),
        ({"mops": [{"f": "save", "key": "a", "expected": 0, "token": "t"}]}, "'expected' must be"),
        ({"mops": [{"f": "create", "key": "a"}]}, "a create needs the 'token' it wrote"),
        ({"mops": [{"f": "create", "key": "a", "token": "t", "version": 1}]}, "no 'version'"),
        ({"mops": [{"f": "get", "key": "a", "version": None, "at": 1}]}, "mops[0]: unknown field 'at'"),
    ],
)
def test_a_bad_transaction_line_is_named_by_file_and_line_number(
    tmp_path: Path, change: dict[str, Any], problem: str
) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(f"{TXN}\n{json.dumps({**json.loads(TXN), **change})}\n", encoding="utf-8")
    with pytest.raises(HistoryFileError) as raised:
        read_history(str(path))
    assert str(raised.value).startswith(f"history {path}:2: ")
    assert problem in str(raised.value)
    assert "\n" not in str(raised.value)


def test_mops_on_a_single_operation_are_refused() -> None:
    with pytest.raises(HistoryFileError, match="'mops' is only for a txn, not a get"):
        history.parse_line(GOOD.replace('"invoke"', '"mops": [], "invoke"'), "x", 1)


def test_check_history_prints_a_write_skew_cycle_as_proof(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "skew.jsonl"
    _skew(path)
    assert main(["stress", "check-history", str(path)]) == 1
    out = capsys.readouterr().out
    assert "4 transactions (4 committed, 0 aborted, 0 unknown" in out
    assert "NOT serializable (1 G2)" in out
    assert "G2 anti-dependency cycle (an rw edge: write skew, lost update): a cycle of 2 transactions" in out
    assert "client 1: txn [get a -> v1 'a0'; get b -> v1 'b0'; save b (expected=1) 'b-on'] -> ok" in out
    assert "-rw-> read a v1, the next installed v2 over it" in out
    assert main(["stress", "check-history", str(path), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["linearizable"] is True  # a and b are left to the transaction check
    serial = document["serializability"]
    assert (serial["serializable"], serial["anomalies"]) == (False, {"G2": 1})
    assert [step["edge"] for step in serial["cycles"][0]["steps"]] == ["rw", "rw"]


def test_check_history_of_serial_transactions_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "serial.jsonl"
    path.write_text(TXN + "\n", encoding="utf-8")
    history.record_setup(str(path), [_v1("a", "a0")], 0, 0)
    assert main(["stress", "check-history", str(path)]) == 0
    assert "2 transactions (2 committed" in capsys.readouterr().out
