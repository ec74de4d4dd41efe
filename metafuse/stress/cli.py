"""`metafuse stress ...`: list, run, selfcheck and compare, each a thin layer over the library."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from .. import perturb
from .._cli_base import (
    EXIT_FAILED,
    EXIT_INCONCLUSIVE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_THRESHOLD,
    OneLineParser,
    file_path,
    whole_number,
)
from .._logcommits import is_store_url
from ..errors import ValidationError
from ..faults import FAULTS
from . import config as stress_config
from . import history as op_history
from . import html_report
from . import thresholds as stress_thresholds
from .compare import compare, load_results, parse_tolerance, setting_differences
from .linearizability import check as check_linearizable
from .linearizability import summary as check_summary
from .outputs import add_html_option, check_output_path, csv_text, junit_text, write_text
from .progress import Progress
from .report import (
    announce,
    environment,
    format_result,
    plural,
    reproduce_command,
    results_document,
    write_json,
)
from .result import ScenarioResult
from .runner import run_scenario
from .scenario import REGISTRY
from .scenarios import CORE
from .selfcheck import HISTORY_PROBES, PROBES, BugVerdict, run_history_probe, run_selfcheck

LOG_ENV = "METAFUSE_LOG"
"""Log level of `metafuse` on stderr: `debug` logs every conflict, retry, busy wait and invariant
check; `info`, `warning` (the default when unset), `error` and `critical` log less."""
LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
"""The values `METAFUSE_LOG` accepts (any case)."""


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

    run = actions.add_parser(
        "run",
        help="run scenarios (default: the five core ones)",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="scenario names (see 'stress list')")
    _add_run_options(run)
    _add_load_options(run)
    run.add_argument("--json", metavar="PATH", help="also write every result as JSON to PATH")
    run.add_argument(
        "--csv", metavar="PATH", help="also write the per-second series (ops per operation) as CSV to PATH"
    )
    run.add_argument(
        "--junit",
        metavar="PATH",
        help="also write JUnit XML to PATH: a test case per invariant and threshold",
    )
    add_html_option(run)
    run.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="EXPR",
        help="fail the run (exit 4) unless EXPR holds, e.g. 'read.p99<5ms', 'write.ok_rate>100/s',"
        " 'conflict_ratio<0.5' (repeatable)",
    )
    run.add_argument(
        "--thresholds",
        metavar="FILE.toml",
        help='read more thresholds from a TOML file: thresholds = ["read.p99<5ms", ...]',
    )
    run.add_argument(
        "--catalog",
        dest="stress_catalog",
        metavar="PATH|URL",
        type=file_path("--catalog"),
        help="catalog to stress: a file, or s3://bucket/prefix?endpoint_url=... or log+file:///dir"
        " for a catalog on an object store (default: a temporary file, removed afterwards)",
    )
    run.add_argument(
        "--kills", type=whole_number(1, 10_000), help="kill_writers: SIGKILLs per run (default 50)"
    )
    run.add_argument(
        "--synchronous",
        choices=("FULL", "NORMAL"),
        default="FULL",
        help="catalog durability setting (default FULL)",
    )
    run.add_argument(
        "--perturb",
        metavar="SEED",
        type=_perturb_option,
        help="make races likely: pause at random at the catalog's interleaving points, seeded"
        " (SEED, or seed=N,p=P; default $METAFUSE_PERTURB, else off)",
    )
    run.add_argument(
        "--catalogs",
        type=_catalogs_option,
        metavar="SHAPE",
        help="thread mode: shared (one Catalog for all clients), per-client, or mixed (every other"
        " client owns one); default: the scenario's own",
    )
    run.add_argument(
        "--history",
        metavar="FILE",
        help="write every operation as JSON lines to FILE (FILE.<scenario>.jsonl when several run)",
    )
    # Its product is the run and its files: a reader that stops reading (head) does not stop it.
    run.set_defaults(handler=_run, survives_closed_stdout=True)

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
    _add_output_options(selfcheck)
    add_html_option(selfcheck)
    selfcheck.set_defaults(handler=_selfcheck)

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


def _perturb_option(text: str) -> str:
    try:
        return stress_config.parse_perturb(text, "--perturb")
    except ValidationError as error:
        raise argparse.ArgumentTypeError(error.rule) from None


def _catalogs_option(text: str) -> str:
    try:
        return stress_config.parse_catalogs(text, "--catalogs")
    except ValidationError as error:
        raise argparse.ArgumentTypeError(error.rule) from None


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clients",
        type=whole_number(1),
        help=f"clients per scenario (default ${stress_config.CLIENTS.env}, else the scenario's own,"
        " else 10: see `stress list`)",
    )
    parser.add_argument(
        "--duration",
        type=whole_number(1),
        help=f"seconds per scenario (default ${stress_config.DURATION.env}, else the scenario's own,"
        " else 30: see `stress list`)",
    )
    parser.add_argument(
        "--mode",
        choices=stress_config.MODES,
        help=f"thread or process clients (default ${stress_config.MODE_ENV} or thread)",
    )
    parser.add_argument(
        "--seed", type=whole_number(0), help=f"random seed (default ${stress_config.SEED_ENV} or random)"
    )
    _add_output_options(parser)


RUN_EPILOG = """\
load model:
  By default each client starts its next operation as soon as the last one returns (a closed
  model). --rate R starts R operations per second on a fixed schedule instead (an open model) and
  measures each latency from the moment the operation was due, so a stall shows in the figures.
  --ramp-up S grows the load over the first S seconds; --warmup S leaves the first S seconds out of
  the figures (never out of the invariants).

