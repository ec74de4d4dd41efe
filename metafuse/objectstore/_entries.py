"""The format of a commit log entry: what one commit is as stored, and how its bytes read.

Owns `LogEntry` and `AppendResult`, the encoding of an entry (compact JSON with sorted keys, so
equal entries are equal bytes), its decoding (anything else raises `LogCorrupt` naming the key),
and the chain check (each entry names the commit id of the one before it). It may not talk to
the store, choose numbers, or decide what an append does when it loses one (`log.py` does).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import LogCorrupt, LogForked


@dataclass(frozen=True)
class LogEntry:
    """One commit as stored: its sequence, the id its writer gave it, the caller's payload, and
    the commit id of the entry before it as its writer knew it (None for entry 1 and old entries)."""

    sequence: int
    commit_id: str
    payload: dict[str, Any]
    prev: str | None = None


@dataclass(frozen=True)
class AppendResult:
    """An acknowledged commit: it is entry `sequence` and stays readable there."""

    sequence: int
    commit_id: str
    attempts: int
    """PUT requests sent, the successful one included."""


def check_chain(entries: Sequence[LogEntry], prev: str | None, key: Callable[[int], str]) -> None:
    """Raise `LogForked` unless each entry names the one before it (the first: `prev`).

    An unknown link (None on either side: entry 1, an entry older clients wrote, a replica that
    does not know its last commit id) is not checked.
    """
    for entry in entries:
        if prev is not None and entry.prev is not None and entry.prev != prev:
            raise LogForked(
                key(entry.sequence),
                f"follows commit {entry.prev}, but entry {entry.sequence - 1} is commit {prev}"
                " as this client read it: two histories exist (an entry was deleted or replaced)",
            )
        prev = entry.commit_id


def encode_entry(sequence: int, commit_id: str, payload: Mapping[str, Any], prev: str | None = None) -> bytes:
    """The bytes of entry `sequence`: compact JSON with sorted keys (so equal entries are equal bytes)."""
    value: dict[str, Any] = {"commit_id": commit_id, "payload": payload, "sequence": sequence}
    if prev is not None:
        value["prev"] = prev
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_entry(key: str, data: bytes) -> LogEntry:
    """Parse an entry's bytes, raising `LogCorrupt` (naming `key`) if they are not one."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise LogCorrupt(key, f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise LogCorrupt(key, "not a JSON object")
    sequence, commit_id, payload = value.get("sequence"), value.get("commit_id"), value.get("payload")
    prev = value.get("prev")
    if not isinstance(sequence, int) or not isinstance(commit_id, str) or not isinstance(payload, dict):
        raise LogCorrupt(key, "needs an integer sequence, a string commit_id and an object payload")
    if prev is not None and not isinstance(prev, str):
        raise LogCorrupt(key, "has a prev that is not a string")
    return LogEntry(sequence, commit_id, payload, prev)
