"""The store-capable stress scenarios as Locust users, with one linearizability verdict at the master.

    locust -f metafuse/stress/locust/locustfile.py --master --catalog s3://bucket/prefix
    locust -f metafuse/stress/locust/locustfile.py --worker --master-host HOST

Users: `WriterUser` is `concurrent_writers` (read a random dataset, save a new token over the
version read), `ReaderUser` the reads of `read_heavy_workload` and `cache_invalidation_race`,
`OwnerUser` writes its worker's own dataset and reads another's (the tests' user).
Locust's settings are the run's: users = clients, `--run-time` = duration, spawn rate =
ramp-up. With `--metafuse-operations N` the work decides the length instead: each user tells
the master when it has made N calls (and works on), the master stops the test once all have,
and `--run-time` only caps it (a run capped before its work is done is INCONCLUSIVE: too
little evidence never passes).

Every catalog call is reported through `events.request`: request type `catalog` with
the operation (`get`, `save`) as its name; a conflict is reported under request type `conflict`
and a call refused as overloaded (`BusyError`) under `busy`, successes of their own kinds, so
Locust's failures are the catalog's errors alone. A busy call is not work: it does not count
towards `--metafuse-operations`.

Every worker records its users' operations in the history format, with wall-clock times. When
the test stops, the master asks every worker (connected, or that said hello) for its history (the worker
stops its users first, giving each `STOP_GRACE` seconds to finish its task: a call cut short is
recorded `unknown`), receives it in 1 MB pieces,
measures each worker's clock against its own by round trips, merges the histories onto its
clock (intervals widened by each worker's uncertainty, `metafuse.stress.distributed`) and
checks them as `metafuse stress check-history` does. A history that is NOT linearizable sets
the master's exit code to 6; one that cannot be decided (a worker's history did not arrive by
`--collect-timeout`, or the search ran past `--check-timeout`) to 7. The one-pass invariants
(version chain, stale and torn reads) are checked first: when one fails, the search is skipped.
`--history FILE` keeps the merged history.

Locust loads this file by path, as a module of its own: imports here are absolute, and it only
wires the package's parts to Locust's events: the users (`users`), the collection handshake
(`_collect`), the clock measurement (`_clocks`) and the verdict (`_verdict`). Locust runs the user
classes it finds here.
"""

from __future__ import annotations

from locust import events

from metafuse.stress.locust import _collect, _settings, _verdict
from metafuse.stress.locust._settings import CATALOG_ENV
from metafuse.stress.locust._verdict import EXIT_INCONCLUSIVE, EXIT_NOT_LINEARIZABLE
from metafuse.stress.locust.users import OwnerUser, ReaderUser, WriterUser

__all__ = [
    "CATALOG_ENV",
    "EXIT_INCONCLUSIVE",
    "EXIT_NOT_LINEARIZABLE",
    "OwnerUser",
    "ReaderUser",
    "WriterUser",
]

events.init_command_line_parser.add_listener(_settings.add_options)
events.init.add_listener(_collect.on_init)
events.test_start.add_listener(_collect.on_test_start)
events.test_stop.add_listener(_verdict.on_test_stop)
events.quitting.add_listener(_verdict.on_quitting)
