"""The serializability checker: each anomaly on a hand-built history, unknown outcomes, and size.

Property tests build histories from a real serial execution of transactions over a few datasets
(some of which abort, some of which end unknown, whether they applied or not): such a history is
serializable by construction, so the checker must accept it; planting one write skew in it must
always be rejected.
"""

from __future__ import annotations

import dataclasses
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from metafuse.stress.history import MicroOp, Operation
from metafuse.stress.serializability import G0, G1A, G1B, G1C, G2, RW, WR, WW, check, has_transactions

_clock = iter(range(10, 10**9, 10))


def txn(client: int, *mops: MicroOp, outcome: str = "ok") -> Operation:
    invoke = next(_clock)
    return Operation(client, "txn", "", outcome, invoke, invoke + 5, mops=mops)


def get(key: str, version: int | None, token: str | None = None) -> MicroOp:
    return MicroOp("get", key, version, token if version else None)


def save(key: str, expected: int, token: str) -> MicroOp:
    return MicroOp("save", key, token=token, expected=expected)


def setup(*keys: str) -> list[Operation]:
    return [Operation(-1, "create", key, "ok", 0, 1, f"{key}0", 1) for key in keys]


def skew(outcome_b: str = "ok") -> list[Operation]:
    """Two clients each read a and b off, and each turns its own flag on."""
    return [
        *setup("a", "b"),
        txn(0, get("a", 1, "a0"), get("b", 1, "b0"), save("a", 1, "a-on")),
        txn(1, get("a", 1, "a0"), get("b", 1, "b0"), save("b", 1, "b-on"), outcome=outcome_b),
    ]


# -- each anomaly ---------------------------------------------------------------------------------


def test_write_skew_is_a_g2_cycle_of_two_anti_dependencies() -> None:
    result = check(skew())
    assert not result.serializable
    (cycle,) = result.cycles
    assert cycle.anomaly == G2
    assert [step.kind for step in cycle.steps] == [RW, RW]
    assert {(step.key, step.before, step.after) for step in cycle.steps} == {("a", 1, 2), ("b", 1, 2)}
    assert {step.transaction.client for step in cycle.steps} == {0, 1}
    text = "\n".join(result.describe())
    assert "NOT serializable (1 G2)" in text
    assert "client 0: txn [get a -> v1 'a0'; get b -> v1 'b0'; save a (expected=1) 'a-on']" in text
    assert "-rw-> read b v1, the next installed v2 over it" in text


def test_write_skew_with_one_side_aborted_is_serializable() -> None:
    result = check(skew("conflict"))
    assert result.serializable, result.describe()
    assert (result.committed, result.aborted) == (3, 1)  # two setup creates and one side


def test_a_serial_history_is_accepted() -> None:
    ops = [
        *setup("a", "b"),
        txn(0, get("a", 1, "a0"), get("b", 1, "b0"), save("a", 1, "a-on")),
        txn(1, get("a", 2, "a-on"), get("b", 1, "b0")),  # sees a on: writes nothing
        txn(1, get("a", 2, "a-on"), save("b", 1, "b1"), save("b", 2, "b2"), get("b", 3, "b2")),
        txn(0, get("b", 3, "b2")),
    ]
    result = check(ops)
    assert result.serializable, result.describe()
    assert result.edges > 0


def test_a_lost_update_is_a_cycle_of_two_transactions_that_both_installed_one_version() -> None:
    ops = [
        *setup("a"),
        txn(0, get("a", 1, "a0"), save("a", 1, "x")),
        txn(1, get("a", 1, "a0"), save("a", 1, "y")),
    ]
    (cycle,) = check(ops).cycles
    assert cycle.anomaly == G2
    assert all(step.kind == RW and (step.before, step.after) == (1, 2) for step in cycle.steps)


def test_a_lost_update_of_single_saves_is_caught_too() -> None:
    """A save names the version it read, so plain saves (no txn line) take part in the graph."""
    ops = [
        *setup("a"),
        Operation(0, "save", "a", "ok", 10, 20, "x", 2, 1),
        Operation(1, "save", "a", "ok", 11, 21, "y", 2, 1),
    ]
    assert not has_transactions(ops)
    (cycle,) = check(ops).cycles
    assert cycle.anomaly == G2


def test_writes_installed_in_opposite_orders_are_a_g0_cycle() -> None:
    ops = [
        *setup("a", "b"),
        txn(0, save("a", 1, "a1"), save("b", 2, "b2")),
        txn(1, save("b", 1, "b1"), save("a", 2, "a2")),
    ]
    (cycle,) = check(ops).cycles
    assert cycle.anomaly == G0
    assert [step.kind for step in cycle.steps] == [WW, WW]


def test_transactions_that_read_each_others_writes_are_a_g1c_cycle() -> None:
    ops = [
        *setup("a", "b"),
        txn(0, save("a", 1, "a1"), get("b", 2, "b1")),
        txn(1, save("b", 1, "b1"), get("a", 2, "a1")),
    ]
    (cycle,) = check(ops).cycles
    assert cycle.anomaly == G1C
    assert [step.kind for step in cycle.steps] == [WR, WR]


