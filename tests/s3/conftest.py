"""Fixtures for the object-store tests: a real S3-compatible server and both backends.

By default a session starts moto's S3 server (single-threaded, see
metafuse/objectstore/_moto_single.py) as a subprocess on a free loopback port and gives each test
its own bucket. With METAFUSE_S3_TEST_URL=s3://bucket/prefix?endpoint_url=...&region=... set,
the same tests run against that store instead, each under its own fresh prefix (removed after).

Missing boto3 or moto fails these tests with the command that installs them; it never skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from metafuse.objectstore import MissingDependency, ObjectStore, open_store
from metafuse.objectstore.testing import TEST_CREDENTIALS, MotoServer
from metafuse.objectstore.url import parse_s3_url

from ._support import S3Location, S3Server

TEST_URL_ENV = "METAFUSE_S3_TEST_URL"
"""Run the S3 tests against this s3:// URL instead of a moto server started for the session."""

MOTO_CREDENTIALS = TEST_CREDENTIALS
"""The dummy credentials the test server documents (moto accepts any; boto3 needs some)."""


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """The session's S3 server: moto on loopback, or METAFUSE_S3_TEST_URL's store."""
    try:
        import boto3  # noqa: F401
    except ImportError:
        pytest.fail(
            "the S3 tests need boto3: pip install -e '.[s3,test]' (or run `nox -s s3`)", pytrace=False
        )
    external = os.environ.get(TEST_URL_ENV, "").strip()
    if external:
        bucket, prefix, options = parse_s3_url(external)
        yield S3Server(str(options.get("endpoint_url", "")), S3Location(bucket, prefix, options))
        return
    with pytest.MonkeyPatch.context() as patch:
        for name, value in MOTO_CREDENTIALS.items():
            patch.setenv(name, value)  # child processes inherit them too
        server = MotoServer(log_path=str(tmp_path_factory.mktemp("moto") / "moto.log"))
        try:
            endpoint = server.start()
        except MissingDependency as exc:
            pytest.fail(f"{exc} (or run `nox -s s3`)", pytrace=False)
        try:
            yield S3Server(endpoint, None)
        finally:
            server.stop()


@pytest.fixture
def s3_location(s3_server: S3Server) -> Iterator[S3Location]:
    """A bucket (moto) or prefix (external store) no other test uses."""
    import boto3

    if s3_server.external is None:
        bucket = f"metafuse-test-{uuid.uuid4().hex[:16]}"
        client = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        client.close()
        yield S3Location(bucket, "t", {"endpoint_url": s3_server.endpoint_url, "region": "us-east-1"})
        return
    base = s3_server.external
    location = S3Location(
        base.bucket, "/".join(p for p in (base.prefix, uuid.uuid4().hex) if p), base.options
    )
    yield location
    cleanup = open_store(location.url())
    for key in cleanup.list():
        cleanup.delete(key)
    cleanup.close()


@pytest.fixture(scope="session")
def threaded_s3_endpoint(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto served in parallel (writes to one key in turn), beside the session's server.

    With METAFUSE_S3_TEST_URL set, that store's endpoint: a real store serves in parallel.
    """
    if s3_server.external is not None:
        yield s3_server.endpoint_url
        return
    server = MotoServer(log_path=str(tmp_path_factory.mktemp("moto-threaded") / "moto.log"), threaded=True)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(params=["local", "s3", "s3-threaded"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store's URL: a local directory, S3 (moto or METAFUSE_S3_TEST_URL), and moto
    served in parallel (the contract must hold on the server the benchmarks use)."""
    if request.param == "local":
        return str(tmp_path / "store")
    location: S3Location = request.getfixturevalue("s3_location")
    if request.param == "s3-threaded" and location.options.get("endpoint_url"):
        import boto3

        endpoint = request.getfixturevalue("threaded_s3_endpoint")
        if endpoint != location.options["endpoint_url"]:
            bucket = f"metafuse-test-{uuid.uuid4().hex[:16]}"
            client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            client.create_bucket(Bucket=bucket)
            client.close()
            return S3Location(bucket, "t", {**location.options, "endpoint_url": endpoint}).url()
    return location.url()


@pytest.fixture
def store(store_url: str) -> Iterator[ObjectStore]:
    """The store `store_url` names, closed after the test."""
    opened = open_store(store_url)
    yield opened
    opened.close()
