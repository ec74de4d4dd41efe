"""A catalog on S3 through the fault proxy: ambiguous commits are resolved, never guessed.

Four clients (each `Catalog.open`, each its own replica) update one counter through a proxy that
injects 10% faults: delays, 503s, 409s, and responses dropped or answered 500 *after* the server
applied the request. Every update the catalog acknowledged must be in the log exactly once;
one it reported as failed must not be; one it reported as unknown may be either. The counter,
read around the proxy, must equal the number of updates that landed.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from metafuse import Catalog, Dataset
from metafuse.errors import CommitUnknownError, StorageError
from metafuse.objectstore import CommitLog, open_store
from metafuse.objectstore.testing import FaultPlan, FaultProxy

from ._support import S3Location

CLIENTS = 4
UPDATES = 12


@pytest.fixture
def proxy(s3_location: S3Location) -> Iterator[FaultProxy]:
    if not s3_location.endpoint_url.startswith("http://"):
        pytest.skip(f"the fault proxy speaks plain HTTP, not {s3_location.endpoint_url!r}")
    with FaultProxy(s3_location.endpoint_url, seed=7) as running:
        yield running


def _bump(dataset: Dataset) -> Dataset:
    return dataset.replace(row_count=(dataset.row_count or 0) + 1)


def test_under_ten_percent_faults_no_update_is_lost_or_applied_twice(
    proxy: FaultProxy, s3_location: S3Location
) -> None:
    direct_url = s3_location.url()
    with Catalog.open(direct_url) as setup:
        setup.create(Dataset(name="faults.counter", uri="s3://data/counter", row_count=0))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    proxy.plan = FaultPlan.mixed(0.10, max_delay=0.05)

    def client() -> None:
        with Catalog.open(s3_location.url(endpoint_url=proxy.endpoint_url)) as catalog:
            for _ in range(UPDATES):
                try:
                    catalog.update("faults.counter", _bump, max_attempts=3, backoff=0.001)
                    outcome = "acknowledged"
                except CommitUnknownError:
                    outcome = "unknown"
                except StorageError:
                    outcome = "failed"
                with lock:
                    outcomes[outcome] += 1

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts, _, _ = proxy.snapshot()
    proxy.plan = FaultPlan()
    injected = {fault for (method, fault), n in counts.items() if method == "PUT" and fault and n}
    assert {"drop_after", "error_after", "unavailable", "conflict"} <= injected, counts
    assert sum(outcomes.values()) == CLIENTS * UPDATES

    with open_store(direct_url) as store:
        entries = CommitLog(store).tail()
    ids = Counter(entry.commit_id for entry in entries)
    assert [entry.sequence for entry in entries] == list(range(1, len(entries) + 1))
    assert max(ids.values()) == 1, "a commit was written twice"
    updates_landed = len(entries) - 1  # entry 1 is the create
    low = outcomes["acknowledged"]
    assert low <= updates_landed <= low + outcomes["unknown"], (outcomes, updates_landed)
    with Catalog.open(direct_url) as reader:
        counter = reader.get("faults.counter")
    assert counter is not None
    assert counter.row_count == updates_landed
    assert counter.version == updates_landed + 1


def _counter(url: str, name: str) -> int:
    with Catalog.open(url) as reader:
        found = reader.get(name)
    assert found is not None
    return found.row_count or 0


def test_a_put_delivered_late_is_settled_before_the_answer(
    proxy: FaultProxy, s3_location: S3Location
) -> None:
    # Every PUT is answered 500 and reaches the store half a second later: the commit re-sends
    # its entry to the same number until a read finds it there, then answers once.
    direct_url = s3_location.url()
    with Catalog.open(direct_url) as setup:
        setup.create(Dataset(name="late.counter", uri="s3://data/counter", row_count=0))
    proxy.plan = FaultPlan(late=1.0, late_delay=0.5)
    with Catalog.open(s3_location.url(endpoint_url=proxy.endpoint_url)) as catalog:
        catalog.update("late.counter", _bump, max_attempts=1)
    proxy.plan = FaultPlan()
    counts, _, _ = proxy.snapshot()
    assert counts[("PUT", "late")] >= 1
    proxy.release_late()
    assert _counter(direct_url, "late.counter") == 1
    with open_store(direct_url) as store:
        ids = Counter(entry.commit_id for entry in CommitLog(store).tail())
    assert max(ids.values()) == 1


def test_a_commit_unknown_past_its_budget_is_settled_never_applied_twice(
    proxy: FaultProxy, s3_location: S3Location
) -> None:
    # The PUTs are held until released: the commit exhausts its settle budget and says
    # "unknown"; a read then says "not landed", which a retry would take for "failed". The held
    # copies arrive; `settle` finds the commit landed, and the counter moved once.
    direct_url = s3_location.url()
    with Catalog.open(direct_url) as setup:
        setup.create(Dataset(name="late.counter", uri="s3://data/counter", row_count=0))
    proxy.plan = FaultPlan(late=1.0, late_delay=None)
    with Catalog.open(s3_location.url(endpoint_url=proxy.endpoint_url), settle_seconds=0) as catalog:
        with pytest.raises(CommitUnknownError) as caught:
            catalog.update("late.counter", _bump, max_attempts=1)
        proxy.plan = FaultPlan()
        assert _counter(direct_url, "late.counter") == 0  # not landed, yet
        assert proxy.release_late() >= 2  # the first copy lands; the re-sent ones meet 412
        assert catalog.settle(caught.value) is True
        assert catalog.settle(caught.value) is True  # the same answer, for good
        found = catalog.get("late.counter")
        assert found is not None
        assert found.row_count == 1
    assert _counter(direct_url, "late.counter") == 1


def test_opening_an_existing_catalog_reads_its_marker_and_rides_out_faults(
    proxy: FaultProxy, s3_location: S3Location
) -> None:
    # An open of an existing catalog is one GET of catalog.json (no create answered 412), and
    # a 503 on it is retried rather than failing the open.
    with Catalog.open(s3_location.url()) as setup:
        setup.create(Dataset(name="open.d", uri="s3://data/d"))
    proxy.plan = FaultPlan(unavailable=0.2)  # S3Store retries each request up to 6 times
    for _ in range(5):
        with Catalog.open(s3_location.url(endpoint_url=proxy.endpoint_url), create=False) as catalog:
            assert catalog.get("open.d") is not None
    proxy.plan = FaultPlan()
    counts, _, _ = proxy.snapshot()
    assert counts[("GET", "unavailable")] + counts[("HEAD", "unavailable")] >= 1
    assert not [key for key in counts if key[0] == "PUT"]


def test_credentials_in_the_endpoint_never_show(s3_location: S3Location) -> None:
    endpoint = s3_location.endpoint_url.replace("http://", "http://someone:hunter2@")
    url = s3_location.url(endpoint_url=endpoint)
    try:
        with Catalog.open(url) as catalog:
            shown = [catalog.location, repr(catalog)]
            catalog.create(Dataset(name="secret.d", uri="s3://data/d"))
    except StorageError as error:  # a store that refuses the credentials must not echo them
        shown = [str(error)]
    assert all("hunter2" not in text for text in shown), shown


def test_a_deleted_bucket_is_an_error_on_the_next_read_never_a_stale_answer(s3_location: S3Location) -> None:
    import boto3

    with Catalog.open(s3_location.url()) as catalog:
        catalog.create(Dataset(name="gone.d", uri="s3://data/d"))
        assert catalog.get("gone.d") is not None
        client = boto3.client("s3", endpoint_url=s3_location.endpoint_url, region_name="us-east-1")
        for item in client.list_objects_v2(Bucket=s3_location.bucket).get("Contents", []):
            client.delete_object(Bucket=s3_location.bucket, Key=item["Key"])
        client.delete_bucket(Bucket=s3_location.bucket)
        client.close()
        with pytest.raises(StorageError, match=s3_location.bucket):
            catalog.get("gone.d")
        with pytest.raises(StorageError, match=s3_location.bucket):
            catalog.create(Dataset(name="gone.e", uri="s3://data/e"))
