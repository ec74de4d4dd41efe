"""How a dataset is read back from SQL: one statement per dataset, decoded without re-validation.

Owns `SELECT_DATASET` and `decode`, and imports only `model`. It runs no statement and writes
nothing: its callers execute the SELECT on their own connection.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from typing import Any

from .model import Dataset, Field

CHILDREN_AS_JSON = """
       (SELECT json_group_array(json_array(name, data_type, nullable, description))
          FROM (SELECT name, data_type, nullable, description FROM fields
                 WHERE dataset_id = d.id ORDER BY position)),
       (SELECT json_group_array(tag)
          FROM (SELECT tag FROM tags WHERE dataset_id = d.id ORDER BY position)),
       (SELECT json_group_array(upstream)
          FROM (SELECT upstream FROM lineage WHERE dataset_id = d.id ORDER BY position))
"""
"""A dataset's fields, tags and upstream names as three JSON arrays, for a row aliased `d`."""

SELECT_DATASET = f"""
SELECT d.name, d.uri, d.format, d.description, d.owner, d.domain, d.partitions, d.size_bytes,
       d.row_count, d.version, d.last_modified, {CHILDREN_AS_JSON}
  FROM datasets AS d
"""
"""Everything `decode` needs; append a WHERE clause. One statement reads the row and its children
from one snapshot, so a reader never sees a dataset half-written."""

_new = object.__new__
_set = object.__setattr__


def _field(values: Sequence[Any]) -> Field:
    field = _new(Field)
    _set(field, "name", values[0])
    _set(field, "data_type", values[1])
    _set(field, "nullable", bool(values[2]))
    _set(field, "description", values[3])
    return field


def decode(row: Sequence[Any]) -> Dataset:
    """Build a `Dataset` from a `SELECT_DATASET` row.

    Skips validation: the row was validated when written, and re-checking every field on every
    cache miss would dominate the read path.
    """
    dataset = _new(Dataset)
    for key, value in zip(_SCALARS, row):
        _set(dataset, key, value)
    _set(dataset, "partitions", tuple(json.loads(row[6])))
    _set(dataset, "last_modified", _dt.datetime.fromisoformat(row[10]))
    _set(dataset, "fields", tuple(_field(values) for values in json.loads(row[11])))
    _set(dataset, "tags", tuple(json.loads(row[12])))
    _set(dataset, "upstream", tuple(json.loads(row[13])))
    return dataset


_SCALARS = (
    "name",
    "uri",
    "format",
    "description",
    "owner",
    "domain",
    "partitions",
    "size_bytes",
    "row_count",
    "version",
)
