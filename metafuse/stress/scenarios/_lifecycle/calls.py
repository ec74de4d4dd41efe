"""How a lifecycle working thread records its calls: through a `Caller`, which is the client's own
`ClientContext` in thread mode and a thread-confined `Tally` in process mode.

It opens no catalog and judges nothing: it only classifies what a call returned or raised. Of the
catalog it imports only `errors`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from ....errors import BusyError, ConflictError
from ...client import ClientContext
from ...recorder import OUTCOMES


class Caller(Protocol):
    """What a working thread records its calls with: a `ClientContext` or a `Tally`."""

    last_error: Exception | None

    def call(self, op: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, Any]:
        """Run one operation; return (outcome, value)."""
        ...


class Tally:
    """A thread-confined `Caller`, for threads of one client (its `ClientContext` is not thread-safe).

    Counts outcomes per operation and keeps error samples; the client folds it into its recorder.
    """

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.errors: list[str] = []
        self.last_error: Exception | None = None

    def call(self, op: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, Any]:
        """Run `fn`; classify it as `ClientContext.call` does."""
        self.last_error = None
        try:
            value, outcome = fn(*args, **kwargs), "ok"
        except ConflictError as error:
            value, outcome, self.last_error = None, "conflict", error
        except BusyError as error:
            value, outcome, self.last_error = None, "busy", error
        except Exception as error:
            value, outcome, self.last_error = None, "error", error
            if len(self.errors) < 20:
                self.errors.append(f"{op}: {type(error).__name__}: {error}")
        self.counts[(op, outcome)] += 1
        return outcome, value

    def fold_into(self, ctx: ClientContext) -> None:
        """Add these counts and error samples to `ctx`'s recorder (call from the client's own thread)."""
        for (op, outcome), count in self.counts.items():
            for _ in range(count):
                ctx.recorder.count_only(op, OUTCOMES.index(outcome))
        for message in self.errors:
            ctx.recorder.error(message)