progress:
  On a terminal a status line is redrawn on stderr; otherwise (CI logs) a line is printed every
  5 s. --progress N prints a line every N seconds instead; --quiet prints none.

exit status:
  0 every invariant and threshold held, 1 an invariant failed, 2 bad input, 3 catalog locked,
  4 every invariant held but a threshold failed, 5 no invariant failed but one was inconclusive
  (the run made too little progress to judge it, e.g. on an overloaded machine), 130 Ctrl-C (a
  partial summary and the output files are still written). When standard output closes early
  (piped into head), the run goes on without printing, writes its files and exits with its verdict.
"""


def _add_load_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rate",
        type=_number("--rate", positive=True),
        metavar="R",
        help="open model: R operations per second per scenario, on a schedule (default: closed model)",
    )
    parser.add_argument(
        "--ramp-up",
        type=_number("--ramp-up"),
        default=0.0,
        metavar="S",
        help="grow the load from nothing to full over the first S seconds (default 0)",
    )
    parser.add_argument(
        "--warmup",
        type=_number("--warmup"),
        default=0.0,
        metavar="S",
        help="leave the first S seconds out of the figures, not the invariants (default 0)",
    )
    parser.add_argument(
        "--progress",
        type=_number("--progress", positive=True),
        metavar="N",
        help="print a progress line every N seconds (default: a redrawn line on a terminal, else every 5)",
    )


def _number(option: str, *, positive: bool = False) -> Any:
    def parse(text: str) -> float:
        try:
            return stress_config.parse_number(text, option, positive=positive)
        except ValidationError as error:
            raise argparse.ArgumentTypeError(error.rule + f" (got {text!r})") from None

    parse.__name__ = "number"
    return parse


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument(
        "--verbose", action="store_true", help=f"log every conflict, retry and check (or {LOG_ENV}=debug)"
    )


def check_log_level() -> int:
    """Return the level `METAFUSE_LOG` names (WARNING when unset); an unknown value is a
    `ValidationError` listing the known ones."""
    raw = os.environ.get(LOG_ENV, "")
    word = raw.strip().lower()
    if not word:
        return logging.WARNING
    if word not in LOG_LEVELS:
        raise ValidationError(LOG_ENV, f"must be one of {', '.join(LOG_LEVELS)}", raw)
    return LOG_LEVELS[word]


def configure_logging(verbose: bool) -> None:
    """Send `metafuse` logs to stderr: warnings by default, the `METAFUSE_LOG` level when set,
    everything with --verbose."""
    level = logging.DEBUG if verbose else check_log_level()
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("metafuse: %(levelname)s: %(message)s"))
    logger = logging.getLogger("metafuse")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(level)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of each record, not at setup."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


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


def _run(args: argparse.Namespace) -> int:
    configure_logging(args.verbose)
    names = args.scenarios or list(CORE)
    unknown = [name for name in names if name not in REGISTRY]
    if unknown:
        raise ValidationError("scenario", f"known scenarios: {', '.join(REGISTRY)}", unknown[0])
    if args.stress_catalog is not None and not is_store_url(args.stress_catalog):
        for name in names:
            reason = REGISTRY[name].store_only
            if reason is not None:
                raise ValidationError(
                    "scenario", f"needs a catalog on an object store ({reason}); give --catalog a URL", name
                )
    if args.stress_catalog is not None and is_store_url(args.stress_catalog):
        for name in names:
            reason = REGISTRY[name].file_only
            if reason is not None:
                runnable = ", ".join(n for n, s in REGISTRY.items() if s.file_only is None)
                raise ValidationError(
                    "scenario", f"needs a catalog file ({reason}); on an object store run: {runnable}", name
                )
    config = stress_config.from_environment(
        clients=args.clients,
        duration=args.duration,
        mode=args.mode,
        seed=args.seed,
        kills=args.kills,
        rate=args.rate,
        ramp_up=args.ramp_up,
        warmup=args.warmup,
    )
    if args.synchronous != "FULL":
        config = _replace(config, synchronous=args.synchronous)
    if args.perturb is not None or args.catalogs is not None:
        config = _replace(config, perturb=args.perturb, catalogs=args.catalogs)
    if args.history and len(set(names)) < len(names):
        raise ValidationError("--history", "needs each scenario named once (one file per scenario)", names)
    for name in names:
        stress_config.check_timing(config, config.duration_for(REGISTRY[name].default_duration))
    thresholds = [stress_thresholds.parse(text) for text in args.threshold]
    if args.thresholds:
        thresholds += stress_thresholds.load_file(args.thresholds)
    # Checked before the run: a typo must not throw away a long run's results at the end.
    outputs = [
        (option, path)
        for option, path in (
            ("--json", args.json),
            ("--csv", args.csv),
            ("--junit", args.junit),
            ("--html", args.html),
        )
        if path is not None
    ]
    for option, path in outputs:
        check_output_path(path, option)
    print(f"Seed: {config.seed}")
    if args.stress_catalog is not None and is_store_url(args.stress_catalog):
        print(
            f"Catalog: {args.stress_catalog} (object store: each client keeps its own replica;"
            " reads are linearizable)"
        )
    show_progress = Progress.wanted(args.quiet, every=args.progress)
    # The workload's settings come from each result; these options only judge it.
    extra = [word for text in args.threshold for word in ("--threshold", text)]
    extra += ["--thresholds", args.thresholds] if args.thresholds else []
    results: list[ScenarioResult] = []
    histories: dict[str, str] = {}
    interrupted = False
    for name in names:
        scenario = REGISTRY[name]
        mode = "process" if scenario.always_process else config.mode
        print(
            announce(
                scenario.title,
                config.clients_for(scenario.default_clients),
                config.duration_for(scenario.default_duration),
                mode,
                rate=config.rate,
                ramp_up=config.ramp_up,
                warmup=config.warmup,
            ),
            flush=True,
        )
        run_config = config
        if args.history:
            recorded = os.path.abspath(op_history.path_for(args.history, name, len(names) > 1))
            run_config = _replace(config, history=recorded)
        try:
            result = run_scenario(scenario, run_config, path=args.stress_catalog, progress=show_progress)
        except KeyboardInterrupt:  # interrupted before the clients ran: nothing of it to report
            print(f"Interrupted: {name} did not run", flush=True)
            interrupted = True
            break
        result.command = reproduce_command(result, extra=extra)
        result.thresholds = stress_thresholds.evaluate(thresholds, name, result.operations, result.elapsed)
        results.append(result)
        print(format_result(result), flush=True)
        if run_config.history:
            histories[name] = run_config.history
            print(f"History written to {run_config.history}")
        print()
        if result.interrupted:
            interrupted = True
            break
    unmatched = (
        []
        if interrupted
        else stress_thresholds.unmatched(
            thresholds,
            [v for r in results for v in r.thresholds],
            [op for r in results for op in r.operations],
        )
    )
    for verdict in unmatched:
        print(f"Threshold {verdict.threshold}: FAILED, {verdict.detail}")
    _write_outputs(args, results, unmatched, histories, interrupted)
    return _verdict(results, names, unmatched, interrupted)


def _write_outputs(
    args: argparse.Namespace,
    results: list[ScenarioResult],
    unmatched: list[stress_thresholds.ThresholdResult],
    histories: dict[str, str],
    interrupted: bool,
) -> None:
    if args.json:
        document = results_document(results, interrupted=interrupted)
        document["unmatched_thresholds"] = [dataclasses.asdict(verdict) for verdict in unmatched]
        write_json(args.json, document)
        print(f"Results written to {args.json}")
    if args.csv:
        write_text(args.csv, csv_text(results))
        print(f"Per-second series written to {args.csv}")
    if args.junit:
        write_text(args.junit, junit_text(results, unmatched))
        print(f"JUnit XML written to {args.junit}")
    if args.html:
        checked = {name: html_report.check_history_file(path) for name, path in histories.items()}
        page = html_report.run_report(
            results, environment=environment(), histories=checked, unmatched=unmatched
        )
        write_text(args.html, page)
        print(f"HTML report written to {args.html}")


def _verdict(
    results: list[ScenarioResult],
    names: list[str],
    unmatched: list[stress_thresholds.ThresholdResult],
    interrupted: bool,
) -> int:
    failed = [result.scenario for result in results if result.failed]
    unsure = [result.scenario for result in results if result.inconclusive]
    if interrupted:
        ran = [result.scenario for result in results]
        print(
            f"Interrupted after {plural(len(ran), 'scenario')} of {len(names)}"
            + (f"; invariants failed in {', '.join(failed)}" if failed else ""),
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return EXIT_FAILED
    if unsure:
        print(
            f"INCONCLUSIVE (too little progress to judge every invariant): {', '.join(unsure)}",
            file=sys.stderr,
        )
        return EXIT_INCONCLUSIVE
    missed = sorted(
        {v.threshold for r in results for v in r.thresholds if not v.passed}
        | {v.threshold for v in unmatched}
    )
    if missed:
        print(
            f"Every invariant held, but {plural(len(missed), 'threshold')} failed: {', '.join(missed)}",
            file=sys.stderr,
        )
        return EXIT_THRESHOLD
    if len(results) == 1:
        print("The scenario passed.")
    else:
        print(f"All {len(results)} scenarios passed.")
    return EXIT_OK


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


def _check_history(args: argparse.Namespace) -> int:
    # Imported here so that this command's hunk stays in one place of a file many hands edit.
    from .serializability import check as check_serializable  # noqa: PLC0415
    from .serializability import has_transactions  # noqa: PLC0415

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


def _cell(value: Any) -> str:
    return f"{value:,.3f}" if isinstance(value, float) else str(value)


def _replace(config: stress_config.StressConfig, **changes: Any) -> stress_config.StressConfig:
    return dataclasses.replace(config, **changes)
