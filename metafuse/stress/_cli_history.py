"""`metafuse stress check-history`: a recorded history judged for linearizability and serializability.

Owns the `check-history` action: its arguments and how its verdicts are printed (text or JSON).
The checks themselves are `linearizability`'s and `serializability`'s.

It opens no catalog and runs no scenario: it reads the history file it is given.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .._cli_base import EXIT_FAILED, EXIT_OK, whole_number
from . import history as op_history
from .linearizability import check as check_linearizable
from .linearizability import summary as check_summary
from .report import plural
from .serializability import check as check_serializable
from .serializability import has_transactions


def add_check_history_command(actions: Any) -> None:
    """Register `stress check-history` on the stress command's actions."""
    check = actions.add_parser(
        "check-history",
        help="check a --history file for linearizability, key by key, and its transactions for"
        " serializability (exit 1 if not)",
    )
    check.add_argument("history_file", metavar="FILE", help="a history written by 'stress run --history'")
    check.add_argument("--json", dest="as_json", action="store_true", help="print the verdicts as JSON")
    check.add_argument(
        "--timeout", type=whole_number(1), help="give up after this many seconds (undecided keys exit 1)"
    )
    check.set_defaults(handler=_check_history)


def _check_history(args: argparse.Namespace) -> int:
    operations = op_history.read_history(args.history_file)
    results = check_linearizable(operations, timeout=args.timeout)
    totals = check_summary(results)
    origin = min((op.invoke for op in operations), default=0)
    serial = check_serializable(operations) if has_transactions(operations) else None
    passed = bool(totals["linearizable"]) and (serial is None or serial.serializable)
    if args.as_json:
        document = {
            "file": args.history_file,
            **totals,
            "results": [
                {
                    "key": result.key,
                    "operations": result.operations,
                    "linearizable": result.linearizable,
                    **({"counterexample": result.counterexample.to_dict()} if result.counterexample else {}),
                }
                for result in results
            ],
        }
        if serial is not None:
            document["serializability"] = serial.to_dict()
        print(json.dumps(document, indent=2))
    else:
        for result in results:
            if result.linearizable is None:
                ops = plural(result.operations, "operation")
                print(f"{result.key}: UNDECIDED ({ops}, gave up after --timeout)")
            elif result.counterexample is not None:
                print(f"{result.key}: NOT LINEARIZABLE ({plural(result.operations, 'operation')})")
                for line in result.counterexample.describe(origin):
                    print(f"  {line}")
        verdict = "linearizable" if totals["linearizable"] else "NOT linearizable"
        checked, keys = int(totals["operations"] or 0), int(totals["keys"] or 0)
        failed = int(totals["not_linearizable"] or 0)
        print(
            f"{args.history_file}: {plural(checked, 'operation')} on {plural(keys, 'key')}: {verdict}"
            f" ({plural(failed, 'key')} failed, {totals['undecided']} undecided)"
        )
        if serial is not None:
            print(f"{args.history_file}: " + "\n".join(serial.describe(origin)))
    return EXIT_OK if passed else EXIT_FAILED
