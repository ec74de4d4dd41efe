"""Where the catalog's bytes can live: a narrow object-store seam and a commit log on top of it.

- `ObjectStore`: get (bytes and tag), put with a mode (`CREATE`, `OVERWRITE`, `update(tag)`),
  head, list, list_meta, delete. Backends: `LocalDirStore` (a directory) and `S3Store` (in
  `metafuse.objectstore.s3`; needs the `metafuse[s3]` extra). `open_store(url)` picks one.
- `CommitLog`: commits as immutable, sequentially numbered objects created only if absent.
- `redact(text)`: text with the credentials of every URL in it replaced by `***`.

Standard library only, except `S3Store`, which imports boto3 when it is constructed.
"""

from __future__ import annotations

from ._base import CREATE, OVERWRITE, GetResult, ObjectMeta, ObjectStore, PutMode, check_key, update
from ._entries import AppendResult, LogEntry
from ._redact import redact
from .errors import (
    AlreadyExists,
    AmbiguousWrite,
    AppendContended,
    CommitUnknown,
    InvalidKey,
    InvalidStoreURL,
    LogCorrupt,
    LogForked,
    LogTruncated,
    MissingDependency,
    NotFound,
    ObjectStoreError,
    PreconditionFailed,
    StoreInaccessible,
    StoreUnavailable,
)
from .local import LocalDirStore
from .log import CommitLog
from .url import open_store

__all__ = [
    "CREATE",
    "OVERWRITE",
    "AlreadyExists",
    "AmbiguousWrite",
    "AppendContended",
    "AppendResult",
    "CommitLog",
    "CommitUnknown",
    "GetResult",
    "InvalidKey",
    "InvalidStoreURL",
    "LocalDirStore",
    "LogCorrupt",
    "LogEntry",
    "LogForked",
    "LogTruncated",
    "MissingDependency",
    "NotFound",
    "ObjectMeta",
    "ObjectStore",
    "ObjectStoreError",
    "PreconditionFailed",
    "PutMode",
    "StoreInaccessible",
    "StoreUnavailable",
    "check_key",
    "open_store",
    "redact",
    "update",
]
