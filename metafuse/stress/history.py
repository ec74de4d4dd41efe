"""Operation histories: one JSON line per operation, written by every client, read back checked.

A history records what each client asked for and what it was told, with invoke and return
times from `time.monotonic_ns()` (one clock shared by every process on the machine), so that a
linearizability checker (`metafuse.stress.linearizability`, or Porcupine and Knossos after a
conversion) can decide whether some sequential order explains every answer. The format is
documented in docs/stress-testing.md ("Histories").

A line may also be a transaction (`op` "txn"): the micro-operations one `Catalog.transaction()`
block made (reads of a dataset's version and token, writes that install a new version), on
several keys, with one outcome for all of them. `metafuse.stress.serializability` judges those;
the linearizability checker leaves them, and the keys they write, to it.

Each client owns a `HistoryWriter` that buffers whole lines and appends them to the one history
file with `O_APPEND`: a `write` to a regular file opened that way lands at the end of the file
and, on Linux, is never interleaved with another writer's, so threads and processes can share
the file without a lock and without a merge step. The file is opened only for each flush, so a
client holds no descriptor on it between flushes.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Iterator
from json.encoder import encode_basestring_ascii as _quote
from typing import TYPE_CHECKING, Any

from ..errors import CatalogError, ConflictError, NotFoundError

if TYPE_CHECKING:
    from ..model import Dataset

OPS = ("get", "create", "save", "txn")
"""Operations: the register-with-version model's (`update` is recorded as its get and save) and
`txn`, a transaction of several micro-operations (`MICRO_OPS`)."""
MICRO_OPS = ("get", "create", "save")
"""What a transaction's micro-operation (its `f`) can be: a read, or a write of a new version."""
OK, CONFLICT, NOT_FOUND, UNKNOWN = "ok", "conflict", "not_found", "unknown"
OUTCOMES = (OK, CONFLICT, NOT_FOUND, UNKNOWN)
"""Outcomes: ok, conflict, not_found, and unknown (an error whose effect is not known)."""
ALLOWED: dict[str, tuple[str, ...]] = {
    "get": (OK, NOT_FOUND, UNKNOWN),
    "create": (OK, CONFLICT, UNKNOWN),
    "save": (OK, CONFLICT, NOT_FOUND, UNKNOWN),
    "txn": (OK, CONFLICT, UNKNOWN),
}
"""The outcomes each operation can have."""
SETUP_CLIENT = -1
"""The `client` of operations done by a scenario's setup before any client started."""
TORN = " | "
"""Joins the row's token and the fields' token of a read where they differ: a value no write wrote."""
BUFFER_BYTES = 1 << 16
"""A writer appends its buffered lines once they reach this size (and when it is flushed)."""

_FIELDS = (
    "client",
    "op",
    "key",
    "expected",
    "token",
    "outcome",
    "version",
    "stored",
    "invoke",
    "return",
    "mops",
)
_MOP_FIELDS = ("f", "key", "version", "token", "expected")


class HistoryFileError(CatalogError, ValueError):
    """A history file cannot be read or breaks the format; the message names the file and line."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"history {where}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return HistoryFileError, (self.path, self.line, self.problem)


@dataclasses.dataclass(frozen=True)
class MicroOp:
    """One step of a transaction: `f` is "get", "create" or "save", on dataset `key`.

    A get has the `version` and `token` it read (`version` None: the dataset was absent); a save
    has the `expected` version it named and the `token` it wrote (it installs `expected + 1`); a
    create has its `token` (it installs version 1).
    """

    f: str
    key: str
    version: int | None = None
    token: str | None = None
    expected: int | None = None

    @property
    def writes(self) -> int | None:
        """The version a write installs (None for a read)."""
        if self.f == "save":
            return None if self.expected is None else self.expected + 1
        return 1 if self.f == "create" else None

    def to_dict(self) -> dict[str, Any]:
        """Return the micro-operation as its object in a `txn` line's `mops`."""
        record: dict[str, Any] = {"f": self.f, "key": self.key}
        if self.f == "get":
            record["version"] = self.version
        if self.expected is not None:
            record["expected"] = self.expected
        if self.token is not None:
            record["token"] = self.token
        return record


