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

Code: `CommitLog` is retention (`truncate`, `oldest`, `find_commit`, here) on top of four
classes, each extending the one before: `_logkeys.LogKeys` (settings, keys, one LIST, the known
end, the retry pause), `_logread.LogReader` (reading), `_logplacement.PlacementCheck` (step 6)
and `_logappend.LogAppender` (steps 1 to 5, and `settle`).
"""

from __future__ import annotations

import contextlib

from ._base import CREATE
from ._entries import LogEntry
from ._logappend import LogAppender, Validator, race_pause
from ._logkeys import MAX_WAIT, RACE_BACKOFF_CAP, SEQUENCE_DIGITS, SETTLE_SECONDS, TRUNCATED_KEY
from .errors import AlreadyExists

__all__ = [
    "MAX_WAIT",
    "RACE_BACKOFF_CAP",
    "SEQUENCE_DIGITS",
    "SETTLE_SECONDS",
    "TRUNCATED_KEY",
    "CommitLog",
    "Validator",
    "race_pause",
]


class CommitLog(LogAppender):
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
