"""Run by test_locust_users.py in a fresh interpreter: a Locust user's saves refused busy, on purpose.

Importing Locust monkey-patches the interpreter with gevent, so this runs as a script of its own.
A `WriterUser` works on a catalog file whose busy timeout is 0.2 s while another greenlet holds
the catalog's writer lock (a `transaction()` kept open for 1 s): the stall a starved machine
makes when the writers ahead of a save hold the lock past its bound. The user makes three tasks
during the stall and one after it. Prints one JSON object:

- `requests`: every call as Locust saw it, `[request type, name, exception or null]`;
- `finished_after`: after each task, how many times the user had told the master it made its
  calls (`--metafuse-operations 2`);
- `failures`: Locust's failure count; `history`: the outcome recorded for each save.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any

import gevent
from locust.env import Environment

from metafuse import Catalog
from metafuse.stress.history import start as start_history
from metafuse.stress.locust import _collect
from metafuse.stress.locust.users import WriterUser
from metafuse.stress.scenarios._content import recreate, tokened

NAME = "locust.writers.0"


def main(path: str) -> None:
    catalog = Catalog(path, busy_timeout=0.2)
    recreate(catalog, [tokened(NAME, "initial")])
    options = argparse.Namespace(metafuse_operations=2, metafuse_datasets=1, catalog=path)
    environment = Environment(user_classes=[WriterUser], events=None, parsed_options=options)
    runner = environment.create_local_runner()
    finished: list[Any] = []
    runner.register_message(_collect.FINISHED, lambda environment, msg: finished.append(msg.data))
    requests: list[list[str | None]] = []

    def seen(request_type: str, name: str, exception: BaseException | None, **_: Any) -> None:
        requests.append([request_type, name, None if exception is None else type(exception).__name__])

    environment.events.request.add_listener(seen)  # type: ignore[no-untyped-call]
    fd, history = tempfile.mkstemp(suffix=".jsonl")
    os.close(fd)
    start_history(history)
    _collect.state.recorder = _collect.Recorder(path, history, 100_000, 0, opened=catalog)
    user = WriterUser(environment)
    user.on_start()
    held = gevent.event.Event()

    def hold_the_writer_lock() -> None:
        with catalog.transaction():
            held.set()
            gevent.sleep(1.0)

    holder = gevent.spawn(hold_the_writer_lock)
    held.wait()
    finished_after = []
    for _ in range(3):
        user.read_modify_save_any()
        user.begin_task()
        finished_after.append(len(finished))
    holder.join()
    user.read_modify_save_any()
    user.begin_task()
    finished_after.append(len(finished))
    data = _collect.state.recorder.finish()
    saves = [line["outcome"] for line in map(json.loads, data.splitlines()) if line.get("op") == "save"]
    failures = environment.stats.total.num_failures
    runner.quit()
    result = {"requests": requests, "finished_after": finished_after, "failures": failures, "history": saves}
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
