"""The placement check of an append: is our entry in the history every other client reads?

Owns the step that runs after an entry of ours landed (step 6 of the protocol in `log`'s
docstring): acknowledge it only when it is in the chain that ends at the newest entry, and
delete it again when it landed at a number the retention had deleted. It may not choose a
number or send an entry: `_logappend` does, and calls `_placed` with what landed.
"""

from __future__ import annotations

import contextlib

from ._entries import AppendResult
from ._logread import LogReader
from .errors import CommitUnknown, LogForked, NotFound


class PlacementCheck(LogReader):
    """The placement check of a commit log: an entry is acknowledged only once it is known to be
    in the history every client reads."""

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
