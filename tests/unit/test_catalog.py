"""Tests for metafuse.catalog: every public `Catalog` verb, its errors, and verbatim text round trips."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import metafuse._schema
from metafuse import (
    BusyError,
    Catalog,
    CatalogClosedError,
    CatalogFileError,
    CatalogStats,
    ConflictError,
    Dataset,
    Field,
    LineageEdge,
    NotFoundError,
    ValidationError,
    limits,
)
from metafuse.catalog import DEFAULT_PATH

from ._support import make

# -- opening -------------------------------------------------------------------------------


def test_new_catalog_is_empty(catalog: Catalog, catalog_path: Path) -> None:
    assert catalog_path.exists()
    assert catalog.count == 0
    assert catalog.version == 0
    assert catalog.list() == []
    assert catalog.path == str(catalog_path)
    assert repr(catalog) == f"Catalog({str(catalog_path)!r})"


def test_defaults(catalog: Catalog) -> None:
    assert DEFAULT_PATH == "metafuse_catalog.db"
    assert catalog.synchronous == "FULL"
    assert catalog.busy_timeout == 5.0
    assert catalog.read_only is False
    assert catalog.stats().cache_capacity == 1024


def test_accepts_str_path_and_lowercase_synchronous(tmp_path: Path) -> None:
    with Catalog(str(tmp_path / "c.db"), synchronous="normal", busy_timeout=1) as catalog:
        assert catalog.synchronous == "NORMAL"
        assert catalog.busy_timeout == 1.0
        assert isinstance(catalog.busy_timeout, float)


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"cache_size": -1}, "cache_size"),
        ({"cache_size": True}, "cache_size"),
        ({"cache_size": 1.5}, "cache_size"),
        ({"busy_timeout": -0.1}, "busy_timeout"),
        ({"busy_timeout": 3600.5}, "busy_timeout"),
        ({"busy_timeout": "5"}, "busy_timeout"),
        ({"busy_timeout": True}, "busy_timeout"),
        ({"busy_timeout": float("nan")}, "busy_timeout"),
        ({"synchronous": "OFF"}, "synchronous"),
        ({"synchronous": "EXTRA"}, "synchronous"),
    ],
)
def test_constructor_refuses_bad_settings_without_creating_a_file(
    tmp_path: Path, kwargs: dict[str, Any], what: str
) -> None:
    path = tmp_path / "c.db"
    with pytest.raises(ValidationError) as caught:
        Catalog(path, **kwargs)
    assert caught.value.what == what
    assert list(tmp_path.iterdir()) == []


def test_reopening_keeps_the_data(catalog_path: Path) -> None:
    with Catalog(catalog_path) as first:
        stored = first.create(make("a"))
    with Catalog(catalog_path) as second:
        assert second.get("a") == stored
        assert second.version == 1


# -- create ----------------------------------------------------------------------------------


def test_create_stores_version_one_and_returns_what_get_returns(catalog: Catalog) -> None:
    before = dt.datetime.now(dt.timezone.utc)
    stored = catalog.create(make("a", upstream=["raw.a"], partitions=["id"], size_bytes=10, row_count=2))
    assert stored.version == 1
    assert stored.last_modified is not None
    assert stored.last_modified.tzinfo is not None
    assert stored.last_modified >= before
    assert (
        stored.content()
        == make("a", upstream=["raw.a"], partitions=["id"], size_bytes=10, row_count=2).content()
    )
    assert catalog.get("a") == stored
    assert catalog.count == 1
    assert catalog.version == 1


def test_create_ignores_a_version_set_by_the_caller(catalog: Catalog) -> None:
    assert catalog.create(make("a", version=41)).version == 1


def test_create_existing_name_is_a_conflict_and_keeps_the_original(catalog: Catalog) -> None:
    original = catalog.create(make("a", description="first"))
    with pytest.raises(ConflictError) as caught:
        catalog.create(make("a", description="second"))
    assert (caught.value.name, caught.value.expected, caught.value.actual) == ("a", None, 1)
    assert catalog.get("a") == original
    assert catalog.version == 1


@pytest.mark.parametrize("value", [None, {"name": "a", "uri": "s3://a"}, "a"])
def test_create_refuses_non_datasets(catalog: Catalog, value: Any) -> None:
    with pytest.raises(ValidationError):
        catalog.create(value)
    assert catalog.count == 0


def test_create_many_creates_all_in_order_and_bumps_the_version_by_their_number(catalog: Catalog) -> None:
    created = catalog.create_many(make(name) for name in ("c", "a", "b"))
    assert [d.name for d in created] == ["c", "a", "b"]
    assert all(d.version == 1 for d in created)
    assert len({d.last_modified for d in created}) == 1
    assert catalog.count == 3
    assert catalog.version == 3
    assert [catalog.get(d.name) for d in created] == created


def test_create_many_is_all_or_nothing(catalog: Catalog) -> None:
    catalog.create(make("b"))
    with pytest.raises(ConflictError) as caught:
        catalog.create_many([make("a"), make("b"), make("c")])
    assert caught.value.name == "b"
    assert catalog.get("a") is None
    assert catalog.get("c") is None
    assert catalog.count == 1
    assert catalog.version == 1


def test_create_many_refuses_a_repeated_name_in_one_batch(catalog: Catalog) -> None:
    with pytest.raises(ConflictError):
        catalog.create_many([make("a"), make("a")])
    assert catalog.count == 0


def test_create_many_refuses_a_non_dataset_before_writing(catalog: Catalog) -> None:
    with pytest.raises(ValidationError):
        catalog.create_many([make("a"), "b"])  # type: ignore[list-item]
    assert catalog.count == 0


def test_create_many_of_nothing_writes_nothing(catalog: Catalog) -> None:
    assert catalog.create_many([]) == []
    assert catalog.version == 0


# -- get -------------------------------------------------------------------------------------


def test_get_missing_returns_none(catalog: Catalog) -> None:
    assert catalog.get("nope") is None


@pytest.mark.parametrize("name", ["", "-a", "a b", "x" * 256, 3, None])
def test_get_validates_the_name(catalog: Catalog, name: Any) -> None:
    with pytest.raises(ValidationError):
        catalog.get(name)


# -- save ------------------------------------------------------------------------------------


def test_save_replaces_everything_and_bumps_the_version(catalog: Catalog) -> None:
    first = catalog.create(make("a", tags=["x", "y"], upstream=["raw.a"]))
    changed = first.replace(
        uri="s3://new",
        format=None,
        description=None,
        owner="bo",
        domain="finance",
        tags=["z"],
        fields=[Field("k", "text", description="key")],
        partitions=["k"],
        size_bytes=5,
        row_count=None,
        upstream=["raw.b", "raw.c"],
    )
    saved = catalog.save(changed, expected_version=1)
    assert saved.version == 2
    assert saved.content() == changed.content()
    assert saved.last_modified is not None
    assert first.last_modified is not None
    assert saved.last_modified >= first.last_modified
    assert catalog.get("a") == saved
    assert catalog.version == 2
    assert catalog.count == 1


def test_save_with_a_stale_version_is_a_conflict_and_writes_nothing(catalog: Catalog) -> None:
    first = catalog.create(make("a"))
    second = catalog.save(first.replace(description="two"), expected_version=1)
    with pytest.raises(ConflictError) as caught:
        catalog.save(first.replace(description="stale"), expected_version=1)
    assert (caught.value.name, caught.value.expected, caught.value.actual) == ("a", 1, 2)
    assert catalog.get("a") == second
    assert catalog.version == 2


def test_save_with_a_future_version_is_a_conflict(catalog: Catalog) -> None:
    first = catalog.create(make("a"))
    with pytest.raises(ConflictError) as caught:
        catalog.save(first, expected_version=5)
    assert (caught.value.expected, caught.value.actual) == (5, 1)


def test_save_missing_dataset_is_not_found(catalog: Catalog) -> None:
    with pytest.raises(NotFoundError) as caught:
        catalog.save(make("ghost"), expected_version=1)
    assert caught.value.name == "ghost"
    assert catalog.count == 0


@pytest.mark.parametrize("expected", [-1, 1.0, "1", True])
def test_save_validates_expected_version(catalog: Catalog, expected: Any) -> None:
    first = catalog.create(make("a"))
    with pytest.raises(ValidationError):
        catalog.save(first, expected_version=expected)
    assert catalog.get("a") == first


def test_save_refuses_a_non_dataset(catalog: Catalog) -> None:
    catalog.create(make("a"))
    with pytest.raises(ValidationError):
        catalog.save({"name": "a"}, expected_version=1)  # type: ignore[arg-type]


def _children_in_file(catalog: Catalog, name: str) -> dict[str, list[tuple[Any, ...]]]:
    """The child rows of `name` as stored, read with a connection of our own."""
    with contextlib.closing(sqlite3.connect(catalog.path)) as raw:
        (dataset_id,) = raw.execute("SELECT id FROM datasets WHERE name = ?", (name,)).fetchone()
        return {
            "fields": raw.execute(
                "SELECT position, name, data_type, nullable, description FROM fields"
                " WHERE dataset_id = ? ORDER BY position",
                (dataset_id,),
            ).fetchall(),
            "tags": raw.execute(
                "SELECT position, tag FROM tags WHERE dataset_id = ? ORDER BY position", (dataset_id,)
            ).fetchall(),
            "lineage": raw.execute(
                "SELECT position, upstream FROM lineage WHERE dataset_id = ? ORDER BY position", (dataset_id,)
            ).fetchall(),
        }


@pytest.mark.parametrize(
    "changes",
    [
        {"description": "only the description"},
        {"tags": ["other"]},
        {"tags": []},
        {"fields": [Field("id", "bigint", nullable=True)]},  # only nullable differs
        {"fields": [Field("id", "bigint", nullable=False, description="now described")]},
        {"fields": [Field("amount", "decimal(10,2)"), Field("id", "bigint", nullable=False)]},  # reordered
        {"fields": [], "partitions": []},
        {"upstream": ["raw.b", "raw.a"]},  # reordered
        {"upstream": []},
        {"tags": ["x"], "upstream": ["raw.c"]},
        {},
    ],
)
def test_save_of_some_children_keeps_the_others_exact(
    catalog: Catalog, other: Catalog, changes: dict[str, Any]
) -> None:
    first = catalog.create(make("a", tags=["pii", "gold"], upstream=["raw.a", "raw.b"]))
    changed = first.replace(**changes)
    saved = catalog.save(changed, expected_version=1)
    fetched = other.get("a")
    assert fetched is not None
    assert fetched.content() == changed.content() == saved.content()
    stored = _children_in_file(catalog, "a")
    assert [row[1:] for row in stored["fields"]] == [
        (f.name, f.data_type, int(f.nullable), f.description) for f in changed.fields
    ]
    assert [row[1] for row in stored["tags"]] == list(changed.tags)
    assert [row[1] for row in stored["lineage"]] == list(changed.upstream)
    for rows in stored.values():
        assert [row[0] for row in rows] == list(range(len(rows)))
    # The search index follows whatever changed, and keeps what did not.
    for field in changed.fields:
        assert "a" in names(other.search(field.name))
    for tag in changed.tags:
        assert "a" in names(other.search(f'tags:"{tag}"'))
    assert catalog.lineage("a", depth=1) == [LineageEdge("a", up, 1) for up in sorted(changed.upstream)]


child_fields = st.lists(
    st.builds(
        Field,
        name=st.sampled_from(["id", "ts", "amount", "note"]),
        data_type=st.text(min_size=1, max_size=8),
        nullable=st.booleans(),
        description=st.none() | st.text(max_size=8),
    ),
    max_size=4,
    unique_by=lambda f: f.name,
)
child_tags = st.lists(st.sampled_from(["pii", "gold", "team:x", "raw"]), unique=True, max_size=4)
child_upstream = st.lists(st.sampled_from(["u.a", "u.b", "u.c"]), unique=True, max_size=3)


@settings(max_examples=25)
@given(
    versions=st.lists(
        st.tuples(child_fields, child_tags, child_upstream, st.none() | st.text(max_size=10)),
        min_size=1,
        max_size=6,
    )
)
def test_a_series_of_saves_always_stores_the_last_one(
    tmp_path_factory: pytest.TempPathFactory,
    versions: list[tuple[list[Field], list[str], list[str], str | None]],
) -> None:
    path = tmp_path_factory.mktemp("saves") / "c.db"
    with Catalog(path, synchronous="NORMAL") as writer, Catalog(path, cache_size=0) as reader:
        current = writer.create(Dataset(name="a", uri="s3://a"))
        for fields, tags, upstream, description in versions:
            wanted = current.replace(fields=fields, tags=tags, upstream=upstream, description=description)
            current = writer.save(wanted, expected_version=current.version)
            fetched = reader.get("a")
            assert fetched is not None
            assert fetched.content() == wanted.content()
            assert fetched.version == current.version
        assert reader.integrity_check() == ["ok"]


# -- delete ----------------------------------------------------------------------------------


def test_delete_removes_the_dataset_and_its_children(catalog: Catalog) -> None:
    catalog.create(make("a", tags=["gone"], upstream=["raw.a"], description="uniqueword"))
    catalog.delete("a", expected_version=1)
    assert catalog.get("a") is None
    assert catalog.count == 0
    assert catalog.version == 2
    assert catalog.list(tag="gone") == []
    assert catalog.search("uniqueword") == []
    recreated = catalog.create(Dataset(name="a", uri="s3://a"))
    assert recreated.version == 1
    assert (recreated.tags, recreated.fields, recreated.upstream) == ((), (), ())
    assert catalog.lineage("a") == []


def test_delete_with_a_stale_version_is_a_conflict(catalog: Catalog) -> None:
    first = catalog.create(make("a"))
    with pytest.raises(ConflictError) as caught:
        catalog.delete("a", expected_version=2)
    assert (caught.value.name, caught.value.expected, caught.value.actual) == ("a", 2, 1)
    assert catalog.get("a") == first


def test_delete_missing_is_not_found(catalog: Catalog) -> None:
    with pytest.raises(NotFoundError) as caught:
        catalog.delete("ghost", expected_version=1)
    assert caught.value.name == "ghost"
    assert catalog.version == 0


def test_delete_validates_its_arguments(catalog: Catalog) -> None:
    catalog.create(make("a"))
    with pytest.raises(ValidationError):
        catalog.delete("a b", expected_version=1)
    with pytest.raises(ValidationError):
        catalog.delete("a", expected_version=-1)
    assert catalog.count == 1


def test_delete_keeps_edges_that_others_hold_to_the_deleted_name(catalog: Catalog) -> None:
    catalog.create_many([make("raw"), make("clean", upstream=["raw"])])
    catalog.delete("raw", expected_version=1)
    assert catalog.lineage("clean") == [LineageEdge("clean", "raw", 1)]
    with pytest.raises(NotFoundError):
        catalog.lineage("raw", direction="downstream")


# -- update ----------------------------------------------------------------------------------


def test_update_applies_the_change(catalog: Catalog) -> None:
    catalog.create(make("a", tags=["x"]))
    updated = catalog.update("a", lambda d: d.replace(tags=[*d.tags, "y"]))
    assert updated.version == 2
    assert updated.tags == ("x", "y")
    assert catalog.get("a") == updated


def test_update_missing_is_not_found(catalog: Catalog) -> None:
    with pytest.raises(NotFoundError):
        catalog.update("ghost", lambda d: d)


def test_update_refuses_a_rename_and_writes_nothing(catalog: Catalog) -> None:
    first = catalog.create(make("a"))
    with pytest.raises(ValidationError, match="rename"):
        catalog.update("a", lambda d: make("b"))
    assert catalog.get("a") == first
    assert catalog.get("b") is None


@pytest.mark.parametrize("returned", [None, {"name": "a", "uri": "s3://a"}, "a"])
def test_update_refuses_a_change_that_returns_no_dataset(catalog: Catalog, returned: Any) -> None:
    first = catalog.create(make("a"))
    with pytest.raises(ValidationError, match="must return a Dataset"):
        catalog.update("a", lambda d: returned)
    assert catalog.get("a") == first


@pytest.mark.parametrize("attempts", [0, -1, True, 1.5])
def test_update_validates_max_attempts(catalog: Catalog, attempts: Any) -> None:
    catalog.create(make("a"))
    with pytest.raises(ValidationError):
        catalog.update("a", lambda d: d, max_attempts=attempts)


def test_update_propagates_an_error_from_change_and_writes_nothing(catalog: Catalog) -> None:
    first = catalog.create(make("a"))

    def change(current: Dataset) -> Dataset:
        raise LookupError("no price list")

    with pytest.raises(LookupError, match="no price list"):
        catalog.update("a", change)
    assert catalog.get("a") == first
    assert catalog.version == 1


def _interfering(other: Catalog, times: int) -> Callable[[Dataset], Dataset]:
    """A `change` that, on its first `times` calls, saves the dataset through `other` first."""
    calls = {"n": 0}

    def change(current: Dataset) -> Dataset:
        calls["n"] += 1
        if calls["n"] <= times:
            other.save(
                current.replace(description=f"interference {calls['n']}"), expected_version=current.version
            )
        return current.replace(tags=[*current.tags, f"attempt{calls['n']}"])

    return change


def test_update_retries_a_conflict_and_reports_it(catalog: Catalog, other: Catalog) -> None:
    catalog.create(make("a", tags=[]))
    seen: list[tuple[ConflictError, int]] = []
    updated = catalog.update(
        "a",
        _interfering(other, 1),
        backoff=0,
        on_conflict=lambda error, attempt: seen.append((error, attempt)),
    )
    assert len(seen) == 1
    error, attempt = seen[0]
    assert attempt == 1
    assert (error.name, error.expected, error.actual) == ("a", 1, 2)
    # The retry re-read the interfering write and applied the change on top of it.
    assert updated.version == 3
    assert updated.description == "interference 1"
    assert updated.tags == ("attempt2",)
    assert other.get("a") == updated


def test_update_takes_its_last_attempt_under_the_writer_lock(catalog: Catalog, other: Catalog) -> None:
    catalog.create(make("a", tags=[]))
    seen: list[int] = []
    updated = catalog.update(
        "a", _interfering(other, 2), max_attempts=3, backoff=0, on_conflict=lambda e, n: seen.append(n)
    )
    assert seen == [1, 2]  # two optimistic attempts lost to the interfering writer
    # The third attempt read, changed and saved under the lock: nothing could intervene.
    assert updated.version == 4
    assert updated.description == "interference 2"
    assert updated.tags == ("attempt3",)
    assert other.get("a") == updated
    assert catalog.stats().pessimistic_updates == 1


def test_update_change_runs_under_the_lock_on_the_last_attempt(catalog_path: Path) -> None:
    catalog = Catalog(catalog_path)
    other = Catalog(catalog_path, busy_timeout=0.05)
    try:
        catalog.create(make("a"))

        def change(current: Dataset) -> Dataset:
            # Another writer cannot get in while the last attempt holds the writer lock.
            with pytest.raises(BusyError):
                other.save(current, expected_version=current.version)
            return current.replace(description="locked")

        assert catalog.update("a", change, max_attempts=1).description == "locked"
    finally:
        other.close()
        catalog.close()


def test_update_bad_backoff_is_refused_up_front(catalog: Catalog) -> None:
    catalog.create(make("a"))
    for what, value in [("backoff", -1.0), ("backoff", float("nan")), ("max_backoff", float("inf"))]:
        with pytest.raises(ValidationError, match=what):
            catalog.update("a", lambda d: d, **{what: value})  # type: ignore[arg-type]
    assert catalog.get("a") is not None


def test_update_with_one_attempt_never_conflicts(catalog: Catalog, other: Catalog) -> None:
    catalog.create(make("a", tags=[]))
    calls: list[int] = []
    updated = catalog.update(
        "a", lambda d: d.replace(tags=["once"]), max_attempts=1, on_conflict=lambda e, n: calls.append(n)
    )
    assert calls == []
    assert updated.version == 2
    assert other.get("a") == updated


def test_update_stops_when_the_dataset_is_deleted_meanwhile(catalog: Catalog, other: Catalog) -> None:
    catalog.create(make("a"))

    def change(current: Dataset) -> Dataset:
        other.delete("a", expected_version=current.version)
        return current.replace(description="late")

    with pytest.raises(NotFoundError):
        catalog.update("a", change, backoff=0)
    assert catalog.get("a") is None


# -- list ------------------------------------------------------------------------------------


@pytest.fixture
def populated(catalog: Catalog) -> Catalog:
    catalog.create_many(
        [
            make("e", domain="sales", owner="ana", tags=["pii", "gold"]),
            make("b", domain="sales", owner="bo", tags=["gold"]),
            make("d", domain="hr", owner="ana", tags=["pii"]),
            make("a", domain="hr", owner="bo", tags=[]),
            make("c", domain=None, owner=None, tags=["team:x"]),
        ]
    )
    return catalog


def names(found: list[Dataset]) -> list[str]:
    return [d.name for d in found]


def test_list_is_ordered_by_name(populated: Catalog) -> None:
    assert names(populated.list()) == ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"domain": "sales"}, ["b", "e"]),
        ({"domain": "hr"}, ["a", "d"]),
        ({"domain": "none-such"}, []),
        ({"owner": "ana"}, ["d", "e"]),
        ({"tag": "pii"}, ["d", "e"]),
        ({"tag": "gold"}, ["b", "e"]),
        ({"tag": "team:x"}, ["c"]),
        ({"domain": "sales", "owner": "ana"}, ["e"]),
        ({"domain": "hr", "tag": "pii", "owner": "ana"}, ["d"]),
        ({"domain": "hr", "tag": "gold"}, []),
        ({"limit": 2}, ["a", "b"]),
        ({"after": "b"}, ["c", "d", "e"]),
        ({"after": "bb"}, ["c", "d", "e"]),
        ({"after": "e"}, []),
        ({"after": "a", "limit": 1, "tag": "pii"}, ["d"]),
    ],
)
def test_list_filters(populated: Catalog, filters: dict[str, Any], expected: list[str]) -> None:
    assert names(populated.list(**filters)) == expected


def test_list_keyset_pagination_walks_every_dataset_once(catalog: Catalog) -> None:
    all_names = sorted(f"ds{i:02d}" for i in range(23))
    catalog.create_many(make(n) for n in reversed(all_names))
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = catalog.list(limit=5, after=after)
        if not page:
            break
        assert len(page) <= 5
        seen.extend(names(page))
        after = page[-1].name
        pages += 1
    assert seen == all_names
    assert pages == 5


def test_list_pagination_is_stable_under_inserts_before_the_cursor(catalog: Catalog) -> None:
    catalog.create_many(make(n) for n in ("b", "d", "f"))
    first = catalog.list(limit=2)
    catalog.create(make("a"))
    catalog.create(make("c"))
    assert names(catalog.list(limit=2, after=first[-1].name)) == ["f"]


@pytest.mark.parametrize(
    "filters",
    [
        {"limit": 0},
        {"limit": limits.PAGE_MAX + 1},
        {"limit": True},
        {"limit": "5"},
        {"domain": "a b"},
        {"domain": ""},
        {"owner": ""},
        {"tag": "a b"},
        {"after": "-x"},
        {"after": ""},
    ],
)
def test_list_validates_its_arguments(catalog: Catalog, filters: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        catalog.list(**filters)


def test_list_accepts_the_largest_page(populated: Catalog) -> None:
    assert len(populated.list(limit=limits.PAGE_MAX)) == 5


# -- search ----------------------------------------------------------------------------------


@pytest.fixture
def searchable(catalog: Catalog) -> Catalog:
    catalog.create_many(
        [
            make(
                "orders.daily",
                description="customer orders and refunds",
                tags=["pii"],
                fields=[Field("customer_id", "int")],
            ),
            make("sales-2024", description="sales figures", tags=["finance"], fields=[]),
            make(
                "hr.staff",
                description="employee records",
                tags=["pii", "restricted"],
                fields=[Field("salary", "int")],
            ),
            make("locked.vault", description="locked orders archive", tags=[], fields=[]),
        ]
    )
    return catalog


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("customer", {"orders.daily"}),
        ("refunds", {"orders.daily"}),
        ("CUSTOMER", {"orders.daily"}),
        ("salary", {"hr.staff"}),  # field names are indexed
        ("customer_id", {"orders.daily"}),
        ("restricted", {"hr.staff"}),  # tags are indexed
        ("pii", {"orders.daily", "hr.staff"}),
        ("vault", {"locked.vault"}),  # names are indexed
        ("nothing", set()),
        ("cust*", {"orders.daily"}),  # prefix query
        ("emp*", {"hr.staff"}),
        ("customer AND refunds", {"orders.daily"}),
        ("customer refunds", {"orders.daily"}),  # implicit AND
        ("customer AND sales", set()),
        ("customer OR sales", {"orders.daily", "sales-2024"}),
        ("pii NOT salary", {"orders.daily"}),
        ("orders NOT customer", {"locked.vault"}),
        ('"orders and refunds"', {"orders.daily"}),  # phrase
        ('"refunds and orders"', set()),
        ("name:orders", {"orders.daily"}),  # column filter
        ("description:orders", {"orders.daily", "locked.vault"}),
        ("tags:pii", {"orders.daily", "hr.staff"}),
        ("(customer OR employee) AND pii", {"orders.daily", "hr.staff"}),
        ("NEAR(customer refunds, 3)", {"orders.daily"}),
    ],
)
def test_search_fts_queries(searchable: Catalog, query: str, expected: set[str]) -> None:
    assert searchable.stats().search_backend == "fts5"
    assert set(names(searchable.search(query))) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("orders.daily", {"orders.daily"}),  # '.' is not FTS5 syntax: searched as the words
        ("sales-2024", {"sales-2024"}),
        ('"unbalanced', set()),
        ('customer"', {"orders.daily"}),
        ("customer (", {"orders.daily"}),
        ("(customer", {"orders.daily"}),
        ("customer)", {"orders.daily"}),
        ("customer AND", {"orders.daily"}),  # plain words: 'customer' and 'and'
        ("AND", {"orders.daily"}),
        ("OR", set()),
        ("*", set()),
        ("^", set()),
        ("customer's", set()),
        ("owner:ana", set()),  # no such column: the words 'owner' and 'ana'
        ("NEAR(", set()),
        ("a:b:c", set()),
    ],
)
def test_search_invalid_fts_syntax_falls_back_to_plain_words(
    searchable: Catalog, query: str, expected: set[str]
) -> None:
    assert set(names(searchable.search(query))) == expected


@pytest.mark.parametrize("column", ["locked", "busy", "malformed", "readonly"])
def test_search_falls_back_for_any_unknown_column_name(searchable: Catalog, column: str) -> None:
    # "no such column: locked" is a query error, not a locked database: fall back to words.
    query = f"{column}:orders"
    expected = {"locked.vault"} if column == "locked" else set()
    assert set(names(searchable.search(query))) == expected


def test_search_ranks_the_best_match_first(catalog: Catalog) -> None:
    filler = " ".join(f"word{i}" for i in range(60))
    catalog.create_many(
        [
            make("a.weak", description=f"{filler} invoices {filler}", tags=[], fields=[]),
            make("b.invoices", description="invoices invoices invoices", tags=["invoices"], fields=[]),
        ]
    )
    assert names(catalog.search("invoices")) == ["b.invoices", "a.weak"]


def test_search_limit(catalog: Catalog) -> None:
    catalog.create_many(make(f"d{i}", description="common") for i in range(7))
    assert len(catalog.search("common", limit=3)) == 3
    assert len(catalog.search("common")) == 7


@pytest.mark.parametrize(
    ("query", "limit"),
    [
        ("", 10),
        ("   ", 10),
        ("x" * (limits.QUERY_MAX + 1), 10),
        ("x", 0),
        ("x", limits.PAGE_MAX + 1),
        ("x", True),
    ],
)
def test_search_validates_its_arguments(catalog: Catalog, query: str, limit: Any) -> None:
    with pytest.raises(ValidationError):
        catalog.search(query, limit=limit)


def test_search_accepts_the_longest_query(catalog: Catalog) -> None:
    assert catalog.search("x" * limits.QUERY_MAX) == []


def test_search_follows_saves_and_deletes(catalog: Catalog) -> None:
    first = catalog.create(make("a", description="apples", tags=["red"], fields=[Field("stem", "int")]))
    saved = catalog.save(first.replace(description="pears", tags=["green"], fields=[]), expected_version=1)
    assert catalog.search("apples") == []
    assert catalog.search("red") == []
    assert catalog.search("stem") == []
    assert catalog.search("pears") == [saved]
    assert catalog.search("green") == [saved]
    catalog.delete("a", expected_version=2)
    assert catalog.search("pears") == []


def test_search_matches_non_ascii_words(catalog: Catalog) -> None:
    stored = catalog.create(make("a", description="caf\u00e9 cr\u00e8me \u6771\u4eac"))
    assert catalog.search("caf\u00e9") == [stored]
    assert catalog.search("cafe") == [stored]  # unicode61 folds diacritics


@pytest.fixture
def like_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A catalog created where SQLite has no FTS5: search falls back to LIKE."""
    monkeypatch.setattr(metafuse._schema, "fts5_available", lambda conn: False)
    catalog = Catalog(tmp_path / "like.db")
    yield catalog
    catalog.close()


