"""Tests for metafuse.errors: the exception tree, each error's attributes and one-line message."""

from __future__ import annotations

import pytest

import metafuse
from metafuse.errors import (
    BusyError,
    CatalogClosedError,
    CatalogError,
    CatalogFileError,
    ConflictError,
    NotFoundError,
    RetriesExhaustedError,
    StorageError,
    ValidationError,
)

ALL_ERRORS: list[type[Exception]] = [
    BusyError,
    CatalogClosedError,
    CatalogFileError,
    ConflictError,
    NotFoundError,
    RetriesExhaustedError,
    StorageError,
    ValidationError,
]


@pytest.mark.parametrize("error_type", ALL_ERRORS)
def test_every_error_derives_from_catalog_error_and_has_a_docstring(error_type: type[Exception]) -> None:
    assert issubclass(error_type, CatalogError)
    assert error_type.__doc__
    assert "\n" not in error_type.__doc__.strip()


@pytest.mark.parametrize("error_type", [CatalogError, *ALL_ERRORS])
def test_every_error_is_exported_from_the_package(error_type: type[Exception]) -> None:
    assert getattr(metafuse, error_type.__name__) is error_type
    assert error_type.__name__ in metafuse.__all__


def test_validation_error_attributes_and_message() -> None:
    error = ValidationError("tag", "use only letters", "a b")
    assert (error.what, error.rule, error.value) == ("tag", "use only letters", "a b")
    assert str(error) == "invalid tag (got 'a b'): use only letters"
    assert isinstance(error, ValueError)


def test_validation_error_without_value_omits_it() -> None:
    assert (
        str(ValidationError("fields", "at most 2 allowed, got 3"))
        == "invalid fields: at most 2 allowed, got 3"
    )


def test_validation_error_previews_long_values_on_one_line() -> None:
    error = ValidationError("description", "too long", "x" * 1000)
    message = str(error)
    assert len(message) < 150
    assert "1000 chars" in message
    assert "\n" not in message


def test_conflict_error_attributes_and_messages() -> None:
    stale = ConflictError("a", 1, 2)
    assert (stale.name, stale.expected, stale.actual) == ("a", 1, 2)
    assert str(stale) == "dataset 'a' is at version 2, not the expected 1"
    exists = ConflictError("a", None, 3)
    assert exists.expected is None
    assert str(exists) == "dataset 'a' already exists (version 3)"
    gone = ConflictError("a", 4, None)
    assert gone.actual is None
    assert str(gone) == "dataset 'a' was deleted (expected version 4)"


def test_retries_exhausted_error_is_a_conflict_with_attempts() -> None:
    last = ConflictError("a", 5, 6)
    error = RetriesExhaustedError("a", 7, last)
    assert isinstance(error, ConflictError)
    assert (error.name, error.attempts, error.expected, error.actual) == ("a", 7, 5, 6)
    assert "7 attempts" in str(error)
    assert str(last) in str(error)


def test_not_found_error_names_the_dataset() -> None:
    error = NotFoundError("x.y")
    assert error.name == "x.y"
    assert isinstance(error, LookupError)
    assert str(error) == "dataset 'x.y' does not exist"


def test_busy_error_names_path_and_timeout() -> None:
    error = BusyError("/tmp/c.db", 0.25)
    assert (error.path, error.timeout) == ("/tmp/c.db", 0.25)
    assert str(error) == "catalog /tmp/c.db is locked by another writer (waited 0.25 s)"


def test_catalog_file_error_names_path_and_problem() -> None:
    error = CatalogFileError("/tmp/c.db", "is a directory")
    assert (error.path, error.problem) == ("/tmp/c.db", "is a directory")
    assert str(error) == "catalog /tmp/c.db: is a directory"


def test_storage_error_is_a_catalog_file_error() -> None:
    error = StorageError("/tmp/c.db", "disk full")
    assert isinstance(error, CatalogFileError)
    assert error.path == "/tmp/c.db"


def test_catalog_closed_error_names_path() -> None:
    error = CatalogClosedError("/tmp/c.db")
    assert error.path == "/tmp/c.db"
    assert str(error) == "catalog /tmp/c.db is closed"


@pytest.mark.parametrize(
    "error",
    [
        ValidationError("tag", "use only letters", "a b"),
        ConflictError("a.b", 1, 2),
        RetriesExhaustedError("a.b", 5, ConflictError("a.b", 4, 5)),
        NotFoundError("a.b"),
        BusyError("/tmp/c.db", 0.5),
        CatalogFileError("/tmp/c.db", "is a directory"),
        StorageError("/tmp/c.db", "disk full"),
        CatalogClosedError("/tmp/c.db"),
    ],
)
def test_errors_survive_pickling(error: Exception) -> None:
    """Process-mode clients send errors between processes; each must come back whole."""
    import pickle

    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error) or type(error) is RetriesExhaustedError
