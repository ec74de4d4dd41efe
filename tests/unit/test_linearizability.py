"""The linearizability checker: each model rule, real-time order, unknown outcomes, and properties.

Property tests build histories from a real sequential execution of the model, then give every
operation a random interval around the instant it took effect: such a history is linearizable
by construction. Planting one anomaly (a read of an overwritten version after the overwrite
returned, or two saves from the same version that both succeeded) must always be rejected.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from metafuse.stress.history import Operation
from metafuse.stress.linearizability import check, check_key, describe_operation, summary

K = "k"


def op(
    kind: str,
    outcome: str,
    invoke: int,
    ret: int,
    *,
    client: int = 0,
    token: str | None = None,
    version: int | None = None,
    expected: int | None = None,
    stored: int | None = None,
    key: str = K,
) -> Operation:
    return Operation(client, kind, key, outcome, invoke, ret, token, version, expected, stored)


def created(token: str = "t1", at: int = 0) -> Operation:
    return op("create", "ok", at, at + 1, token=token, version=1)


def linearizable(*ops: Operation) -> bool:
    result = check_key(K, list(ops))
    assert result.linearizable is not None
    return result.linearizable


# -- the model, one rule at a time --------------------------------------------------------------


def test_get_reads_exactly_the_state() -> None:
    assert linearizable(created(), op("get", "ok", 5, 6, token="t1", version=1))
    assert not linearizable(created(), op("get", "ok", 5, 6, token="other", version=1))
    assert not linearizable(created(), op("get", "ok", 5, 6, token="t1", version=2))
    assert linearizable(op("get", "not_found", 0, 1), created(at=5))
    assert not linearizable(created(), op("get", "not_found", 5, 6))


def test_create_succeeds_only_when_absent_and_only_at_version_1() -> None:
    assert not linearizable(created(), op("create", "ok", 5, 6, token="t2", version=1))
    assert linearizable(created(), op("create", "conflict", 5, 6, token="t2", stored=1))
    assert not linearizable(created(), op("create", "conflict", 5, 6, token="t2", stored=2))
    assert not linearizable(op("create", "conflict", 0, 1, token="t2"))
    assert not linearizable(op("create", "ok", 0, 1, token="t", version=2))


def test_save_moves_from_the_expected_version_to_the_next() -> None:
    save = op("save", "ok", 5, 6, token="t2", version=2, expected=1)
    assert linearizable(created(), save, op("get", "ok", 7, 8, token="t2", version=2))
    assert not linearizable(created(), op("save", "ok", 5, 6, token="t2", version=3, expected=1))
    assert not linearizable(created(), op("save", "ok", 5, 6, token="t2", version=3, expected=2))
    assert linearizable(created(), save, op("save", "conflict", 7, 8, token="t3", expected=1, stored=2))
    assert not linearizable(created(), save, op("save", "conflict", 7, 8, token="t3", expected=1, stored=1))
    assert not linearizable(created(), op("save", "conflict", 5, 6, token="t3", expected=1))
    assert linearizable(op("save", "not_found", 0, 1, token="t", expected=1))
    assert linearizable(op("save", "conflict", 0, 1, token="t", expected=1))
    assert not linearizable(op("save", "conflict", 0, 1, token="t", expected=1, stored=1))
    assert not linearizable(created(), op("save", "not_found", 5, 6, token="t", expected=1))


def test_real_time_order_is_respected_and_overlap_allows_either_order() -> None:
    save = op("save", "ok", 10, 20, token="t2", version=2, expected=1, client=1)
    old_read = op("get", "ok", 15, 25, token="t1", version=1, client=2)
    assert linearizable(created(), save, old_read)  # overlapping: the read may go first
    late_read = op("get", "ok", 21, 25, token="t1", version=1, client=2)
    assert not linearizable(created(), save, late_read)  # began after the save returned
    touching = op("get", "ok", 20, 25, token="t1", version=1, client=2)
    assert linearizable(created(), save, touching)  # intervals that touch count as overlapping


def test_unknown_writes_may_take_effect_late_or_never() -> None:
    lost = op("save", "unknown", 5, 6, token="t2", expected=1)
    assert linearizable(created(), lost, op("get", "ok", 10, 11, token="t1", version=1))
    # Its effect may show long after it returned: unknown means the return time is unknown.
    assert linearizable(
        created(),
        lost,
        op("get", "ok", 10, 11, token="t1", version=1),
        op("get", "ok", 20, 21, token="t2", version=2),
    )
    # But never before it was invoked.
    assert not linearizable(created(), op("get", "ok", 3, 4, token="t2", version=2), lost)
    # Once an effect is seen it stays: no going back to the older value.
    assert not linearizable(
        created(),
        lost,
        op("get", "ok", 10, 11, token="t2", version=2),
        op("get", "ok", 20, 21, token="t1", version=1),
    )
    maybe_created = op("create", "unknown", 0, 1, token="x")
    assert linearizable(maybe_created, op("get", "ok", 5, 6, token="x", version=1))
    assert linearizable(maybe_created, op("get", "not_found", 5, 6))
    assert linearizable(op("get", "unknown", 0, 1), created(at=5))


def test_a_torn_read_is_rejected() -> None:
    save = op("save", "ok", 5, 6, token="t2", version=2, expected=1)
    assert not linearizable(created(), save, op("get", "ok", 5, 7, token="t2 | t1", version=2))


def test_keys_are_checked_separately() -> None:
    results = check(
        [
            created(),
            op("get", "ok", 3, 4, token="t1", version=1),
            op("create", "ok", 0, 1, token="u", version=1, key="other"),
            op("get", "ok", 3, 4, token="t1", version=1, key="other"),
        ]
    )
    assert [(r.key, r.linearizable) for r in results] == [("k", True), ("other", False)]
    assert summary(results) == {
        "keys": 2,
        "operations": 4,
        "not_linearizable": 1,
        "undecided": 0,
        "linearizable": False,
    }


def test_counterexample_names_the_operation_and_the_state_before_it() -> None:
    save = op("save", "ok", 10, 20, token="t2", version=2, expected=1, client=1)
    stale = op("get", "ok", 30, 31, token="t1", version=1, client=2)
    result = check_key(K, [created(), save, op("get", "ok", 22, 23, token="t2", version=2), stale])
    assert result.linearizable is False
    example = result.counterexample
    assert example is not None
    assert example.operation == stale
    assert example.prefix == 3
    assert example.state == (2, "t2")
    assert example.last[-1].op == "get"
    text = "\n".join(example.describe())
    assert "client 2: k get() -> ok v1 token='t1'" in text
    assert "3 operations, ending in state v2 token='t2'" in text
    assert example.to_dict()["state"] == {"version": 2, "token": "t2"}


def test_describe_operation_shows_call_outcome_and_interval() -> None:
    line = describe_operation(
        op("save", "conflict", 1_500_000_000, 2_000_000_000, token="t", expected=3, stored=4)
    )
    assert line == "client 0: k save(expected=3, token='t') -> conflict (stored v4) [1.500000s, 2.000000s]"


def test_a_timeout_leaves_the_key_undecided() -> None:
    # Many concurrent saves from one version, all claiming success: hopeless, and slow to refute.
    ops = [created()] + [
        op("save", "ok", 10, 1_000, token=f"s{i}", version=2, expected=1, client=i) for i in range(40)
    ]
    ops += [op("get", "ok", 10 + i, 1_000 + i, token=f"g{i}", version=9, client=100 + i) for i in range(40)]
    results = check(ops, timeout=0.0)
    assert results[0].linearizable in (None, False)


# -- properties ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """A sequential execution of the model on a few keys, with the instant each operation took effect."""

    ops: list[Operation]
    overwritten: list[tuple[Operation, Operation]]  # (a read of version v, a save from v that followed)
    saves: list[Operation]


def sequential_run(seed: int, count: int, clients: int, keys: int, unknown_rate: float) -> Run:
    rng = random.Random(seed)
    state: dict[str, tuple[int, str] | None] = {f"k{i}": None for i in range(keys)}
    ops: list[Operation] = []
    last_read: dict[str, Operation] = {}
    overwritten: list[tuple[Operation, Operation]] = []
    saves: list[Operation] = []
    free = [0] * clients
    now = 0
    for index in range(count):
        client = rng.randrange(clients)
        key = rng.choice(list(state))
        now = max(now + rng.randint(1, 20), free[client] + 1)
        invoke = max(free[client] + 1, now - rng.randint(0, 120))
        ret = now + rng.randint(0, 120)
        free[client] = ret
        token = f"c{client}-{index}"
        current = state[key]
        choice = rng.random()
        if current is None or choice < 0.05:
            if current is None and rng.random() < unknown_rate:
                took = rng.random() < 0.5
                ops.append(op("create", "unknown", invoke, ret, token=token, client=client, key=key))
                if took:
                    state[key] = (1, token)
            elif current is None:
                ops.append(op("create", "ok", invoke, ret, token=token, version=1, client=client, key=key))
                state[key] = (1, token)
            else:
                ops.append(
                    op(
                        "create",
                        "conflict",
                        invoke,
                        ret,
                        token=token,
                        stored=current[0],
                        client=client,
                        key=key,
                    )
                )
        elif choice < 0.55:
            read = op("get", "ok", invoke, ret, token=current[1], version=current[0], client=client, key=key)
            ops.append(read)
            last_read[key] = read
        else:
            expected = max(1, current[0] - rng.choice((0, 0, 0, 1, 2)))
            if rng.random() < unknown_rate:
                ops.append(
                    op("save", "unknown", invoke, ret, token=token, expected=expected, client=client, key=key)
                )
                if expected == current[0] and rng.random() < 0.5:
                    state[key] = (expected + 1, token)
            elif expected == current[0]:
                save = op(
                    "save",
                    "ok",
                    invoke,
                    ret,
                    token=token,
                    version=expected + 1,
                    expected=expected,
                    client=client,
                    key=key,
                )
                ops.append(save)
                saves.append(save)
                state[key] = (expected + 1, token)
                if key in last_read and last_read[key].version == expected:
                    overwritten.append((last_read[key], save))
            else:
                ops.append(
                    op(
                        "save",
                        "conflict",
                        invoke,
                        ret,
                        token=token,
                        expected=expected,
                        stored=current[0],
                        client=client,
                        key=key,
                    )
                )
    rng.shuffle(ops)  # the checker must not depend on the order of lines
    return Run(ops, overwritten, saves)


runs = st.builds(
    sequential_run,
    seed=st.integers(0, 2**32),
    count=st.integers(1, 250),
    clients=st.integers(1, 8),
    keys=st.integers(1, 3),
    unknown_rate=st.sampled_from([0.0, 0.0, 0.05, 0.2]),
)


@settings(max_examples=200, deadline=None)
@given(runs)
def test_a_history_of_a_sequential_execution_is_linearizable(run: Run) -> None:
    results = check(run.ops)
    assert all(result.linearizable for result in results), [
        "\n".join(r.counterexample.describe()) for r in results if r.counterexample
    ]


@settings(max_examples=200, deadline=None)
@given(runs, st.data())
def test_reading_an_overwritten_version_after_the_overwrite_returned_is_rejected(
    run: Run, data: st.DataObject
) -> None:
    assume(run.overwritten)
    read, save = data.draw(st.sampled_from(run.overwritten))
    lag = data.draw(st.integers(1, 1_000))
    stale = dataclasses.replace(
        read, client=99, invoke=save.ret + lag, ret=save.ret + lag + data.draw(st.integers(0, 50))
    )
    results = {r.key: r for r in check([*run.ops, stale])}
    assert results[read.key].linearizable is False
    example = results[read.key].counterexample
    assert example is not None


@settings(max_examples=200, deadline=None)
@given(runs, st.data())
def test_two_successful_saves_from_the_same_version_are_rejected(run: Run, data: st.DataObject) -> None:
    assume(run.saves)
    save = data.draw(st.sampled_from(run.saves))
    start = data.draw(st.integers(max(0, save.invoke - 200), save.ret + 200))
    twin = dataclasses.replace(
        save, client=99, token="twin", invoke=start, ret=start + data.draw(st.integers(0, 200))
    )
    results = {r.key: r for r in check([*run.ops, twin])}
    assert results[save.key].linearizable is False


def test_twenty_thousand_operations_on_one_key_are_checked() -> None:
    """Size, not speed: the search stays near-linear on a long history (timing is in the docs)."""
    run = sequential_run(seed=11, count=20_000, clients=10, keys=1, unknown_rate=0.001)
    (result,) = check(run.ops)
    assert result.linearizable is True
    assert result.operations == 20_000
    assert result.steps < 200 * result.operations


@pytest.mark.parametrize("seed", [1, 2])
def test_a_long_history_with_a_planted_duplicate_save_is_rejected(seed: int) -> None:
    run = sequential_run(seed=seed, count=3_000, clients=6, keys=1, unknown_rate=0.0)
    save = run.saves[len(run.saves) // 2]
    twin = dataclasses.replace(save, client=99, token="twin")
    (result,) = check([*run.ops, twin])
    assert result.linearizable is False
    assert result.counterexample is not None
    assert result.counterexample.operation.version == save.version
