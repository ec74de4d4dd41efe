"""Content that makes every write checkable: a unique token in the row and in its fields.

Owns `tokened`, `rewrite`, `checksum`, the writers' `write_loop` and `recreate`. It declares no
scenario or invariant and keeps no state; it reaches the catalog only through the public `Catalog`
and `Dataset`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator

from ...catalog import Catalog
from ...model import Dataset, Field
from ..client import ClientContext


def checksum(dataset: Dataset) -> str:
    """Return a digest of everything a writer controls (not version or timestamp)."""
    text = json.dumps(dataset.content(), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def tokened(name: str, token: str, *, extra_fields: int = 0) -> Dataset:
    """Return a dataset whose row (description) and fields (a description) both carry `token`.

    A write torn between the dataset row and its fields shows as a checksum that no writer
    ever produced.
    """
    fields = [
        Field("id", "int64", nullable=False),
        Field("token", "string", description=token),
        *(Field(f"column_{index}", "string", description=f"column {index}") for index in range(extra_fields)),
    ]
    return Dataset(
        name=name,
        uri=f"file:///stress/{name}.parquet",
        format="parquet",
        description=token,
        owner="stress",
        domain="stress",
        tags=("stress",),
        fields=fields,
    )


def rewrite(current: Dataset, token: str) -> Dataset:
    """Return `current` with a new token in its row and its token field."""
    fields = tuple(
        field if field.name != "token" else Field("token", "string", description=token)
        for field in current.fields
    )
    return current.replace(description=token, fields=fields, row_count=(current.row_count or 0) + 1)


def write_loop(
    ctx: ClientContext,
    names: list[str],
    token: Callable[[int], str],
    *,
    record: bool = False,
    race_first: bool = False,
) -> Iterator[Dataset]:
    """Read a random dataset, save a new token over the version read; yield each stored write.

    The read-modify-save loop of the writer scenarios: conflicts are counted by `ctx.call` and
    the client simply moves on to its next write. With `record`, every get and save goes to the
    run's history (when it has one); a scenario whose clients may be killed must not record.

    With `race_first`, every client's first write goes to `names[0]`, and no client saves it
    before all of them have read it: with n clients, n - 1 of those saves conflict by
    construction, whatever the machine's load (the rest of the loop races only by chance).
    """
    sequence = 0
    history = ctx.history if record else None
    racing = race_first
    while not ctx.should_stop():
        name = names[0] if racing else ctx.rng.choice(names)
        _, current = ctx.call("read", ctx.catalog.get, name)
        if history is not None:
            ctx.record("get", name, current)
        if racing:
            racing = False
            ctx.next_round()  # every client has read the same version
        if current is None:
            continue
        sequence += 1
        written = token(sequence)
        outcome, stored = ctx.call(
            "write", ctx.catalog.save, rewrite(current, written), expected_version=current.version
        )
        if history is not None:
            ctx.record("save", name, stored, expected=current.version, token=written)
        if outcome == "ok" and stored is not None:
            yield stored


def recreate(catalog: Catalog, datasets: Iterable[Dataset]) -> list[Dataset]:
    """Create `datasets` in one transaction, first deleting any left by an earlier run."""
    wanted = list(datasets)
    with catalog.transaction():
        for dataset in wanted:
            existing = catalog.get(dataset.name)
            if existing is not None:
                catalog.delete(dataset.name, expected_version=existing.version)
        return catalog.create_many(wanted)
