"""A Hypothesis state machine: two clients of one catalog file against a dict model.

Random create/save/update/delete/get through two `Catalog` objects, including saves and deletes
with stale versions, which must raise `ConflictError` and leave the model (and the file) unchanged.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from metafuse import Catalog, ConflictError, Dataset, Field, NotFoundError

NAMES = st.sampled_from(["a", "b", "c"])
CLIENTS = st.sampled_from([0, 1])
CONTENT = st.fixed_dictionaries(
    {
        "description": st.none() | st.text(max_size=12),
        "owner": st.none() | st.sampled_from(["ana", "bo", "caf\u00e9", "'; DROP TABLE datasets; --"]),
        "tags": st.lists(st.sampled_from(["pii", "gold", "team:x"]), unique=True, max_size=3),
        "fields": st.lists(st.sampled_from(["id", "ts", "amount"]), unique=True, max_size=3),
    }
)


def build(name: str, content: dict[str, Any]) -> Dataset:
    return Dataset(
        name=name,
        uri=f"s3://bucket/{name}",
        description=content["description"],
        owner=content["owner"],
        tags=content["tags"],
        fields=[Field(field, "text") for field in content["fields"]],
    )


class TwoClients(RuleBasedStateMachine):
    """Model: name -> (version, content). The catalog must agree after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="metafuse-stateful-")
        path = Path(self.directory) / "catalog.db"
        self.clients = [Catalog(path, synchronous="NORMAL"), Catalog(path, synchronous="NORMAL")]
        self.model: dict[str, tuple[int, Dataset]] = {}
        self.writes = 0

    def teardown(self) -> None:
        for client in self.clients:
            client.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _check_stored(self, name: str, client: int) -> None:
        stored = self.clients[client].get(name)
        if name not in self.model:
            assert stored is None
            return
        version, expected = self.model[name]
        assert stored is not None
        assert stored.version == version
        assert stored.content() == expected.content()

    @rule(client=CLIENTS, name=NAMES, content=CONTENT)
    def create(self, client: int, name: str, content: dict[str, Any]) -> None:
        dataset = build(name, content)
        if name in self.model:
            with pytest.raises(ConflictError) as caught:
                self.clients[client].create(dataset)
            assert caught.value.actual == self.model[name][0]
            return
        stored = self.clients[client].create(dataset)
        assert stored.version == 1
        self.model[name] = (1, dataset)
        self.writes += 1

    @rule(client=CLIENTS, name=NAMES, content=CONTENT)
    def save_fresh(self, client: int, name: str, content: dict[str, Any]) -> None:
        dataset = build(name, content)
        if name not in self.model:
            with pytest.raises(NotFoundError):
                self.clients[client].save(dataset, expected_version=1)
            return
        version = self.model[name][0]
        stored = self.clients[client].save(dataset, expected_version=version)
        assert stored.version == version + 1
        self.model[name] = (version + 1, dataset)
        self.writes += 1

    @precondition(lambda self: bool(self.model))
    @rule(client=CLIENTS, data=st.data(), content=CONTENT, offset=st.sampled_from([-2, -1, 1, 2]))
    def save_stale(self, client: int, data: st.DataObject, content: dict[str, Any], offset: int) -> None:
        name = data.draw(st.sampled_from(sorted(self.model)))
        version = self.model[name][0]
        expected = version + offset if version + offset >= 0 else version + 1
        assert expected != version
        with pytest.raises(ConflictError) as caught:
            self.clients[client].save(build(name, content), expected_version=expected)
        assert (caught.value.expected, caught.value.actual) == (expected, version)
        self._check_stored(name, 1 - client)

    @rule(client=CLIENTS, name=NAMES, content=CONTENT)
    def update(self, client: int, name: str, content: dict[str, Any]) -> None:
        def change(current: Dataset) -> Dataset:
            return build(current.name, content)

        if name not in self.model:
            with pytest.raises(NotFoundError):
                self.clients[client].update(name, change)
            return
        version = self.model[name][0]
        stored = self.clients[client].update(name, change, max_attempts=1)
        assert stored.version == version + 1
        self.model[name] = (version + 1, build(name, content))
        self.writes += 1

    @rule(client=CLIENTS, name=NAMES, stale=st.booleans())
    def delete(self, client: int, name: str, stale: bool) -> None:
        if name not in self.model:
            with pytest.raises(NotFoundError):
                self.clients[client].delete(name, expected_version=1)
            return
        version = self.model[name][0]
        if stale:
            with pytest.raises(ConflictError):
                self.clients[client].delete(name, expected_version=version + 1)
            return
        self.clients[client].delete(name, expected_version=version)
        del self.model[name]
        self.writes += 1

    @rule(client=CLIENTS, name=NAMES)
    def get(self, client: int, name: str) -> None:
        self._check_stored(name, client)
        self._check_stored(name, client)  # the second read may come from the cache

    @invariant()
    def both_clients_agree_with_the_model(self) -> None:
        for client in self.clients:
            assert [d.name for d in client.list()] == sorted(self.model)
            assert client.count == len(self.model)
            assert client.version == self.writes
        for name in self.model:
            self._check_stored(name, 0)
            self._check_stored(name, 1)


TwoClients.TestCase.settings = settings(max_examples=30, stateful_step_count=30, deadline=None, database=None)
test_two_clients = TwoClients.TestCase