def test_search_without_fts5_matches_every_word_anywhere(like_catalog: Catalog) -> None:
    assert like_catalog.stats().search_backend == "like"
    like_catalog.create_many(
        [
            make(
                "orders.daily", description="customer orders", tags=["pii"], fields=[Field("cust_id", "int")]
            ),
            make("a_b", description="100% done", tags=[], fields=[]),
            make("axb", description="plain", tags=[], fields=[]),
        ]
    )
    assert names(like_catalog.search("customer")) == ["orders.daily"]
    assert names(like_catalog.search("CUSTOMER pii")) == ["orders.daily"]
    assert names(like_catalog.search("cust_id")) == ["orders.daily"]
    assert names(like_catalog.search("customer missing")) == []
    # LIKE wildcards in the query are literal characters.
    assert names(like_catalog.search("a_b")) == ["a_b"]
    assert names(like_catalog.search("100%")) == ["a_b"]
    assert names(like_catalog.search('"unbalanced (')) == []
    assert len(like_catalog.search("a", limit=1)) == 1


# -- lineage ---------------------------------------------------------------------------------


@pytest.fixture
def chain(catalog: Catalog) -> Catalog:
    """raw <- stage <- clean <- report, plus external upstream 'ext.feed' of raw."""
    catalog.create_many(
        [
            make("raw", upstream=["ext.feed"]),
            make("stage", upstream=["raw"]),
            make("clean", upstream=["stage"]),
            make("report", upstream=["clean"]),
        ]
    )
    return catalog


