"""`S3Store`: the object-store contract on Amazon S3 or an S3-compatible server (MinIO, moto).

boto3 is imported when a store is constructed, never at import time, so `metafuse` stays
standard-library only; without it the constructor raises `MissingDependency`, whose message says
`pip install 'metafuse[s3]'`.

Conditional writes use PutObject's `IfNoneMatch="*"` (create) and `IfMatch=<etag>` (update);
S3 answers 412 when the precondition fails and 409 `ConditionalRequestConflict` when a concurrent
conditional write to the key got in the way, which is retried here (the write did not happen).

botocore's own retries are off (`total_max_attempts=1`): a retried conditional PUT whose first attempt
landed would come back 412 and be mistaken for a lost race. Instead, reads (GET, HEAD, LIST) and
DELETE, which are safe to repeat, are retried here with jittered backoff; a PUT is repeated only
when it certainly did not reach the store (connection refused, connect timeout, 409), and any
other failure after sending (read timeout, dropped connection, 5xx) raises `AmbiguousWrite`.

A missing bucket (`NoSuchBucket`) and refused credentials (401, 403) raise `StoreInaccessible`,
never `NotFound`, from every request that tells them apart: GET, PUT, LIST and DELETE carry S3's
error code. A HEAD is answered with a bare status, and a HEAD of a key in a missing bucket gets
the same 404 as a missing key, so `head` raises `NotFound` for both (403 it does tell).

Credentials in `endpoint_url` (`http://user:password@host`) are used as given but redacted
(`***`) in `url`, in the repr and in every error message, botocore's included.
"""

from __future__ import annotations

import builtins
import random
import threading
import time
from functools import partial
from typing import Any, Callable, TypeVar

from ._base import GetResult, ObjectMeta, ObjectStore, PutMode, check_key
from ._redact import redact
from .errors import (
    AlreadyExists,
    AmbiguousWrite,
    MissingDependency,
    NotFound,
    ObjectStoreError,
    PreconditionFailed,
    StoreInaccessible,
    StoreUnavailable,
)

T = TypeVar("T")

S3_INSTALL = "pip install 'metafuse[s3]'"
"""What to run when boto3 is missing."""

DEFAULT_ATTEMPTS = 6
"""Tries for a request that is safe to repeat, before `StoreUnavailable` (backoff 10 ms .. 1 s)."""

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def _load_boto3() -> tuple[Any, Any, Any]:
    try:
        import boto3  # noqa: PLC0415 - optional extra, imported only when an S3 store is made
        import botocore.config  # noqa: PLC0415
        import botocore.exceptions  # noqa: PLC0415
    except ImportError as exc:
        raise MissingDependency("the S3 object store", "boto3", S3_INSTALL) from exc
    return boto3, botocore.config, botocore.exceptions


