"""Content that makes every write checkable: a unique token in the row and in its fields."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from ...catalog import Catalog
from ...model import Dataset, Field


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


def recreate(catalog: Catalog, datasets: Iterable[Dataset]) -> list[Dataset]:
    """Create `datasets` in one transaction, first deleting any left by an earlier run."""
    wanted = list(datasets)
    with catalog.transaction():
        for dataset in wanted:
            existing = catalog.get(dataset.name)
            if existing is not None:
                catalog.delete(dataset.name, expected_version=existing.version)
        return catalog.create_many(wanted)
