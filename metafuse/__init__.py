"""MetaFuse: a serverless data catalog whose whole database is one SQLite file.

Owns these names and `__version__` only: it re-exports them from `catalog`, `_stats`, `errors` and
`model`, defines no behaviour of its own, and may not import `stress` or `cli`, which sit above it.
"""

from __future__ import annotations

from ._stats import CatalogStats
from .catalog import DEFAULT_PATH, Catalog, LineageEdge
from .errors import (
    BusyError,
    CatalogClosedError,
    CatalogError,
    CatalogFileError,
    CommitUnknownError,
    ConflictError,
    ForkedHistoryError,
    NotFoundError,
    RetriesExhaustedError,
    StorageError,
    TransactionAbortedError,
    ValidationError,
)
from .model import Dataset, Field

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_PATH",
    "BusyError",
    "Catalog",
    "CatalogClosedError",
    "CatalogError",
    "CatalogFileError",
    "CatalogStats",
    "CommitUnknownError",
    "ConflictError",
    "Dataset",
    "Field",
    "ForkedHistoryError",
    "LineageEdge",
    "NotFoundError",
    "RetriesExhaustedError",
    "StorageError",
    "TransactionAbortedError",
    "ValidationError",
    "__version__",
]
