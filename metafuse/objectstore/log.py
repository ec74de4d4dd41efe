"""A commit log on an object store: each commit is one immutable object, created only if absent.

Protocol
--------
Entry `n` (n = 1, 2, ...) is the object `<prefix>log/<n as 20 digits>.json`, holding
`{"commit_id": ..., "payload": ..., "sequence": n}` as compact JSON. It is written once, with
`put(..., CREATE)` (S3 `If-None-Match: *`), and never changed, so the store itself decides which
of several concurrent writers gets number `n`.

Appending (`CommitLog.append`):

1. Pick `n`: one past the sequence the caller's decision was based on (`after`), or, without it,
   one past `latest()`. Give the commit a fresh random `commit_id`.
2. Create entry `n`. Success: the commit is entry `n`.
3. `AlreadyExists`: read the entries from `n` up to the end of the log (GET `n`, `n+1`, ... until
   one is absent). If one of them carries our `commit_id`, an earlier attempt of ours landed:
   that is the commit. Otherwise hand them to the caller's `validate(lost_entries)`, which raises
   to abandon the commit (they changed what it depends on) or returns to go on; then try again at
   one past the last entry read. Losing a number is progress for someone else, so the loop is
   lock-free.
4. `AmbiguousWrite` (timeout, 5xx, connection lost after sending): read entry `n` back. Our
   `commit_id` there: success. Another commit there: we lost, as in step 3. Absent: the write
   did not land *yet* (it may still be in flight), so send the same entry to the same `n` again.
   An append only moves past `n` once `n` holds another commit, so at most one number (the
   current one) can ever receive its entry: a commit lands at most once.
5. `StoreUnavailable`: back off and repeat the step. If the store stays away past the budget,
   the append raises `StoreUnavailable` when no write of ours can still land, or
   `CommitUnknown` (never a failure) when entry `n` may still be ours; `settle()` decides it.

So an acknowledged commit is always readable at its sequence, a failed one is never in the log,
and no commit appears twice. Sequences are gap-free: `n` is only created by a writer that saw
`n - 1` exist (or `n == 1`).

Finding the end (`latest`): with a hint `h` (the newest sequence this process has seen), one HEAD
of entry `h + 1`; absent means `h` is the end. That is the common case for an up-to-date reader
or writer and costs one small request. Only if `h + 1` exists does it LIST with
`start-after=<entry h+1>` to jump to the end in one more request rather than probing entry by
entry. Without a hint (a fresh process) it starts from `h = 0`.

Retention (`truncate`, only for a log opened with a `retention`): entries are deleted oldest
first, so the deleted ones are always a prefix of the log, and only once a snapshot that covers
them is `retention` seconds old (the caller's rule). That keeps "`h + 1` is absent" meaning "`h`
is the end" rather than "`h + 1` was deleted", which a writer would otherwise fill again and fork
the history. So when `h + 1` is absent, `latest` also checks that `h` is still there (for
`h = 0`: that the log was never truncated, the object `truncated.json` being absent). If `h` is
there, `h + 1` was not deleted (it would go only after `h`), so it did not exist yet; if `h` is
gone, the caller has fallen behind the retention and `LogTruncated` says so. That second request
is skipped within `retention / 2` of the last time `h` was confirmed so: an entry created after
that confirmation cannot have been deleted before a snapshot covering it is `retention` old.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from ._base import CREATE, ObjectStore
from .errors import (
    AlreadyExists,
    AmbiguousWrite,
    AppendContended,
    CommitUnknown,
    LogCorrupt,
    LogTruncated,
    NotFound,
    StoreUnavailable,
)

T = TypeVar("T")

SEQUENCE_DIGITS = 20
"""Digits of the zero-padded sequence in an entry's key; lexical order is then numeric order."""

TRUNCATED_KEY = "truncated.json"
"""Created under the prefix before the first entry is ever deleted: entry 1 absent then means deleted."""

