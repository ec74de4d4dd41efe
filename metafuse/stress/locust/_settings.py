"""The Locust run's settings: metafuse's command-line options, their checks, and the catalog they name.

Every other module of this package reads the options through here. An option that is wrong is
one line on stderr and exit 2 (Locust's usage error), before any worker is waited for.

It runs no user, touches no history and imports nothing else of this package; it opens the catalog
only through the public `Catalog.open`.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from locust.env import Environment

from metafuse.catalog import Catalog
from metafuse.errors import CatalogError

CATALOG_ENV = "METAFUSE_LOCUST_CATALOG"
"""Environment variable naming the catalog when `--catalog` is not given."""
NAMES = tuple(f"locust.writers.{index}" for index in range(5))
"""The datasets users read and write (created afresh by the master when a test starts): the first
`--metafuse-datasets` of them."""


def add_options(parser: Any, **_: Any) -> None:
    """`init_command_line_parser` listener: metafuse's options, beside Locust's own."""
    parser.add_argument(
        "--catalog",
        env_var=CATALOG_ENV,
        default="",
        help="metafuse: the catalog every worker writes (a file path, or s3://bucket/prefix?...)",
    )
    parser.add_argument(
        "--history", default="", help="metafuse: write the merged history of the run to this file"
    )
    parser.add_argument(
        "--collect-timeout",
        type=float,
        default=30.0,
        help="metafuse: seconds the master waits for the workers' histories (default 30)",
    )
    parser.add_argument(
        "--metafuse-operations",
        type=int,
        default=0,
        help="metafuse: catalog calls each user makes; the test ends when every user"
        " has made its calls, --run-time is then only a cap (reached first: INCONCLUSIVE). 0: no"
        " quota, the test runs until --run-time (default 0)",
    )
    parser.add_argument(
        "--metafuse-datasets",
        type=int,
        default=len(NAMES),
        help=f"metafuse: how many datasets the users share, 1 to {len(NAMES)}; fewer means more"
        f" contention (default {len(NAMES)})",
    )
    parser.add_argument(
        "--check-timeout",
        type=float,
        default=60.0,
        help="metafuse: seconds the linearizability search may take; undecided is INCONCLUSIVE (default 60)",
    )


def fail(message: str) -> NoReturn:
    """A one-line error for the operator, then exit 2 (Locust's usage error)."""
    sys.stderr.write(f"metafuse: {message}\n")
    sys.exit(2)


def option(environment: Environment, name: str, default: Any) -> Any:
    """The parsed option `name` (`default` when Locust parsed none, as in a library run)."""
    return getattr(environment.parsed_options, name, default)


def quota(environment: Environment) -> int:
    """Each user's `--metafuse-operations` (0: none)."""
    return int(option(environment, "metafuse_operations", 0) or 0)


def names(environment: Environment) -> tuple[str, ...]:
    """The datasets of this run: the first `--metafuse-datasets` of `NAMES`."""
    return NAMES[: int(option(environment, "metafuse_datasets", len(NAMES)))]


def check(environment: Environment) -> None:
    """Exit 2 with one line if a metafuse option is out of its range."""
    operations = quota(environment)
    if operations < 0:
        fail(f"--metafuse-operations must be 0 (no quota) or a positive number of calls, not {operations}")
    datasets = int(option(environment, "metafuse_datasets", len(NAMES)))
    if not 1 <= datasets <= len(NAMES):
        fail(f"--metafuse-datasets must be 1 to {len(NAMES)}, not {datasets}")


def target(environment: Environment) -> str:
    """The catalog the run writes (`--catalog` or `METAFUSE_LOCUST_CATALOG`); exit 2 if none."""
    named = str(option(environment, "catalog", "") or "")
    if not named:
        fail(f"--catalog (or {CATALOG_ENV}) is required: a catalog file path or an s3:// URL")
    return named


def open_catalog(environment: Environment) -> Catalog:
    """Open the run's catalog; exit 2 with the catalog's own one-line error if it cannot be."""
    named = target(environment)
    try:
        return Catalog.open(named)
    except CatalogError as error:
        fail(str(error))
