"""Appending to a commit log: pick a number, create the entry only if absent, race, settle.

Owns steps 1 to 5 of the protocol in `log`'s docstring: the loop that creates entry `n`, reads
what it lost to, hands it to the caller's `validate`, paces a writer that keeps losing, and
re-sends an ambiguous write to the same number; and `settle`, which decides a `CommitUnknown`
later. It may not acknowledge an entry by itself: every entry of ours that lands goes through
the placement check of `_logplacement` first.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Callable

from .. import perturb
from ._base import CREATE
from ._entries import AppendResult, LogEntry, check_chain, encode_entry
from ._logplacement import PlacementCheck
from .errors import (
    AlreadyExists,
    AmbiguousWrite,
    AppendContended,
    CommitUnknown,
    LogCorrupt,
    LogForked,
    NotFound,
    StoreUnavailable,
)

Validator = Callable[[Sequence[LogEntry]], None]
"""Called with the entries an append lost to; raise to abandon the commit, return to retry."""


class LogAppender(PlacementCheck):
    """The append path of a commit log: an entry is created only if its number is absent, and an
    append returns only once its entry is placed; safe to share between threads."""

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


def race_pause(previous: float, base: float, cap: float, rng: random.Random) -> float:
    """The next pause of a writer that keeps losing: decorrelated jitter, `min(cap,
    uniform(base, 3 * previous))`, from `base` (the first, with `previous` 0) and never above `cap`.

    Each pause is random in a range that grows with the one before, so colliding writers drift
    apart, and a writer's pauses stay bounded by `cap` whatever its luck.
    """
    return min(cap, rng.uniform(base, max(base, previous * 3)))
