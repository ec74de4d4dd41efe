"""A linearizability checker for histories of the register-with-version model, key by key.

The model, per key (each key is an independent object, so keys are checked separately:
linearizability is compositional): the state is *absent* or *(version, token)*.

- `get` ok with (v, t) iff the state is (v, t); not_found iff absent.
- `create(t)` ok (version 1) iff absent, and then the state is (1, t); conflict iff present
  (with the stored version, when the operation names it).
- `save(e, t)` ok (version e+1) iff present at version e, and then the state is (e+1, t);
  conflict iff absent or at another version (the stored version, when named); not_found iff
  absent.
- An operation with an `unknown` outcome may have taken effect at any point after its invoke,
  or never: its return time is infinite and any outcome is accepted. An unknown get tells
  nothing and is left out.

Placing an unknown operation where it has no effect changes nothing, so the search places one
only where it takes effect, and stops as soon as every operation with a known outcome is placed.

The search is Wing & Gong's, with Lowe's just-in-time linearization and memoization of
(set of linearized operations, state), as in Porcupine: walk the history's call and return
events in time order; at a call, try to linearize that operation now (if the model accepts it
and the resulting configuration was not tried before), else look at the next call; reaching a
return means the operation returning there could not be placed, so undo the last choice. The
linearized set is kept as (the lowest operation not yet linearized, a bit mask of the linearized
ones above it), which stays as small as the history's concurrency however long it is.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Optional

from .history import CONFLICT, NOT_FOUND, OK, UNKNOWN, Operation

State = Optional[tuple[int, str]]
"""A key's state: None when absent, else (version, token)."""

_GET_OK, _GET_NOT_FOUND = 0, 1
_CREATE_OK, _CREATE_CONFLICT, _CREATE_UNKNOWN = 2, 3, 4
_SAVE_OK, _SAVE_CONFLICT, _SAVE_NOT_FOUND, _SAVE_UNKNOWN = 5, 6, 7, 8
_NEVER = 9  # an outcome the model can never produce (a create that was not version 1, ...)
_KINDS = {
    ("get", OK): _GET_OK,
    ("get", NOT_FOUND): _GET_NOT_FOUND,
    ("create", OK): _CREATE_OK,
    ("create", CONFLICT): _CREATE_CONFLICT,
    ("create", UNKNOWN): _CREATE_UNKNOWN,
    ("save", OK): _SAVE_OK,
    ("save", CONFLICT): _SAVE_CONFLICT,
    ("save", NOT_FOUND): _SAVE_NOT_FOUND,
    ("save", UNKNOWN): _SAVE_UNKNOWN,
}
_CONTEXT = 5  # linearized operations shown before the one that could not be placed
_CHECK_CLOCK_EVERY = 1 << 16


@dataclasses.dataclass(frozen=True)
class Counterexample:
    """Why a key's history is not linearizable, from the longest linearization the search found.

    `operation` could not be placed after the `prefix` operations linearized before it (of
    which `last` are the final few, in order), in any order the real-time constraints allow;
    `state` is the key's state after that prefix.
    """

    operation: Operation
    prefix: int
    state: State
    last: tuple[Operation, ...]

    def describe(self, origin: int = 0) -> list[str]:
        """Readable lines; times are shown in seconds after `origin` (ns)."""
        lines = [f"cannot linearize {describe_operation(self.operation, origin)}"]
        lines.append(
            f"longest linearizable prefix: {self.prefix} operations, ending in state {_show(self.state)}"
        )
        if self.last:
            lines.append("its last operations, in linearization order:")
            lines += [f"  {describe_operation(op, origin)}" for op in self.last]
        return lines

    def to_dict(self) -> dict[str, object]:
        """The counterexample as plain JSON data."""
        return {
            "operation": self.operation.to_dict(),
            "line": self.operation.line,
            "prefix": self.prefix,
            "state": None if self.state is None else {"version": self.state[0], "token": self.state[1]},
            "last": [op.to_dict() for op in self.last],
        }


@dataclasses.dataclass(frozen=True)
class KeyResult:
    """The verdict for one key: `linearizable` is None when the search ran out of time."""

    key: str
    operations: int
    linearizable: bool | None
    counterexample: Counterexample | None = None
    steps: int = 0