def test_a_read_of_an_aborted_write_is_g1a() -> None:
    ops = [*setup("a"), txn(0, save("a", 1, "ghost"), outcome="conflict"), txn(1, get("a", 2, "ghost"))]
    result = check(ops)
    (bad,) = result.bad_reads
    assert (bad.anomaly, bad.key, bad.version, bad.writer.client) == (G1A, "a", 2, 0)
    assert "G1a aborted read" in "\n".join(result.describe())


def test_a_read_of_an_intermediate_write_is_g1b() -> None:
    ops = [*setup("a"), txn(0, save("a", 1, "first"), save("a", 2, "final")), txn(1, get("a", 2, "first"))]
    (bad,) = check(ops).bad_reads
    assert (bad.anomaly, bad.token) == (G1B, "first")


def test_a_transactions_own_reads_of_its_writes_add_no_edge() -> None:
    ops = [*setup("a"), txn(0, save("a", 1, "x"), get("a", 2, "x"), save("a", 2, "y"), get("a", 3, "y"))]
    result = check(ops)
    assert result.serializable
    assert not result.bad_reads


# -- unknown outcomes -----------------------------------------------------------------------------


def test_an_unknown_side_of_a_write_skew_is_not_flagged() -> None:
    """Nobody saw its write, so it may not have committed: the history has a serial order without it."""
    result = check(skew("unknown"))
    assert result.serializable, result.describe()
    assert (result.unknown, result.unknown_committed) == (1, 0)


def test_an_unknown_transaction_someone_read_from_committed() -> None:
    ops = [*skew("unknown"), txn(2, get("b", 2, "b-on"))]
    result = check(ops)
    assert result.unknown_committed == 1
    (cycle,) = result.cycles
    assert cycle.anomaly == G2


def test_an_unknown_transaction_saved_over_committed() -> None:
    ops = [*skew("unknown"), txn(2, save("b", 2, "b-again"))]
    assert check(ops).unknown_committed == 1
    assert not check(ops).serializable


# -- properties -----------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    ops: list[Operation]
    committed: list[Operation]


def serial_run(seed: int, count: int, keys: int = 4, unknown_rate: float = 0.1) -> Run:
    """A serial execution: each transaction reads the current state and saves over what it read.

    About one in ten aborts (nothing applied); `unknown_rate` of them end unknown, half of which
    applied their writes and half did not.
    """
    rng = random.Random(seed)
    names = [f"k{index}" for index in range(keys)]
    state = {name: (1, f"{name}0") for name in names}
    ops = setup(*names)
    committed = []
    for index in range(count):
        mops: list[MicroOp] = []
        for name in rng.sample(names, rng.randint(1, min(3, keys))):
            mops.append(get(name, *state[name]))
        written = {}
        for name in rng.sample(names, rng.randint(0, min(2, keys))):
            version = written.get(name, state[name])[0]
            token = f"t{index}-{name}-{version + 1}"
            mops.append(save(name, version, token))
            written[name] = (version + 1, token)
        roll = rng.random()
        outcome = "unknown" if roll < unknown_rate else "conflict" if roll < unknown_rate + 0.1 else "ok"
        applies = outcome == "ok" or (outcome == "unknown" and rng.random() < 0.5)
        if applies:
            state.update(written)
        operation = Operation(
            rng.randrange(6), "txn", "", outcome, index * 10, index * 10 + 5, mops=tuple(mops)
        )
        ops.append(operation)
        if outcome == "ok" and written:
            committed.append(operation)
    rng.shuffle(ops)  # clients append in no particular order
    return Run(ops, committed)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 60), st.integers(1, 5), st.sampled_from([0.0, 0.1, 0.4]))
def test_a_serial_execution_is_serializable_whatever_ends_unknown(
    seed: int, count: int, keys: int, unknown_rate: float
) -> None:
    result = check(serial_run(seed, count, keys, unknown_rate).ops)
    assert result.serializable, "\n".join(result.describe())


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32))
def test_a_write_skew_planted_in_a_serial_execution_is_rejected(seed: int) -> None:
    run = serial_run(seed, 40, keys=3)
    result = check([*run.ops, *skew()])  # on datasets a and b, beside the run's k0, k1, k2
    assert any(cycle.anomaly == G2 for cycle in result.cycles)


def test_a_long_history_is_checked_without_deep_recursion() -> None:
    """Size, not speed: 30,000 transactions on one key make a 30,000-long chain of dependencies."""
    run = serial_run(seed=7, count=30_000, keys=1, unknown_rate=0.01)
    result = check(run.ops)
    assert result.serializable
    assert result.transactions == 30_001
    assert result.edges >= len(run.committed)


def test_a_long_history_with_one_planted_lost_update_is_rejected() -> None:
    run = serial_run(seed=3, count=20_000, keys=3, unknown_rate=0.0)
    victim = run.committed[len(run.committed) // 2]
    twin = dataclasses.replace(
        victim,
        client=99,
        mops=tuple(
            dataclasses.replace(mop, token=f"twin-{mop.token}") if mop.f == "save" else mop
            for mop in victim.mops
        ),
    )
    result = check([*run.ops, twin])
    assert len(result.cycles) == 1
    assert result.cycles[0].anomaly == G2
    assert twin in {step.transaction for step in result.cycles[0].steps}
