"""One verdict from histories recorded on many hosts: clock offsets, merging, judging.

Each host records its operations in the history format (`metafuse.stress.history`) with
wall-clock times (`time.time_ns()`), since monotonic clocks of different machines share no
origin. The collecting host (Locust's master) measures each recording host's clock against its
own by round trips, as NTP does, and gets an offset with an uncertainty: the true offset lies
within `offset ± uncertainty` as long as neither clock steps during the run. Every operation's
interval is moved onto the collector's clock and widened by the uncertainty on both sides, so
clock error can only make intervals overlap more (more orders allowed, a more permissive check)
and never makes a correct history look wrong. What the widening costs: two operations on
different hosts less than twice the bound apart are treated as concurrent, so a stale read that
close to the write it missed is not caught.

This module needs only the standard library; `metafuse/stress/locust/` wires it to Locust's
messages (`_collect` gathers the parts, `_verdict` judges them).
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Iterator

from . import linearizability
from .history import OK, TORN, Operation, format_line, parse_lines

CHUNK_BYTES = 1 << 20
"""Histories travel in pieces of at most this many bytes (ZeroMQ's queue overflowed at 4 KB)."""

LINEARIZABLE, NOT_LINEARIZABLE, INCONCLUSIVE = "linearizable", "NOT linearizable", "INCONCLUSIVE"
"""The verdicts of a merged run."""


def chunks(data: bytes, size: int = CHUNK_BYTES) -> list[bytes]:
    """Split `data` into pieces of at most `size` bytes (one empty piece for empty data)."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1 byte, not {size}")
    return [data[start : start + size] for start in range(0, len(data), size)] or [b""]


@dataclasses.dataclass(frozen=True)
class ClockOffset:
    """How far a host's wall clock is from the collector's: `offset_ns ± uncertainty_ns`.

    Adding `offset_ns` to one of the host's times gives the collector's time of the same
    instant, to within `uncertainty_ns` either way.
    """

    offset_ns: int
    uncertainty_ns: int

    @classmethod
    def from_probes(cls, probes: Iterable[tuple[int, int, int]]) -> ClockOffset:
        """The tightest bound from round trips `(sent, remote, received)`.

        `sent` and `received` are the collector's clock when it asked and when the answer came
        back; `remote` is the host's clock when it answered, at some instant in between. So
        the offset lies in `[sent - remote, received - remote]`; the shortest round trip gives
        the narrowest interval. `ValueError` without a probe or with one that returned before
        it was sent.
        """
        best: ClockOffset | None = None
        for sent, remote, received in probes:
            if received < sent:
                raise ValueError(f"a clock probe came back before it was sent ({sent} > {received})")
            low, high = sent - remote, received - remote
            estimate = cls((low + high) // 2, (high - low + 1) // 2)
            if best is None or estimate.uncertainty_ns < best.uncertainty_ns:
                best = estimate
        if best is None:
            raise ValueError("no clock probe came back")
        return best

    def agrees(self, other: ClockOffset) -> bool:
        """Whether `other` (the same clock measured again) overlaps this bound."""
        return abs(self.offset_ns - other.offset_ns) <= self.uncertainty_ns + other.uncertainty_ns

    def spanning(self, other: ClockOffset) -> ClockOffset:
        """The narrowest bound that covers this one and `other`: a clock measured twice, which
        may have drifted or stepped in between, was somewhere within it the whole time."""
        low = min(self.offset_ns - self.uncertainty_ns, other.offset_ns - other.uncertainty_ns)
        high = max(self.offset_ns + self.uncertainty_ns, other.offset_ns + other.uncertainty_ns)
        return ClockOffset((low + high) // 2, (high - low + 1) // 2)

    def to_collector(self, operation: Operation) -> Operation:
        """`operation` on the collector's clock, its interval widened by the uncertainty."""
        invoke = max(0, operation.invoke + self.offset_ns - self.uncertainty_ns)
        ret = max(invoke, operation.ret + self.offset_ns + self.uncertainty_ns)
        return dataclasses.replace(operation, invoke=invoke, ret=ret)


EXACT = ClockOffset(0, 0)
"""The collector's own clock."""


@dataclasses.dataclass(frozen=True)
class Part:
    """One host's history as it arrived: its name, its lines (bytes), its clock offset."""

    host: str
    data: bytes
    clock: ClockOffset


def merge(parts: Iterable[Part]) -> list[Operation]:
    """Every part's operations on the collector's clock, sorted by invoke time and numbered so.

    `HistoryFileError` names the host (as the file) and the line of the first bad line.
    """
    merged: list[Operation] = []
    for part in parts:
        lines = part.data.decode("utf-8", errors="replace").splitlines()
        merged.extend(part.clock.to_collector(op) for op in parse_lines(lines, f"from {part.host}"))
    merged.sort(key=lambda op: (op.invoke, op.ret))
    # Line numbers name lines of the merged file (`write`), not of each host's part.
    return [dataclasses.replace(op, line=number) for number, op in enumerate(merged, start=1)]


def write(path: str, operations: Iterable[Operation]) -> None:
    """Write a merged history to `path` in the documented format (`check-history` reads it)."""
    with open(path, "w", encoding="utf-8") as file:
        file.writelines(format_line(op) for op in operations)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One broken invariant of a merged history, with the operations that prove it."""

    invariant: str
    key: str
    problem: str
    proof: tuple[Operation, ...]


def invariants(operations: Iterable[Operation]) -> list[Finding]:
    """The invariants a merged history decides in one pass, key by key (at most one finding each).

    - `version_chain`: no two acknowledged writes of a key got the same version (a lost update).
    - `no_stale_read`: no read returned a version older than a write acknowledged before the read
      began (on the widened intervals, so clock error can only hide a stale read, never invent one).
    - `no_torn_read`: no read returned a row and fields written by different writes.

    They are far cheaper than the linearizability search, which must try every order before it
    can say no, and they name the two operations that contradict each other.
    """
    by_key: dict[str, list[Operation]] = defaultdict(list)
    for op in operations:
        by_key[op.key].append(op)
    findings: list[Finding] = []
    for key in sorted(by_key):
        ops = by_key[key]
        writes = sorted((op for op in ops if op.op != "get" and op.outcome == OK), key=lambda op: op.ret)
        reads = [op for op in ops if op.op == "get" and op.outcome == OK]
        seen: dict[int, Operation] = {}
        for write in writes:
            assert write.version is not None
            earlier = seen.setdefault(write.version, write)
            if earlier is not write:
                problem = f"two writes were both acknowledged as v{write.version}"
                findings.append(Finding("version_chain", key, problem, (earlier, write)))
                break
        torn = next((read for read in reads if read.token is not None and TORN in read.token), None)
        if torn is not None:
            findings.append(
                Finding("no_torn_read", key, "a read saw the row and fields of different writes", (torn,))
            )
        returns = [write.ret for write in writes]
        newest: list[Operation] = []  # newest[i]: the highest-versioned of writes[: i + 1]
        for write in writes:
            assert write.version is not None
            best = newest[-1] if newest else None
            newest.append(write if best is None or (best.version or 0) < write.version else best)
        for read in sorted(reads, key=lambda op: op.invoke):
            done = bisect.bisect_left(returns, read.invoke)  # writes that returned before it began
            if done and (newest[done - 1].version or 0) > (read.version or 0):
                write = newest[done - 1]
                problem = f"a read returned v{read.version} after v{write.version} was acknowledged"
                findings.append(Finding("no_stale_read", key, problem, (write, read)))
                break
    return findings


@dataclasses.dataclass(frozen=True)
class Work:
    """The work a run was asked for: `quota` calls by each of `users` users; `finished` made them all.

    A quota of 0 asks for none (the run's length alone decided it): such work is always done.
    """

    quota: int
    users: int
    finished: int

    @property
    def done(self) -> bool:
        """Whether every user made its calls (or no quota was asked)."""
        return self.quota <= 0 or (self.users > 0 and self.finished >= self.users)


NO_QUOTA = Work(0, 0, 0)
"""A run whose length alone decided how much it did."""


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The run's verdict: `status` is one of LINEARIZABLE, NOT_LINEARIZABLE, INCONCLUSIVE.

    A run whose histories did not all arrive (`missing` names the hosts) is INCONCLUSIVE, even
    if what did arrive fails the check: operations missing from a history can make a correct
    run look wrong (a read of a token whose write was lost). A run in which no client
    recorded an operation (only the setup's) is INCONCLUSIVE too: it tested nothing. So is a
    passing run that did less `work` than it was asked: too little evidence never reads as a
    pass (a failure found in it still fails).
    """

    status: str
    findings: tuple[Finding, ...]
    results: tuple[linearizability.KeyResult, ...]
    operations: int
    client_operations: int
    missing: tuple[str, ...]
    bound_ns: int
    origin: int
    work: Work = NO_QUOTA

    def lines(self) -> Iterator[str]:
        """Readable lines: each failing key with the operations that prove it, then the summary."""
        for finding in self.findings:
            yield f"{finding.key}: {finding.invariant} FAILED: {finding.problem}"
            for op in finding.proof:
                yield f"  {linearizability.describe_operation(op, self.origin)}"
        for result in self.results:
            if result.linearizable is None:
                yield f"{result.key}: UNDECIDED ({result.operations} operations)"
            elif result.counterexample is not None:
                yield f"{result.key}: NOT LINEARIZABLE ({result.operations} operations)"
                for line in result.counterexample.describe(self.origin):
                    yield f"  {line}"
        failing = len(
            {f.key for f in self.findings} | {r.key for r in self.results if r.linearizable is False}
        )
        searched = "" if self.results or not self.findings else "; linearizability not searched"
        yield (
            f"[metafuse] verdict: {self.operations} operations: {self.status}"
            f" ({failing} keys failed{searched}; clocks bound +/- {self.bound_ns / 1e6:.3f} ms)"
        )
        for host in self.missing:
            yield f"[metafuse] verdict: no history arrived from {host}; its operations are unknown"
        if not self.client_operations:
            yield "[metafuse] verdict: no client operation was recorded: nothing was tested"
        if not self.work.done:
            work = self.work
            yield (
                f"[metafuse] verdict: too little work to pass: {work.finished} of {work.users} users made"
                f" their {work.quota} calls ({self.client_operations} calls recorded of"
                f" {work.quota * work.users} asked) before the test stopped"
            )


def judge(
    operations: list[Operation],
    *,
    missing: Iterable[str] = (),
    bound_ns: int = 0,
    timeout: float | None = None,
    work: Work = NO_QUOTA,
) -> Verdict:
    """Check a merged history: the one-pass `invariants`, then as `stress check-history` does.

    When an invariant already fails, the linearizability search (which may take minutes to
    prove a history wrong) is skipped. `timeout` bounds the search; undecided keys make the
    verdict INCONCLUSIVE, as does `work` not done when nothing failed.
    """
    absent = tuple(missing)
    clients = sum(op.client >= 0 for op in operations)
    findings = tuple(invariants(operations))
    results: tuple[linearizability.KeyResult, ...] = ()
    if not findings:
        results = tuple(linearizability.check(operations, timeout=timeout))
    totals = linearizability.summary(list(results))
    if absent or not clients:
        status = INCONCLUSIVE
    elif findings or totals["not_linearizable"]:
        status = NOT_LINEARIZABLE
    elif totals["undecided"] or not work.done:
        status = INCONCLUSIVE
    else:
        status = LINEARIZABLE
    origin = min((op.invoke for op in operations), default=0)
    return Verdict(status, findings, results, len(operations), clients, absent, bound_ns, origin, work)
