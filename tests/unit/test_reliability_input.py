"""Reliability: every bad value is a `ValidationError` naming the rule, and nothing is written.

Each rule is tried at its bounds from both sides: the last valid value is stored and read back
verbatim, the first invalid one is refused with the catalog's version unchanged.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metafuse import Catalog, Dataset, Field, ValidationError, limits

from .reliability_helpers import make

SQLITE_INT_MAX = 2**63 - 1
"""Largest integer SQLite stores; a count above it cannot be written and must be refused."""
NON_ASCII = ["é", "ß", "名", "🙂", "\u200b", "\uff21", "\u0661", "\u00a0"]
"""Letters, digits and spaces outside ASCII, which look allowed but are not."""
CONTROL = ["\x00", "\t", "\n", "\r", "\x7f"]


def _forbidden(allowed: str) -> list[str]:
    return [c for c in string.punctuation + " " if c not in allowed] + CONTROL + NON_ASCII


Builder = Callable[[Any], Dataset]

BUILDERS: dict[str, Builder] = {
    "dataset name": make,
    "uri": lambda v: make(uri=v),
    "format": lambda v: make(format=v),
    "description": lambda v: make(description=v),
    "owner": lambda v: make(owner=v),
    "domain": lambda v: make(domain=v),
    "tag": lambda v: make(tags=(v,)),
    "field name": lambda v: make(fields=(Field(v, "int"),)),
    "field data_type": lambda v: make(fields=(Field("x", v),)),
    "field description": lambda v: make(fields=(Field("x", "int", description=v),)),
    "upstream dataset name": lambda v: make(upstream=(v,)),
    "size_bytes": lambda v: make(size_bytes=v),
    "row_count": lambda v: make(row_count=v),
    "tags": lambda v: make(tags=tuple(f"t{i}" for i in range(v))),
    "fields": lambda v: make(fields=tuple(Field(f"f{i}", "int") for i in range(v))),
    "upstream": lambda v: make(upstream=tuple(f"up.{i}" for i in range(v))),
}
"""How to build a dataset whose rule `what` sees the value (for counts: how many entries)."""


def _valid(what: str, value: Any, label: str) -> Any:
    return pytest.param(what, value, id=f"{what}-{label}")


VALID_AT_BOUNDS = [
    _valid("dataset name", "a", "1-char"),
    _valid("dataset name", "a" * limits.NAME_MAX, "max"),
    _valid("dataset name", "a-b", "inner-hyphen"),
    _valid("dataset name", ".hidden.", "dots-at-edges"),
    _valid("dataset name", "_", "underscore"),
    _valid("uri", "s", "1-char"),
    _valid("uri", "s" * limits.URI_MAX, "max"),
    _valid("format", "p" * limits.SHORT_TEXT_MAX, "max"),
    _valid("owner", "o" * limits.SHORT_TEXT_MAX, "max"),
    _valid("description", "", "empty"),
    _valid("description", "d" * limits.DESCRIPTION_MAX, "max"),
    _valid("domain", "d" * limits.DOMAIN_MAX, "max"),
    _valid("domain", "a-b_c", "punctuation"),
    _valid("tag", "t" * limits.TAG_MAX, "max"),
    _valid("tag", "a:b-c_d", "punctuation"),
    _valid("field name", "f" * limits.NAME_MAX, "max"),
    _valid("field data_type", "t" * limits.SHORT_TEXT_MAX, "max"),
    _valid("field description", "d" * limits.DESCRIPTION_MAX, "max"),
    _valid("upstream dataset name", "u" * limits.NAME_MAX, "max"),
    _valid("size_bytes", 0, "zero"),
    _valid("size_bytes", SQLITE_INT_MAX, "sqlite-max"),
    _valid("row_count", SQLITE_INT_MAX, "sqlite-max"),
    _valid("tags", limits.TAGS_MAX, "max"),
    _valid("fields", limits.FIELDS_MAX, "max"),
    _valid("upstream", limits.UPSTREAM_MAX, "max"),
]


def _invalid(what: str, value: Any, label: str, *words: str) -> Any:
    return pytest.param(what, value, words, id=f"{what}-{label}")


INVALID_AT_BOUNDS = [
    _invalid("dataset name", "", "empty", "1-255"),
    _invalid("dataset name", "a" * (limits.NAME_MAX + 1), "max+1", "255"),
    _invalid("dataset name", "-a", "leading-hyphen", "'-'"),
    _invalid("dataset name", "a-", "trailing-hyphen", "'-'"),
    _invalid("dataset name", "-", "only-hyphen", "'-'"),
    _invalid("dataset name", None, "none", "string"),
    _invalid("dataset name", 7, "int", "string"),
    *(_invalid("dataset name", f"a{c}b", f"char-{ord(c):04x}", "letters, digits") for c in _forbidden("_.-")),
    _invalid("uri", "", "empty", "1-4096"),
    _invalid("uri", "s" * (limits.URI_MAX + 1), "max+1", "4096"),
    _invalid("uri", "file:///data/../etc/passwd", "dotdot", "'..'"),
    _invalid("uri", "file:///data/x\x00y", "nul", "NUL"),
    _invalid("format", "", "empty", "1-255"),
    _invalid("format", "p" * (limits.SHORT_TEXT_MAX + 1), "max+1", "255"),
    _invalid("owner", "", "empty", "1-255"),
    _invalid("owner", "o" * (limits.SHORT_TEXT_MAX + 1), "max+1", "255"),
    _invalid("owner", "ana\udc80", "lone-surrogate"),
    _invalid("description", "d" * (limits.DESCRIPTION_MAX + 1), "max+1", str(limits.DESCRIPTION_MAX)),
    _invalid("description", "broken \ud800 text", "lone-surrogate"),
    _invalid("description", b"bytes", "bytes", "string"),
    _invalid("domain", "", "empty", "1-100"),
    _invalid("domain", "d" * (limits.DOMAIN_MAX + 1), "max+1", "100"),
    *(_invalid("domain", f"a{c}b", f"char-{ord(c):04x}", "letters, digits") for c in _forbidden("_-")),
    _invalid("tag", "", "empty", "1-100"),
    _invalid("tag", "t" * (limits.TAG_MAX + 1), "max+1", "100"),
    *(_invalid("tag", f"a{c}b", f"char-{ord(c):04x}", "letters, digits") for c in _forbidden("_:-")),
    _invalid("field name", "", "empty", "1-255"),
    _invalid("field name", "f" * (limits.NAME_MAX + 1), "max+1", "255"),
    *(_invalid("field name", f"a{c}b", f"char-{ord(c):04x}", "letters, digits") for c in _forbidden("_")),
    _invalid("field data_type", "", "empty", "1-255"),
    _invalid("field data_type", "t" * (limits.SHORT_TEXT_MAX + 1), "max+1", "255"),
    _invalid("field description", "d" * (limits.DESCRIPTION_MAX + 1), "max+1", str(limits.DESCRIPTION_MAX)),
    _invalid("upstream dataset name", "-up", "leading-hyphen", "'-'"),
    _invalid("upstream dataset name", "u" * (limits.NAME_MAX + 1), "max+1", "255"),
    _invalid("size_bytes", -1, "negative", "negative"),
    _invalid("size_bytes", 1.5, "float", "whole number"),
    _invalid("size_bytes", True, "bool", "whole number"),
    _invalid("size_bytes", "10", "text", "whole number"),
    _invalid("size_bytes", SQLITE_INT_MAX + 1, "sqlite-max+1"),
    _invalid("row_count", SQLITE_INT_MAX + 1, "sqlite-max+1"),
    _invalid("row_count", -1, "negative", "negative"),
    _invalid("tags", limits.TAGS_MAX + 1, "max+1", str(limits.TAGS_MAX)),
    _invalid("fields", limits.FIELDS_MAX + 1, "max+1", str(limits.FIELDS_MAX)),
    _invalid("upstream", limits.UPSTREAM_MAX + 1, "max+1", str(limits.UPSTREAM_MAX)),
]


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Catalog]:
    """A catalog holding one dataset, so a refused write has something to leave alone."""
    catalog = Catalog(tmp_path / "catalog.db", synchronous="NORMAL")  # fsyncs are not under test here
    try:
        catalog.create(make("input.existing"))
        yield catalog
    finally:
        catalog.close()


def _fresh(catalog: Catalog) -> Catalog:
    """A second, cache-less catalog on the same file: what it reads came from the file."""
    return Catalog(catalog.path, cache_size=0, synchronous="NORMAL")


@pytest.mark.parametrize(("what", "value"), VALID_AT_BOUNDS)
def test_value_at_its_bound_is_stored_and_read_back_verbatim(seeded: Catalog, what: str, value: Any) -> None:
    dataset = BUILDERS[what](value)
    stored = seeded.create(dataset)
    assert stored.version == 1
    with _fresh(seeded) as fresh:
        read = fresh.get(dataset.name)
        assert read is not None
        assert read.content() == dataset.content()


@pytest.mark.parametrize(("what", "value", "words"), INVALID_AT_BOUNDS)
def test_value_past_its_bound_is_refused_and_nothing_is_written(
    seeded: Catalog, what: str, value: Any, words: tuple[str, ...]
) -> None:
    version, count = seeded.version, seeded.count
    existing = seeded.get("input.existing")
    assert existing is not None
    with pytest.raises(ValidationError) as info:
        seeded.create(BUILDERS[what](value))
    error = info.value
    assert error.what == what, f"{error.what!r} named instead of {what!r}: {error}"
    message = str(error)
    assert message.startswith(f"invalid {what}")
    assert "\n" not in message, "one line, even for a value holding newlines"
    for word in words:
        assert word in message, message
    assert (seeded.version, seeded.count) == (version, count)
    assert seeded.get("input.existing") == existing


@pytest.mark.parametrize(
    ("what", "value"),
    [
        pytest.param("description", "d" * (limits.DESCRIPTION_MAX + 1), id="description-max+1"),
        pytest.param("size_bytes", SQLITE_INT_MAX + 1, id="size-sqlite-max+1"),
        pytest.param("owner", "\udfff", id="owner-lone-surrogate"),
        pytest.param("description", "\ud83d", id="description-lone-surrogate"),
    ],
)
def test_refused_save_over_an_existing_dataset_changes_nothing(
    seeded: Catalog, what: str, value: Any
) -> None:
    current = seeded.get("input.existing")
    assert current is not None
    version = seeded.version
    with pytest.raises(ValidationError):
        seeded.save(current.replace(**{what: value}), expected_version=current.version)
    with _fresh(seeded) as fresh:
        assert fresh.version == version
        assert fresh.get("input.existing") == current


@pytest.mark.parametrize(
    ("build", "what", "word"),
    [
        pytest.param(lambda: make(tags=("a", "a")), "tags", "repeat", id="duplicate-tag"),
        pytest.param(
            lambda: make(fields=(Field("a", "int"), Field("a", "text"))),
            "field names",
            "repeat",
            id="duplicate-field",
        ),
        pytest.param(lambda: make(upstream=("u.1", "u.1")), "upstream", "repeat", id="duplicate-upstream"),
        pytest.param(
            lambda: make("self.loop", upstream=("self.loop",)), "upstream", "own", id="self-upstream"
        ),
        pytest.param(lambda: make(partitions=("nope",)), "partitions", "fields", id="partition-not-a-field"),
        pytest.param(lambda: make(partitions=("id", "id")), "partitions", "repeat", id="duplicate-partition"),
        pytest.param(
            lambda: make(fields=(Field("a", "int", nullable=1),)), "field nullable", "true", id="nullable-int"
        ),
        pytest.param(
            lambda: make(fields=({"name": "a", "data_type": "int"},)), "fields", "Field", id="field-dict"
        ),
        pytest.param(lambda: make(tags="pii"), "tags", "list", id="tags-string"),
        pytest.param(lambda: make(version=-1), "version", "negative", id="negative-version"),
    ],
)
def test_structural_rule_is_refused_and_nothing_is_written(
    seeded: Catalog, build: Callable[[], Dataset], what: str, word: str
) -> None:
    version = seeded.version
    with pytest.raises(ValidationError) as info:
        seeded.create(build())
    assert info.value.what == what, str(info.value)
    assert word in str(info.value)
    assert seeded.version == version
    assert seeded.count == 1


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.search("q" * limits.QUERY_MAX), id="search-max"),
        pytest.param(lambda c: c.search("x", limit=limits.PAGE_MAX), id="search-limit-max"),
        pytest.param(lambda c: c.list(limit=limits.PAGE_MAX), id="list-limit-max"),
        pytest.param(
            lambda c: c.lineage("input.existing", depth=limits.LINEAGE_DEPTH_MAX), id="lineage-depth-max"
        ),
        pytest.param(lambda c: c.get("a" * limits.NAME_MAX), id="get-name-max"),
    ],
)
def test_argument_at_its_bound_is_accepted(seeded: Catalog, call: Callable[[Catalog], Any]) -> None:
    result = call(seeded)  # a ValidationError here fails the test: the bound is inclusive
    assert result is None or isinstance(result, list)


@pytest.mark.parametrize(
    ("call", "what"),
    [
        pytest.param(lambda c: c.get("bad name"), "dataset name", id="get"),
        pytest.param(lambda c: c.get(""), "dataset name", id="get-empty"),
        pytest.param(lambda c: c.delete("-x", expected_version=1), "dataset name", id="delete"),
        pytest.param(
            lambda c: c.delete("input.existing", expected_version=-1), "expected_version", id="delete-version"
        ),
        pytest.param(lambda c: c.list(limit=0), "limit", id="list-limit-0"),
        pytest.param(lambda c: c.list(limit=limits.PAGE_MAX + 1), "limit", id="list-limit-max+1"),
        pytest.param(lambda c: c.list(domain="a b"), "domain", id="list-domain"),
        pytest.param(lambda c: c.list(tag="a b"), "tag", id="list-tag"),
        pytest.param(lambda c: c.list(after="-x"), "after", id="list-after"),
        pytest.param(lambda c: c.search(""), "search query", id="search-empty"),
        pytest.param(lambda c: c.search("   "), "search query", id="search-blank"),
        pytest.param(lambda c: c.search("q" * (limits.QUERY_MAX + 1)), "search query", id="search-max+1"),
        pytest.param(lambda c: c.search("x", limit=0), "limit", id="search-limit"),
        pytest.param(lambda c: c.lineage("input.existing", depth=0), "depth", id="lineage-depth-0"),
        pytest.param(
            lambda c: c.lineage("input.existing", depth=limits.LINEAGE_DEPTH_MAX + 1),
            "depth",
            id="lineage-depth-max+1",
        ),
        pytest.param(
            lambda c: c.lineage("input.existing", direction="sideways"), "direction", id="lineage-direction"
        ),
        pytest.param(lambda c: c.create({"name": "x", "uri": "s3://x"}), "dataset", id="create-dict"),
        pytest.param(
            lambda c: c.update("input.existing", lambda d: None), "update change", id="update-returns-none"
        ),
        pytest.param(
            lambda c: c.update("input.existing", lambda d: make("input.other")),
            "update change",
            id="update-renames",
        ),
        pytest.param(
            lambda c: c.update("input.existing", lambda d: d, max_attempts=0),
            "max_attempts",
            id="update-attempts",
        ),
    ],
)
def test_bad_arguments_to_catalog_methods_are_validation_errors(
    seeded: Catalog, call: Callable[[Catalog], Any], what: str
) -> None:
    version = seeded.version
    with pytest.raises(ValidationError) as info:
        call(seeded)
    assert info.value.what == what, str(info.value)
    assert seeded.version == version
    assert seeded.count == 1


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"busy_timeout": -1}, id="busy-negative"),
        pytest.param({"busy_timeout": "5"}, id="busy-text"),
        pytest.param({"busy_timeout": 3601}, id="busy-max+1"),
        pytest.param({"cache_size": -1}, id="cache-negative"),
        pytest.param({"cache_size": 1.5}, id="cache-float"),
        pytest.param({"synchronous": "OFF"}, id="synchronous-off"),
    ],
)
def test_bad_catalog_options_are_refused_before_the_file_is_touched(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    path = tmp_path / "catalog.db"
    with pytest.raises(ValidationError):
        Catalog(path, **options)
    assert list(tmp_path.iterdir()) == []


# -- text that must round-trip verbatim -------------------------------------------------------------

NASTY_TEXT = [
    "'; DROP TABLE datasets; --",
    "Robert'); DELETE FROM fields WHERE ('1'='1",
    '" OR ""="',
    "%_\\ LIKE escape test %%",
    "🙂🚀 emoji and 名前 and Ελληνικά and עברית",
    "zero\u200bwidth and combining e\u0301",
    "tabs\tnew\nlines\r\nand\x00NUL",
    'NEAR(a b) AND x* OR "quoted" ^start col:value',
    "\U0010ffff max code point",
]


@pytest.mark.parametrize("text", NASTY_TEXT)
def test_hostile_text_round_trips_verbatim_and_leaves_the_schema_alone(seeded: Catalog, text: str) -> None:
    dataset = make(
        "input.hostile",
        description=text,
        owner=text.replace("\x00", "")[:255] or "x",
        fields=(Field("x", "string", description=text),),
    )
    seeded.create(dataset)
    with _fresh(seeded) as fresh:
        read = fresh.get("input.hostile")
        assert read is not None
        assert read.content() == dataset.content()
        assert fresh.count == 2, "the text was data, not SQL"
        assert fresh.integrity_check() == ["ok"]


@pytest.mark.parametrize("text", NASTY_TEXT)
def test_hostile_text_as_a_search_query_returns_results_not_errors(seeded: Catalog, text: str) -> None:
    seeded.create(make("input.hostile", description=text))
    found = seeded.search(text[: limits.QUERY_MAX])
    assert all(isinstance(dataset, Dataset) for dataset in found)
    assert seeded.count == 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_any_description_round_trips_verbatim(seeded: Catalog, text: str) -> None:
    current = seeded.get("input.existing")
    assert current is not None
    changed = current.replace(description=text, fields=(Field("x", "string", description=text),))
    seeded.save(changed, expected_version=current.version)
    with _fresh(seeded) as fresh:
        read = fresh.get("input.existing")
        assert read is not None
        assert read.description == text
        assert read.fields[0].description == text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).filter(str.strip))
def test_any_valid_search_query_returns_a_list(seeded: Catalog, query: str) -> None:
    """A query that is not FTS5 syntax is searched as plain words: it never raises.

    NUL is left to the explicit test below: a failing Hypothesis test currently crashes pytest
    (its patch writer imports libcst, whose DeprecationWarning `filterwarnings = error` raises).
    """
    found = seeded.search(query)
    assert isinstance(found, list)


@pytest.mark.parametrize("query", ["\x00", "a\x00b", '"\x00"'], ids=["nul", "inner-nul", "quoted-nul"])
def test_search_query_with_nul_is_refused_or_answered_never_a_raw_sqlite_error(
    seeded: Catalog, query: str
) -> None:
    outcome: object
    try:
        outcome = seeded.search(query)
    except ValidationError as error:
        outcome = error.what
    assert isinstance(outcome, list) or outcome == "search query", outcome