def describe_operation(op: Operation, origin: int = 0) -> str:
    """One line: client, call, outcome and interval (seconds after `origin`)."""
    if op.op == "save":
        call = f"save(expected={op.expected}, token={op.token!r})"
    elif op.op == "create":
        call = f"create(token={op.token!r})"
    else:
        call = "get()"
    if op.outcome == OK:
        answer = f"ok v{op.version}" + (f" token={op.token!r}" if op.op == "get" else "")
    elif op.outcome == CONFLICT:
        answer = "conflict" + (f" (stored v{op.stored})" if op.stored is not None else "")
    else:
        answer = op.outcome
    who = "setup" if op.client < 0 else f"client {op.client}"
    where = f", line {op.line}" if op.line else ""
    interval = f"[{(op.invoke - origin) / 1e9:.6f}s, {(op.ret - origin) / 1e9:.6f}s]"
    return f"{who}: {op.key} {call} -> {answer} {interval}{where}"


def _show(state: State) -> str:
    return "absent" if state is None else f"v{state[0]} token={state[1]!r}"


def check(operations: Iterable[Operation], *, timeout: float | None = None) -> list[KeyResult]:
    """Check every key's operations; return one result per key, sorted by key.

    `timeout` (seconds, for the whole check) turns keys not decided in time into results whose
    `linearizable` is None. Transactions (`op` "txn") are left to `metafuse.stress.serializability`,
    and so is every key a transaction writes: its single operations alone would miss those writes.
    """
    by_key: dict[str, list[Operation]] = defaultdict(list)
    written: set[str] = set()
    for operation in operations:
        if operation.op == "txn":
            written.update(mop.key for mop in operation.mops if mop.f != "get")
        else:
            by_key[operation.key].append(operation)
    for key in written:
        by_key.pop(key, None)
    deadline = None if timeout is None else time.monotonic() + timeout
    return [check_key(key, by_key[key], deadline=deadline) for key in sorted(by_key)]


def check_key(key: str, operations: list[Operation], *, deadline: float | None = None) -> KeyResult:
    """Decide whether the operations on one key (starting absent) are linearizable."""
    ops = [op for op in operations if not (op.op == "get" and op.outcome == UNKNOWN)]
    known = sorted((op for op in ops if op.outcome != UNKNOWN), key=lambda op: (op.invoke, op.ret))
    unknown = sorted((op for op in ops if op.outcome == UNKNOWN), key=lambda op: op.invoke)
    every = known + unknown
    count, n_known = len(every), len(known)
    if n_known == 0:
        return KeyResult(key, count, True)

    kinds = [_kind(op) for op in every]
    tokens = [op.token or "" for op in every]
    first = [(op.version or 0) if op.op == "get" else (op.expected or 0) for op in every]
    stored = [op.stored for op in every]

    # Events: (time, 0 for a call / 1 for a return, operation). A call sorts before a return at
    # the same instant, so intervals that touch count as overlapping.
    infinity = max(op.ret for op in every) + 1
    events = sorted(
        [(op.invoke, 0, index) for index, op in enumerate(every)]
        + [(op.ret if index < n_known else infinity, 1, index) for index, op in enumerate(every)]
    )
    # A doubly linked list of events, 1..2n, with sentinels 0 (head) and 2n+1 (tail).
    size = 2 * count + 2
    nxt = list(range(1, size + 1))
    prv = list(range(-1, size - 1))
    event_op = [0] * size
    is_call = [False] * size
    return_of = [0] * size  # a call event's return event
    call_at = [0] * count
    for position, (_, kind, index) in enumerate(events, start=1):
        event_op[position] = index
        if kind == 0:
            is_call[position] = True
            call_at[index] = position
        else:
            return_of[call_at[index]] = position

    state: State = None
    low, window, unknown_bits = 0, 0, 0  # linearized: known ops below `low`, bits of window, unknowns
    seen: set[tuple[int, int, int, State]] = set()
    stack: list[tuple[int, State, int, int, int, bool]] = []  # choices, and unknowns set aside
    placed = 0  # operations linearized on the current path
    best = -1
    best_failure: tuple[int, State, tuple[int, ...]] = (0, None, ())
    steps = 0
    entry = nxt[0]
    while True:
        steps += 1
        if deadline is not None and steps % _CHECK_CLOCK_EVERY == 0 and time.monotonic() > deadline:
            return KeyResult(key, count, None, steps=steps)
        index = event_op[entry]
        if not is_call[entry]:
            # The operation returning here could not be linearized on this path: backtrack.
            if placed > best:
                best = placed
                best_failure = (index, state, _last_placed(stack, event_op))
            dead = True
            while dead and stack:
                entry, state, low, window, unknown_bits, dead = stack.pop()
                # Put the call and its return back where they were.
                match = return_of[entry]
                nxt[prv[match]] = match
                prv[nxt[match]] = match
                nxt[prv[entry]] = entry
                prv[nxt[entry]] = entry
            if dead:
                break
            placed -= 1
            entry = nxt[entry]
            continue
        legal, after = _step(kinds[index], state, first[index], tokens[index], stored[index])
        if legal:
            new_low, new_window, new_unknown = low, window, unknown_bits
            if index < n_known:
                new_window |= 1 << (index - low)
                if index == low:
                    run = ((new_window + 1) & ~new_window).bit_length() - 1  # trailing ones
                    new_window >>= run
                    new_low += run
            else:
                new_unknown |= 1 << (index - n_known)
            if new_low == n_known:
                return KeyResult(key, count, True, steps=steps)
            configuration = (new_low, new_window, new_unknown, after)
            if configuration not in seen:
                seen.add(configuration)
                stack.append((entry, state, low, window, unknown_bits, False))
                placed += 1
                state, low, window, unknown_bits = after, new_low, new_window, new_unknown
                _lift(entry, return_of[entry], nxt, prv)
                entry = nxt[0]
                continue
        elif index >= n_known and _dead(kinds[index], state, first[index]):
            # An unknown write that can no longer take effect on this path (versions only grow):
            # set it aside so later scans skip it; undone with the choice it followed.
            stack.append((entry, state, low, window, unknown_bits, True))
            following = nxt[entry]
            _lift(entry, return_of[entry], nxt, prv)
            entry = following
            continue
        entry = nxt[entry]
    failed, at, last = best_failure
    counterexample = Counterexample(every[failed], best, at, tuple(every[i] for i in last))
    return KeyResult(key, count, False, counterexample, steps)


