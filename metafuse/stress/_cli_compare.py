"""`metafuse stress compare`: two --json result files side by side; exit 1 on a regression.

Owns the `compare` action: its arguments, its table and its HTML page. What counts as a
regression, and which settings must match, is `compare`'s.

It opens no catalog and runs no scenario: it reads the two files it is given.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from .._cli_base import EXIT_FAILED, EXIT_OK
from ..errors import ValidationError
from . import html_report
from .compare import compare, load_results, parse_tolerance, setting_differences
from .outputs import add_html_option, check_output_path, write_text
from .report import environment, plural


def add_compare_command(actions: Any) -> None:
    """Register `stress compare` on the stress command's actions."""
    compare_ = actions.add_parser("compare", help="compare two --json result files; exit 1 on a regression")
    # '--tolerance -5%' is a value to refuse with a message, not an unknown option '-5%'.
    compare_._negative_number_matcher = re.compile(r"^-\d+(\.\d*)?%?$|^-\.\d+%?$")
    compare_.add_argument("baseline", metavar="BASELINE.json")
    compare_.add_argument("current", metavar="CURRENT.json")
    compare_.add_argument(
        "--tolerance",
        default="20%",
        help="allowed throughput drop / p99 rise, 0%% to 1000%% (default 20%%)",
    )
    add_html_option(compare_)
    compare_.add_argument(
        "--allow-different-settings",
        action="store_true",
        help="compare runs even if their workload settings (rate, warm-up, catalog, ...) differ",
    )
    compare_.set_defaults(handler=_compare)


def _compare(args: argparse.Namespace) -> int:
    tolerance = parse_tolerance(args.tolerance)
    if args.html:
        check_output_path(args.html, "--html")
    baseline, current = load_results(args.baseline), load_results(args.current)
    differences = setting_differences(baseline, current)
    if differences and not args.allow_different_settings:
        raise ValidationError(
            "results files",
            f"their runs differ in settings: {'; '.join(differences)}"
            " (--allow-different-settings compares them anyway)",
        )
    for difference in differences:  # compared anyway: the table must not hide it
        print(f"settings differ: {difference}")
    rows = compare(baseline, current, tolerance)
    if not rows:
        raise ValidationError(
            "results files", "share no scenario run (same scenario, mode, clients, duration)"
        )
    width = max(len(row.key) for row in rows)
    print(f"{'run':<{width}}  {'metric':<8}{'baseline':>12}{'current':>12}{'change':>10}")
    for row in rows:
        flag = "  REGRESSED" if row.regressed else ""
        print(
            f"{row.key:<{width}}  {row.metric:<8}{_cell(row.baseline):>12}{_cell(row.current):>12}"
            f"{row.change:>10}{flag}"
        )
    regressions = sum(row.regressed for row in rows)
    print(f"{plural(regressions, 'regression')} beyond {tolerance:.0%} tolerance")
    if args.html:
        page = html_report.compare_report(
            rows, baseline=args.baseline, current=args.current, tolerance=tolerance, environment=environment()
        )
        write_text(args.html, page)
        print(f"HTML report written to {args.html}")
    return EXIT_FAILED if regressions else EXIT_OK


def _cell(value: Any) -> str:
    return f"{value:,.3f}" if isinstance(value, float) else str(value)