def test_lineage_upstream_respects_depth(chain: Catalog) -> None:
    assert chain.lineage("report", depth=1) == [LineageEdge("report", "clean", 1)]
    assert chain.lineage("report", depth=2) == [
        LineageEdge("report", "clean", 1),
        LineageEdge("clean", "stage", 2),
    ]
    assert chain.lineage("report") == [
        LineageEdge("report", "clean", 1),
        LineageEdge("clean", "stage", 2),
        LineageEdge("stage", "raw", 3),
    ]
    assert chain.lineage("report", direction="upstream", depth=10) == [
        LineageEdge("report", "clean", 1),
        LineageEdge("clean", "stage", 2),
        LineageEdge("stage", "raw", 3),
        LineageEdge("raw", "ext.feed", 4),
    ]


def test_lineage_downstream_respects_depth(chain: Catalog) -> None:
    assert chain.lineage("raw", direction="downstream", depth=1) == [LineageEdge("stage", "raw", 1)]
    assert chain.lineage("raw", direction="downstream", depth=5) == [
        LineageEdge("stage", "raw", 1),
        LineageEdge("clean", "stage", 2),
        LineageEdge("report", "clean", 3),
    ]


def test_lineage_of_a_leaf(chain: Catalog) -> None:
    assert chain.lineage("report", direction="downstream") == []
    assert chain.lineage("raw") == [LineageEdge("raw", "ext.feed", 1)]


