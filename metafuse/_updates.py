"""How `Catalog.update` retries: optimistic attempts with full-jitter backoff, then a pessimistic one.

Owns the attempt loop of an update: reading, calling the caller's `change`, saving with the
version read, backing off after a conflict, and the last attempt that reads and saves inside one
write transaction. It is handed the catalog's read, save and transaction verbs and may not run
SQL, take locks or touch the cache itself.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable

from . import faults
from .errors import ConflictError, NotFoundError, ValidationError
from .model import Dataset

log = logging.getLogger("metafuse.catalog")

Change = Callable[[Dataset], Dataset]
OnConflict = Callable[[ConflictError, int], None]
Read = Callable[[str], "Dataset | None"]
Save = Callable[[Dataset, int], Dataset]
"""Save a dataset if its stored version is the one given (`Catalog.save`)."""


def optimistic(
    name: str,
    change: Change,
    max_attempts: int,
    backoff: float,
    max_backoff: float,
    on_conflict: OnConflict | None,
    *,
    read: Read,
    save: Save,
    last: Callable[[int], Dataset],
) -> Dataset:
    """Attempts 1 to max_attempts-1: read, change, save; `last(attempt)` makes the final one."""
    attempt = 0
    while True:
        attempt += 1
        if attempt >= max_attempts and not faults.active("unbounded_retry"):
            return last(attempt)
        current = read(name)
        if current is None:
            raise NotFoundError(name)
        proposed = _proposed(change(current), name)
        try:
            return save(proposed, current.version)
        except ConflictError as conflict:
            if on_conflict is not None:
                on_conflict(conflict, attempt)
            ceiling = min(max_backoff, backoff * 2 ** min(attempt - 1, 30))
            delay = random.uniform(0, ceiling)
            log.debug("update %s: conflict on attempt %d; retrying in %.1f ms", name, attempt, delay * 1e3)
            time.sleep(delay)


def pessimistic(
    name: str,
    change: Change,
    on_conflict: OnConflict | None,
    attempt: int,
    *,
    transaction: Callable[[], contextlib.AbstractContextManager[None]],
    read_stored: Read,
    save: Save,
    on_store: bool,
) -> Dataset:
    """The pessimistic attempt: read-change-save inside one write transaction, from the database.

    On a catalog file the transaction holds the writer lock, so a conflict cannot happen and is
    raised if it does. On an object store there is no lock across machines: the attempt reads,
    changes and appends, and if another machine's commit to `name` wins the log number first, it
    runs again on top of that commit. Each repetition means another writer's commit landed, so
    the loop is lock-free (some writer always progresses), not bounded.
    """
    while True:
        try:
            with transaction():
                current = read_stored(name)
                if current is None:
                    raise NotFoundError(name)
                return save(_proposed(change(current), name), current.version)
        except ConflictError as conflict:
            if not on_store:
                raise
            if on_conflict is not None:
                on_conflict(conflict, attempt)
            attempt += 1


def _proposed(proposed: object, name: str) -> Dataset:
    if not isinstance(proposed, Dataset):
        raise ValidationError("update change", "must return a Dataset", proposed)
    if proposed.name != name:
        raise ValidationError("update change", "must not rename the dataset", proposed.name)
    return proposed


class Updates:
    """The updates of one catalog: runs `Catalog.update`'s attempts and counts pessimistic ones.

    Handed the catalog's `transaction` once and its read and save verbs with each update, so it
    holds no reference back to the catalog. `pessimistic_updates` only grows.
    """

    def __init__(
        self, *, transaction: Callable[[], contextlib.AbstractContextManager[None]], on_store: bool
    ) -> None:
        self.transaction = transaction
        self.on_store = on_store
        self.pessimistic_updates = 0
        """Updates that needed their last attempt (`CatalogStats.pessimistic_updates`)."""

    def run(
        self,
        name: str,
        change: Change,
        limits: tuple[int, float, float],
        on_conflict: OnConflict | None,
        *,
        read: Read,
        read_stored: Read,
        save: Save,
    ) -> Dataset:
        """`Catalog.update` with its arguments checked: optimistic attempts, then the pessimistic one.

        `limits` is (max_attempts, backoff, max_backoff); `read` may come from the cache,
        `read_stored` never does.
        """

        def last(attempt: int) -> Dataset:
            stored = pessimistic(
                name,
                change,
                on_conflict,
                attempt,
                transaction=self.transaction,
                read_stored=read_stored,
                save=save,
                on_store=self.on_store,
            )
            self.pessimistic_updates += 1
            return stored

        return optimistic(name, change, *limits, on_conflict, read=read, save=save, last=last)
