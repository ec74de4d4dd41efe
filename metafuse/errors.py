"""The exception tree: every failure a caller can act on derives from `CatalogError`.

Owns these classes and their one-line messages (the object store's errors, in
`objectstore.errors`, derive from `CatalogError`). It imports nothing, so every other module may
import it, and raises nothing itself.
"""

from __future__ import annotations


class CatalogError(Exception):
    """Base of every error MetaFuse raises on purpose; the CLI turns these into one line."""


class ValidationError(CatalogError, ValueError):
    """A value breaks one of the catalog's rules; nothing was written."""

    def __init__(self, what: str, rule: str, value: object = None) -> None:
        self.what = what
        self.rule = rule
        self.value = value
        shown = "" if value is None else f" (got {_preview(value)})"
        super().__init__(f"invalid {what}{shown}: {rule}")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.what, self.rule, self.value)


class ConflictError(CatalogError):
    """The dataset's stored version is not the one the write expected; nothing was written."""

    def __init__(self, name: str, expected: int | None, actual: int | None) -> None:
        self.name = name
        self.expected = expected
        self.actual = actual
        if expected is None:
            message = f"dataset {name!r} already exists (version {actual})"
        elif actual is None:
            message = f"dataset {name!r} was deleted (expected version {expected})"
        else:
            message = f"dataset {name!r} is at version {actual}, not the expected {expected}"
        super().__init__(message)

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return ConflictError, (self.name, self.expected, self.actual)


class RetriesExhaustedError(ConflictError):
    """A retry loop met a conflict on every attempt (`Catalog.update` itself no longer can)."""

    def __init__(self, name: str, attempts: int, last: ConflictError) -> None:
        super().__init__(name, last.expected, last.actual)
        self.attempts = attempts
        self.last = last
        self.args = (f"dataset {name!r}: still conflicting after {attempts} attempts ({last})",)

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return RetriesExhaustedError, (self.name, self.attempts, self.last)


class NotFoundError(CatalogError, LookupError):
    """The named dataset does not exist."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"dataset {name!r} does not exist")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return NotFoundError, (self.name,)


class BusyError(CatalogError):
    """Other writers kept this one from committing past its bound (the lock, or the store's log)."""

    # Nothing was written. On a file: another connection held the write lock past the busy
    # timeout. On an object store (`detail` says so): other writers won every log number for as
    # long as one commit may wait (`CommitLog.max_wait`).

    def __init__(self, path: str, timeout: float, detail: str | None = None) -> None:
        self.path = path
        self.timeout = timeout
        self.detail = detail
        what = "is locked by another writer" if detail is None else detail
        super().__init__(f"catalog {path} {what} (waited {timeout:g} s)")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return BusyError, (self.path, self.timeout, self.detail)


class CatalogFileError(CatalogError):
    """The catalog file cannot be used: missing directory, not a catalog, newer schema, read-only."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"catalog {path}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.path, self.problem)


class StorageError(CatalogFileError):
    """The disk refused a write (full, file size limit, I/O error); the transaction was rolled back."""


class CommitUnknownError(StorageError):
    """The store stayed unreachable while a commit was in flight: it may or may not have landed.

    Never a failure report, and a read cannot decide it either: a copy of the write still in
    flight may land later. `Catalog.settle(error)` decides it for good (True: committed, once;
    False: never will be) once the store answers; settle before writing the same change again.
    Only a catalog on an object store raises it, after re-sending the commit for its whole
    settle budget.
    """

    def __init__(self, path: str, problem: str, pending: object = None) -> None:
        super().__init__(path, problem)
        self.pending = pending
        """What `Catalog.settle` needs to decide the commit (the log's record of the attempt)."""

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.path, self.problem, self.pending)


class ForkedHistoryError(StorageError):
    """The store's log no longer holds the history this client built on; nothing was acknowledged.

    Raised when a commit landed where no other client would read it (this writer stalled past
    the retention, or filled an entry deleted by hand; the entry is removed again) and when a
    catch-up meets an entry that follows another history than the one this client applied.
    """


class TransactionAbortedError(CatalogError):
    """SQLite ended the open transaction early (full disk, I/O error, a fork); nothing in it was committed.

    Every later statement in the same `transaction()` block raises this too, and so does the end
    of the outermost block: the block ends in this error, never half-committed.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"catalog {path}: the transaction was aborted ({reason}); nothing in it was committed"
        )

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return TransactionAbortedError, (self.path, self.reason)


class CatalogClosedError(CatalogError):
    """The `Catalog` was closed; open a new one."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"catalog {path} is closed")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return CatalogClosedError, (self.path,)


def _preview(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}...' ({len(str(value))} chars)"
