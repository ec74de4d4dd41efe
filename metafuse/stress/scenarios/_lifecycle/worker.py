"""One lifecycle working thread: its calls on the shelved catalog, and what it may conclude from them.

A `Worker` is confined to its thread. It is the only writer of its dataset, so it knows what it
had acknowledged; it counts calls a closed catalog served, and writes that landed by halves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ....model import Dataset
from .._content import rewrite, tokened
from .calls import Caller
from .shelf import CLOSED, Shelf, closed_ok


class Worker:
    """One working thread's state: its dataset, what it had acknowledged, and what it saw go wrong."""

    def __init__(self, shelf: Shelf, name: str, caller: Caller, label: str) -> None:
        self.shelf = shelf
        self.name = name
        self.caller = caller
        self.label = label
        self.catalog, self.generation = shelf.current()
        self.acked: tuple[int, str] | None = None  # (version, token) of the newest acknowledged write
        self.pending: str | None = None  # token of a write cut off by a close: landed or not?
        self.steps = self.sequence = 0
        self.closed_seen = self.closed_served = self.half_written = 0

    def step(self) -> None:
        """Make one call on the shelved catalog; switch to a new one once the old one is closed."""
        _, generation = self.shelf.current()
        if generation != self.generation:
            self._switch()
        self.steps += 1
        kind = self.steps % 4
        if self.pending is not None or self.acked is None:
            value = self._call("read", self.catalog.get, self.name)
            if isinstance(value, Dataset):
                self._settle(value)
        elif kind == 1:
            self._write("write", self._save)
        elif kind == 2:
            self._call("search", self.catalog.search, "stress", limit=5)
        elif kind == 3:
            self._write("update", self._update)
        else:
            value = self._call("read", self.catalog.get, self.name)
            if isinstance(value, Dataset) and self.acked is not None and value.version < self.acked[0]:
                self.half_written += 1  # an acknowledged write went missing

    def _call(self, op: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One call on `self.catalog`; a call that starts after its close() returned must be refused."""
        must_refuse = self.shelf.closed(self.generation)
        outcome, value = self.caller.call(op, closed_ok, fn, *args, **kwargs)
        if value is CLOSED:
            self.closed_seen += 1
        elif must_refuse and outcome == "ok":
            self.closed_served += 1
        return value

    def _save(self, token: str) -> Dataset:
        assert self.acked is not None
        current = tokened(self.name, token)
        return self.catalog.save(current, expected_version=self.acked[0])

    def _update(self, token: str) -> Dataset:
        return self.catalog.update(self.name, lambda current: rewrite(current, token), max_attempts=3)

    def _write(self, op: str, write: Callable[[str], Dataset]) -> None:
        self.sequence += 1
        token = f"{self.label}-{op}-{self.sequence}"
        value = self._call(op, write, token)
        if value is CLOSED:
            self.pending = token  # cut off by the close: resolved by the next read
        elif isinstance(value, Dataset):
            self.acked = (value.version, token)

    def _settle(self, seen: Dataset) -> None:
        """Resolve a write cut off by a close: it landed whole, or not at all."""
        field = next((f.description for f in seen.fields if f.name == "token"), None)
        if field != seen.description:
            self.half_written += 1
        elif self.acked is None:
            pass  # first read: nothing acknowledged yet
        elif (seen.version, seen.description) == self.acked:
            pass  # the cut-off write did not land
        elif seen.version == self.acked[0] + 1 and seen.description == self.pending:
            pass  # it landed whole
        else:
            self.half_written += 1
        self.acked = (seen.version, seen.description or "")
        self.pending = None

    def _switch(self) -> None:
        """Move to the newly shelved catalog; first prove the closed one refuses a later call."""
        if self.shelf.closed(self.generation):
            self._call("closed_call", self.catalog.get, self.name)
        self.catalog, self.generation = self.shelf.current()

    def metrics(self) -> dict[str, Any]:
        """What the invariants need from this thread."""
        return {
            "closed_seen": self.closed_seen,
            "closed_served": self.closed_served,
            "half_written": self.half_written,
            "acked": {self.name: self.acked} if self.acked is not None and self.pending is None else {},
        }
