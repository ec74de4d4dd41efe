"""A commit log on an object store: each commit is one immutable object, created only if absent.

Protocol
--------
Entry `n` (n = 1, 2, ...) is the object `<prefix>log/<n as 20 digits>.json`, holding
`{"commit_id": ..., "payload": ..., "prev": ..., "sequence": n}` as compact JSON. It is written
once, with `put(..., CREATE)` (S3 `If-None-Match: *`), and never changed, so the store itself
decides which of several concurrent writers gets number `n`. `prev` is the `commit_id` of entry
`n - 1` as its writer knew it (absent for entry 1 and in entries older clients wrote): the
entries form a chain, so a client can tell "the entry after the one I applied" from "an entry
written by someone who saw another history".

Appending (`CommitLog.append`):

1. Pick `n`: one past the sequence the caller's decision was based on (`after`, whose commit id
   the caller passes as `prev`), or, without it, one past `latest()`. Give the commit a fresh
   random `commit_id`.
2. Create entry `n`. Success: go to 6.
3. `AlreadyExists`: read the entries from `n` up to the end of the log (GET `n`, `n+1`, ... until
   one is absent), checking the chain. If one of them carries our `commit_id`, an earlier attempt
   of ours landed: go to 6 with it. Otherwise hand them to the caller's `validate(lost_entries)`,
   which raises to abandon the commit (they changed what it depends on) or returns to go on;
   then try again at one past the last entry read. A first loss reads and tries again at once;
   one that keeps losing first pauses (decorrelated jitter, `race_pause`, bounded), then reads
   up to the end and tries at once, so its PUT never goes out on stale news. Losing a number is
   progress for someone else, so the loop is lock-free; an append that has lost for `max_wait`
   seconds gives up (`AppendContended`, nothing written), so no commit waits without bound.
4. `AmbiguousWrite` (timeout, 5xx, connection lost after sending): read entry `n` back. Our
   `commit_id` there: go to 6. Another commit there: we lost, as in step 3. Absent: the write
   did not land *yet* (it may still be in flight), so send the same entry to the same `n` again,
   for up to `settle_seconds`. An append only moves past `n` once `n` holds another commit, so
   at most one number (the current one) can ever receive its entry, and once the store has given
   a definite answer for `n` a late copy of an earlier attempt can only meet `AlreadyExists`.
5. `StoreUnavailable`: back off and repeat the step. If the store stays away past the budget,
   the append raises `StoreUnavailable` when no write of ours can still land, or
   `CommitUnknown` (never a failure) when entry `n` may still be ours; `settle()` decides it.
6. Check the placement (`_check_placed`, one LIST from entry `n` to the end): nothing after it
   means ours is the newest entry, which is never a number the retention deleted (it keeps the
   newest, and a number it deleted has later entries); otherwise every entry from `n+1` to the
   newest listed must be there and name the one before it, ours first (a GET each): ours is then
   in the chain that ends at the newest entry. A writer that stalled past the retention and wrote
   at a deleted number, or filled an entry deleted by hand, finds a later entry missing or naming
   another commit: its entry is not part of the history everyone else reads, so it is deleted
   again and the append raises `LogForked`; the commit is never acknowledged. Entry `n+1` naming
   ours is not enough on its own: two writers stalled at the same entry can refill two deleted
   numbers in a row, the second naming the first. Entry `n` already gone (the retention moved
   past it meanwhile) cannot be decided, and is `CommitUnknown`.

So an acknowledged commit is always readable at its sequence in the one history every client
reads, a failed one is never in the log, and no commit appears twice.

Reading (`moved`, `latest`, `tail`): a client that has applied entry `h` lists the keys from
`h` on (S3 `ListObjectsV2` with `start-after=<entry h-1>`). One LIST of at most two keys answers
"is `h` still there, and is there a newer entry": the up-to-date read costs one request. Entry
`h` missing means the retention deleted it (`LogTruncated`: start again from a snapshot) or,
on a log without retention, that somebody deleted it (`LogCorrupt`). A listing whose next key is
past `h + 1` is a hole, confirmed by one HEAD of the missing entry (a listing is not an atomic
snapshot on every store, so an entry created during it may be missed) and then `LogCorrupt`.
The chain is checked on every entry read: an entry whose `prev` is not the commit id of the
entry before it, as this client applied it, raises `LogForked`.

Retention (`truncate`, only for a log opened with a `retention`): entries are deleted oldest
first, so the deleted ones are always a prefix of the log, and only once a snapshot that covers
them is `retention` seconds old (the caller's rule); the newest entry is never deleted, so a
listing from `h` is empty only when `h` is the end. `truncated.json` is created before the first
deletion, for older clients that look for it.

Assumptions (docs/object-store.md says what breaking each does): `CREATE` is atomic (of many
creators of one key exactly one succeeds); a listing reflects every write and delete
acknowledged before it began; an object, once deleted, is not re-created except by a writer
whose check then deletes it again.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from .. import perturb
from ._base import CREATE, ObjectStore
from ._entries import AppendResult, LogEntry, check_chain, decode_entry, encode_entry
from .errors import (
    AlreadyExists,
    AmbiguousWrite,
    AppendContended,
    CommitUnknown,
    LogCorrupt,
    LogForked,
    LogTruncated,
    NotFound,
    StoreUnavailable,
)

T = TypeVar("T")

SEQUENCE_DIGITS = 20
"""Digits of the zero-padded sequence in an entry's key; lexical order is then numeric order."""