@dataclasses.dataclass(frozen=True)
class Operation:
    """One completed (or abandoned) operation of a history.

    `version` is set for ok outcomes (the version read, or written); `token` for writes (the
    token written) and ok reads (the token read); `expected` for saves; `stored` for conflicts
    whose stored version is known. `line` is the 1-based line it was read from (0 if built).
    A transaction (`op` "txn") has no `key` (""), only `mops`, its micro-operations in order.
    """

    client: int
    op: str
    key: str
    outcome: str
    invoke: int
    ret: int
    token: str | None = None
    version: int | None = None
    expected: int | None = None
    stored: int | None = None
    line: int = 0
    mops: tuple[MicroOp, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the operation as its history line's object (fields that do not apply left out)."""
        if self.op == "txn":
            return {
                "client": self.client,
                "op": "txn",
                "mops": [mop.to_dict() for mop in self.mops],
                "outcome": self.outcome,
                "invoke": self.invoke,
                "return": self.ret,
            }
        record: dict[str, Any] = {"client": self.client, "op": self.op, "key": self.key}
        if self.expected is not None:
            record["expected"] = self.expected
        if self.token is not None:
            record["token"] = self.token
        record["outcome"] = self.outcome
        if self.version is not None:
            record["version"] = self.version
        if self.outcome == CONFLICT:
            record["stored"] = self.stored
        record["invoke"] = self.invoke
        record["return"] = self.ret
        return record


def format_line(operation: Operation) -> str:
    """Return `operation` as one history line (ending in a newline)."""
    return json.dumps(operation.to_dict(), separators=(", ", ": ")) + "\n"


def read_token(dataset: Dataset) -> str:
    """The token a read observed: the row's, or both joined by `TORN` when the fields' differs.

    Stress writes put one token in the dataset row (its description) and in its `token` field;
    a read that sees two different ones saw a value no write produced.
    """
    row = dataset.description or ""
    field = next((f.description for f in dataset.fields if f.name == "token"), None)
    return row if field == row else f"{row}{TORN}{field}"


def outcome_of(op: str, value: Any, error: BaseException | None) -> tuple[str, int | None, int | None]:
    """Classify a finished call: (outcome, version, stored) from its value or error.

    No error: ok with the version of the dataset returned (a get that returned None is
    not_found). `ConflictError`: conflict with the stored version it names. `NotFoundError`:
    not_found. Any other error (busy, closed, I/O): unknown, since it may or may not have taken
    effect.
    """
    if error is None:
        if value is None:
            return (NOT_FOUND, None, None) if op == "get" else (UNKNOWN, None, None)
        return OK, int(value.version), None
    if isinstance(error, ConflictError):
        return CONFLICT, None, error.actual
    if isinstance(error, NotFoundError):
        return NOT_FOUND, None, None
    return UNKNOWN, None, None


class HistoryWriter:
    """One client's history: buffers whole lines, appends them to `path` with `O_APPEND`.

    Used by one thread at a time (each client owns its writer); several writers, in threads or
    processes, may append to the same file at once: each flush is one `write` of whole lines.
    Memory is bounded by `BUFFER_BYTES`. Lines still buffered when a process is killed are lost.
    """

    def __init__(self, path: str, client: int) -> None:
        self.path = path
        self.client = client
        self._lines: list[str] = []
        self._size = 0
        self.written = 0

    def add(
        self,
        op: str,
        key: str,
        invoke: int,
        ret: int,
        outcome: str,
        *,
        version: int | None = None,
        token: str | None = None,
        expected: int | None = None,
        stored: int | None = None,
    ) -> None:
        """Buffer one operation's line; append the buffer to the file once it is large."""
        parts = [f'{{"client": {self.client}, "op": "{op}", "key": {_quote(key)}']
        if expected is not None:
            parts.append(f', "expected": {int(expected)}')
        if token is not None:
            parts.append(f', "token": {_quote(token)}')
        parts.append(f', "outcome": "{outcome}"')
        if version is not None:
            parts.append(f', "version": {int(version)}')
        if outcome == CONFLICT:
            parts.append(f', "stored": {"null" if stored is None else int(stored)}')
        parts.append(f', "invoke": {int(invoke)}, "return": {int(ret)}}}\n')
        line = "".join(parts)
        self._lines.append(line)
        self._size += len(line)
        if self._size >= BUFFER_BYTES:
            self.flush()

    def call(
        self,
        op: str,
        key: str,
        invoke: int,
        ret: int,
        value: Any,
        error: BaseException | None,
        *,
        expected: int | None = None,
        token: str | None = None,
    ) -> None:
        """Buffer a finished call of the catalog: `value` it returned or `error` it raised.

        For a write, `token` is the token it wrote; for a get, the token is read from the value.
        """
        outcome, version, stored = outcome_of(op, value, error)
        if op == "get":
            token = read_token(value) if outcome == OK else None
        self.add(
            op, key, invoke, ret, outcome, version=version, token=token, expected=expected, stored=stored
        )

    def transaction(self, invoke: int, ret: int, outcome: str, mops: Iterable[MicroOp]) -> None:
        """Buffer one transaction's line: its micro-operations in order and its one outcome.

        `outcome` is ok (committed), conflict (rolled back: nothing of it was written) or unknown
        (an error whose effect is not known).
        """
        operation = Operation(self.client, "txn", "", outcome, invoke, ret, mops=tuple(mops))
        line = format_line(operation)
        self._lines.append(line)
        self._size += len(line)
        if self._size >= BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        """Append every buffered line to the file, in one `write` where the kernel allows."""
        if not self._lines:
            return
        data = "".join(self._lines).encode("utf-8")
        self.written += len(self._lines)
        self._lines.clear()
        self._size = 0
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)