def test_lineage_diamond_is_ordered_by_depth_then_names(catalog: Catalog) -> None:
    catalog.create_many(
        [
            make("src"),
            make("left", upstream=["src"]),
            make("right", upstream=["src"]),
            make("top", upstream=["right", "left"]),
        ]
    )
    assert catalog.lineage("top") == [
        LineageEdge("top", "left", 1),
        LineageEdge("top", "right", 1),
        LineageEdge("left", "src", 2),
        LineageEdge("right", "src", 2),
    ]
    assert catalog.lineage("src", direction="downstream") == [
        LineageEdge("left", "src", 1),
        LineageEdge("right", "src", 1),
        LineageEdge("top", "left", 2),
        LineageEdge("top", "right", 2),
    ]


def test_lineage_walks_a_cycle_once(catalog: Catalog) -> None:
    catalog.create_many([make("a", upstream=["b"]), make("b", upstream=["c"]), make("c", upstream=["a"])])
    expected_up = [LineageEdge("a", "b", 1), LineageEdge("b", "c", 2), LineageEdge("c", "a", 3)]
    assert catalog.lineage("a", depth=limits.LINEAGE_DEPTH_MAX) == expected_up
    expected_down = [LineageEdge("c", "a", 1), LineageEdge("b", "c", 2), LineageEdge("a", "b", 3)]
    assert catalog.lineage("a", direction="downstream", depth=limits.LINEAGE_DEPTH_MAX) == expected_down


