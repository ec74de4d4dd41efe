"""A serializability checker for histories with transactions: cycles in their dependency graph.

As Elle does for Jepsen, it never searches for a serial order. It infers, from what each
committed transaction read and wrote, which transactions must come before which in any serial
order, and looks for a cycle: a history is serializable only if that graph has none (Adya's
phenomena). Every operation of a history is a transaction: a `txn` line is one with several
micro-operations; a single get, save or create is one with one.

Versions make the graph exact: a dataset's versions are installed in increasing order, so the
version order of each key is known, and a write's token names the transaction a read saw.

- **ww**: the transaction that installed a key's version precedes the one that installed the next
  version installed (the version order of each key).
- **wr**: the transaction that installed a version precedes every transaction that read it. A save
  reads the version it names (`expected`), a create reads "absent".
- **rw** (anti-dependency): a transaction that read a version precedes the transaction that
  installed the next one.

A cycle is classified as Adya's G0 when it can be closed with ww edges only (write cycle), G1c
when with ww and wr edges (circular information flow), else G2 (it needs an rw edge: write skew,
a lost update). Reads are also checked on their own: G1a, a committed transaction read a write of
an aborted one; G1b, it read a version that the writing transaction itself overwrote before it
committed (an intermediate write).

Outcomes: `ok` transactions are committed, `conflict` and `not_found` ones aborted (nothing of them
was written). An `unknown` transaction may or may not have committed: it joins the graph only when
a committed transaction (or one already shown to have committed) read one of its writes or saved
over it, which proves it committed; otherwise it is left out. Leaving one out only removes edges,
so an unknown outcome can make the check accept more, never reject more. A read the history cannot
attribute (no write of that version and token is recorded, as when the history starts mid-way)
adds its rw edge but no wr edge, for the same reason.

The cost is linear in the size of the history (Tarjan's strongly connected components), plus a
breadth-first search inside each component that holds a cycle, to show the shortest cycle through
one of its transactions.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from typing import Optional

from .history import CONFLICT, NOT_FOUND, OK, UNKNOWN, Operation
from .linearizability import describe_operation

WW, WR, RW = "ww", "wr", "rw"
"""Edge kinds of the dependency graph."""
G0, G1A, G1B, G1C, G2 = "G0", "G1a", "G1b", "G1c", "G2"
ANOMALIES: dict[str, str] = {
    G0: "write cycle (ww edges only)",
    G1A: "aborted read (a committed transaction read a write of an aborted one)",
    G1B: "intermediate read (a committed transaction read a version its writer overwrote)",
    G1C: "circular information flow (ww and wr edges)",
    G2: "anti-dependency cycle (an rw edge: write skew, lost update)",
}
"""Every anomaly the checker reports, by Adya's name."""
SHOWN = 5
"""How many cycles and bad reads `Result.describe` shows in full."""

_COMMITTED, _ABORTED, _UNKNOWN = 0, 1, 2
_STATUS = {OK: _COMMITTED, CONFLICT: _ABORTED, NOT_FOUND: _ABORTED, UNKNOWN: _UNKNOWN}

Write = tuple[str, int, str]
"""A write: (key, version installed, token written)."""
Read = tuple[str, int, Optional[str]]
"""A read: (key, version read or 0 for absent, token read or None when only the version is known)."""


@dataclasses.dataclass(frozen=True)
class Step:
    """One edge of a cycle: `transaction` precedes the next step's, by `kind` on `key`.

    `before` and `after` are the versions that make the edge: for ww, the versions the two
    installed; for wr, the version written and read (both the same); for rw, the version read
    and the next version, which the next transaction installed.
    """

    transaction: Operation
    kind: str
    key: str
    before: int
    after: int

    def describe(self, origin: int = 0) -> list[str]:
        """Two lines: the transaction, then the edge to the next one."""
        if self.kind == WW:
            why = f"installed {self.key} v{self.before}, the next installed v{self.after}"
        elif self.kind == WR:
            why = f"installed {self.key} v{self.before}, which the next read"
        else:
            read = f"v{self.before}" if self.before else "it absent"
            why = f"read {self.key} {read}, the next installed v{self.after} over it"
        return [describe_transaction(self.transaction, origin), f"    -{self.kind}-> {why}"]


