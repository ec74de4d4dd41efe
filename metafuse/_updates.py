"""How `Catalog.update` retries: optimistic attempts with full-jitter backoff, then a pessimistic one.

Owns the attempt loop of an update: reading, calling the caller's `change`, saving with the
version read, backing off after a conflict, and the last attempt that reads and saves inside one
write transaction. It is handed the catalog's read, save and transaction verbs and may not run
SQL, take locks or touch the cache itself.
"""

from __future__ import annotations

import contextlib
import logging
import math
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


def check_delay(what: str, value: object) -> float:
    """A delay in seconds from 0 to 3600, else `ValidationError` naming `what`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(what, "must be a finite number of seconds", value)
    if not 0 <= value <= 3600:
        raise ValidationError(what, "must be from 0 to 3600 seconds", value)
    return float(value)


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
