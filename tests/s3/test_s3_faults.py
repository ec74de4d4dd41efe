"""How S3Store reports each fault, one request at a time, through the fault proxy.

Each fault is injected on every request (probability 1), so each test is deterministic; the
store's true state is then read around the proxy, straight from the server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from metafuse.objectstore import (
    CREATE,
    OVERWRITE,
    AlreadyExists,
    AmbiguousWrite,
    NotFound,
    ObjectStore,
    StoreInaccessible,
    StoreUnavailable,
    open_store,
    update,
)
from metafuse.objectstore.s3 import S3Store
from metafuse.objectstore.testing import FaultPlan, FaultProxy, MotoServer

from ._support import S3Location, S3Server


@pytest.fixture
def proxy(s3_location: S3Location) -> Iterator[FaultProxy]:
    if not s3_location.endpoint_url.startswith("http://"):
        pytest.skip(f"the fault proxy speaks plain HTTP, not {s3_location.endpoint_url!r}")
    with FaultProxy(s3_location.endpoint_url) as running:
        yield running


@pytest.fixture
def faulty(proxy: FaultProxy, s3_location: S3Location) -> Iterator[ObjectStore]:
    store = open_store(s3_location.url(endpoint_url=proxy.endpoint_url))
    yield store
    store.close()


@pytest.fixture
def direct(s3_location: S3Location) -> Iterator[ObjectStore]:
    store = open_store(s3_location.url())
    yield store
    store.close()


def put_requests(proxy: FaultProxy) -> int:
    counts, _, _ = proxy.snapshot()
    return sum(n for (method, _), n in counts.items() if method == "PUT")


def test_a_put_whose_reply_is_lost_is_ambiguous_and_not_resent(
    proxy: FaultProxy, faulty: ObjectStore, direct: ObjectStore
) -> None:
    proxy.plan = FaultPlan(drop_after=1.0)
    with pytest.raises(AmbiguousWrite):
        faulty.put("k", b"v", CREATE)
    assert put_requests(proxy) == 1  # a resend would come back 412 and read as a lost race
    assert direct.get("k").data == b"v"


def test_a_put_answered_500_after_applying_is_ambiguous(
    proxy: FaultProxy, faulty: ObjectStore, direct: ObjectStore
) -> None:
    proxy.plan = FaultPlan(error_after=1.0)
    with pytest.raises(AmbiguousWrite):
        faulty.put("k", b"v", CREATE)
    assert direct.get("k").data == b"v"


def test_a_put_answered_503_without_applying_is_ambiguous_too(
    proxy: FaultProxy, faulty: ObjectStore, direct: ObjectStore
) -> None:
    # From the client's side a 503 looks the same whether or not the write happened.
    proxy.plan = FaultPlan(unavailable=1.0)
    with pytest.raises(AmbiguousWrite):
        faulty.put("k", b"v", CREATE)
    with pytest.raises(NotFound):
        direct.get("k")


def test_a_409_conflict_is_retried_then_reported_as_not_written(
    proxy: FaultProxy, faulty: ObjectStore, direct: ObjectStore
) -> None:
    proxy.plan = FaultPlan(conflict=1.0)
    with pytest.raises(StoreUnavailable, match="ConditionalRequestConflict"):
        faulty.put("k", b"v", CREATE)
    assert put_requests(proxy) > 1
    with pytest.raises(NotFound):
        direct.get("k")


def test_reads_are_retried_through_transient_faults(proxy: FaultProxy, faulty: ObjectStore) -> None:
    faulty.put("k", b"v", CREATE)
    # Single-threaded and seeded: the same GETs fail in every run (30% of them).
    proxy.plan = FaultPlan(unavailable=0.2, drop_after=0.1)
    proxy.reset_counts()
    for _ in range(20):
        assert faulty.get("k").data == b"v"
    counts, _, _ = proxy.snapshot()
    assert counts[("GET", "unavailable")] + counts[("GET", "drop_after")] > 0
    assert sum(counts.values()) > 20


@pytest.mark.parametrize("fault", ["unavailable", "drop_after", "error_after"])
def test_a_read_that_keeps_failing_gives_up_after_six_attempts(
    proxy: FaultProxy, faulty: ObjectStore, fault: str
) -> None:
    faulty.put("k", b"v", CREATE)
    proxy.plan = FaultPlan(**{fault: 1.0})
    proxy.reset_counts()
    with pytest.raises(StoreUnavailable, match="after 6 attempts"):
        faulty.get("k")
    counts, _, _ = proxy.snapshot()
    assert counts == {("GET", fault): 6}


def test_a_lost_create_is_already_exists(proxy: FaultProxy, faulty: ObjectStore) -> None:
    faulty.put("k", b"first", CREATE)
    with pytest.raises(AlreadyExists):
        faulty.put("k", b"second", CREATE)
    assert put_requests(proxy) == 2


@pytest.fixture
def gone(s3_server: S3Server, s3_location: S3Location) -> Iterator[ObjectStore]:
    """A store whose bucket is deleted after it was used (on an external store: one never made)."""
    import boto3

    if s3_server.external is None:
        store = open_store(s3_location.url())
        store.put("log/1", b"v", CREATE)
        client = boto3.client("s3", endpoint_url=s3_location.endpoint_url, region_name="us-east-1")
        client.delete_object(Bucket=s3_location.bucket, Key=f"{s3_location.prefix}/log/1")
        client.delete_bucket(Bucket=s3_location.bucket)
        client.close()
    else:
        missing = S3Location(f"metafuse-gone-{uuid.uuid4().hex[:16]}", "t", s3_location.options)
        store = open_store(missing.url())
    yield store
    store.close()


def test_a_deleted_bucket_is_reported_never_read_as_empty(gone: ObjectStore) -> None:
    assert isinstance(gone, S3Store)
    calls: dict[str, Callable[[], object]] = {
        "get": lambda: gone.get("log/1"),
        "list": lambda: gone.list("log/"),
        "list_meta": lambda: gone.list_meta("log/", limit=2),
        "create": lambda: gone.put("log/2", b"v", CREATE),
        "update": lambda: gone.put("log/1", b"v", update('"abc"')),
        "overwrite": lambda: gone.put("log/1", b"v", OVERWRITE),
        "delete": lambda: gone.delete("log/1"),
    }
    for name, call in calls.items():
        with pytest.raises(StoreInaccessible) as caught:
            call()
        assert caught.value.bucket == gone.bucket, name
        assert f"bucket {gone.bucket!r} does not exist" in str(caught.value), name
        assert not isinstance(caught.value, NotFound)
    # A HEAD of a missing bucket is a bare 404, the same as a missing key: documented, and why
    # the log finds its end with a LIST.
    with pytest.raises(NotFound):
        gone.head("log/1")


def test_credentials_in_the_endpoint_show_nowhere(proxy: FaultProxy, s3_location: S3Location) -> None:
    # moto ignores them; the proxy forwards them. The store works, and its URL hides them.
    host = proxy.endpoint_url.split("://", 1)[1]
    store = open_store(s3_location.url(endpoint_url=f"http://keyid:s3cr3t@{host}"))
    assert "s3cr3t" not in store.url
    assert "keyid" not in store.url
    assert f"endpoint_url=http://***@{host}" in store.url
    assert "s3cr3t" not in repr(store)
    store.put("k", b"v", CREATE)
    # botocore names the endpoint URL in its own messages: a dropped reply, and a closed port.
    proxy.plan = FaultPlan(drop_after=1.0)
    with pytest.raises(AmbiguousWrite) as ambiguous:
        store.put("k2", b"v", CREATE)
    with pytest.raises(StoreUnavailable) as unavailable:
        store.get("k")
    store.close()
    closed = open_store(s3_location.url(endpoint_url="http://keyid:s3cr3t@127.0.0.1:9"))
    with pytest.raises(StoreUnavailable) as refused:
        closed.get("k")
    closed.close()
    for error in (ambiguous.value, unavailable.value, refused.value):
        assert "s3cr3t" not in str(error), str(error)
        assert "keyid" not in str(error), str(error)
        assert error.__cause__ is None or "s3cr3t" not in str(error.__cause__)
    assert "***@" in str(refused.value)


def test_refused_credentials_are_reported_by_every_request(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A moto server of its own that checks signatures: after the one unauthenticated request
    # its start-up check makes, the made-up "testing" keys are an unknown access key (403).
    if s3_server.external is not None:
        pytest.skip("needs a moto server of its own; METAFUSE_S3_TEST_URL names an external store")
    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "1")
    with MotoServer(log_path=str(tmp_path / "moto.log")) as server:
        store = open_store(f"s3://bucket/t?endpoint_url={server.endpoint_url}&region=us-east-1")
        calls: dict[str, Callable[[], object]] = {
            "head": lambda: store.head("k"),
            "get": lambda: store.get("k"),
            "list_meta": lambda: store.list_meta("k"),
            "create": lambda: store.put("k", b"v", CREATE),
            "delete": lambda: store.delete("k"),
        }
        for name, call in calls.items():
            with pytest.raises(StoreInaccessible, match="access to bucket 'bucket' denied") as caught:
                call()
            assert "HTTP 403" in str(caught.value), name
        store.close()
