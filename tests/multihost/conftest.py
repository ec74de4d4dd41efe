"""Fixtures for the Locust tests: a moto S3 server on loopback, started once for the session.

Missing moto, boto3 or Locust fails these tests with the command that installs them; it never
skips (`nox -s locust` installs them all).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from metafuse.objectstore import MissingDependency
from metafuse.objectstore.testing import TEST_CREDENTIALS, MotoServer

MOTO_CREDENTIALS = TEST_CREDENTIALS
"""The dummy credentials the test server documents (moto accepts any; boto3 needs some)."""


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a threaded moto S3 server; its credentials are set in the environment.

    Threaded: under load the single-threaded server answered one call at a time, so a run made
    a few dozen calls; the threaded one answers in parallel and still writes one key at a time
    (`metafuse.objectstore._moto_single`), so conditional writes stay exact.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name, value in MOTO_CREDENTIALS.items():
            patch.setenv(name, value)  # the Locust processes inherit them
        server = MotoServer(log_path=str(tmp_path_factory.mktemp("moto") / "moto.log"), threaded=True)
        try:
            endpoint = server.start()
        except MissingDependency as exc:
            pytest.fail(f"{exc} (or run `nox -s locust`)", pytrace=False)
        try:
            yield endpoint
        finally:
            server.stop()


@pytest.fixture
def s3_catalog(moto_endpoint: str) -> str:
    """The URL of a catalog in a bucket of its own on the session's moto server."""
    import boto3

    bucket = f"metafuse-locust-{uuid.uuid4().hex[:16]}"
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    client.close()
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    return f"s3://{bucket}/catalog?endpoint_url={moto_endpoint}&region=us-east-1"
