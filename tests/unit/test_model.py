"""Tests for metafuse.model: `Dataset` and `Field` validation, `replace`, and the dict round trip."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metafuse import Dataset, Field, limits
from metafuse.errors import ValidationError

from ._support import make

NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"

dataset_names = st.text(NAME_CHARS + ".-", min_size=1, max_size=20).filter(
    lambda s: not s.startswith("-") and not s.endswith("-")
)
field_names = st.text(NAME_CHARS, min_size=1, max_size=12)
tags = st.text(NAME_CHARS + "-:", min_size=1, max_size=12)
optional_text = st.none() | st.text(min_size=1, max_size=30)


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    """Valid datasets with every field exercised (including arbitrary text)."""
    name = draw(dataset_names)
    fields = draw(
        st.lists(
            st.builds(
                Field,
                name=field_names,
                data_type=st.text(min_size=1, max_size=20),
                nullable=st.booleans(),
                description=st.none() | st.text(max_size=30),
            ),
            max_size=5,
            unique_by=lambda f: f.name,
        )
    )
    field_list = [f.name for f in fields]
    partitions = draw(st.lists(st.sampled_from(field_list), unique=True)) if field_list else []
    upstream = draw(st.lists(dataset_names.filter(lambda n: n != name), max_size=4, unique=True))
    return Dataset(
        name=name,
        uri=draw(st.text(min_size=1, max_size=40).filter(lambda u: not u.lower().startswith("file://"))),
        format=draw(optional_text),
        description=draw(st.none() | st.text(max_size=60)),
        owner=draw(optional_text),
        domain=draw(st.none() | st.text(NAME_CHARS + "-", min_size=1, max_size=10)),
        tags=draw(st.lists(tags, max_size=5, unique=True)),
        fields=fields,
        partitions=partitions,
        size_bytes=draw(st.none() | st.integers(0, 2**62)),
        row_count=draw(st.none() | st.integers(0, 2**62)),
        upstream=upstream,
        version=draw(st.integers(0, 1000)),
        last_modified=draw(st.none() | st.datetimes(timezones=st.just(dt.timezone.utc))),
    )


# -- Field -----------------------------------------------------------------------------------


def test_field_defaults() -> None:
    field = Field("id", "bigint")
    assert (field.nullable, field.description) == (True, None)


@pytest.mark.parametrize(
    ("changes", "what"),
    [
        ({"name": "a-b"}, "field name"),
        ({"name": ""}, "field name"),
        ({"name": "x" * (limits.NAME_MAX + 1)}, "field name"),
        ({"data_type": ""}, "field data_type"),
        ({"data_type": None}, "field data_type"),
        ({"data_type": "x" * (limits.SHORT_TEXT_MAX + 1)}, "field data_type"),
        ({"nullable": 1}, "field nullable"),
        ({"nullable": None}, "field nullable"),
        ({"description": "x" * (limits.DESCRIPTION_MAX + 1)}, "field description"),
    ],
)
def test_field_refuses(changes: dict[str, Any], what: str) -> None:
    values: dict[str, Any] = {"name": "id", "data_type": "int", **changes}
    with pytest.raises(ValidationError) as caught:
        Field(**values)
    assert caught.value.what == what


def test_field_accepts_its_bounds() -> None:
    field = Field("x" * limits.NAME_MAX, "t" * limits.SHORT_TEXT_MAX, False, "d" * limits.DESCRIPTION_MAX)
    assert len(field.name) == limits.NAME_MAX


def test_field_is_immutable() -> None:
    field = Field("id", "int")
    with pytest.raises(dataclasses.FrozenInstanceError):
        field.name = "other"  # type: ignore[misc]


def test_field_dict_round_trip() -> None:
    field = Field("id", "int", nullable=False, description="key")
    assert field.to_dict() == {"name": "id", "data_type": "int", "nullable": False, "description": "key"}
    assert Field.from_dict(field.to_dict()) == field


def test_field_from_dict_refuses_unknown_keys_naming_them() -> None:
    with pytest.raises(ValidationError, match=r"unknown key.*colour"):
        Field.from_dict({"name": "id", "data_type": "int", "colour": "red"})


@pytest.mark.parametrize("data", [{"name": "id"}, {"data_type": "int"}, {}])
def test_field_from_dict_needs_name_and_type(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="needs 'name' and 'data_type'"):
        Field.from_dict(data)


@pytest.mark.parametrize("data", [["id", "int"], "id", None])
def test_field_from_dict_refuses_non_objects(data: Any) -> None:
    with pytest.raises(ValidationError, match="must be an object"):
        Field.from_dict(data)


# -- Dataset ---------------------------------------------------------------------------------


def test_dataset_defaults_and_sequences_become_tuples() -> None:
    dataset = Dataset(
        name="a",
        uri="s3://a",
        tags=["x", "y"],
        fields=[Field("f", "int")],
        partitions=["f"],
        upstream=["b"],
    )
    assert dataset.tags == ("x", "y")
    assert dataset.fields == (Field("f", "int"),)
    assert dataset.partitions == ("f",)
    assert dataset.upstream == ("b",)
    assert (dataset.version, dataset.last_modified, dataset.format, dataset.domain) == (0, None, None, None)
    bare = Dataset(name="b", uri="s3://b")
    assert (bare.tags, bare.fields, bare.partitions, bare.upstream) == ((), (), (), ())


def test_dataset_copies_a_caller_list_so_later_mutation_does_not_leak_in() -> None:
    tag_list = ["x"]
    dataset = Dataset(name="a", uri="s3://a", tags=tag_list)
    tag_list.append("y")
    assert dataset.tags == ("x",)


def test_dataset_is_immutable() -> None:
    dataset = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        dataset.version = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "what"),
    [
        ({"name": "-bad"}, "dataset name"),
        ({"name": ""}, "dataset name"),
        ({"uri": ""}, "uri"),
        ({"uri": "file:///a/../b"}, "uri"),
        ({"format": ""}, "format"),
        ({"format": "x" * (limits.SHORT_TEXT_MAX + 1)}, "format"),
        ({"description": "x" * (limits.DESCRIPTION_MAX + 1)}, "description"),
        ({"owner": ""}, "owner"),
        ({"domain": "a.b"}, "domain"),
        ({"domain": ""}, "domain"),
        ({"tags": ["a b"]}, "tag"),
        ({"tags": ["a", "a"]}, "tags"),
        ({"tags": "pii"}, "tags"),
        ({"tags": None}, "tags"),
        ({"fields": [{"name": "id", "data_type": "int"}]}, "fields"),
        ({"fields": [Field("a", "int"), Field("a", "text")]}, "field names"),
        ({"partitions": ["nope"]}, "partitions"),
        ({"partitions": ["id", "id"]}, "partitions"),
        ({"partitions": "id"}, "partitions"),
        ({"upstream": ["sales.orders"]}, "upstream"),
        ({"upstream": ["a", "a"]}, "upstream"),
        ({"upstream": ["-a"]}, "upstream dataset name"),
        ({"size_bytes": -1}, "size_bytes"),
        ({"row_count": 1.5}, "row_count"),
        ({"row_count": True}, "row_count"),
        ({"version": -1}, "version"),
    ],
)
def test_dataset_refuses(changes: dict[str, Any], what: str) -> None:
    valid = make("sales.orders")
    with pytest.raises(ValidationError) as caught:
        valid.replace(**changes)
    assert caught.value.what == what


@pytest.mark.parametrize(
    ("what", "maximum", "build"),
    [
        ("fields", limits.FIELDS_MAX, lambda n: {"fields": [Field(f"f{i}", "int") for i in range(n)]}),
        ("tags", limits.TAGS_MAX, lambda n: {"tags": [f"t{i}" for i in range(n)]}),
        ("upstream", limits.UPSTREAM_MAX, lambda n: {"upstream": [f"u{i}" for i in range(n)]}),
    ],
)
def test_dataset_count_limits_are_inclusive_and_named(what: str, maximum: int, build: Any) -> None:
    at_limit = make("a", **build(maximum))
    assert len(getattr(at_limit, what)) == maximum
    with pytest.raises(ValidationError) as caught:
        make("a", **build(maximum + 1))
    assert caught.value.what == what
    assert f"at most {maximum} allowed, got {maximum + 1}" in str(caught.value)


def test_description_limit_is_inclusive_and_named() -> None:
    assert len(make(description="x" * limits.DESCRIPTION_MAX).description or "") == limits.DESCRIPTION_MAX
    with pytest.raises(ValidationError, match=str(limits.DESCRIPTION_MAX)):
        make(description="x" * (limits.DESCRIPTION_MAX + 1))


def test_replace_returns_a_validated_copy_and_leaves_the_original() -> None:
    original = make(description="old")
    changed = original.replace(description="new", tags=["a", "b"])
    assert changed.description == "new"
    assert changed.tags == ("a", "b")
    assert changed.name == original.name
    assert original.description == "old"
    assert original.tags == ("pii",)
    with pytest.raises(ValidationError):
        original.replace(domain="not a domain")
    with pytest.raises(TypeError):
        original.replace(colour="red")


def test_to_dict_is_json_ready() -> None:
    stamp = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone.utc)
    dataset = make(version=3, last_modified=stamp, upstream=["raw.orders"], partitions=["id"])
    data = dataset.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["last_modified"] == "2024-05-06T07:08:09.123456+00:00"
    assert data["fields"][0] == {"name": "id", "data_type": "bigint", "nullable": False, "description": None}
    assert data["tags"] == ["pii"]
    assert data["upstream"] == ["raw.orders"]
    assert data["partitions"] == ["id"]
    assert data["version"] == 3
    assert set(data) == {f.name for f in dataclasses.fields(Dataset)}


def test_content_is_to_dict_without_version_and_timestamp() -> None:
    dataset = make(version=4, last_modified=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
    content = dataset.content()
    assert "version" not in content
    assert "last_modified" not in content
    assert content == {k: v for k, v in dataset.to_dict().items() if k not in ("version", "last_modified")}
    assert dataset.replace(version=9).content() == content


@given(datasets())
def test_dict_round_trip_preserves_every_dataset(dataset: Dataset) -> None:
    assert Dataset.from_dict(dataset.to_dict()) == dataset
    assert Dataset.from_dict(json.loads(json.dumps(dataset.to_dict()))) == dataset


def test_from_dict_needs_only_name_and_uri() -> None:
    assert Dataset.from_dict({"name": "a", "uri": "s3://a"}) == Dataset(name="a", uri="s3://a")


@pytest.mark.parametrize("missing", ["name", "uri"])
def test_from_dict_names_a_missing_required_key(missing: str) -> None:
    data = {"name": "a", "uri": "s3://a"}
    del data[missing]
    with pytest.raises(ValidationError, match=repr(missing)):
        Dataset.from_dict(data)


def test_from_dict_refuses_unknown_keys_and_lists_the_known_ones() -> None:
    with pytest.raises(ValidationError) as caught:
        Dataset.from_dict({"name": "a", "uri": "s3://a", "colour": "red", "Name": "b"})
    message = str(caught.value)
    assert "Name, colour" in message
    assert "known: " in message
    assert "uri" in message


def test_from_dict_refuses_unknown_keys_inside_fields() -> None:
    with pytest.raises(ValidationError, match=r"unknown key.*typ"):
        Dataset.from_dict({"name": "a", "uri": "s3://a", "fields": [{"name": "f", "typ": "int"}]})


@pytest.mark.parametrize("data", [[], "a", None, 5])
def test_from_dict_refuses_non_objects(data: Any) -> None:
    with pytest.raises(ValidationError, match="must be a JSON object"):
        Dataset.from_dict(data)


@pytest.mark.parametrize("fields", [None, "id", {"name": "id"}])
def test_from_dict_refuses_fields_that_are_not_a_list(fields: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        Dataset.from_dict({"name": "a", "uri": "s3://a", "fields": fields})
    assert caught.value.what == "fields"


@pytest.mark.parametrize("stamp", ["yesterday", 12, ["2024-01-01"]])
def test_from_dict_refuses_bad_timestamps(stamp: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        Dataset.from_dict({"name": "a", "uri": "s3://a", "last_modified": stamp})
    assert caught.value.what == "last_modified"


def test_from_dict_accepts_a_datetime_object() -> None:
    stamp = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    assert Dataset.from_dict({"name": "a", "uri": "s3://a", "last_modified": stamp}).last_modified == stamp


def test_from_dict_does_not_mutate_its_input() -> None:
    data = make().to_dict()
    snapshot = json.dumps(data, sort_keys=True)
    Dataset.from_dict(data)
    assert json.dumps(data, sort_keys=True) == snapshot
