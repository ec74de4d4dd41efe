"""The catalog's records: `Dataset` and `Field`, immutable and validated on construction.

Owns `Dataset`, `Field` and their dict forms. It imports only `limits`, `validation` and `errors`,
and may not touch SQL, a connection or a file: a record knows nothing of where it is stored.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import limits, validation
from .errors import ValidationError


@dataclasses.dataclass(frozen=True)
class Field:
    """One column of a dataset's schema. Immutable; validated when built."""

    name: str
    data_type: str
    nullable: bool = True
    description: str | None = None

    def __post_init__(self) -> None:
        validation.field_name(self.name)
        validation.short_text("field data_type", self.data_type, optional=False)
        if not isinstance(self.nullable, bool):
            raise ValidationError("field nullable", "must be true or false", self.nullable)
        validation.description("field description", self.description)

    def to_dict(self) -> dict[str, Any]:
        """Return the field as plain JSON-ready values."""
        return {
            "name": self.name,
            "data_type": self.data_type,
            "nullable": self.nullable,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Field:
        """Build a field from `to_dict` output; unknown keys are a `ValidationError`."""
        if not isinstance(data, Mapping):
            raise ValidationError("field", "must be an object", data)
        _reject_unknown("field", data, _FIELD_KEYS)
        if "name" not in data or "data_type" not in data:
            raise ValidationError("field", "needs 'name' and 'data_type'", dict(data))
        return cls(**dict(data))


_FIELD_KEYS = frozenset(f.name for f in dataclasses.fields(Field))


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A dataset's metadata as stored in the catalog.

    Immutable: sequences are stored as tuples, so a `Dataset` handed out by the catalog (or its
    cache) can be shared between threads safely. `version` and `last_modified` are set by the
    catalog only; `version` is 1 on create and grows by one on every write.
    """

    name: str
    uri: str
    format: str | None = None
    description: str | None = None
    owner: str | None = None
    domain: str | None = None
    tags: Sequence[str] = ()
    fields: Sequence[Field] = ()
    partitions: Sequence[str] = ()
    size_bytes: int | None = None
    row_count: int | None = None
    upstream: Sequence[str] = ()
    version: int = 0
    last_modified: _dt.datetime | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "tags", _as_tuple("tags", self.tags))
        set_(self, "fields", _as_tuple("fields", self.fields))
        set_(self, "partitions", _as_tuple("partitions", self.partitions))
        set_(self, "upstream", _as_tuple("upstream", self.upstream))
        self._validate()

    def _validate(self) -> None:
        validation.dataset_name(self.name)
        validation.uri(self.uri)
        validation.short_text("format", self.format)
        validation.description("description", self.description)
        validation.short_text("owner", self.owner)
        if self.domain is not None:
            validation.domain(self.domain)
        validation.at_most("tags", tuple(self.tags), limits.TAGS_MAX)
        for tag in self.tags:
            validation.tag(tag)
        validation.unique("tags", self.tags)
        validation.at_most("fields", tuple(self.fields), limits.FIELDS_MAX)
        for field in self.fields:
            if not isinstance(field, Field):
                raise ValidationError("fields", "each entry must be a Field", field)
        names = [field.name for field in self.fields]
        validation.unique("field names", names)
        for partition in self.partitions:
            if partition not in names:
                raise ValidationError("partitions", "each must name one of the fields", partition)
        validation.unique("partitions", self.partitions)
        validation.at_most("upstream", tuple(self.upstream), limits.UPSTREAM_MAX)
        for parent in self.upstream:
            validation.dataset_name(parent, "upstream dataset name")
            if parent == self.name:
                raise ValidationError("upstream", "a dataset cannot be its own upstream", parent)
        validation.unique("upstream", self.upstream)
        validation.count("size_bytes", self.size_bytes)
        validation.count("row_count", self.row_count)
        validation.count("version", self.version)

    def replace(self, **changes: Any) -> Dataset:
        """Return a copy with `changes` applied (validated like a new dataset)."""
        return dataclasses.replace(self, **changes)

    def content(self) -> dict[str, Any]:
        """Return everything a writer controls: `to_dict` without `version` and `last_modified`."""
        data = self.to_dict()
        del data["version"], data["last_modified"]
        return data

    def to_dict(self) -> dict[str, Any]:
        """Return the dataset as plain JSON-ready values (timestamps in ISO 8601)."""
        return {
            "name": self.name,
            "uri": self.uri,
            "format": self.format,
            "description": self.description,
            "owner": self.owner,
            "domain": self.domain,
            "tags": list(self.tags),
            "fields": [field.to_dict() for field in self.fields],
            "partitions": list(self.partitions),
            "size_bytes": self.size_bytes,
            "row_count": self.row_count,
            "upstream": list(self.upstream),
            "version": self.version,
            "last_modified": None if self.last_modified is None else self.last_modified.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Dataset:
        """Build a dataset from `to_dict` output (or hand-written JSON); unknown keys are refused."""
        if not isinstance(data, Mapping):
            raise ValidationError("dataset", "must be a JSON object", data)
        _reject_unknown("dataset", data, _DATASET_KEYS)
        for key in ("name", "uri"):
            if key not in data:
                raise ValidationError("dataset", f"needs {key!r}")
        values = dict(data)
        fields = values.get("fields", ())
        if not isinstance(fields, (list, tuple)):
            raise ValidationError("fields", "must be a list", fields)
        values["fields"] = tuple(Field.from_dict(item) for item in fields)
        stamp = values.get("last_modified")
        if isinstance(stamp, str):
            try:
                values["last_modified"] = _dt.datetime.fromisoformat(stamp)
            except ValueError:
                raise ValidationError("last_modified", "must be an ISO 8601 timestamp", stamp) from None
        elif stamp is not None and not isinstance(stamp, _dt.datetime):
            raise ValidationError("last_modified", "must be an ISO 8601 timestamp", stamp)
        return cls(**values)


_DATASET_KEYS = frozenset(f.name for f in dataclasses.fields(Dataset))


def _as_tuple(what: str, values: Iterable[Any]) -> tuple[Any, ...]:
    # A mapping or a set iterates, but in no order the caller chose: refuse it like a string.
    if isinstance(values, (str, bytes, Mapping, set, frozenset)) or not isinstance(values, Iterable):
        raise ValidationError(what, "must be a list", values)
    return tuple(values)


def _reject_unknown(what: str, data: Mapping[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValidationError(what, f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