@dataclasses.dataclass(frozen=True)
class Cycle:
    """A cycle of the dependency graph: no serial order can place every one of its transactions.

    Following `steps` from the first returns to it; `anomaly` is G0, G1c or G2 (see the module).
    """

    anomaly: str
    steps: tuple[Step, ...]

    def describe(self, origin: int = 0) -> list[str]:
        """Readable lines: the anomaly, then each transaction and the edge to the next."""
        lines = [f"{self.anomaly} {ANOMALIES[self.anomaly]}: a cycle of {len(self.steps)} transactions"]
        for step in self.steps:
            lines += [f"  {line}" for line in step.describe(origin)]
        lines.append("  (back to the first)")
        return lines

    def to_dict(self) -> dict[str, object]:
        """The cycle as plain JSON data."""
        return {
            "anomaly": self.anomaly,
            "steps": [
                {
                    "transaction": step.transaction.to_dict(),
                    "line": step.transaction.line,
                    "edge": step.kind,
                    "key": step.key,
                    "before": step.before,
                    "after": step.after,
                }
                for step in self.steps
            ],
        }


@dataclasses.dataclass(frozen=True)
class BadRead:
    """A committed transaction's read of a write that never became visible (G1a or G1b)."""

    anomaly: str
    reader: Operation
    writer: Operation
    key: str
    version: int
    token: str

    def describe(self, origin: int = 0) -> list[str]:
        """Readable lines: the anomaly, the reader and the writer."""
        what = "aborted" if self.anomaly == G1A else "overwrote it before committing"
        return [
            f"{self.anomaly} {ANOMALIES[self.anomaly]}: {self.key} v{self.version} token={self.token!r}",
            f"  read by {describe_transaction(self.reader, origin)}",
            f"  written by {describe_transaction(self.writer, origin)} ({what})",
        ]

    def to_dict(self) -> dict[str, object]:
        """The bad read as plain JSON data."""
        return {
            "anomaly": self.anomaly,
            "key": self.key,
            "version": self.version,
            "token": self.token,
            "reader": self.reader.to_dict(),
            "writer": self.writer.to_dict(),
        }


@dataclasses.dataclass(frozen=True)
class Result:
    """The verdict on a history's transactions.

    `cycles` holds one cycle per strongly connected component of the graph that has one (the
    most severe class found in it); `unknown_committed` counts unknown transactions shown to
    have committed (they joined the graph); the other unknown ones were left out.
    """

    transactions: int
    committed: int
    aborted: int
    unknown: int
    unknown_committed: int
    edges: int
    cycles: tuple[Cycle, ...]
    bad_reads: tuple[BadRead, ...]

    @property
    def serializable(self) -> bool:
        """True when no cycle and no aborted or intermediate read was found."""
        return not self.cycles and not self.bad_reads

    def anomalies(self) -> dict[str, int]:
        """How many cycles and bad reads of each class were found."""
        counts: dict[str, int] = defaultdict(int)
        for name in [cycle.anomaly for cycle in self.cycles] + [bad.anomaly for bad in self.bad_reads]:
            counts[name] += 1
        return dict(sorted(counts.items()))

    def describe(self, origin: int = 0) -> list[str]:
        """Readable lines: a summary, then the first `SHOWN` cycles and bad reads as proof."""
        verdict = "serializable" if self.serializable else "NOT serializable"
        found = ", ".join(f"{count} {name}" for name, count in self.anomalies().items())
        lines = [
            f"{self.transactions} transactions ({self.committed} committed, {self.aborted} aborted,"
            f" {self.unknown} unknown of which {self.unknown_committed} shown committed),"
            f" {self.edges} dependencies: {verdict}" + (f" ({found})" if found else "")
        ]
        for cycle in self.cycles[:SHOWN]:
            lines += cycle.describe(origin)
        for bad in self.bad_reads[:SHOWN]:
            lines += bad.describe(origin)
        hidden = max(0, len(self.cycles) - SHOWN) + max(0, len(self.bad_reads) - SHOWN)
        if hidden:
            lines.append(f"... and {hidden} more (--json lists them all)")
        return lines

    def to_dict(self) -> dict[str, object]:
        """The verdict as plain JSON data."""
        return {
            "transactions": self.transactions,
            "committed": self.committed,
            "aborted": self.aborted,
            "unknown": self.unknown,
            "unknown_committed": self.unknown_committed,
            "dependencies": self.edges,
            "serializable": self.serializable,
            "anomalies": self.anomalies(),
            "cycles": [cycle.to_dict() for cycle in self.cycles],
            "bad_reads": [bad.to_dict() for bad in self.bad_reads],
        }


def describe_transaction(op: Operation, origin: int = 0) -> str:
    """One line: client, micro-operations, outcome and interval (seconds after `origin`)."""
    if op.op != "txn":
        return describe_operation(op, origin)
    parts = []
    for mop in op.mops:
        if mop.f == "get":
            seen = f"v{mop.version} {mop.token!r}" if mop.version else "absent"
            parts.append(f"get {mop.key} -> {seen}")
        elif mop.f == "save":
            parts.append(f"save {mop.key} (expected={mop.expected}) {mop.token!r}")
        else:
            parts.append(f"create {mop.key} {mop.token!r}")
    who = "setup" if op.client < 0 else f"client {op.client}"
    where = f", line {op.line}" if op.line else ""
    interval = f"[{(op.invoke - origin) / 1e9:.6f}s, {(op.ret - origin) / 1e9:.6f}s]"
    return f"{who}: txn [{'; '.join(parts)}] -> {op.outcome} {interval}{where}"


