"""`metafuse stress ...`: list, run, check-history, selfcheck and compare, each a thin layer over the library.

Owns the `stress` command, its list of actions and the `list` action. Each other action's arguments
and handler live in a module of its own (`_cli_run`, `_cli_history`, `_cli_selfcheck`, `_cli_compare`),
and how they log in `_cli_logging`. Nothing here runs a scenario or judges a result: the library does.
"""

from __future__ import annotations

import argparse
from typing import Any

from .._cli_base import EXIT_OK, OneLineParser
from . import config as stress_config
from ._cli_compare import add_compare_command
from ._cli_history import add_check_history_command
from ._cli_run import add_run_command
from ._cli_selfcheck import add_selfcheck_command
from .scenario import REGISTRY
from .scenarios import CORE


def add_stress_commands(commands: Any) -> None:
    """Register `metafuse stress {list,run,selfcheck,compare}` on the top-level subparsers."""
    stress = commands.add_parser(
        "stress",
        help="run the stress suite against a catalog",
        description="Hammer one catalog file with many clients and check invariants.",
    )
    actions = stress.add_subparsers(dest="stress_command", metavar="ACTION", parser_class=OneLineParser)
    actions.required = True

    listing = actions.add_parser("list", help="list the scenarios and what each checks")
    listing.set_defaults(handler=_list)

    add_run_command(actions)
    add_check_history_command(actions)
    add_selfcheck_command(actions)
    add_compare_command(actions)


def _list(args: argparse.Namespace) -> int:
    for name in [*CORE, *(name for name in REGISTRY if name not in CORE)]:
        scenario = REGISTRY[name]
        core = "" if name in CORE else " (extra)"
        clients = scenario.default_clients or stress_config.CLIENTS.default
        duration = scenario.default_duration or stress_config.DURATION.default
        where = "file only" if scenario.file_only else "file or object store"
        if scenario.store_only:
            where = "object store only (a temporary directory store by default)"
        print(f"{scenario.name}{core}: {scenario.summary}")
        print(f"    defaults: {clients} clients, {duration} s; runs on: {where}")
        for invariant in scenario.invariants:
            print(f"    {invariant.name}: {invariant.promise}")
    return EXIT_OK