TRUNCATED_KEY = "truncated.json"
"""Created under the prefix before the first entry is ever deleted (read by older clients)."""

SETTLE_SECONDS = 60.0
"""Default: how long an append keeps re-sending an entry whose write was ambiguous."""

RACE_BACKOFF_CAP = 0.2
"""Default: the longest pause, in seconds, between two tries of an append that keeps losing."""

MAX_WAIT = 30.0
"""Default: how many seconds one append may spend losing log numbers before it gives up."""

_ENTRY_NAME = re.compile(r"^(\d{" + str(SEQUENCE_DIGITS) + r"})\.json$")


Validator = Callable[[Sequence[LogEntry]], None]
"""Called with the entries an append lost to; raise to abandon the commit, return to retry."""


class CommitLog:
    """The append-only commit log under `prefix` of `store`; safe to share between threads.

    `max_races` bounds how many numbers one append may lose in a row, and `max_wait` how many
    seconds it may spend losing them (`AppendContended` either way, with nothing written: the
    bound on how long one commit waits for the log however many writers it has). An append that
    loses once tries the new end at once; one that keeps losing pauses between tries, for a
    decorrelated jitter from `backoff` up to `race_backoff_cap` seconds (`race_pause`), so
    writers that collide spread out instead of colliding again in step.
    `max_unavailable` bounds consecutive store failures within one append, each followed by a
    jittered exponential backoff from `backoff` seconds up to 1 s; an ambiguous write is sent
    again until the pauses between its attempts add up to `settle_seconds` (and at least
    `max_unavailable` times) before the append gives up with `CommitUnknown`.
    `retention` is the seconds every client of this log waits before truncating what a snapshot
    covers (None: the log is never truncated). `tail` reads up to `read_workers` entries at once.
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
        settle_seconds: float = SETTLE_SECONDS,
        race_backoff_cap: float = RACE_BACKOFF_CAP,
        max_wait: float | None = MAX_WAIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.store = store
        self.directory = prefix + "log/"
        self.truncated_key = prefix + TRUNCATED_KEY
        self.retention = retention
        self.read_workers = read_workers
        """Entries a catch-up reads at once (each a GET): round trips overlap, not bytes."""
        self.max_races = max_races
        self.max_unavailable = max_unavailable
        self.backoff = backoff
        self.settle_seconds = settle_seconds
        self.race_backoff_cap = race_backoff_cap
        self.max_wait = max_wait
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._known_end = 0
        self.skip_placement_check = False
        """Acknowledge appends without `_check_placed` (the `unchecked_log` fault; never in use)."""
        self.trust_absent_next = False
        """`moved` takes an absent next entry for the end (the `trusting_probe` fault; never in use)."""

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

    # -- reading ---------------------------------------------------------------------------

    def moved(self, after: int) -> bool:
        """Whether the log has an entry above `after` (one LIST of at most two keys).

        Reflects every append acknowledged before the call started. Raises `LogTruncated` if
        entry `after` (or, for 0, entry 1) was removed by retention, `LogCorrupt` if it or the
        entry after it is missing otherwise (see the module docstring).
        """
        if self.trust_absent_next:
            try:
                self.store.head(self.key(after + 1))
            except NotFound:
                return False
            return True
        keys = self._list(self._before(after), 2 if after else 1)
        following = self._following(after, keys)
        if not following:
            return False
        if following[0] != after + 1:
            self._hole(after + 1, following[0])
        self._saw(after + 1)
        return True

    def latest(self, hint: int | None = None) -> int:
        """The sequence of the newest entry (0 for an empty log), as of some moment during the call.

        Reflects every append acknowledged before the call started. One LIST from `hint`
        (default: `known_end`) to the end; raises as `moved` does.
        """
        start = self.known_end if hint is None else hint
        keys = self._list(self._before(start))
        following = self._following(start, keys)
        for index, sequence in enumerate(following):
            if sequence != start + 1 + index:
                self._hole(start + 1 + index, sequence)
        end = following[-1] if following else start
        self._saw(end)
        return end

    def since(self, after: int, prev: str | None = None) -> list[LogEntry]:
        """Every entry above `after`, in order: `tail(after)`, whose one LIST also says whether
        there is any (one request when there is none, as `moved` would have cost)."""
        if self.trust_absent_next:
            return self.tail(after, prev) if self.moved(after) else []
        return self.tail(after, prev)

    def read(self, sequence: int) -> LogEntry:
        """Entry `sequence`; `NotFound` if it does not exist (yet, or any more)."""
        key = self.key(sequence)
        data, _ = self.store.get(key)
        entry = decode_entry(key, data)
        if entry.sequence != sequence:
            raise LogCorrupt(key, f"holds sequence {entry.sequence}")
        self._saw(sequence)
        return entry

    def tail(self, after: int = 0, prev: str | None = None) -> list[LogEntry]:
        """Every entry with a sequence above `after`, in order (one LIST, then one GET each,
        up to `read_workers` at a time), checked as a chain starting from `prev`, the commit id
        of entry `after` as the caller applied it (None: not checked for the first entry).

        Raises `LogTruncated` if entry `after` or the ones right after it were removed by
        retention, `LogCorrupt` if the log has a hole or a stray key, and `LogForked` if an
        entry does not name the one before it.
        """
        keys = self._list(self._before(after))
        sequences = self._following(after, keys)
        for index, sequence in enumerate(sequences):
            if sequence != after + 1 + index:
                self._hole(after + 1 + index, sequence)
                # No hole: the listing missed an entry written while it ran. List again.
                return self.tail(after, prev)
        try:
            entries = self._read_all(sequences)
        except NotFound as missing:
            # Listed, then gone: the retention deleting as we read (the caller starts again
            # from a snapshot), or, on a log that is never truncated, a deletion by hand.
            if self.retention is not None:
                raise LogTruncated(after) from None
            raise LogCorrupt(missing.key, "was listed, then vanished: deleted by hand?") from None
        check_chain(entries, prev, self.key)
        return entries

    def _read_all(self, sequences: list[int]) -> list[LogEntry]:
        """The entries `sequences`, in that order, read `read_workers` at a time."""
        workers = min(self.read_workers, len(sequences))
        if workers < 2:
            return [self.read(sequence) for sequence in sequences]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="metafuse-log-read") as pool:
            return list(pool.map(self.read, sequences))

    def _list(self, start_after: str, limit: int | None = None) -> list[str]:
        """The log's keys after `start_after` (one LIST), without a folder marker: the empty
        object `log/` that some tools create for a "folder", which sorts before every entry."""
        if start_after:
            return self.store.list(self.directory, start_after=start_after, limit=limit)
        keys = self.store.list(self.directory, limit=None if limit is None else limit + 1)
        keys = [key for key in keys if key != self.directory]
        return keys if limit is None else keys[:limit]

    def _empty_log_was_truncated(self) -> bool:
        """Whether an empty listing from the start means entries were deleted (`truncated.json`
        is there: the log had entries, and the retention or somebody removed them all)."""
        try:
            self.store.head(self.truncated_key)
        except NotFound:
            return False
        return True

    def _before(self, sequence: int) -> str:
        """The `start_after` of a listing that begins with entry `sequence` (all for 0 and 1)."""
        return self.key(sequence - 1) if sequence > 1 else ""

    def _following(self, after: int, keys: Sequence[str]) -> list[int]:
        """The sequences listed after entry `after`, given a listing that begins at `after`.

        Checks that entry `after` is still there (for 0: that the log does not start past 1).
        """
        sequences = [self._sequence_of(key) for key in keys]
        if after == 0:
            if sequences and sequences[0] != 1:
                if self.retention is not None:
                    raise LogTruncated(0)
                self._hole(1, sequences[0])
            if not sequences and self._empty_log_was_truncated():
                raise LogTruncated(0)  # not an empty catalog: one whose log was removed
            return sequences
        if sequences and sequences[0] == after:
            return sequences[1:]
        if self.retention is not None:
            # Not even when entry `after + 1` is there: it may be an entry a writer that fell
            # behind the retention left at a deleted number (see `_check_placed`).
            raise LogTruncated(after)
        raise LogCorrupt(self.key(after), "was read before, and is gone: was the log changed by hand?")

    def _hole(self, missing: int, found: int) -> None:
        """A listing went from an entry before `missing` to `found`: raise unless `missing` is
        there after all (created while the listing ran, which is no hole)."""
        try:
            self.store.head(self.key(missing))
        except NotFound:
            pass
        else:
            return
        if self.retention is not None:
            # The retention deleting entries as the listing ran, or an entry a writer behind the
            # retention left at a deleted number, or a hole: the caller starts again from a
            # snapshot, and fails loudly if none covers the missing entry.
            raise LogTruncated(missing - 1)
        raise LogCorrupt(
            self.key(missing), f"is missing while entry {found} exists: the log has a hole (deleted by hand?)"
        )

    # -- retention -------------------------------------------------------------------------

    def truncate(self, below: int) -> int:
        """Delete every entry with a sequence below `below`, oldest first; return how many.

        The caller decides what may go (every client must be able to do without those entries:
        see the module docstring); this keeps the deleted entries a prefix of the log. A failed
        delete stops the pass, so a later one carries on from the same place.
        """
        if self.retention is None:
            raise ValueError("this log has no retention: its entries are never deleted")
        first = self.oldest()
        if first is None or first >= below:
            return 0
        with contextlib.suppress(AlreadyExists):
            self.store.put(self.truncated_key, b'{"truncated": true}\n', CREATE)
        for sequence in range(first, below):  # the log has no gaps: each of these exists
            self.store.delete(self.key(sequence))
        return below - first

    def oldest(self) -> int | None:
        """The sequence of the oldest entry still stored (None: no entry), in one LIST however
        long the log."""
        keys = self._list("", 1)
        return self._sequence_of(keys[0]) if keys else None

    def find_commit(self, commit_id: str, after: int = 0) -> LogEntry | None:
        """The entry carrying `commit_id` among those above `after`, or None."""
        for entry in self.tail(after):
            if entry.commit_id == commit_id:
                return entry
        return None

    # -- appending -------------------------------------------------------------------------

    def append(
        self,
        payload: Mapping[str, Any],
        validate: Validator | None = None,
        *,
        after: int | None = None,
        prev: str | None = None,
    ) -> AppendResult:
        """Append `payload` as one new entry and return where it landed (see the module docstring).

        `after` is the sequence the payload was decided on and `prev` the commit id of entry
        `after` as the caller applied it (read back when not given): every entry above it that
        wins a number first is passed to `validate`, which raises to abandon the commit. Without
        `after`, the append starts at the end of the log. Returns only when the entry is in the
        log, after ours, in the history every client reads; raises `CommitUnknown` only when it
        may be, and `LogForked` when it landed where no other client will read it (and was
        removed again).
        """
        commit_id = uuid.uuid4().hex
        body = dict(payload)
        rng = random.Random(uuid.uuid4().int)
        base = self._with_store(self.latest) if after is None else after
        if prev is None and base > 0:
            prev = self._with_store(lambda: self.read(base)).commit_id
        sequence = base + 1
        attempts = races = unavailable = 0
        started = self._clock()
        pause = 0.0  # the last pause between lost races (decorrelated jitter grows from it)
        maybe_ours = False  # entry `sequence` may hold this commit (an ambiguous write to it)
        settling = 0.0  # seconds paused since the first ambiguous write to `sequence`
        cause = ""
        while True:
            data = encode_entry(sequence, commit_id, body, prev)
            try:
                attempts += 1
                self.store.put(self.key(sequence), data, CREATE)
                perturb.point("log: entry put -> placement checked") if perturb.ON else None
                self._saw(sequence)
                return self._placed(sequence, commit_id, attempts, data)
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
            lost: list[LogEntry] | None = None
            if check == "taken" and races:
                # Lost again: others write in step with us. Pause before reading up to the end,
                # not after, so that the next PUT goes out on fresh news of where the end is.
                pause = race_pause(pause, self.backoff, self.race_backoff_cap, rng)
                left = None if self.max_wait is None else self.max_wait - (self._clock() - started)
                self._sleep(pause if left is None else max(0.0, min(pause, left)))
            if check:
                try:
                    lost = self._read_from(sequence, prev, absent_ok=check == "maybe")
                except StoreUnavailable as exc:
                    cause = str(exc)  # cannot tell yet: send the same entry to the same number again
                except Exception as exc:
                    if maybe_ours:
                        raise CommitUnknown(commit_id, sequence, data, repr(exc)) from exc
                    raise
            if lost:
                maybe_ours, settling = False, 0.0  # `sequence` is held: our write there can never land
                mine = [e for e in lost if e.commit_id == commit_id]
                if mine:
                    return self._placed(mine[0].sequence, commit_id, attempts, data)
                if validate is not None:
                    validate(lost)
                races += 1
                waited = self._clock() - started
                if races >= self.max_races or (self.max_wait is not None and waited >= self.max_wait):
                    raise AppendContended(commit_id, races, waited)
                sequence, prev = lost[-1].sequence + 1, lost[-1].commit_id
                unavailable = 0
                continue
            # The store failed, or entry `sequence` is still absent after an ambiguous write:
            # send the same entry to the same number again after a pause.
            unavailable += 1
            if maybe_ours:
                if settling >= self.settle_seconds and unavailable > self.max_unavailable:
                    raise CommitUnknown(commit_id, sequence, data, cause)
                settling += self._pause(unavailable, rng)
                continue
            if unavailable > self.max_unavailable:
                raise StoreUnavailable(f"append to {self.directory}", cause)
            self._pause(unavailable, rng)

    def _placed(self, sequence: int, commit_id: str, attempts: int, data: bytes) -> AppendResult:
        """Our entry is at `sequence`: acknowledge it if it is in the history, else remove it."""
        if self.skip_placement_check:
            return AppendResult(sequence, commit_id, attempts)
        try:
            self._with_store(lambda: self._check_placed(sequence, commit_id))
        except LogForked:
            with contextlib.suppress(Exception):
                self.store.delete(self.key(sequence))
            raise
        except Exception as exc:
            raise CommitUnknown(commit_id, sequence, data, repr(exc)) from exc
        return AppendResult(sequence, commit_id, attempts)

    def _check_placed(self, sequence: int, commit_id: str) -> None:
        """Raise `LogForked` unless entry `sequence` (ours) is in the history others read.

        One LIST from entry `sequence` to the end: with nothing after it, ours is the newest
        entry, and the newest entry is never a deleted number (the retention keeps it, and a
        number it deleted has later entries). Otherwise every entry from `sequence + 1` to the
        newest listed must be there and name the one before it, ours first (a GET each: the
        next one alone, then the rest `read_workers` at a time): then ours is in the chain that
        ends at the newest entry.
        The next entry alone is not enough: another writer that fell behind with us may have
        refilled the next deleted number after ours, naming ours, while the entry after that,
        written before either of us, names what the retention deleted. Entry `sequence` itself
        gone already (the retention moved past it, or someone removed it) cannot be decided
        here: `NotFound`, which the caller reports as unknown.
        """
        listed = [self._sequence_of(key) for key in self._list(self._before(sequence))]
        if not listed or listed[0] != sequence:
            raise NotFound(self.key(sequence))
        prev = commit_id
        try:
            # The next entry first, alone: a refill's is almost always the one that gives it away.
            batches = [[sequence + 1], list(range(sequence + 2, listed[-1] + 1))] if len(listed) > 1 else []
            for batch in batches:
                for entry in self._read_all(batch):
                    if entry.prev is not None and entry.prev != prev:
                        raise LogForked(
                            self.key(sequence),
                            f"entry {entry.sequence} follows another commit ({entry.prev}) than the"
                            " entry before it: this entry was written at a number that had been"
                            " deleted (the writer fell behind the retention, stalled?, or the entry"
                            " had been deleted by hand)",
                        )
                    prev = entry.commit_id
        except NotFound as missing:
            if not self._holds(sequence, commit_id):
                raise NotFound(self.key(sequence)) from None  # the retention moved past ours
            raise LogForked(
                self.key(sequence),
                f"{missing.key} is absent while entry {listed[-1]} exists: this entry was written at"
                " a number that had been deleted (the writer fell behind the retention, stalled?,"
                " or the entry had been deleted by hand)",
            ) from None

    def _holds(self, sequence: int, commit_id: str) -> bool:
        """Whether entry `sequence` is still the commit `commit_id` (one GET).

        A commit is created once, so an entry that holds it now has held it since it landed."""
        try:
            return self.read(sequence).commit_id == commit_id
        except NotFound:
            return False

    def settle(self, unknown: CommitUnknown) -> AppendResult | None:
        """Decide a `CommitUnknown` for good: its `AppendResult`, or None if it never landed.

        Sends the same entry to the same number again (create only if absent) until the store
        answers; afterwards that number holds either this commit or another, for ever. Raises
        `StoreUnavailable` (leaving it undecided) if the store is still away, and `LogForked`
        if the number had meanwhile been removed by retention (settle within the retention).
        """
        number = unknown.sequence
        key = self.key(number)
        attempts = 0
        rng = random.Random()
        while True:
            attempts += 1
            try:
                self.store.put(key, unknown.data, CREATE)
                return self._placed(unknown.sequence, unknown.commit_id, attempts, unknown.data)
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
                        return self._placed(unknown.sequence, unknown.commit_id, attempts, unknown.data)
                    return None
                if attempts > self.max_unavailable:
                    raise StoreUnavailable(f"settling commit {unknown.commit_id}", str(exc)) from exc
                self._pause(attempts, rng)

    def _read_from(self, sequence: int, prev: str | None, absent_ok: bool = False) -> list[LogEntry]:
        """Entries `sequence`, `sequence + 1`, ... up to the first absent one (GET each), checked
        as a chain from `prev`.

        A failed read is not retried here: the append loop backs off and tries its PUT again,
        which is harmless when the number is taken and lands the entry when it is free.
        """
        entries: list[LogEntry] = []
        while True:
            try:
                entries.append(self.read(sequence + len(entries)))
            except NotFound:
                if not entries and not absent_ok:
                    # AlreadyExists, then absent: only a deletion does that. The retention deletes
                    # only entries a snapshot covers, so this writer raced for a number far behind
                    # the log's end; without retention, somebody deleted it by hand.
                    if self.retention is not None:
                        raise LogForked(
                            self.key(sequence),
                            "was deleted by the retention while this writer raced for its number:"
                            " the writer fell behind the retention (stalled?)",
                        ) from None
                    raise LogCorrupt(self.key(sequence), "reported to exist, then absent") from None
                check_chain(entries, prev, self.key)
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

    def _pause(self, attempt: int, rng: random.Random) -> float:
        """Sleep a jittered exponential backoff for `attempt`; return the seconds asked for."""
        seconds: float = min(1.0, self.backoff * 2 ** min(attempt - 1, 30)) * (0.5 + rng.random())
        self._sleep(seconds)
        return seconds

    def _saw(self, sequence: int) -> None:
        with self._lock:
            if sequence > self._known_end:
                self._known_end = sequence

    def _sequence_of(self, key: str) -> int:
        match = _ENTRY_NAME.match(key[len(self.directory) :]) if key.startswith(self.directory) else None
        if match is None:
            raise LogCorrupt(key, f"not an entry name (<{SEQUENCE_DIGITS} digits>.json) in {self.directory}")
        return int(match.group(1))


def race_pause(previous: float, base: float, cap: float, rng: random.Random) -> float:
    """The next pause of a writer that keeps losing: decorrelated jitter, `min(cap,
    uniform(base, 3 * previous))`, from `base` (the first, with `previous` 0) and never above `cap`.

    Each pause is random in a range that grows with the one before, so colliding writers drift
    apart, and a writer's pauses stay bounded by `cap` whatever its luck.
    """
    return min(cap, rng.uniform(base, max(base, previous * 3)))