def has_transactions(operations: Iterable[Operation]) -> bool:
    """Whether any operation is a transaction (`op` "txn")."""
    return any(op.op == "txn" for op in operations)


@dataclasses.dataclass
class _Txn:
    operation: Operation
    status: int
    reads: list[Read]
    writes: list[Write]  # final writes, one per key
    intermediate: list[Write]


def _transaction(op: Operation) -> _Txn | None:
    """The reads and writes of one operation, as a transaction; None when it tells nothing."""
    status = _STATUS[op.outcome]
    reads: list[Read] = []
    own: dict[str, Write] = {}
    intermediate: list[Write] = []
    if op.op == "txn":
        steps = [(mop.f, mop.key, mop.version, mop.token, mop.expected) for mop in op.mops]
    elif op.op == "get":
        if op.outcome == UNKNOWN:
            return None
        steps = [("get", op.key, op.version if op.outcome == OK else None, op.token, None)]
    else:
        steps = [(op.op, op.key, None, op.token, op.expected)]
    for f, key, version, token, expected in steps:
        if f == "get":
            if key not in own:  # a read of its own write says nothing about others
                reads.append((key, version or 0, token if version else None))
            continue
        installs = 1 if f == "create" else (expected or 0) + 1
        if key in own:
            intermediate.append(own[key])
        else:
            reads.append((key, installs - 1, None))
        own[key] = (key, installs, token or "")
    return _Txn(op, status, reads, list(own.values()), intermediate)


def check(operations: Iterable[Operation]) -> Result:
    """Build the dependency graph of `operations` and look for cycles and bad reads (see the module)."""
    txns = [txn for txn in map(_transaction, operations) if txn is not None]
    by_write: dict[Write, list[int]] = defaultdict(list)  # every final write, whatever the outcome
    by_version: dict[tuple[str, int], list[int]] = defaultdict(list)  # final writes not aborted
    by_intermediate: dict[Write, list[int]] = defaultdict(list)
    for index, txn in enumerate(txns):
        for write in txn.writes:
            by_write[write].append(index)
            if txn.status != _ABORTED:
                by_version[write[:2]].append(index)
        for write in txn.intermediate:
            by_intermediate[write].append(index)

    def writer_of(read: Read, reader: int) -> int | None:
        """The one transaction not aborted whose final write `read` saw (None if not exactly one)."""
        key, version, token = read
        if version == 0:
            return None
        if token is None:
            candidates = by_version.get((key, version), [])
        else:
            candidates = [i for i in by_write.get((key, version, token), []) if txns[i].status != _ABORTED]
        candidates = [i for i in candidates if i != reader]
        committed = [i for i in candidates if txns[i].status == _COMMITTED]
        if len(committed) == 1:
            return committed[0]
        return candidates[0] if len(candidates) == 1 else None

    # Which transactions committed: the ok ones, and unknown ones that such a transaction read from.
    included = [txn.status == _COMMITTED for txn in txns]
    writers: dict[int, list[int | None]] = {}  # each visited transaction's reads' writers

    def resolved(index: int) -> list[int | None]:
        found = writers.get(index)
        if found is None:
            found = writers[index] = [writer_of(read, index) for read in txns[index].reads]
        return found

    work = [index for index, yes in enumerate(included) if yes]
    while work:
        index = work.pop()
        for writer in resolved(index):
            if writer is not None and not included[writer]:
                included[writer] = True
                work.append(writer)

    bad_reads = _bad_reads(txns, included, by_write, by_intermediate)
    graph = _graph(txns, included, resolved)
    cycles = tuple(_cycle(component, graph, txns) for component in _components(graph) if len(component) > 1)
    unknown = [index for index, txn in enumerate(txns) if txn.status == _UNKNOWN]
    return Result(
        transactions=len(txns),
        committed=sum(txn.status == _COMMITTED for txn in txns),
        aborted=sum(txn.status == _ABORTED for txn in txns),
        unknown=len(unknown),
        unknown_committed=sum(included[index] for index in unknown),
        edges=sum(len(targets) for targets in graph.values()),
        cycles=tuple(sorted(cycles, key=_severity)),
        bad_reads=bad_reads,
    )


def _severity(cycle: Cycle) -> tuple[str, int, int]:
    """Most severe class first (G0 < G1c < G2), then the shortest, then the earliest."""
    return cycle.anomaly, len(cycle.steps), min(step.transaction.invoke for step in cycle.steps)


