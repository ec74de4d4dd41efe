"""`catalog.json`, the marker that makes a store prefix a catalog: claimed once, checked on open.

Owns the marker's format and its one promise: created only if absent (`If-None-Match: *`) when a
catalog is created, so of two clients creating the same catalog one writes it and both adopt
what it holds; read and checked by every client that opens the catalog, which adopts the
retention recorded in it. It may not touch the log, the snapshots or the replica.
"""

from __future__ import annotations

import json
import time

from .errors import CatalogFileError, ValidationError
from .objectstore import CREATE, AlreadyExists, AmbiguousWrite, CommitLog, NotFound, StoreUnavailable

MARKER_KEY = "catalog.json"
"""Created with `If-None-Match: *` when the catalog is created; names the format."""
FORMAT = "metafuse-log/1"
RETENTION = 86400
"""Default retention of a new catalog, in seconds: a day (see `Snapshots.expire`)."""
MAX_RETENTION = 10 * 365 * 86400
"""The longest retention a catalog accepts, in seconds: ten years."""


def claim_or_check(url: str, log: CommitLog, *, create: bool, retention: float | None) -> float | None:
    """Read `catalog.json` of the catalog at `url` (whose log is `log`), or create it (if
    `create` and absent); return the retention it records (None: keep everything).

    One GET for an existing catalog. A transient fault (a 5xx, a dropped reply) is retried
    within the log's budget, and an ambiguous create is settled by reading the marker back.
    Raises `CatalogFileError` naming `url` when the marker is absent (and not to be created)
    or is not a catalog's, and `ValidationError` when `retention` is given and differs.
    """
    data = _read(log)
    if data is None:
        if not create:
            raise CatalogFileError(url, f"does not exist (no {MARKER_KEY}); `metafuse init` creates one")
        chosen = RETENTION if retention is None else retention
        written = int(chosen) if float(chosen).is_integer() else chosen  # 3600, not 3600.0
        marker = (json.dumps({"format": FORMAT, "retention_seconds": written}) + "\n").encode()
        data = _create(url, log, marker)
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CatalogFileError(url, f"is not a MetaFuse catalog ({MARKER_KEY} is not JSON)") from None
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise CatalogFileError(url, f"is not a MetaFuse catalog ({MARKER_KEY} names another format)")
    kept = value.get("retention_seconds")
    if kept is not None and (
        isinstance(kept, bool) or not isinstance(kept, (int, float)) or not 0 <= kept <= MAX_RETENTION
    ):
        raise CatalogFileError(url, f"{MARKER_KEY} has an invalid retention_seconds: {kept!r}")
    kept = None if kept is None else float(kept)
    if retention is not None and retention != kept:
        held = "keeps everything" if kept is None else f"keeps {kept:g} s"
        raise ValidationError(
            "retention", f"is fixed when the catalog is created (this one {held})", retention
        )
    return kept


def _read(log: CommitLog) -> bytes | None:
    """The bytes of `catalog.json`, or None if it is absent (store faults retried)."""

    def get() -> bytes | None:
        try:
            return log.store.get(MARKER_KEY).data
        except NotFound:
            return None

    return log._with_store(get)


def _create(url: str, log: CommitLog, marker: bytes) -> bytes:
    """Create `catalog.json` as `marker` unless it exists; return what it then holds."""
    for attempt in range(1, log.max_unavailable + 2):
        try:
            log.store.put(MARKER_KEY, marker, CREATE)
            return marker
        except AlreadyExists:
            break
        except (AmbiguousWrite, StoreUnavailable):
            if attempt > log.max_unavailable:
                raise
            found = _read(log)  # an ambiguous create may have landed
            if found is not None:
                return found
            time.sleep(min(1.0, 0.01 * 2**attempt))
    found = _read(log)
    if found is None:
        raise CatalogFileError(url, f"{MARKER_KEY} was reported to exist, then absent")
    return found