def test_lineage_two_cycle_with_save(catalog: Catalog) -> None:
    a = catalog.create(make("a"))
    catalog.create(make("b", upstream=["a"]))
    catalog.save(a.replace(upstream=["b"]), expected_version=1)
    assert catalog.lineage("a", depth=50) == [LineageEdge("a", "b", 1), LineageEdge("b", "a", 2)]


def test_lineage_missing_dataset_is_not_found(chain: Catalog) -> None:
    with pytest.raises(NotFoundError) as caught:
        chain.lineage("ext.feed")  # named as an upstream, but not a dataset here
    assert caught.value.name == "ext.feed"
    with pytest.raises(NotFoundError):
        chain.lineage("nope", direction="downstream")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"direction": "sideways"},
        {"direction": "UPSTREAM"},
        {"depth": 0},
        {"depth": limits.LINEAGE_DEPTH_MAX + 1},
        {"depth": True},
        {"depth": 1.5},
    ],
)
def test_lineage_validates_its_arguments(chain: Catalog, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        chain.lineage("report", **kwargs)


def test_lineage_validates_the_name(chain: Catalog) -> None:
    with pytest.raises(ValidationError):
        chain.lineage("-report")


def test_lineage_edge_is_a_frozen_value() -> None:
    edge = LineageEdge("a", "b", 1)
    assert edge == LineageEdge(downstream="a", upstream="b", depth=1)
    assert hash(edge) == hash(LineageEdge("a", "b", 1))


def test_lineage_works_inside_a_transaction(chain: Catalog) -> None:
    with chain.transaction():
        chain.create(make("dash", upstream=["report"]))
        edges = chain.lineage("dash", depth=2)
    assert edges == [LineageEdge("dash", "report", 1), LineageEdge("report", "clean", 2)]
    assert chain.get("dash") is not None


def test_lineage_of_a_missing_dataset_inside_a_transaction_keeps_the_transaction(chain: Catalog) -> None:
    with chain.transaction():
        chain.create(make("dash"))
        with pytest.raises(NotFoundError):
            chain.lineage("ghost")
        chain.create(make("dash2", upstream=["dash"]))
    assert chain.lineage("dash2") == [LineageEdge("dash2", "dash", 1)]


def test_search_with_bad_syntax_inside_a_transaction_keeps_the_transaction(catalog: Catalog) -> None:
    with catalog.transaction():
        catalog.create(make("a", description="fresh words"))
        assert names(catalog.search('"fresh')) == ["a"]  # sees its own uncommitted write
        catalog.create(make("b"))
    assert names(catalog.list()) == ["a", "b"]


# -- count, version, stats, integrity_check, checkpoint --------------------------------------


def test_count_and_version_track_writes(catalog: Catalog) -> None:
    a = catalog.create(make("a"))
    catalog.create_many([make("b"), make("c")])
    assert (catalog.count, catalog.version) == (3, 3)
    catalog.save(a, expected_version=1)
    assert (catalog.count, catalog.version) == (3, 4)
    catalog.delete("b", expected_version=1)
    assert (catalog.count, catalog.version) == (2, 5)
    with pytest.raises(ConflictError):
        catalog.save(a, expected_version=1)
    assert catalog.version == 5


def test_version_is_shared_between_catalog_objects(catalog: Catalog, other: Catalog) -> None:
    other.create(make("a"))
    assert catalog.version == 1
    assert catalog.count == 1


def test_stats_snapshot(catalog: Catalog, catalog_path: Path) -> None:
    stats = catalog.stats()
    assert isinstance(stats, CatalogStats)
    assert stats.path == str(catalog_path)
    assert stats.open_connections == 1
    assert (stats.cache_size, stats.cache_hits, stats.cache_misses) == (0, 0, 0)
    assert stats.cache_capacity == 1024
    assert stats.cache_freshness == "shared-memory slots + WAL index"
    assert stats.search_backend == "fts5"
    data = stats.to_dict()
    assert data["path"] == str(catalog_path)
    assert set(data) == {
        "path",
        "open_connections",
        "cache_size",
        "cache_capacity",
        "cache_hits",
        "cache_misses",
        "cache_invalidations",
        "cache_freshness",
        "search_backend",
        "pessimistic_updates",
        "group_commits",
        "grouped_writes",
        "location",
        "retention_seconds",
    }


def test_integrity_check_reports_ok(catalog: Catalog) -> None:
    catalog.create_many(make(f"d{i}") for i in range(5))
    assert catalog.integrity_check() == ["ok"]


def test_checkpoint_truncates_the_wal(catalog: Catalog, catalog_path: Path) -> None:
    catalog.create(make("a"))
    wal = Path(f"{catalog_path}-wal")
    assert wal.stat().st_size > 0
    assert catalog.checkpoint() is True
    assert wal.stat().st_size == 0
    assert catalog.get("a") is not None


def test_checkpoint_reports_false_while_a_reader_holds_the_wal(catalog_path: Path) -> None:
    with Catalog(catalog_path, busy_timeout=0.05) as catalog:
        catalog.create(make("a"))
        reader = sqlite3.connect(catalog_path, isolation_level=None)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM datasets").fetchone()
            catalog.create(make("b"))
            assert catalog.checkpoint() is False
        finally:
            reader.execute("COMMIT")
            reader.close()
        assert catalog.checkpoint() is True


# -- transactions ----------------------------------------------------------------------------


def test_transaction_commits_at_the_end_of_the_outer_block(catalog: Catalog, other: Catalog) -> None:
    with catalog.transaction():
        catalog.create(make("a"))
        catalog.create(make("b"))
        assert catalog.get("a") is not None  # this connection sees its own writes
        assert other.get("a") is None  # others do not, until the commit
    assert names(other.list()) == ["a", "b"]
    assert other.version == 2


class Abort(Exception):
    """Raised at the end of a transaction block to make it roll back."""


def aborted(catalog: Catalog, body: Callable[[], object]) -> None:
    """Run `body` in a transaction block that then raises `Abort`; check that `Abort` came out."""

    def block() -> None:
        with catalog.transaction():
            body()
            raise Abort

    with pytest.raises(Abort):
        block()


def test_transaction_rolls_back_everything_on_an_exception(catalog: Catalog) -> None:
    catalog.create(make("keep"))

    def writes() -> None:
        catalog.create(make("a"))
        catalog.delete("keep", expected_version=1)

    aborted(catalog, writes)
    assert catalog.get("a") is None
    assert catalog.get("keep") is not None
    assert catalog.version == 1


def test_nested_transaction_rolls_back_only_the_inner_block(catalog: Catalog, other: Catalog) -> None:
    seen_inside: list[Dataset | None] = []

    def inner() -> None:
        catalog.create(make("inner"))
        seen_inside.append(catalog.get("inner"))

    with catalog.transaction():
        catalog.create(make("outer"))
        aborted(catalog, inner)
        assert catalog.get("inner") is None
        catalog.create(make("after"))
    assert seen_inside[0] is not None
    assert names(other.list()) == ["after", "outer"]


def test_nested_transactions_three_deep(catalog: Catalog) -> None:
    def five_and_six() -> None:
        catalog.create(make("five"))
        with catalog.transaction():
            catalog.create(make("six"))

    with catalog.transaction():
        catalog.create(make("one"))
        with catalog.transaction():
            catalog.create(make("two"))
            aborted(catalog, lambda: catalog.create(make("three")))
            with catalog.transaction():
                catalog.create(make("four"))
        aborted(catalog, five_and_six)
    assert names(catalog.list()) == ["four", "one", "two"]


def test_inner_block_error_propagating_out_rolls_back_everything(catalog: Catalog) -> None:
    def outer() -> None:
        with catalog.transaction():
            catalog.create(make("outer"))
            with catalog.transaction():
                catalog.create(make("inner"))
                raise Abort

    with pytest.raises(Abort):
        outer()
    assert catalog.count == 0


def test_a_conflict_caught_inside_a_transaction_keeps_the_other_writes(catalog: Catalog) -> None:
    catalog.create(make("a"))
    with catalog.transaction():
        catalog.create(make("b"))
        with pytest.raises(ConflictError):
            catalog.create_many([make("c"), make("a")])
        catalog.create(make("d"))
    assert names(catalog.list()) == ["a", "b", "d"]


def test_transaction_is_usable_again_after_a_rollback(catalog: Catalog) -> None:
    aborted(catalog, lambda: catalog.create(make("a")))
    with catalog.transaction():
        catalog.create(make("a"))
    assert catalog.get("a") is not None


def test_reads_after_a_rolled_back_write_are_not_served_from_cache(catalog: Catalog) -> None:
    first = catalog.create(make("a", description="committed"))
    assert catalog.get("a") == first
    seen_inside: list[Dataset | None] = []

    def write_and_read() -> None:
        catalog.save(first.replace(description="rolled back"), expected_version=1)
        seen_inside.append(catalog.get("a"))

    aborted(catalog, write_and_read)
    inside = seen_inside[0]
    assert inside is not None
    assert inside.description == "rolled back"
    assert catalog.get("a") == first


# -- close -----------------------------------------------------------------------------------


def test_close_is_idempotent_and_later_calls_raise_closed(catalog_path: Path) -> None:
    catalog = Catalog(catalog_path)
    catalog.create(make("a"))
    catalog.close()
    catalog.close()
    assert catalog.stats().open_connections == 0
    calls: list[Callable[[], object]] = [
        lambda: catalog.get("a"),
        catalog.list,
        lambda: catalog.search("a"),
        lambda: catalog.lineage("a"),
        lambda: catalog.count,
        lambda: catalog.version,
        catalog.integrity_check,
        catalog.checkpoint,
        lambda: catalog.create(make("b")),
        lambda: catalog.save(make("a"), expected_version=1),
        lambda: catalog.delete("a", expected_version=1),
        lambda: catalog.update("a", lambda d: d),
    ]
    for call in calls:
        with pytest.raises(CatalogClosedError) as caught:
            call()
        assert caught.value.path == str(catalog_path)
    with pytest.raises(CatalogClosedError), catalog.transaction():
        pass


def test_context_manager_closes(catalog_path: Path) -> None:
    with Catalog(catalog_path) as catalog:
        assert isinstance(catalog, Catalog)
        catalog.create(make("a"))
    with pytest.raises(CatalogClosedError):
        catalog.get("a")
    assert catalog.stats().open_connections == 0


def test_context_manager_closes_on_an_exception(catalog_path: Path) -> None:
    with pytest.raises(RuntimeError), Catalog(catalog_path) as catalog:
        raise RuntimeError
    with pytest.raises(CatalogClosedError):
        catalog.count  # noqa: B018


# -- read-only -------------------------------------------------------------------------------


def test_read_only_catalog_reads_but_refuses_writes(catalog: Catalog, catalog_path: Path) -> None:
    stored = catalog.create(make("a"))
    with Catalog(catalog_path, read_only=True) as reader:
        assert reader.read_only is True
        assert reader.get("a") == stored
        assert names(reader.search("rows")) == ["a"]
        assert reader.stats().cache_freshness == "off"
        assert reader.stats().cache_capacity == 0
        with pytest.raises(CatalogFileError, match="read-only") as caught:
            reader.create(make("b"))
        assert caught.value.path == str(catalog_path)
        with pytest.raises(CatalogFileError):
            reader.save(stored, expected_version=1)
        with pytest.raises(CatalogFileError):
            reader.delete("a", expected_version=1)
        with pytest.raises(CatalogFileError), reader.transaction():
            pass
    assert catalog.get("a") == stored
    assert catalog.version == 1


def test_read_only_catalog_sees_later_writes(catalog: Catalog, catalog_path: Path) -> None:
    first = catalog.create(make("a"))
    with Catalog(catalog_path, read_only=True) as reader:
        assert reader.get("a") == first
        saved = catalog.save(first.replace(description="new"), expected_version=1)
        assert reader.get("a") == saved


def test_read_only_refuses_a_missing_file_without_creating_it(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(CatalogFileError) as caught:
        Catalog(path, read_only=True)
    assert caught.value.path == str(path)
    assert not path.exists()


# -- text round trips ------------------------------------------------------------------------

TRICKY_TEXT = [
    "it's",
    'say "hi"',
    "'; DROP TABLE datasets; --",
    '"); DELETE FROM tags; --',
    "Robert'); DROP TABLE fields;--",
    "100% _done_ \\ back\\slash",
    "emoji \U0001f600\U0001f680 and \u2764\ufe0f",
    "\u65e5\u672c\u8a9e \u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    "\u0440\u0443\u0441\u0441\u043a\u0438\u0439 \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac",
    "caf\u00e9 na\u00efve \u00c5ngstr\u00f6m",
    "line\nbreak\ttab\rreturn",
    "nul \x00 inside",
    "  leading and trailing spaces  ",
    'json {"a": [1, 2]} and \\u0041',
    "zero\u200bwidth \ufeffbom",
    "NULL",
    "null",
]


@pytest.mark.parametrize("text", TRICKY_TEXT)
def test_any_text_round_trips_verbatim(catalog: Catalog, other: Catalog, text: str) -> None:
    dataset = make(
        "tricky",
        uri=f"s3://bucket/{text}",
        format=text,
        description=text,
        owner=text,
        fields=[Field("f", text, description=text)],
    )
    stored = catalog.create(dataset)
    assert stored.content() == dataset.content()
    fetched = other.get("tricky")
    assert fetched is not None
    assert fetched.content() == dataset.content()
    assert fetched.description == text
    assert fetched.fields[0].data_type == text
    assert fetched.fields[0].description == text
    assert names(other.list(owner=text)) == ["tricky"]
    assert other.integrity_check() == ["ok"]
    with contextlib.closing(sqlite3.connect(catalog.path)) as raw:
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
    assert {"datasets", "fields", "tags", "lineage", "catalog_meta"} <= tables


@settings(max_examples=40)
@given(text=st.text(min_size=1, max_size=40))
def test_generated_text_round_trips_verbatim(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("text") / "c.db"
    with Catalog(path, synchronous="NORMAL") as writer, Catalog(path, cache_size=0) as reader:
        dataset = make(
            "t", format=text, description=text, owner=text, fields=[Field("f", text, description=text)]
        )
        writer.create(dataset)
        fetched = reader.get("t")
        assert fetched is not None
        assert fetched.content() == dataset.content()


def test_text_that_cannot_be_stored_is_a_validation_error(catalog: Catalog) -> None:
    # A lone surrogate is a valid Python str (json.loads makes one from "\ud800") but not UTF-8.
    with pytest.raises(ValidationError):
        catalog.create(make("a", description="\ud800"))
    assert catalog.count == 0


def test_largest_dataset_round_trips(catalog: Catalog, other: Catalog) -> None:
    dataset = make(
        "n" * limits.NAME_MAX,
        description="d" * limits.DESCRIPTION_MAX,
        tags=[f"t{i}" for i in range(limits.TAGS_MAX)],
        fields=[Field(f"f{i:04d}", "int", i % 2 == 0, f"field {i}") for i in range(limits.FIELDS_MAX)],
        upstream=[f"up{i}" for i in range(limits.UPSTREAM_MAX)],
        size_bytes=2**63 - 1,
        row_count=0,
    )
    catalog.create(dataset)
    fetched = other.get(dataset.name)
    assert fetched is not None
    assert fetched.content() == dataset.content()
    assert len(other.lineage(dataset.name, depth=1)) == limits.UPSTREAM_MAX


@pytest.mark.parametrize("expected", [None, -1, "1", True])
def test_expected_version_must_be_a_whole_number(catalog: Catalog, expected: object) -> None:
    stored = catalog.create(make("a.b"))
    with pytest.raises(ValidationError, match="expected_version"):
        catalog.save(stored, expected_version=expected)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="expected_version"):
        catalog.delete("a.b", expected_version=expected)  # type: ignore[arg-type]
    assert catalog.get("a.b") == stored
