"""`open_store(url)`: one string names a store, a directory or an S3 bucket and prefix.

Accepted forms:

- a directory path (`/srv/catalog`, `./catalog`) or `file:///srv/catalog`: a `LocalDirStore`;
- `s3://bucket/optional/prefix?endpoint_url=http://127.0.0.1:9000&region=us-east-1`: an
  `S3Store`. Query parameters: `endpoint_url`, `region`, `profile`, `addressing_style`
  (path, virtual or auto) and `page_size` (1..1000).

A URL that cannot be used raises `InvalidStoreURL` naming the part that is wrong. Credentials
in an `endpoint_url` (`http://user:password@host`) are passed to the store as given and shown
nowhere: `metafuse.objectstore.redact` puts `***` in their place in the store's `url` and in
every error message.

Owns the parsing of a store URL and the choice of backend. It sends no request and imports no boto3
itself (constructing an `S3Store` does), and knows nothing of the commit log or the catalog
(`log+file://` is the catalog's scheme, not this module's).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ._base import ObjectStore, check_key
from .errors import InvalidKey, InvalidStoreURL
from .local import LocalDirStore
from .s3 import S3Store

S3_PARAMETERS = ("endpoint_url", "region", "profile", "addressing_style", "page_size")
"""The query parameters an s3:// URL may carry."""

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")


def open_store(url: str) -> ObjectStore:
    """Open the store `url` names (see the module docstring); bad URLs raise `InvalidStoreURL`."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidStoreURL(str(url), "empty: give a directory, file:///dir or s3://bucket/prefix")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "s3":
        return _open_s3(url)
    if scheme == "file":
        return _open_file(url)
    if scheme:
        raise InvalidStoreURL(url, f"scheme {scheme!r} is not supported: use s3://, file:// or a path")
    return LocalDirStore(url)


def _open_file(url: str) -> ObjectStore:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise InvalidStoreURL(
            url, f"host {parts.netloc!r}: a file:// URL names a local directory (file:///dir)"
        )
    if parts.query or parts.fragment:
        raise InvalidStoreURL(url, "a file:// URL takes no query or fragment")
    if not parts.path:
        raise InvalidStoreURL(url, "no directory after file://")
    return LocalDirStore(parts.path)


def parse_s3_url(url: str) -> tuple[str, str, dict[str, Any]]:
    """Split an s3:// URL into bucket, prefix and the `S3Store` keyword arguments, checking each."""
    parts = urlsplit(url)
    bucket = parts.netloc
    if not bucket:
        raise InvalidStoreURL(url, "no bucket: write s3://bucket/prefix")
    if "@" in bucket or ":" in bucket:
        # Not echoed: what stands before the '@' may be a password.
        raise InvalidStoreURL(url, "the bucket name holds credentials or a port: write s3://bucket/prefix")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidStoreURL(
            url,
            f"bucket {bucket!r}: 3-63 lowercase letters, digits, '.' or '-', alphanumeric at both ends",
        )
    if parts.fragment:
        raise InvalidStoreURL(url, f"fragment #{parts.fragment}: an s3:// URL takes none")
    prefix = parts.path.strip("/")
    if prefix:
        try:
            check_key(prefix)
        except InvalidKey as exc:
            raise InvalidStoreURL(url, f"prefix {prefix!r}: {exc.rule}") from None
    options: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if name not in S3_PARAMETERS:
            raise InvalidStoreURL(url, f"parameter {name!r} is unknown: valid are {', '.join(S3_PARAMETERS)}")
        if name in options:
            raise InvalidStoreURL(url, f"parameter {name!r} is given twice")
        if not value:
            raise InvalidStoreURL(url, f"parameter {name!r} is empty")
        options[name] = _check_parameter(url, name, value)
    if parts.query and not options:
        raise InvalidStoreURL(url, f"query {parts.query!r}: expected name=value pairs joined by '&'")
    return bucket, prefix, options


def _check_parameter(url: str, name: str, value: str) -> Any:
    if name == "endpoint_url":
        endpoint = urlsplit(value)
        if endpoint.scheme not in ("http", "https") or not endpoint.hostname:
            raise InvalidStoreURL(url, f"endpoint_url {value!r}: expected http://host:port or https://host")
        try:
            endpoint.port  # noqa: B018 - parsing the port is the check
        except ValueError:
            raise InvalidStoreURL(url, f"endpoint_url {value!r}: the port is not in 0..65535") from None
        return value
    if name == "region":
        if not _REGION.match(value):
            raise InvalidStoreURL(url, f"region {value!r}: expected a region name such as us-east-1")
        return value
    if name == "addressing_style":
        if value not in ("path", "virtual", "auto"):
            raise InvalidStoreURL(url, f"addressing_style {value!r}: expected path, virtual or auto")
        return value
    if name == "page_size":
        if not value.isdigit() or not 1 <= int(value) <= 1000:
            raise InvalidStoreURL(url, f"page_size {value!r}: expected a whole number from 1 to 1000")
        return int(value)
    return value  # profile: any name boto3 knows


def _open_s3(url: str) -> ObjectStore:
    bucket, prefix, options = parse_s3_url(url)
    return S3Store(bucket, prefix, **options)
