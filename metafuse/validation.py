"""MetaFuse's naming and size rules; each failure is a `ValidationError` naming the value and rule.

Owns these rules and their messages. Pure checks: it imports only `limits` and `errors`, keeps no
state, and knows nothing of records, SQL or the catalog.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Iterable

from . import limits
from .errors import ValidationError

_DATASET_NAME = re.compile(r"[A-Za-z0-9_.](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_.])?", re.ASCII)
_FIELD_NAME = re.compile(r"[A-Za-z0-9_]+", re.ASCII)
_TAG = re.compile(r"[A-Za-z0-9_:\-]+", re.ASCII)
_DOMAIN = re.compile(r"[A-Za-z0-9_\-]+", re.ASCII)


def _length(what: str, value: object, low: int, high: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(what, f"must be a string, not {type(value).__name__}", value)
    if not low <= len(value) <= high:
        raise ValidationError(what, f"must be {low}-{high} characters long, not {len(value)}", value)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(what, "must be valid Unicode text (no lone surrogates)", value) from None
    return value


def dataset_name(value: object, what: str = "dataset name") -> str:
    """Return `value` if it is a valid dataset name (1-255 of letters, digits, _ - . ; no edge -)."""
    name = _length(what, value, 1, limits.NAME_MAX)
    if not _DATASET_NAME.fullmatch(name):
        raise ValidationError(
            what,
            "use only letters, digits, '_', '-' and '.', and do not start or end with '-'",
            name,
        )
    return name


def field_name(value: object) -> str:
    """Return `value` if it is a valid field name (1-255 of letters, digits and '_')."""
    name = _length("field name", value, 1, limits.NAME_MAX)
    if not _FIELD_NAME.fullmatch(name):
        raise ValidationError("field name", "use only letters, digits and '_'", name)
    return name


def tag(value: object) -> str:
    """Return `value` if it is a valid tag (1-100 of letters, digits, '_', '-' and ':')."""
    text = _length("tag", value, 1, limits.TAG_MAX)
    if not _TAG.fullmatch(text):
        raise ValidationError("tag", "use only letters, digits, '_', '-' and ':'", text)
    return text


def domain(value: object) -> str:
    """Return `value` if it is a valid domain (1-100 of letters, digits, '_' and '-')."""
    text = _length("domain", value, 1, limits.DOMAIN_MAX)
    if not _DOMAIN.fullmatch(text):
        raise ValidationError("domain", "use only letters, digits, '_' and '-'", text)
    return text


def search_query(value: object) -> str:
    """Return `value` if it is a usable search query (1-500 characters, not only spaces)."""
    text = _length("search query", value, 1, limits.QUERY_MAX)
    if not text.strip():
        raise ValidationError("search query", "must contain something besides spaces", text)
    return text


def uri(value: object) -> str:
    """Return `value` if it is an acceptable URI; `file://` URIs may not contain '..' or NUL."""
    text = _length("uri", value, 1, limits.URI_MAX)
    if text.lower().startswith("file://"):
        # Checked after percent-decoding too: %2e%2e is '..' and %00 is NUL to whoever opens it.
        for form in (text, urllib.parse.unquote(text)):
            if "\x00" in form:
                raise ValidationError("uri", "a file:// URI may not contain a NUL byte", text)
            if ".." in form.split("/"):
                raise ValidationError("uri", "a file:// URI may not contain '..' segments", text)
    return text


def short_text(what: str, value: object, *, optional: bool = True) -> str | None:
    """Return `value` if it is None (when `optional`) or 1-255 characters of text."""
    if value is None and optional:
        return None
    return _length(what, value, 1, limits.SHORT_TEXT_MAX)


def description(what: str, value: object) -> str | None:
    """Return `value` if it is None or text of at most `limits.DESCRIPTION_MAX` characters."""
    if value is None:
        return None
    return _length(what, value, 0, limits.DESCRIPTION_MAX)


def count(what: str, value: object) -> int | None:
    """Return `value` if it is None or a non-negative integer (booleans are refused)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(what, f"must be a whole number, not {type(value).__name__}", value)
    if value < 0:
        raise ValidationError(what, "must not be negative", value)
    if value > limits.COUNT_MAX:
        raise ValidationError(what, f"must be at most {limits.COUNT_MAX} (2**63 - 1)", value)
    return value


def version(what: str, value: object) -> int:
    """Return `value` if it is a whole number >= 0 (an expected version is never optional)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(what, "must be a whole number >= 0", value)
    return value


def unique(what: str, values: Iterable[str]) -> None:
    """Raise if any value appears twice."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValidationError(what, "must not repeat a value", value)
        seen.add(value)


def at_most(what: str, items: tuple[object, ...], maximum: int) -> None:
    """Raise if `items` has more than `maximum` entries, naming the limit."""
    if len(items) > maximum:
        raise ValidationError(what, f"at most {maximum} allowed, got {len(items)}")


def positive_int(what: str, value: object, maximum: int) -> int:
    """Return `value` if it is an integer from 1 to `maximum`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValidationError(what, f"must be a whole number from 1 to {maximum}", value)
    return value


def seconds(what: str, value: object, maximum: float = 3600) -> float:
    """Return `value` as a float if it is a finite number of seconds from 0 to `maximum`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(what, "must be a finite number of seconds", value)
    if not 0 <= value <= maximum:
        raise ValidationError(what, f"must be from 0 to {maximum:g} seconds", value)
    return float(value)
