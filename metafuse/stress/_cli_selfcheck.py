"""`metafuse stress selfcheck`: every deliberate bug switched on in turn, each to be caught.

Owns the `selfcheck` action: its arguments, the lines it prints per verdict, its history probes'
lines and its HTML table. Which bugs exist and how a probe runs belong to `selfcheck` and `faults`.

It switches no fault on and opens no catalog itself: `selfcheck` runs the probes. Of the catalog it
uses only `faults.FAULTS` (each bug's description) and `perturb.enabled`, which perturbs every run
of the check with its seed.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from typing import Any

from .. import perturb
from .._cli_base import EXIT_FAILED, EXIT_OK, whole_number
from ..faults import FAULTS
from . import config as stress_config
from . import html_report
from ._cli_logging import add_output_options, configure_logging
from .outputs import add_html_option, check_output_path, write_text
from .report import environment, plural
from .selfcheck import HISTORY_PROBES, PROBES, BugVerdict, run_history_probe, run_selfcheck


def add_selfcheck_command(actions: Any) -> None:
    """Register `stress selfcheck` on the stress command's actions."""
    selfcheck = actions.add_parser(
        "selfcheck", help="prove each invariant catches its bug: run with deliberate bugs switched on"
    )
    selfcheck.add_argument(
        "--mode", choices=("thread", "process", "both"), default="both", help="client kind (default both)"
    )
    selfcheck.add_argument(
        "--duration", type=whole_number(1, 300), default=2, help="seconds per run (default 2)"
    )
    selfcheck.add_argument("--clients", type=whole_number(1, 50), default=4, help="clients (default 4)")
    selfcheck.add_argument("--seed", type=whole_number(0), help="random seed (default: random)")
    selfcheck.add_argument(
        "--no-perturb",
        dest="perturb",
        action="store_false",
        help="run without schedule perturbation (on by default, seeded with --seed)",
    )
    selfcheck.add_argument(
        "--bug", action="append", choices=sorted(PROBES), help="check only this bug (repeatable)"
    )
    add_output_options(selfcheck)
    add_html_option(selfcheck)
    selfcheck.set_defaults(handler=_selfcheck)


def _selfcheck(args: argparse.Namespace) -> int:
    configure_logging(args.verbose)
    modes = ("thread", "process") if args.mode == "both" else (args.mode,)
    seed = stress_config.from_environment(seed=args.seed).seed
    bugs = tuple(args.bug) if args.bug else tuple(PROBES)
    if args.html:
        check_output_path(args.html, "--html")
    print(
        f"Self-check: {plural(len(bugs), 'bug')} x {plural(len(modes), 'mode')}, {args.duration}s runs,"
        f" seed {seed}{'' if args.perturb else ', no perturbation'}"
    )
    rows: list[tuple[str, str, str, str]] = []  # mode, bug, verdict, fault: the --html table

    def show(verdict: BugVerdict) -> None:
        if verdict.caught:
            state = f"caught by {', '.join(verdict.caught_by)}"
        elif verdict.control_failures:
            state = f"INCONCLUSIVE: control run failed {', '.join(verdict.control_failures)}"
        else:
            state = "NOT CAUGHT"
        print(f"  {verdict.mode:<8} {verdict.bug:<16} {state}  ({FAULTS[verdict.bug]})", flush=True)
        rows.append((verdict.mode, verdict.bug, state, FAULTS[verdict.bug]))
        if verdict.bug in HISTORY_PROBES:
            history_missed.extend(_history_probe(verdict, args, seed, controls, rows))

    history_missed: list[str] = []
    controls: dict[tuple[str, str], list[str]] = {}
    # Every run below, probes, controls and history probes alike, perturbs with the seed.
    perturbing = perturb.enabled(seed) if args.perturb else contextlib.nullcontext()
    with perturbing:
        verdicts = _selfcheck_runs(args, modes, seed, bugs, show)
    missed = [f"{v.bug} ({v.mode})" for v in verdicts if not v.caught] + history_missed
    if args.html:
        _selfcheck_html(args, seed, modes, rows, verdicts)
    if missed:
        print(f"Self-check failed: {', '.join(missed)}", file=sys.stderr)
        return EXIT_FAILED
    print(f"Self-check passed: every bug was caught in {', '.join(modes)} mode.")
    return EXIT_OK


def _selfcheck_runs(
    args: argparse.Namespace,
    modes: tuple[str, ...],
    seed: int,
    bugs: tuple[str, ...],
    show: Callable[[BugVerdict], None],
) -> list[BugVerdict]:
    return run_selfcheck(
        modes,
        duration=args.duration,
        clients=args.clients,
        seed=seed,
        bugs=bugs,
        on_result=show,
    )


def _selfcheck_html(
    args: argparse.Namespace,
    seed: int,
    modes: tuple[str, ...],
    rows: list[tuple[str, str, str, str]],
    verdicts: list[BugVerdict],
) -> None:
    def command(mode: str, bug: str) -> str:
        return (
            f"python -m metafuse stress selfcheck --mode {mode} --bug {bug} --seed {seed}"
            f" --duration {args.duration} --clients {args.clients}{'' if args.perturb else ' --no-perturb'}"
        )

    missed = [row for row in rows if not row[2].removeprefix("history: ").startswith("caught")]
    page = html_report.table_report(
        "Stress self-check",
        passed=not missed,
        summary_lines=[
            f"{plural(len(verdicts), 'bug')} x mode switched on one at a time; each must fail an invariant"
            " that holds in the clean control run",
            f"{plural(len(missed), 'verdict')} not caught or inconclusive",
        ],
        columns=["mode", "bug", "verdict", "what the bug does"],
        rows=rows,
        settings={
            "modes": ", ".join(modes),
            "duration (s)": args.duration,
            "clients": args.clients,
            "seed": seed,
        },
        environment=environment(),
        failures=[(f"{row[1]} ({row[0]}): {row[2]}", command(row[0], row[1])) for row in missed],
    )
    write_text(args.html, page)
    print(f"HTML report written to {args.html}")


def _history_probe(
    verdict: BugVerdict,
    args: argparse.Namespace,
    seed: int,
    controls: dict[tuple[str, str], list[str]],
    rows: list[tuple[str, str, str, str]],
) -> list[str]:
    """Run and print the history probe of one bug in one mode; return it as missed, if it was."""
    probe = run_history_probe(
        verdict.bug, verdict.mode, duration=args.duration, clients=args.clients, seed=seed, controls=controls
    )
    if probe.caught:
        keys = plural(len(probe.failing_keys), f"{probe.scenario} key")
        state = f"caught: {keys} not linearizable ({probe.example})"
    elif probe.control_failing_keys:
        state = f"INCONCLUSIVE: control history not linearizable on {', '.join(probe.control_failing_keys)}"
    else:
        state = f"NOT CAUGHT: all {plural(probe.operations, 'operation')} of {probe.scenario} linearizable"
    print(f"  {'':<8} {'':<16} history: {state}", flush=True)
    rows.append(
        (verdict.mode, verdict.bug, f"history: {state}", "linearizability check of the recorded history")
    )
    return [] if probe.caught else [f"{verdict.bug} history ({verdict.mode})"]
