"""What an object store can answer besides success, one type per thing a caller can act on.

"Lost a race" (`AlreadyExists`, `PreconditionFailed`) is never spelled like "the store is down"
(`StoreUnavailable`), and neither like "it may or may not have happened" (`AmbiguousWrite`), so a
commit loop can tell the three apart without reading messages.
"""

from __future__ import annotations

from ..errors import CatalogError
from ._redact import redact


class ObjectStoreError(CatalogError):
    """Base of every error an object store or the commit log raises on purpose.

    Its message never shows credentials: a `scheme://user:password@host` in it reads
    `scheme://***@host` (see `metafuse.objectstore._redact`).
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(arg) if isinstance(arg, str) else arg for arg in args))


class InvalidStoreURL(ObjectStoreError, ValueError):
    """A store URL cannot be used; the message names the part that is wrong and what would be valid.

    Credentials in the URL (an `endpoint_url` with `user:password@`) are redacted in `url`,
    `problem` and the message.
    """

    def __init__(self, url: str, problem: str) -> None:
        self.url = redact(url)
        self.problem = redact(problem)
        super().__init__(f"store URL {self.url!r}: {self.problem}")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.url, self.problem)


class InvalidKey(ObjectStoreError, ValueError):
    """An object key breaks the key rules (see `metafuse.objectstore.check_key`); nothing was sent."""

    def __init__(self, key: str, rule: str) -> None:
        self.key = key
        self.rule = rule
        super().__init__(f"invalid object key {key!r}: {rule}")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.key, self.rule)


class NotFound(ObjectStoreError, LookupError):
    """No object has this key (for `put` in update mode: the object to compare with is gone)."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"object {key!r} does not exist")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.key,)


class AlreadyExists(ObjectStoreError):
    """A `create` lost: an object with this key exists (it may be the caller's own, see the log)."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"object {key!r} already exists")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.key,)


class PreconditionFailed(ObjectStoreError):
    """An `update` lost: the object's tag is no longer `expected`; nothing was written."""

    def __init__(self, key: str, expected: str) -> None:
        self.key = key
        self.expected = expected
        super().__init__(f"object {key!r} no longer has tag {expected}")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.key, self.expected)


class StoreUnavailable(ObjectStoreError):
    """The store did not answer usefully (transport error, 5xx, throttling); a write did not happen.

    Raised for a write only when the request certainly did not take effect (it was never sent, or
    the store said so); a write that may have taken effect raises `AmbiguousWrite` instead.
    """

    def __init__(self, what: str, cause: str) -> None:
        self.what = what
        self.cause = cause
        super().__init__(f"object store unavailable during {what}: {cause}")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.what, self.cause)


class AmbiguousWrite(ObjectStoreError):
    """A write was sent and its outcome is unknown (timeout, 5xx, connection dropped after sending).

    The object may or may not have been written. Only a later read can tell; the commit log
    resolves it by reading the entry back and comparing commit ids.
    """

    def __init__(self, key: str, mode: str, cause: str) -> None:
        self.key = key
        self.mode = mode
        self.cause = cause
        super().__init__(f"outcome of {mode} of object {key!r} is unknown: {cause}")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.key, self.mode, self.cause)


class MissingDependency(ObjectStoreError, ImportError):
    """An optional package is not installed; the message names it and the command that installs it."""

    def __init__(self, needed_by: str, module: str, install: str) -> None:
        self.needed_by = needed_by
        self.module = module
        self.install = install
        super().__init__(f"{needed_by} needs {module}, which is not installed: {install}")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.needed_by, self.module, self.install)


class LogCorrupt(ObjectStoreError):
    """The commit log holds something the protocol never writes (bad entry, stray key, a gap)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"commit log entry {key!r}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.key, self.problem)


class LogTruncated(ObjectStoreError):
    """The entries right after `sequence` were removed by retention (see `CommitLog.truncate`).

    A reader this far behind cannot catch up from the log; it starts again from a snapshot.
    """

    def __init__(self, sequence: int) -> None:
        self.sequence = sequence
        super().__init__(f"the log's entries after {sequence} were removed by retention")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.sequence,)


class AppendContended(ObjectStoreError):
    """An append lost the race for `attempts` sequence numbers in a row, over `waited` seconds,
    and gave up at its bound; nothing was written.

    Every number it tried is held by another commit, so its entry cannot appear later.
    """

    def __init__(self, commit_id: str, attempts: int, waited: float = 0.0) -> None:
        self.commit_id = commit_id
        self.attempts = attempts
        self.waited = waited
        super().__init__(
            f"commit {commit_id} lost {attempts} sequence numbers in a row to other writers in {waited:.1f} s"
        )

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.commit_id, self.attempts, self.waited)


class CommitUnknown(ObjectStoreError):
    """An append gave up while its entry may still be at `sequence`: neither success nor failure.

    The store stopped answering after a write whose outcome is unknown. `CommitLog.settle(error)`
    decides it for good once the store answers: it re-sends the same entry to the same number,
    so afterwards the commit either holds that number or provably never will.
    """

    def __init__(self, commit_id: str, sequence: int, data: bytes, cause: str | None = None) -> None:
        self.commit_id = commit_id
        self.sequence = sequence
        self.data = data
        self.cause = cause
        suffix = f" ({cause})" if cause else ""
        super().__init__(f"commit {commit_id} may or may not be entry {sequence} of the log{suffix}")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.commit_id, self.sequence, self.data, self.cause)


class LogForked(LogCorrupt):
    """Two histories of the log exist, or an append would have started one: never acknowledged.

    Raised when an entry does not name the one before it as this client read it, and when an
    append finds it landed where no other client will read it (at a number the retention had
    deleted, or in a hole); that entry is removed again before this is raised.
    """


class StoreInaccessible(ObjectStoreError):
    """The store refused the request as a whole: its bucket does not exist, or access is denied.

    Not about one object, so never reported as `NotFound`: a deleted bucket cannot pass for an
    empty one. Repeating the request does not help until someone fixes the store or the
    credentials; a write that raises this did not happen. `store` is the store's URL (without
    credentials), `bucket` the bucket (or directory) it names, `what` the request refused.
    """

    def __init__(self, store: str, bucket: str, what: str, reason: str) -> None:
        self.store = redact(store)
        self.bucket = bucket
        self.what = what
        self.reason = redact(reason)
        super().__init__(f"object store {self.store} refused {what}: {self.reason}")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.store, self.bucket, self.what, self.reason)
