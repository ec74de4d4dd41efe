"""Helpers shared by the S3 tests: where the server is, and the log checks every run must pass."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from metafuse.objectstore import CommitLog


@dataclass(frozen=True)
class S3Location:
    """A bucket and prefix on one server, turned into store URLs (optionally via another endpoint)."""

    bucket: str
    prefix: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoint_url(self) -> str:
        return str(self.options.get("endpoint_url", ""))

    def url(self, **overrides: Any) -> str:
        options = {**self.options, **overrides}
        query = urlencode(options, safe=":/")
        return f"s3://{self.bucket}/{self.prefix}" + (f"?{query}" if query else "")


@dataclass
class S3Server:
    """Where this session's S3 tests run: a moto endpoint, or the external base location."""

    endpoint_url: str
    external: S3Location | None


def check_log(
    log: CommitLog, acknowledged: Mapping[str, int], attempted: int, refused: Collection[str] = ()
) -> None:
    """Assert the log holds exactly the acknowledged commits, once each, gap-free, where reported.

    `acknowledged` maps commit id to the sequence its append returned; `attempted` is how many
    appends ran, each either acknowledged or `refused` (the ids of appends that gave up at their
    deadline, none of which may be in the log): none may be missing or extra.
    """
    entries = log.tail()
    assert [e.sequence for e in entries] == list(range(1, len(entries) + 1)), "the log has a gap"
    duplicated = [cid for cid, n in Counter(e.commit_id for e in entries).items() if n > 1]
    assert duplicated == [], f"commits written twice: {duplicated}"
    payloads = Counter(tuple(sorted(e.payload.items())) for e in entries)
    assert max(payloads.values(), default=1) == 1, "one append's payload appears twice"
    by_id = {e.commit_id: e.sequence for e in entries}
    lost = {cid: seq for cid, seq in acknowledged.items() if by_id.get(cid) != seq}
    assert lost == {}, f"acknowledged commits missing or elsewhere: {lost}"
    phantom = sorted(set(by_id) - set(acknowledged))
    assert phantom == [], f"entries no append acknowledged: {phantom}"
    assert acknowledged, "no append was acknowledged: some append wins every race it is in"
    assert not set(refused) & set(by_id), "an append refused at its deadline is in the log"
    assert len(acknowledged) + len(set(refused)) == attempted
    assert len(acknowledged) == len(entries)