def _last_placed(stack: list[tuple[int, State, int, int, int, bool]], event_op: list[int]) -> tuple[int, ...]:
    """The operations of the last few choices on the stack, oldest first."""
    last: list[int] = []
    for entry, *_, dead in reversed(stack):
        if not dead:
            last.append(event_op[entry])
            if len(last) == _CONTEXT:
                break
    return tuple(reversed(last))


def _lift(entry: int, match: int, nxt: list[int], prv: list[int]) -> None:
    nxt[prv[entry]] = nxt[entry]
    prv[nxt[entry]] = prv[entry]
    nxt[prv[match]] = nxt[match]
    prv[nxt[match]] = prv[match]


def _dead(kind: int, state: State, expected: int) -> bool:
    """Whether an unknown write can never take effect after `state` (no version comes back)."""
    if kind == _SAVE_UNKNOWN:
        return state is not None and state[0] > expected
    return kind == _CREATE_UNKNOWN and state is not None


def _kind(op: Operation) -> int:
    kind = _KINDS.get((op.op, op.outcome), _NEVER)
    if kind == _CREATE_OK and op.version != 1:
        return _NEVER
    if kind == _SAVE_OK and (op.expected is None or op.version != op.expected + 1):
        return _NEVER
    return kind


def _step(kind: int, state: State, number: int, token: str, stored: int | None) -> tuple[bool, State]:
    """Apply one operation to `state`: (whether the model allows its outcome, the state after)."""
    if kind == _GET_OK:
        return state is not None and state[0] == number and state[1] == token, state
    if kind == _SAVE_OK:
        if state is not None and state[0] == number:
            return True, (number + 1, token)
        return False, state
    if kind == _SAVE_CONFLICT:
        if state is None:
            return stored is None, state
        return state[0] != number and (stored is None or stored == state[0]), state
    if kind in (_GET_NOT_FOUND, _SAVE_NOT_FOUND):
        return state is None, state
    if kind == _CREATE_OK:
        return state is None, (1, token)
    if kind == _CREATE_CONFLICT:
        return state is not None and (stored is None or stored == state[0]), state
    # An unknown outcome is placed only where it takes effect (see the module docstring).
    if kind == _SAVE_UNKNOWN:
        if state is not None and state[0] == number:
            return True, (number + 1, token)
        return False, state
    if kind == _CREATE_UNKNOWN:
        return state is None, (1, token)
    return False, state


def summary(results: list[KeyResult]) -> dict[str, int | bool | None]:
    """Counts over a check: keys, operations, failing and undecided keys, and the verdict."""
    failing = sum(result.linearizable is False for result in results)
    undecided = sum(result.linearizable is None for result in results)
    return {
        "keys": len(results),
        "operations": sum(result.operations for result in results),
        "not_linearizable": failing,
        "undecided": undecided,
        "linearizable": failing == 0 and undecided == 0,
    }