_ENTRY_NAME = re.compile(r"^(\d{" + str(SEQUENCE_DIGITS) + r"})\.json$")


@dataclass(frozen=True)
class LogEntry:
    """One commit as stored: its sequence, the id its writer gave it, and the caller's payload."""

    sequence: int
    commit_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class AppendResult:
    """An acknowledged commit: it is entry `sequence` and stays readable there."""

    sequence: int
    commit_id: str
    attempts: int
    """PUT requests sent, the successful one included."""


Validator = Callable[[Sequence[LogEntry]], None]
"""Called with the entries an append lost to; raise to abandon the commit, return to retry."""


class CommitLog:
    """The append-only commit log under `prefix` of `store`; safe to share between threads.

    `max_races` bounds how many numbers one append may lose in a row (`AppendContended`);
    `max_unavailable` bounds consecutive store failures within one append, each followed by a
    jittered exponential backoff from `backoff` seconds up to 1 s. `retention` is the seconds
    every client of this log waits before truncating what a snapshot covers (None: the log is
    never truncated, and finding its end needs no second request). `tail` reads up to
    `read_workers` entries at once.
    """

    def __init__(
        self,
        store: ObjectStore,
        prefix: str = "",
        *,
        max_races: int = 1000,
        max_unavailable: int = 12,
        backoff: float = 0.01,
        sleep: Callable[[float], None] = time.sleep,
        retention: float | None = None,
        read_workers: int = 8,
    ) -> None:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.store = store
        self.directory = prefix + "log/"
        self.truncated_key = prefix + TRUNCATED_KEY
        self.retention = retention
        self.read_workers = read_workers
        """Entries a catch-up reads at once (each a GET): round trips overlap, not bytes."""
        self._confirmed: tuple[int, float] | None = None  # (end, monotonic time it was asked)
        self.max_races = max_races
        self.max_unavailable = max_unavailable
        self.backoff = backoff
        self._sleep = sleep
        self._lock = threading.Lock()
        self._known_end = 0

    def key(self, sequence: int) -> str:
        """The object key of entry `sequence`."""
        if sequence < 1:
            raise ValueError(f"log sequences start at 1, got {sequence}")
        return f"{self.directory}{sequence:0{SEQUENCE_DIGITS}d}.json"

    @property
    def known_end(self) -> int:
        """The highest sequence this object has seen exist (0 before it has seen any)."""
        with self._lock:
            return self._known_end

    def latest(self, hint: int | None = None) -> int:
        """The sequence of the newest entry (0 for an empty log), as of some moment during the call.

        Reflects every append acknowledged before the call started. Costs one HEAD when nothing
        was appended since `hint` (default: `known_end`), else one HEAD and one LIST; on a log
        with a retention, sometimes one more HEAD. Raises `LogTruncated` if the entries after
        `hint` were removed (see the module docstring).
        """
        start = self.known_end if hint is None else hint
        if not self.moved(start):
            return start
        keys = self.store.list(self.directory, start_after=self.key(start + 1))
        end = self._sequence_of(keys[-1]) if keys else start + 1
        self._saw(end)  # not confirmed as the end: no entry of the listing was read back
        return end

    def moved(self, after: int) -> bool:
        """Whether the log has an entry above `after` (one HEAD; sometimes one more, see `latest`).

        Reflects every append acknowledged before the call started; raises `LogTruncated` if the
        entries after `after` were removed.
        """
        asked = time.monotonic()
        try:
            self.store.head(self.key(after + 1))
        except NotFound:
            self._confirm_end(after, asked)
            return False
        return True

    def since(self, after: int) -> list[LogEntry]:
        """Every entry above `after`, in order: one HEAD when there is none, else `tail(after)`."""
        return self.tail(after) if self.moved(after) else []

    def read(self, sequence: int) -> LogEntry:
        """Entry `sequence`; `NotFound` if it does not exist (yet, or any more)."""
        key = self.key(sequence)
        data, _ = self.store.get(key)
        entry = decode_entry(key, data)
        if entry.sequence != sequence:
            raise LogCorrupt(key, f"holds sequence {entry.sequence}")
        self._saw(sequence)
        return entry

    def tail(self, after: int = 0) -> list[LogEntry]:
        """Every entry with a sequence above `after`, in order (one LIST, then one GET each,
        up to `read_workers` at a time).

        Raises `LogCorrupt` if the listing has a gap, which the protocol never leaves, and
        `LogTruncated` if the entries right after `after` were removed by retention.
        """
        start_after = self.key(after) if after > 0 else ""
        listed = time.monotonic()
        keys = self.store.list(self.directory, start_after=start_after)
        sequences = [self._sequence_of(key) for key in keys]
        for index, (key, sequence) in enumerate(zip(keys, sequences)):
            if sequence != after + 1 + index:
                if index == 0 and self.retention is not None:
                    raise LogTruncated(after)
                raise LogCorrupt(key, f"expected entry {after + 1 + index} next: the log has a gap")
        try:
            entries = self._read_all(sequences)
        except NotFound as missing:
            if self.retention is not None and missing.key == self.key(after + 1):
                raise LogTruncated(after) from None
            raise
        if entries:
            self._note_confirmed_end(entries[-1].sequence, listed)
        return entries

    def _read_all(self, sequences: list[int]) -> list[LogEntry]:
        """The entries `sequences`, in that order, read `read_workers` at a time."""
        workers = min(self.read_workers, len(sequences))
        if workers < 2:
            return [self.read(sequence) for sequence in sequences]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="metafuse-log-read") as pool:
            return list(pool.map(self.read, sequences))

    def truncate(self, below: int) -> int:
        """Delete every entry with a sequence below `below`, oldest first; return how many.

        The caller decides what may go (every client must be able to do without those entries:
        see the module docstring); this keeps the deleted entries a prefix of the log. A failed
        delete stops the pass, so a later one carries on from the same place.
        """
        if self.retention is None:
            raise ValueError("this log has no retention: its entries are never deleted")
        oldest = self.store.list(self.directory, limit=1)  # one request however long the log
        first = self._sequence_of(oldest[0]) if oldest else below
        if first >= below:
            return 0
        with contextlib.suppress(AlreadyExists):
            self.store.put(self.truncated_key, b'{"truncated": true}\n', CREATE)
        for sequence in range(first, below):  # the log has no gaps: each of these exists
            self.store.delete(self.key(sequence))
        return below - first

    def find_commit(self, commit_id: str, after: int = 0) -> LogEntry | None:
        """The entry carrying `commit_id` among those above `after`, or None."""
        for entry in self.tail(after):
            if entry.commit_id == commit_id:
                return entry
        return None

    def append(
        self,
        payload: Mapping[str, Any],
        validate: Validator | None = None,
        *,
        after: int | None = None,
    ) -> AppendResult:
        """Append `payload` as one new entry and return where it landed (see the module docstring).

        `after` is the sequence the payload was decided on: every entry above it that wins a
        number first is passed to `validate`, which raises to abandon the commit. Without
        `after`, the append starts at the end of the log and validates only what it loses to.
        Returns only when the entry is in the log; raises `CommitUnknown` only when it may be.
        """
        commit_id = uuid.uuid4().hex
        body = dict(payload)
        rng = random.Random(uuid.uuid4().int)
        sequence = (self._with_store(self.latest) if after is None else after) + 1
        attempts = races = unavailable = 0
        maybe_ours = False  # entry `sequence` may hold this commit (an ambiguous write to it)
        cause = ""
        while True:
            data = encode_entry(sequence, commit_id, body)
            try:
                attempts += 1
                sent = time.monotonic()
                self.store.put(self.key(sequence), data, CREATE)
                self._saw(sequence)
                self._note_confirmed_end(sequence, sent)
                return AppendResult(sequence, commit_id, attempts)
            except AlreadyExists:
                check = "taken"
            except AmbiguousWrite as exc:
                maybe_ours, cause, check = True, str(exc), "maybe"
            except StoreUnavailable as exc:
                cause, check = str(exc), ""
            except Exception as exc:
                if maybe_ours:  # whatever went wrong, "maybe landed" must not become "failed"
                    raise CommitUnknown(commit_id, sequence, data, repr(exc)) from exc
                raise
            outcome: tuple[list[LogEntry], int] | None = None
            if check:
                try:
                    outcome = self._losses(
                        sequence,
                        read_first=maybe_ours,
                        read_all=validate is not None,
                        absent_ok=check == "maybe",
                    )
                except StoreUnavailable as exc:
                    cause = str(exc)  # cannot tell yet: send the same entry to the same number again
                except Exception as exc:
                    if maybe_ours:
                        raise CommitUnknown(commit_id, sequence, data, repr(exc)) from exc
                    raise
            if outcome is not None:
                lost, end = outcome
                maybe_ours = False  # entry `sequence` is held: our write there can never land
                mine = [e for e in lost if e.commit_id == commit_id]
                if mine:
                    return AppendResult(mine[0].sequence, commit_id, attempts)
                if validate is not None:
                    validate(lost)
                races += 1
                if races >= self.max_races:
                    raise AppendContended(commit_id, races)
                sequence = end + 1
                unavailable = 0
                continue
            # The store failed, or entry `sequence` is still absent after an ambiguous write:
            # send the same entry to the same number again after a pause.
            unavailable += 1
            if unavailable > self.max_unavailable:
                if maybe_ours:
                    raise CommitUnknown(commit_id, sequence, data, cause)
                raise StoreUnavailable(f"append to {self.directory}", cause)
            self._pause(unavailable, rng)

    def settle(self, unknown: CommitUnknown) -> AppendResult | None:
        """Decide a `CommitUnknown` for good: its `AppendResult`, or None if it never landed.

        Sends the same entry to the same number again (create only if absent) until the store
        answers; afterwards that number holds either this commit or another, for ever. Raises
        `StoreUnavailable` (leaving it undecided) if the store is still away.
        """
        key = self.key(unknown.sequence)
        attempts = 0
        rng = random.Random()
        while True:
            attempts += 1
            try:
                self.store.put(key, unknown.data, CREATE)
                return AppendResult(unknown.sequence, unknown.commit_id, attempts)
            except (AlreadyExists, AmbiguousWrite, StoreUnavailable) as exc:
                try:
                    entry = self.read(unknown.sequence)
                except NotFound:
                    if isinstance(exc, AlreadyExists):
                        raise LogCorrupt(key, "reported to exist, then absent: was it deleted?") from None
                    entry = None
                except StoreUnavailable:
                    entry = None
                if entry is not None:
                    if entry.commit_id == unknown.commit_id:
                        return AppendResult(unknown.sequence, unknown.commit_id, attempts)
                    return None
                if attempts > self.max_unavailable:
                    raise StoreUnavailable(f"settling commit {unknown.commit_id}", str(exc)) from exc
                self._pause(attempts, rng)

    def _losses(
        self, sequence: int, *, read_first: bool, read_all: bool, absent_ok: bool
    ) -> tuple[list[LogEntry], int] | None:
        """After a put to `sequence` failed: the entries to check or validate, and the log's end.

        Reads every entry from `sequence` to the end when a validator needs them; otherwise only
        entry `sequence` when it may be ours, then finds the end with `latest` (a HEAD, and a
        LIST if needed). None when entry `sequence` is absent and `absent_ok`.
        """
        if read_all:
            entries = self._read_from(sequence, absent_ok=absent_ok)
            return (entries, entries[-1].sequence) if entries else None
        entries = []
        if read_first:
            try:
                entries.append(self.read(sequence))
            except NotFound:
                if absent_ok:
                    return None
                raise LogCorrupt(self.key(sequence), "reported to exist, then absent") from None
        return entries, self.latest(hint=sequence)

    def _read_from(self, sequence: int, absent_ok: bool = False) -> list[LogEntry]:
        """Entries `sequence`, `sequence + 1`, ... up to the first absent one (GET each).

        A failed read is not retried here: the append loop backs off and tries its PUT again,
        which is harmless when the number is taken and lands the entry when it is free.
        """
        entries: list[LogEntry] = []
        while True:
            try:
                entries.append(self.read(sequence + len(entries)))
            except NotFound:
                if not entries and not absent_ok:
                    # AlreadyExists, then absent: only a deletion does that, which the
                    # protocol never does to an entry a writer could still be racing for.
                    raise LogCorrupt(self.key(sequence), "reported to exist, then absent") from None
                return entries

    def _with_store(self, call: Callable[[], T]) -> T:
        """Run a read, retrying `StoreUnavailable` within the unavailability budget."""
        rng = random.Random()
        for attempt in range(1, self.max_unavailable + 2):
            try:
                return call()
            except StoreUnavailable:
                if attempt > self.max_unavailable:
                    raise
                self._pause(attempt, rng)
        raise AssertionError("unreachable")  # pragma: no cover

    def _pause(self, attempt: int, rng: random.Random) -> None:
        self._sleep(min(1.0, self.backoff * 2 ** (attempt - 1)) * (0.5 + rng.random()))

    def _confirm_end(self, end: int, asked: float) -> None:
        """Entry `end + 1` was absent when asked at `asked`: make sure it was never deleted."""
        if self.retention is None:
            return
        with self._lock:
            confirmed = self._confirmed
        if confirmed is not None and confirmed[0] == end and asked - confirmed[1] < self.retention / 2:
            return
        if end == 0:
            try:
                self.store.head(self.truncated_key)
            except NotFound:
                pass  # never truncated: entry 1 does not exist yet
            else:
                raise LogTruncated(0)
        else:
            try:
                self.store.head(self.key(end))
            except NotFound:
                raise LogTruncated(end) from None
        self._note_confirmed_end(end, asked)

    def _note_confirmed_end(self, end: int, asked: float) -> None:
        """Note that no entry after `end` existed at `asked` (none created yet, none deleted).

        True when `end + 1` was absent and `end` present afterwards; when a listing that began
        at `asked` ended at `end` and `end` was read; and when this object created entry `end`
        with a request sent at `asked` (`end + 1` can only be created after `end`).
        """
        with self._lock:
            held = self._confirmed
            if held is None or end > held[0] or (end == held[0] and asked > held[1]):
                self._confirmed = (end, asked)

    def _saw(self, sequence: int) -> None:
        with self._lock:
            if sequence > self._known_end:
                self._known_end = sequence

    def _sequence_of(self, key: str) -> int:
        match = _ENTRY_NAME.match(key[len(self.directory) :]) if key.startswith(self.directory) else None
        if match is None:
            raise LogCorrupt(key, f"not an entry name (<{SEQUENCE_DIGITS} digits>.json) in {self.directory}")
        return int(match.group(1))


def encode_entry(sequence: int, commit_id: str, payload: Mapping[str, Any]) -> bytes:
    """The bytes of entry `sequence`: compact JSON with sorted keys (so equal entries are equal bytes)."""
    return json.dumps(
        {"commit_id": commit_id, "payload": payload, "sequence": sequence},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


def decode_entry(key: str, data: bytes) -> LogEntry:
    """Parse an entry's bytes, raising `LogCorrupt` (naming `key`) if they are not one."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise LogCorrupt(key, f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise LogCorrupt(key, "not a JSON object")
    sequence, commit_id, payload = value.get("sequence"), value.get("commit_id"), value.get("payload")
    if not isinstance(sequence, int) or not isinstance(commit_id, str) or not isinstance(payload, dict):
        raise LogCorrupt(key, "needs an integer sequence, a string commit_id and an object payload")
    return LogEntry(sequence, commit_id, payload)
