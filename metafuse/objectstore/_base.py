"""The narrow interface every backend implements: get, put with a mode, head, list, list_meta, delete.

Owns `ObjectStore`, the put modes (`CREATE`, `OVERWRITE`, `update`), `GetResult`, `ObjectMeta` and
the key check every backend applies. It imports only the package's `errors` and may not import a
backend, the commit log or anything of the catalog: they build on it.
"""

from __future__ import annotations

import abc
import builtins
from dataclasses import dataclass
from typing import NamedTuple

from .errors import InvalidKey

MAX_KEY_BYTES = 1024
"""S3's limit on a key, applied to every backend so a key valid on one is valid on all."""


@dataclass(frozen=True)
class PutMode:
    """How `ObjectStore.put` may treat an existing object: use `CREATE`, `OVERWRITE` or `update(tag)`."""

    kind: str
    tag: str | None = None

    def __str__(self) -> str:
        return self.kind if self.tag is None else f"{self.kind}({self.tag})"


CREATE = PutMode("create")
"""Write only if no object has the key (S3 `If-None-Match: *`); else `AlreadyExists`."""

OVERWRITE = PutMode("overwrite")
"""Write unconditionally, replacing whatever is there."""


def update(tag: str) -> PutMode:
    """Write only if the object still has `tag` (S3 `If-Match`); else `PreconditionFailed` or `NotFound`."""
    if not tag:
        raise ValueError("update mode needs the tag the object is expected to have")
    return PutMode("update", tag)


class GetResult(NamedTuple):
    """An object's bytes and the tag of exactly those bytes (unpacks as `data, tag`)."""

    data: bytes
    tag: str


class ObjectMeta(NamedTuple):
    """What `head` and `list_meta` return: the key, its size in bytes, its tag and when it was written.

    The tag is the one `get` returns with the same version's bytes.
    """

    key: str
    size: int
    tag: str
    modified: float
    """When the object was last written, in POSIX seconds by the store's clock (S3 `Last-Modified`)."""


def check_key(key: str) -> str:
    """Return `key` if every backend can store it, else raise `InvalidKey` naming the rule.

    Keys are '/'-separated, relative, at most 1024 UTF-8 bytes; no component is empty, and none
    starts with '.' (the local backend keeps its own files under such names).
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey(str(key), "a key is a non-empty string")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidKey(key, f"a key is at most {MAX_KEY_BYTES} UTF-8 bytes")
    if "\x00" in key or "\\" in key:
        raise InvalidKey(key, "a key contains no NUL and no backslash")
    for part in key.split("/"):
        if not part:
            raise InvalidKey(key, "no empty component (leading, trailing or doubled '/')")
        if part.startswith("."):
            raise InvalidKey(key, "no component starts with '.'")
    return key


class ObjectStore(abc.ABC):
    """Where the catalog's bytes live. Every method is safe to call from many threads at once.

    Guarantees every backend gives (the contract suite in tests/s3 checks them):
    - `put(key, data, CREATE)` succeeds for exactly one of any number of concurrent callers;
      the rest get `AlreadyExists`. `put(key, data, update(tag))` likewise succeeds for at most
      one caller holding `tag`. Both are decided atomically by the store, not by a read first.
    - A successful `put` is visible to every later `get`, `head` and `list` from any client.
    - `get` returns the bytes and the tag of those same bytes; readers never see a partial object.
    - A tag names one version of an object: `get`, `head`, `list_meta` and the `put` that wrote
      it give that version the same tag, and a `put` that changes the bytes gives a new one.
      Equal bytes may share a tag (S3's ETag of a simple upload is their MD5; the local store
      gives every put a new tag), so do not count on `update` to tell A->B->A from no change:
      put a unique id in the data if that matters.
    - `list` and `list_meta` are each a snapshot: every key they return existed at one moment
      during the call, and every key that existed throughout it is returned (S3 LIST is strongly
      consistent; the local store lists under a shared lock that every write excludes).
    """

    url: str
    """Where the store lives, as `open_store` accepts it, except that credentials read `***`."""

    @abc.abstractmethod
    def get(self, key: str) -> GetResult:
        """The object's bytes and tag; `NotFound` if absent, `StoreUnavailable` if unreachable."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes, mode: PutMode) -> str:
        """Write `data` under `key` as `mode` allows and return the new tag.

        Raises `AlreadyExists` (create), `PreconditionFailed` or `NotFound` (update),
        `StoreUnavailable` when the write certainly did not happen, `AmbiguousWrite` when it may have.
        """

    @abc.abstractmethod
    def head(self, key: str) -> ObjectMeta:
        """The object's size, tag and time without reading its bytes; `NotFound` if absent.

        On S3 a HEAD of a key in a bucket that does not exist is answered with a bare 404, so it
        raises `NotFound` there too; `get`, `put`, `list`, `list_meta` and `delete` raise
        `StoreInaccessible` for a missing bucket. Access denied is `StoreInaccessible` from all.
        """

    @abc.abstractmethod
    def list(self, prefix: str = "", start_after: str = "", limit: int | None = None) -> builtins.list[str]:
        """Every key that starts with `prefix` and sorts after `start_after`, in byte order.

        Pages through the backend's listing internally; the result is one sorted list, of at
        most `limit` keys (the first ones) when a limit is given.
        """

    @abc.abstractmethod
    def list_meta(
        self, prefix: str = "", start_after: str = "", limit: int | None = None
    ) -> builtins.list[ObjectMeta]:
        """What `list` returns, each key with its `ObjectMeta`, from the same requests (no HEADs).

        One LIST request per page on S3 (ListObjectsV2 returns each object's size, ETag and
        time); the local store stats only the keys it returns. Tags equal what `get` and `head`
        return for the same version. `modified` may differ from `head`'s by under a second: S3
        lists times in milliseconds and answers HEAD in whole seconds.
        """

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object if present; deleting an absent key is not an error (as on S3)."""

    def close(self) -> None:  # noqa: B027 - a no-op default that backends may override
        """Release connections and file handles; the store must not be used afterwards."""

    def __enter__(self) -> ObjectStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
