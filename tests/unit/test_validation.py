"""Tests for metafuse.validation: every naming and size rule, at and just beyond its bounds."""

from __future__ import annotations

from typing import Callable

import pytest

from metafuse import limits, validation
from metafuse.errors import ValidationError

VALID_DATASET_NAMES = [
    "a",
    "Z",
    "9",
    "_",
    ".",
    "a" * limits.NAME_MAX,
    "sales.orders",
    "sales-orders",
    "a-b_c.d",
    "_private",
    ".hidden",
    "trailing.",
    "a--b",
]
INVALID_DATASET_NAMES: list[object] = [
    "",
    "a" * (limits.NAME_MAX + 1),
    "-a",
    "a-",
    "-",
    "a b",
    "a/b",
    "a:b",
    "caf\u00e9",
    "a\n",
    "a\x00b",
    "\uff41",  # fullwidth "a": a letter, but not an ASCII one
    5,
    None,
    b"abc",
]


@pytest.mark.parametrize("name", VALID_DATASET_NAMES)
def test_dataset_name_accepts(name: str) -> None:
    assert validation.dataset_name(name) == name


@pytest.mark.parametrize("name", INVALID_DATASET_NAMES)
def test_dataset_name_refuses(name: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.dataset_name(name)
    assert caught.value.what == "dataset name"


def test_dataset_name_error_names_the_argument_it_checks() -> None:
    with pytest.raises(ValidationError, match="invalid after"):
        validation.dataset_name("-x", "after")


def test_dataset_name_length_error_says_the_bounds() -> None:
    with pytest.raises(ValidationError, match=f"1-{limits.NAME_MAX} characters long, not 256"):
        validation.dataset_name("a" * 256)


@pytest.mark.parametrize("name", ["a", "_", "A1_b", "x" * limits.NAME_MAX, "0"])
def test_field_name_accepts(name: str) -> None:
    assert validation.field_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "x" * (limits.NAME_MAX + 1), "a-b", "a.b", "a b", "caf\u00e9", "a\n", 1, None]
)
def test_field_name_refuses(name: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.field_name(name)
    assert caught.value.what == "field name"


@pytest.mark.parametrize("text", ["a", "pii", "team:data", "a-b_c", "-", ":", "x" * limits.TAG_MAX])
def test_tag_accepts(text: str) -> None:
    assert validation.tag(text) == text


@pytest.mark.parametrize("text", ["", "x" * (limits.TAG_MAX + 1), "a b", "a.b", "a/b", "caf\u00e9", 3])
def test_tag_refuses(text: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.tag(text)
    assert caught.value.what == "tag"


@pytest.mark.parametrize("text", ["a", "sales-eu", "a_b", "-", "x" * limits.DOMAIN_MAX])
def test_domain_accepts(text: str) -> None:
    assert validation.domain(text) == text


@pytest.mark.parametrize("text", ["", "x" * (limits.DOMAIN_MAX + 1), "a:b", "a.b", "a b", "caf\u00e9", None])
def test_domain_refuses(text: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.domain(text)
    assert caught.value.what == "domain"


@pytest.mark.parametrize("text", ["x", "x" * limits.QUERY_MAX, " x ", '"unbalanced', "caf\u00e9 *"])
def test_search_query_accepts(text: str) -> None:
    assert validation.search_query(text) == text


@pytest.mark.parametrize("text", ["", "x" * (limits.QUERY_MAX + 1), " ", "\t\n ", 7])
def test_search_query_refuses(text: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.search_query(text)
    assert caught.value.what == "search query"


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket/key",
        "file:///data/orders.parquet",
        "file:///data/a..b/c",  # '..' inside a segment is not a parent reference
        "file:///data/.../c",
        "file:///data/./c",
        "s3://bucket/../key",  # the '..' rule is for file:// only
        "x" * limits.URI_MAX,
        "gs://b/\u00e9\U0001f600",
    ],
)
def test_uri_accepts(uri: str) -> None:
    assert validation.uri(uri) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "x" * (limits.URI_MAX + 1),
        "file:///data/../etc/passwd",
        "file://../etc",
        "file:///data/..",
        "FILE:///data/../etc",
        "File:///data/x/../../y",
        "file:///data/x\x00y",
        None,
    ],
)
def test_uri_refuses(uri: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.uri(uri)
    assert caught.value.what == "uri"


@pytest.mark.parametrize(
    "uri",
    [
        "file:///data/%2e%2e/etc/passwd",
        "file:///data/%2E%2E/etc/passwd",
        "file:///data/.%2e/etc/passwd",
        "file:///data/x%00y",
    ],
)
def test_uri_refuses_percent_encoded_parent_segments_and_nul(uri: str) -> None:
    # RFC 3986 6.2.2.2: %2E is '.', so "%2e%2e" is a '..' segment once decoded (as url2pathname does).
    with pytest.raises(ValidationError):
        validation.uri(uri)


def test_uri_errors_name_the_rule() -> None:
    with pytest.raises(ValidationError, match=r"'\.\.' segments"):
        validation.uri("file:///a/../b")
    with pytest.raises(ValidationError, match="NUL"):
        validation.uri("file:///a\x00")


def test_short_text_bounds() -> None:
    assert validation.short_text("owner", None) is None
    assert validation.short_text("owner", "x" * limits.SHORT_TEXT_MAX) == "x" * limits.SHORT_TEXT_MAX
    with pytest.raises(ValidationError, match="invalid owner"):
        validation.short_text("owner", "x" * (limits.SHORT_TEXT_MAX + 1))
    with pytest.raises(ValidationError):
        validation.short_text("owner", "")
    with pytest.raises(ValidationError, match="must be a string"):
        validation.short_text("data type", None, optional=False)


def test_description_bounds() -> None:
    assert validation.description("description", None) is None
    assert validation.description("description", "") == ""
    longest = "x" * limits.DESCRIPTION_MAX
    assert validation.description("description", longest) == longest
    with pytest.raises(ValidationError, match=str(limits.DESCRIPTION_MAX)):
        validation.description("description", longest + "x")
    with pytest.raises(ValidationError):
        validation.description("description", 12)


@pytest.mark.parametrize("value", [None, 0, 1, 2**62])
def test_count_accepts(value: int | None) -> None:
    assert validation.count("row_count", value) == value


@pytest.mark.parametrize("value", [-1, True, False, 1.0, "1"])
def test_count_refuses(value: object) -> None:
    with pytest.raises(ValidationError, match="invalid row_count"):
        validation.count("row_count", value)


def test_unique_names_the_repeated_value() -> None:
    validation.unique("tags", ["a", "b"])
    with pytest.raises(ValidationError) as caught:
        validation.unique("tags", ["a", "b", "a"])
    assert caught.value.value == "a"


def test_at_most_names_the_limit() -> None:
    validation.at_most("tags", (1, 2), 2)
    with pytest.raises(ValidationError, match="at most 2 allowed, got 3"):
        validation.at_most("tags", (1, 2, 3), 2)


@pytest.mark.parametrize("value", [1, 50, 100])
def test_positive_int_accepts(value: int) -> None:
    assert validation.positive_int("limit", value, 100) == value


@pytest.mark.parametrize("value", [0, -1, 101, True, 1.5, "5", None])
def test_positive_int_refuses(value: object) -> None:
    with pytest.raises(ValidationError, match="from 1 to 100"):
        validation.positive_int("limit", value, 100)


CHECKS: list[Callable[[object], object]] = [
    validation.dataset_name,
    validation.field_name,
    validation.tag,
    validation.domain,
    validation.search_query,
    validation.uri,
]


@pytest.mark.parametrize("check", CHECKS)
def test_every_error_message_is_one_line(check: Callable[[object], object]) -> None:
    with pytest.raises(ValidationError) as caught:
        check("\n" * 5000)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "check",
    [
        lambda v: validation.short_text("owner", v),
        lambda v: validation.description("description", v),
        validation.uri,
        validation.search_query,
    ],
)
def test_text_that_is_not_valid_unicode_is_refused(check: Callable[[object], object]) -> None:
    # json.loads('"\\ud800"') makes such a string; SQLite cannot store it as UTF-8.
    with pytest.raises(ValidationError, match="surrogate"):
        check("ok \ud800 then")
    assert check("ok \U0001f600 then") == "ok \U0001f600 then"


@pytest.mark.parametrize("value", [0, 0.0, 1.5, 3600])
def test_seconds_accepts_finite_numbers_within_the_bound(value: float) -> None:
    assert validation.seconds("delay", value) == float(value)
    assert isinstance(validation.seconds("delay", value), float)


@pytest.mark.parametrize("value", [-0.001, 3600.001, float("inf"), float("nan"), True, "1", None])
def test_seconds_refuses_everything_else_naming_the_setting(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.seconds("delay", value)
    assert caught.value.what == "delay"
    assert "\n" not in str(caught.value)


def test_seconds_takes_its_upper_bound_from_the_caller() -> None:
    assert validation.seconds("delay", 7200, 86400) == 7200.0
    with pytest.raises(ValidationError, match="from 0 to 60 seconds"):
        validation.seconds("delay", 61, 60)
