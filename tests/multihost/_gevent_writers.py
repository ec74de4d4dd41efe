"""Run by test_gevent.py in a fresh interpreter: saves and `transaction()` writes as greenlets.

gevent's monkey-patching must come before anything imports `threading`, so this runs as a
script of its own. Six greenlets save their own dataset 100 times each through the group commit
while a seventh creates datasets through `transaction()`; every greenlet yields after each call,
as a Locust user does between tasks. Prints one JSON object:

- `rounds_with_a_create`: creates that finished while the savers were still running (fair
  scheduling gives the creator one turn per round: 99 of the savers' 100 rounds);
- `switches_holding_the_writer_lock`: greenlet switches that happened while the writer lock was
  held (a write that yields while holding it makes every other writer wait behind the hub).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import greenlet  # noqa: E402

from metafuse import Catalog, Dataset  # noqa: E402

SAVERS = 6
ROUNDS = 100


def main(path: str) -> None:
    catalog = Catalog(path)
    names = [f"gevent.saved_{index}" for index in range(SAVERS)]
    catalog.create_many(Dataset(name=name, uri=f"file:///{name}", format="parquet") for name in names)
    switches = 0
    savers_left = SAVERS
    creates = 0

    def count_switches(event: str, args: Any) -> None:
        nonlocal switches
        if event in ("switch", "throw") and catalog._transactions.write_lock.locked():
            switches += 1

    def save_often(name: str) -> None:
        nonlocal savers_left
        for _ in range(ROUNDS):
            current = catalog.get(name)
            assert current is not None
            catalog.save(current.replace(description="saved"), expected_version=current.version)
            gevent.sleep(0)
        savers_left -= 1

    def create_while_saving() -> None:
        nonlocal creates
        index = 0
        while savers_left:
            catalog.create(Dataset(name=f"gevent.created_{index}", uri="file:///c", format="parquet"))
            index += 1
            if savers_left:
                creates += 1
            gevent.sleep(0)

    greenlet.settrace(count_switches)
    try:
        gevent.joinall(
            [gevent.spawn(save_often, name) for name in names] + [gevent.spawn(create_while_saving)],
            raise_error=True,
        )
    finally:
        greenlet.settrace(None)
        catalog.close()
    print(json.dumps({"rounds_with_a_create": creates, "switches_holding_the_writer_lock": switches}))


if __name__ == "__main__":
    main(sys.argv[1])