Edge = tuple[str, str, int, int]
"""An edge's label: (kind, key, before, after) as in `Step`."""
Graph = dict[int, dict[int, list[Edge]]]


def _bad_reads(
    txns: list[_Txn],
    included: list[bool],
    by_write: dict[Write, list[int]],
    by_intermediate: dict[Write, list[int]],
) -> tuple[BadRead, ...]:
    found = []
    for index, txn in enumerate(txns):
        if not included[index]:
            continue
        for key, version, token in txn.reads:
            if token is None or version == 0:
                continue
            write = (key, version, token)
            writers = [i for i in by_write.get(write, []) if i != index]
            if any(txns[i].status != _ABORTED for i in writers):
                continue
            if writers:
                found.append(BadRead(G1A, txn.operation, txns[writers[0]].operation, key, version, token))
                continue
            overwritten = [i for i in by_intermediate.get(write, []) if i != index]
            if overwritten:
                writer = txns[overwritten[0]].operation
                found.append(BadRead(G1B, txn.operation, writer, key, version, token))
    return tuple(found)


def _graph(txns: list[_Txn], included: list[bool], resolved: Callable[[int], list[int | None]]) -> Graph:
    """The ww, wr and rw edges between the transactions that committed."""
    graph: Graph = {index: {} for index, yes in enumerate(included) if yes}

    def add(source: int, target: int, edge: Edge) -> None:
        if source != target:
            graph[source].setdefault(target, []).append(edge)

    writers: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index in graph:
        for key, version, _ in txns[index].writes:
            writers[key][version].append(index)
    order = {key: sorted(versions) for key, versions in writers.items()}
    for key, versions in order.items():
        for before, after in zip(versions, versions[1:]):
            for source in writers[key][before]:
                for target in writers[key][after]:
                    add(source, target, (WW, key, before, after))
    for index in graph:
        for (key, version, _), writer in zip(txns[index].reads, resolved(index)):
            if writer is not None and included[writer]:
                add(writer, index, (WR, key, version, version))
            versions = order.get(key, [])
            position = bisect.bisect_right(versions, version)
            if position < len(versions):
                after = versions[position]
                for target in writers[key][after]:
                    add(index, target, (RW, key, version, after))
    return graph


def _components(graph: Graph, kinds: Sequence[str] | None = None) -> list[list[int]]:
    """Tarjan's strongly connected components, iteratively; only edges of `kinds` when given."""

    def targets(node: int) -> list[int]:
        edges = graph[node]
        if kinds is None:
            return list(edges)
        return [t for t, labels in edges.items() if t in graph and any(e[0] in kinds for e in labels)]

    number: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    components: list[list[int]] = []
    for root in graph:
        if root in number:
            continue
        number[root] = low[root] = len(number)
        stack.append(root)
        on_stack.add(root)
        path = [(root, iter(targets(root)))]
        while path:
            node, pending = path[-1]
            for target in pending:
                if target not in number:
                    number[target] = low[target] = len(number)
                    stack.append(target)
                    on_stack.add(target)
                    path.append((target, iter(targets(target))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], number[target])
            else:
                path.pop()
                if path:
                    parent = path[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == number[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(component)
    return components


def _cycle(component: list[int], graph: Graph, txns: list[_Txn]) -> Cycle:
    """The most severe class of cycle inside `component`, and a shortest one of that class."""
    members = set(component)
    sub: Graph = {node: {t: e for t, e in graph[node].items() if t in members} for node in component}
    for anomaly, kinds in ((G0, (WW,)), (G1C, (WW, WR)), (G2, (WW, WR, RW))):
        inner = [c for c in _components(sub, kinds) if len(c) > 1]
        if inner:
            return Cycle(anomaly, _shortest_cycle(min(inner[0]), sub, kinds, txns))
    raise AssertionError("a strongly connected component of several transactions holds a cycle")


def _shortest_cycle(start: int, graph: Graph, kinds: Sequence[str], txns: list[_Txn]) -> tuple[Step, ...]:
    """A shortest cycle through `start` using edges of `kinds` (breadth-first search)."""
    parent: dict[int, tuple[int, Edge]] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        node = queue.popleft()
        for target, labels in graph[node].items():
            usable = [edge for edge in labels if edge[0] in kinds]
            if not usable:
                continue
            # Prefer the mildest edge between two transactions: it names the plainest dependency.
            edge = min(usable, key=lambda e: (WW, WR, RW).index(e[0]))
            if target == start:
                steps = [(node, edge)]
                while node != start:
                    node, back = parent[node]
                    steps.append((node, back))
                steps.reverse()
                return tuple(Step(txns[n].operation, e[0], e[1], e[2], e[3]) for n, e in steps)
            if target not in seen:
                seen.add(target)
                parent[target] = (node, edge)
                queue.append(target)
    raise AssertionError("no cycle through a member of a strongly connected component")