def start(path: str) -> None:
    """Create `path` empty (truncating an earlier history) before a run's first operation."""
    try:
        with open(path, "w", encoding="utf-8"):
            pass
    except OSError as error:
        raise HistoryFileError(path, None, f"cannot be written: {error.strerror or error}") from None


def record_setup(path: str | None, datasets: Iterable[Dataset], invoke: int, ret: int) -> None:
    """Record datasets a scenario's setup created (client -1), so checks start from them."""
    if path is None:
        return
    writer = HistoryWriter(path, SETUP_CLIENT)
    for dataset in datasets:
        writer.add(
            "create", dataset.name, invoke, ret, OK, version=dataset.version, token=read_token(dataset)
        )
    writer.flush()


def path_for(path: str, scenario: str, several: bool) -> str:
    """The history file of `scenario`: `path` itself, or `path` with `.<scenario>` before its suffix."""
    if not several:
        return path
    stem, suffix = os.path.splitext(path)
    return f"{stem}.{scenario}{suffix or '.jsonl'}"


def read_history(path: str) -> list[Operation]:
    """Read and validate every line of the history at `path`; `HistoryFileError` names the first bad one."""
    try:
        with open(path, encoding="utf-8") as file:
            return list(parse_lines(file, path))
    except OSError as error:
        raise HistoryFileError(path, None, f"cannot be read: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise HistoryFileError(path, None, "is not UTF-8 text") from None


def parse_lines(lines: Iterable[str], path: str) -> Iterator[Operation]:
    """Parse history lines (blank lines are skipped); errors name `path` and the line number."""
    for number, text in enumerate(lines, start=1):
        if text.strip():
            yield parse_line(text, path, number)


def parse_line(text: str, path: str, number: int) -> Operation:
    """Parse and validate one history line."""
    try:
        record = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise HistoryFileError(path, number, f"not a JSON object ({error})") from None
    if not isinstance(record, dict):
        raise HistoryFileError(path, number, "not a JSON object")

    def fail(problem: str) -> HistoryFileError:
        return HistoryFileError(path, number, problem)

    unknown = sorted(set(record) - set(_FIELDS))
    if unknown:
        raise fail(f"unknown field {unknown[0]!r} (fields: {', '.join(_FIELDS)})")

    def integer(name: str, *, required: bool, minimum: int | None = None) -> int | None:
        value = record.get(name)
        if value is None:
            if required:
                raise fail(f"{name!r} is missing")
            return None
        if type(value) is not int:
            raise fail(f"{name!r} must be a whole number, got {value!r}")
        if minimum is not None and value < minimum:
            raise fail(f"{name!r} must be at least {minimum}, got {value}")
        return value

    def text_field(name: str, *, required: bool) -> str | None:
        value = record.get(name)
        if value is None:
            if required:
                raise fail(f"{name!r} is missing")
            return None
        if not isinstance(value, str):
            raise fail(f"{name!r} must be a string, got {value!r}")
        return value

    op = text_field("op", required=True)
    if op not in ALLOWED:
        raise fail(f"'op' must be one of {', '.join(OPS)}, got {op!r}")
    outcome = text_field("outcome", required=True)
    if outcome not in ALLOWED[op]:
        raise fail(f"'outcome' of a {op} must be one of {', '.join(ALLOWED[op])}, got {outcome!r}")
    client = integer("client", required=True, minimum=SETUP_CLIENT)
    invoke = integer("invoke", required=True, minimum=0)
    ret = integer("return", required=True, minimum=0)
    assert client is not None
    assert invoke is not None
    assert ret is not None
    if ret < invoke:
        raise fail(f"'return' ({ret}) is before 'invoke' ({invoke})")
    if op == "txn":
        extra = sorted(set(record) - {"client", "op", "outcome", "invoke", "return", "mops"})
        if extra:
            raise fail(f"{extra[0]!r} belongs in a transaction's 'mops', not on the txn line")
        mops = tuple(_micro_op(item, index, fail) for index, item in enumerate(_mop_list(record, fail)))
        return Operation(client, op, "", outcome, invoke, ret, line=number, mops=mops)
    if "mops" in record:
        raise fail(f"'mops' is only for a txn, not a {op}")
    key = text_field("key", required=True)
    assert key is not None
    expected = integer("expected", required=op == "save", minimum=1)
    if op != "save" and expected is not None:
        raise fail(f"'expected' is only for a save, not a {op}")
    token = text_field("token", required=op != "get" or outcome == OK)
    if op == "get" and outcome != OK and token is not None:
        raise fail(f"a get that ended {outcome} read no 'token'")
    version = integer("version", required=outcome == OK, minimum=1)
    if outcome != OK and version is not None:
        raise fail(f"'version' is only for an ok outcome, not {outcome}")
    stored = integer("stored", required=False, minimum=1)
    if outcome != CONFLICT and stored is not None:
        raise fail(f"'stored' is only for a conflict, not {outcome}")
    return Operation(client, op, key, outcome, invoke, ret, token, version, expected, stored, number)


def _mop_list(record: dict[str, Any], fail: Callable[[str], HistoryFileError]) -> list[Any]:
    mops = record.get("mops")
    if not isinstance(mops, list) or not mops:
        raise fail("'mops' of a txn must be a non-empty list of micro-operations")
    return mops


def _micro_op(item: Any, index: int, fail: Callable[[str], HistoryFileError]) -> MicroOp:
    """Parse and validate the micro-operation at `index` of a txn's `mops`."""
    where = f"mops[{index}]"
    if not isinstance(item, dict):
        raise fail(f"{where} is not a JSON object")
    unknown = sorted(set(item) - set(_MOP_FIELDS))
    if unknown:
        raise fail(f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(_MOP_FIELDS)})")
    f, key, token = item.get("f"), item.get("key"), item.get("token")
    if f not in MICRO_OPS:
        raise fail(f"{where}: 'f' must be one of {', '.join(MICRO_OPS)}, got {f!r}")
    if not isinstance(key, str):
        raise fail(f"{where}: 'key' must be a string, got {key!r}")
    if token is not None and not isinstance(token, str):
        raise fail(f"{where}: 'token' must be a string, got {token!r}")
    version, expected = item.get("version"), item.get("expected")
    for name, value in (("version", version), ("expected", expected)):
        if value is not None and (type(value) is not int or value < 1):
            raise fail(f"{where}: {name!r} must be a whole number of at least 1, got {value!r}")
    if f == "get":
        if "version" not in item:
            raise fail(f"{where}: a get needs 'version' (null when the dataset was absent)")
        if expected is not None:
            raise fail(f"{where}: 'expected' is only for a save, not a get")
        if (version is None) != (token is None):
            raise fail(f"{where}: a get has a 'token' exactly when it read a 'version'")
        return MicroOp(f, key, version, token)
    if version is not None:
        raise fail(f"{where}: a {f} installs its version ('expected' + 1, or 1): no 'version'")
    if token is None:
        raise fail(f"{where}: a {f} needs the 'token' it wrote")
    if f == "save" and expected is None:
        raise fail(f"{where}: a save needs its 'expected' version")
    if f == "create" and expected is not None:
        raise fail(f"{where}: 'expected' is only for a save, not a create")
    return MicroOp(f, key, None, token, expected)
