"""Helpers for scenarios that need a catalog on an object store of their own.

Declares no scenario and writes no object itself. Of the catalog's private modules it imports only
`_logcommits`' URL scheme and test (`LOG_FILE_SCHEME`, `is_store_url`); stores are opened through
`objectstore`'s public `open_store`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..._logcommits import LOG_FILE_SCHEME, is_store_url
from ...objectstore import ObjectStore, open_store


def sibling_catalog(url: str, name: str) -> str:
    """The URL of a catalog called `name` under the same store location as `url`.

    `log+file:///dir` gives `log+file:///dir/name`; `s3://bucket/prefix?options` gives
    `s3://bucket/prefix/name?options`. The new catalog's objects live under their own prefix,
    which the catalog at `url` never lists.
    """
    if not is_store_url(url):
        raise ValueError(f"not a catalog on an object store: {url!r}")
    base, question, query = url.partition("?")
    return f"{base.rstrip('/')}/{name}{question}{query}"


def catalog_store(url: str) -> ObjectStore:
    """The object store a store catalog's `url` names, with keys relative to the catalog."""
    local = url.lower().startswith(LOG_FILE_SCHEME)
    return open_store(url[len("log+") :] if local else url)


def local_root(url: str) -> str | None:
    """The directory of a `log+file://` catalog URL (the root its `LocalDirStore` opens), else None."""
    if not url.lower().startswith(LOG_FILE_SCHEME):
        return None
    return urlsplit(url[len("log+") :]).path
