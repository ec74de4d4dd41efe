"""Reading a commit log: whether it moved, where it ends, its entries from a position on.

Owns the read and scan path of the protocol in `log`'s docstring: one LIST to see what is
there, one GET per entry, the chain check on every entry read, and the hole and truncation
checks that turn a gap into `LogCorrupt` or `LogTruncated`. It may not write or delete an
object: appending, the placement check and retention build on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from ._entries import LogEntry, check_chain, decode_entry
from ._logkeys import LogKeys
from .errors import LogCorrupt, LogTruncated, NotFound


class LogReader(LogKeys):
    """The read path of a commit log; every read reflects each append acknowledged before it
    started, and safe to share between threads."""

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

    def _empty_log_was_truncated(self) -> bool:
        """Whether an empty listing from the start means entries were deleted (`truncated.json`
        is there: the log had entries, and the retention or somebody removed them all)."""
        try:
            self.store.head(self.truncated_key)
        except NotFound:
            return False
        return True

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