class S3Store(ObjectStore):
    """An `ObjectStore` on one bucket, every key under `prefix`; thread-safe (one boto3 client).

    `endpoint_url` points at an S3-compatible server (path-style addressing is then the default);
    `page_size` is the LIST page (1000 is S3's maximum; tests use small pages to exercise paging);
    `attempts` bounds the retries of repeatable requests. Credentials come from boto3's usual
    chain (environment, profile, instance role); `profile` picks a named profile. Credentials in
    `endpoint_url` never appear in `url` or in an error message.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        addressing_style: str | None = None,
        page_size: int = 1000,
        attempts: int = DEFAULT_ATTEMPTS,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_connections: int = 32,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        boto3, config_module, exceptions = _load_boto3()
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        if prefix:
            check_key(prefix[:-1])
        if not 1 <= page_size <= 1000:
            raise ValueError(f"page_size must be 1..1000, got {page_size}")
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        self.bucket = bucket
        self.prefix = prefix
        self.page_size = page_size
        self.attempts = attempts
        query = []
        if endpoint_url:
            query.append(f"endpoint_url={redact(endpoint_url)}")
        if region:
            query.append(f"region={region}")
        self.url = f"s3://{bucket}/{prefix}" + ("?" + "&".join(query) if query else "")
        self._exc = exceptions
        self._sleep = sleep
        self._rng = random.Random()
        self._rng_lock = threading.Lock()
        config = config_module.Config(
            # total_max_attempts counts the first try; the older "max_attempts" counts retries,
            # so max_attempts=1 would still resend a PUT once.
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_connections,
            s3={"addressing_style": addressing_style or ("path" if endpoint_url else "auto")},
            # Plain Content-MD5-free PUTs: S3-compatible servers differ on the newer checksums.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()
        self._client: Any = session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)

    def get(self, key: str) -> GetResult:
        name = self._name(key)

        def call() -> GetResult:
            response = self._client.get_object(Bucket=self.bucket, Key=name)
            data: bytes = response["Body"].read()
            return GetResult(data, str(response["ETag"]))

        return self._repeatable(f"get {key}", key, call)

    def head(self, key: str) -> ObjectMeta:
        name = self._name(key)

        def call() -> ObjectMeta:
            response = self._client.head_object(Bucket=self.bucket, Key=name)
            modified = response["LastModified"].timestamp()
            return ObjectMeta(key, int(response["ContentLength"]), str(response["ETag"]), modified)

        return self._repeatable(f"head {key}", key, call)

    def list(self, prefix: str = "", start_after: str = "", limit: int | None = None) -> builtins.list[str]:
        return [str(item["Key"])[len(self.prefix) :] for item in self._contents(prefix, start_after, limit)]

    def list_meta(
        self, prefix: str = "", start_after: str = "", limit: int | None = None
    ) -> builtins.list[ObjectMeta]:
        return [
            ObjectMeta(
                str(item["Key"])[len(self.prefix) :],
                int(item["Size"]),
                str(item["ETag"]),
                item["LastModified"].timestamp(),
            )
            for item in self._contents(prefix, start_after, limit)
        ]

    def _contents(self, prefix: str, start_after: str, limit: int | None) -> builtins.list[dict[str, Any]]:
        """ListObjectsV2's `Contents` items for the keys `list` describes, every page joined."""
        items: builtins.list[dict[str, Any]] = []
        token: str | None = None
        while True:
            wanted = self.page_size if limit is None else max(0, min(self.page_size, limit - len(items)))
            if wanted == 0:
                return items
            args: dict[str, Any] = {
                "Bucket": self.bucket,
                "Prefix": self.prefix + prefix,
                "MaxKeys": wanted,
            }
            if token:
                args["ContinuationToken"] = token
            elif start_after:
                args["StartAfter"] = self.prefix + start_after
            page = self._repeatable(f"list {prefix!r}", prefix, partial(self._list_page, args))
            items.extend(page.get("Contents", ()))
            if not page.get("IsTruncated"):
                return items
            token = str(page["NextContinuationToken"])

    def delete(self, key: str) -> None:
        name = self._name(key)
        self._repeatable(
            f"delete {key}", key, partial(self._client.delete_object, Bucket=self.bucket, Key=name)
        )

    def put(self, key: str, data: bytes, mode: PutMode) -> str:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._name(key), "Body": data}
        if mode.kind == "create":
            args["IfNoneMatch"] = "*"
        elif mode.kind == "update":
            args["IfMatch"] = mode.tag
        elif mode.kind != "overwrite":
            raise ValueError(f"unknown put mode {mode.kind!r}: use CREATE, OVERWRITE or update(tag)")
        what = f"put {key}"
        cause = ""
        for attempt in range(1, self.attempts + 1):
            try:
                response = self._client.put_object(**args)
                return str(response["ETag"])
            except self._exc.ClientError as exc:
                code, status = _error_code(exc)
                self._raise_if_inaccessible(what, code, status)
                if status == 412 or code == "PreconditionFailed":
                    if mode.kind == "create":
                        raise AlreadyExists(key) from None
                    raise PreconditionFailed(key, str(mode.tag)) from None
                if mode.kind == "update" and (status == 404 or code in _NOT_FOUND_CODES):
                    raise NotFound(key) from None
                if status == 409:
                    # ConditionalRequestConflict: the store refused; the write did not happen.
                    cause = f"{code} (HTTP 409)"
                elif status >= 500:
                    raise AmbiguousWrite(key, str(mode), f"{code} (HTTP {status})") from exc
                else:
                    raise self._client_error(what, exc, code, status) from exc
            except (self._exc.EndpointConnectionError, self._exc.ConnectTimeoutError) as exc:
                cause = f"not sent: {_describe(exc)}"  # never reached the store: safe to send again
            except self._exc.BotoCoreError as exc:
                self._raise_if_misconfigured(exc)
                raise AmbiguousWrite(key, str(mode), _describe(exc)) from None
            if attempt < self.attempts:
                self._backoff(attempt)
        raise StoreUnavailable(what, cause)

    def close(self) -> None:
        self._client.close()

    def _list_page(self, args: dict[str, Any]) -> dict[str, Any]:
        page: dict[str, Any] = self._client.list_objects_v2(**args)
        return page

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _repeatable(self, what: str, key: str, call: Callable[[], T]) -> T:
        """Run a request that is safe to repeat, retrying transport errors, 5xx and 409."""
        cause = ""
        for attempt in range(1, self.attempts + 1):
            try:
                return call()
            except self._exc.ClientError as exc:
                code, status = _error_code(exc)
                self._raise_if_inaccessible(what, code, status)
                if code in _NOT_FOUND_CODES or status == 404:
                    raise NotFound(key) from None
                if status < 500 and status not in (409, 429):
                    raise self._client_error(what, exc, code, status) from exc
                cause = f"{code} (HTTP {status})"
            except self._exc.BotoCoreError as exc:
                self._raise_if_misconfigured(exc)
                cause = _describe(exc)
            if attempt < self.attempts:
                self._backoff(attempt)
        raise StoreUnavailable(what, f"{cause} (after {self.attempts} attempts)")

    def _raise_if_misconfigured(self, exc: Any) -> None:
        if isinstance(exc, (self._exc.NoCredentialsError, self._exc.NoRegionError)):
            raise ObjectStoreError(f"{self.url}: {redact(str(exc))}") from None

    def _raise_if_inaccessible(self, what: str, code: str, status: int) -> None:
        """Raise `StoreInaccessible` for a missing bucket or refused credentials, whatever the key."""
        if code == "NoSuchBucket":
            reason = f"bucket {self.bucket!r} does not exist (NoSuchBucket)"
        elif status in (401, 403):
            reason = f"access to bucket {self.bucket!r} denied ({code}, HTTP {status}): check credentials"
        else:
            return
        raise StoreInaccessible(self.url, self.bucket, what, reason)

    def _client_error(self, what: str, exc: Any, code: str, status: int) -> ObjectStoreError:
        return ObjectStoreError(f"{self.url}: {what} failed: {code} (HTTP {status}): {redact(str(exc))}")

    def _backoff(self, attempt: int) -> None:
        with self._rng_lock:
            jitter = self._rng.random()
        self._sleep(min(1.0, 0.01 * 2 ** (attempt - 1)) * (0.5 + jitter))


def _describe(exc: BaseException) -> str:
    """An exception's type and message with credentials redacted (botocore's name the endpoint)."""
    return redact(f"{type(exc).__name__}: {exc}")


def _error_code(exc: Any) -> tuple[str, int]:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", "Unknown"))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status
