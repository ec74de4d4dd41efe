"""Store URLs, key rules, the missing-boto3 message and the local backend's basics (no moto needed).

The full contract suite, run against both backends and a real S3-compatible server, is tests/s3.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from metafuse.errors import CatalogError
from metafuse.objectstore import (
    CREATE,
    OVERWRITE,
    AlreadyExists,
    InvalidKey,
    InvalidStoreURL,
    LocalDirStore,
    MissingDependency,
    NotFound,
    PreconditionFailed,
    StoreInaccessible,
    StoreUnavailable,
    check_key,
    open_store,
    redact,
    update,
)
from metafuse.objectstore.url import parse_s3_url


def test_a_directory_path_and_a_file_url_open_a_local_store(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path / "a")), LocalDirStore)
    store = open_store(f"file://{tmp_path}/b")
    assert isinstance(store, LocalDirStore)
    assert store.url == f"file://{tmp_path}/b"


def test_an_s3_url_is_split_into_bucket_prefix_and_options() -> None:
    bucket, prefix, options = parse_s3_url(
        "s3://my-bucket/cat/alog?endpoint_url=http://127.0.0.1:9000&region=us-east-1&page_size=5"
    )
    assert (bucket, prefix) == ("my-bucket", "cat/alog")
    assert options == {"endpoint_url": "http://127.0.0.1:9000", "region": "us-east-1", "page_size": 5}
    assert parse_s3_url("s3://bucket") == ("bucket", "", {})


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("", "empty"),
        ("gs://bucket/x", "scheme 'gs'"),
        ("s3:///prefix", "no bucket"),
        ("s3://My_Bucket/x", "bucket 'My_Bucket'"),
        ("s3://ab/x", "bucket 'ab'"),
        ("s3://user@bucket/x", "the bucket name holds credentials"),
        ("s3://bucket/a//b", "prefix 'a//b'"),
        ("s3://bucket/x?endpoint=http://h", "parameter 'endpoint' is unknown"),
        ("s3://bucket/x?region=us-east-1&region=eu-west-1", "parameter 'region' is given twice"),
        ("s3://bucket/x?region=", "parameter 'region' is empty"),
        ("s3://bucket/x?region=US_EAST", "region 'US_EAST'"),
        ("s3://bucket/x?endpoint_url=ftp://h", "endpoint_url 'ftp://h'"),
        ("s3://bucket/x?endpoint_url=http://h:99999", "endpoint_url 'http://h:99999'"),
        ("s3://bucket/x?page_size=0", "page_size '0'"),
        ("s3://bucket/x?addressing_style=dns", "addressing_style 'dns'"),
        ("s3://bucket/x#frag", "fragment"),
        ("file://remotehost/dir", "host 'remotehost'"),
        ("file:///dir?x=1", "no query"),
    ],
)
def test_a_bad_url_names_the_part_that_is_wrong(url: str, names: str) -> None:
    with pytest.raises(InvalidStoreURL) as caught:
        open_store(url)
    message = str(caught.value)
    assert names in message
    assert "\n" not in message
    assert isinstance(caught.value, CatalogError)


def test_without_boto3_an_s3_store_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # makes `import boto3` raise ImportError
    with pytest.raises(MissingDependency) as caught:
        open_store("s3://bucket/prefix")
    assert str(caught.value) == (
        "the S3 object store needs boto3, which is not installed: pip install 'metafuse[s3]'"
    )


@pytest.mark.parametrize(
    "key",
    ["", "/abs", "a//b", "trailing/", ".hidden", "a/./b", "a/../b", "nul\x00", "back\\slash", "x" * 1025],
)
def test_keys_every_backend_cannot_hold_are_refused(key: str) -> None:
    with pytest.raises(InvalidKey):
        check_key(key)


def test_local_store_round_trip(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    tag = store.put("a/b.json", b"one", CREATE)
    assert store.get("a/b.json") == (b"one", tag)
    with pytest.raises(AlreadyExists):
        store.put("a/b.json", b"two", CREATE)
    with pytest.raises(PreconditionFailed):
        store.put("a/b.json", b"two", update('"stale"'))
    new_tag = store.put("a/b.json", b"two", update(tag))
    assert store.head("a/b.json")[:3] == ("a/b.json", 3, new_tag)
    store.put("a/c.json", b"x", OVERWRITE)
    assert store.list("a/") == ["a/b.json", "a/c.json"]
    store.delete("a/b.json")
    store.delete("a/b.json")  # absent: not an error
    with pytest.raises(NotFound):
        store.get("a/b.json")
    with pytest.raises(NotFound):
        store.put("a/b.json", b"three", update(new_tag))
    assert store.list() == ["a/c.json"]  # the store's own lock and temp files are not keys


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("s3://b/p?endpoint_url=http://user:s3cr3t@host:9000&region=x", "endpoint_url=http://***@host:9000&"),
        ('Could not connect to the endpoint URL: "http://user:s3cr3t@h/b/k"', '"http://***@h/b/k"'),
        ("s3://b/x?endpoint_url=http%3A%2F%2Fuser%3As3cr3t%40h%3A9", "endpoint_url=http://***@h:9"),
        ("https://user:pa@ss:s3cr3t@h/", "https://***@h/"),
    ],
)
def test_redact_hides_the_user_and_password_of_every_url(text: str, shown: str) -> None:
    hidden = redact(text)
    assert "s3cr3t" not in hidden
    assert "user" not in hidden
    assert shown in hidden


def test_redact_leaves_text_without_credentials_alone() -> None:
    for text in ["s3://bucket/a@b?endpoint_url=http://h:9000", "file:///srv/x", "no url here", ""]:
        assert redact(text) == text


@pytest.mark.parametrize(
    "url",
    [
        "s3://bucket/x?endpoint_url=http://user:s3cr3t@h:99999",
        "s3://bucket/x?endpoint_url=ftp://user:s3cr3t@h",
        "s3://bucket/x?endpoint_url=http%3A%2F%2Fuser%3As3cr3t%40h%3A99999",
        "s3://user:s3cr3t@bucket/x",
        "s3://bucket/x?endpoint_url=http://user:s3cr3t@h:9000&nope=1",
    ],
)
def test_a_bad_url_never_shows_its_credentials(url: str) -> None:
    with pytest.raises(InvalidStoreURL) as caught:
        open_store(url)
    for shown in (str(caught.value), caught.value.url, caught.value.problem, repr(caught.value)):
        assert "s3cr3t" not in shown
        assert "user" not in shown


def test_store_errors_never_show_credentials() -> None:
    error = StoreInaccessible("s3://b/?endpoint_url=http://user:s3cr3t@h", "b", "get k", "no bucket")
    assert str(error) == "object store s3://b/?endpoint_url=http://***@h refused get k: no bucket"
    assert isinstance(error, CatalogError)
    unavailable = StoreUnavailable("get k", 'Could not connect to "http://user:s3cr3t@h/b/k"')
    assert "s3cr3t" not in str(unavailable)
