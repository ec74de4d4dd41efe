"""How S3Store reports each fault, one request at a time, through the fault proxy.

Each fault is injected on every request (probability 1), so each test is deterministic; the
store's true state is then read around the proxy, straight from the server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from metafuse.objectstore import (
    CREATE,
    AlreadyExists,
    AmbiguousWrite,
    NotFound,
    ObjectStore,
    StoreUnavailable,
    open_store,
)
from metafuse.objectstore.testing import FaultPlan, FaultProxy

from ._support import S3Location


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
