"""`metafuse stress run`: check the arguments, run each scenario, print and write its results.

Owns the `run` action's handler: the checks made before any scenario runs, the loop over the
scenarios, the output files and the exit status. Its arguments are defined in `_cli_run_options`;
running and judging a scenario is `run_scenario`'s.

It opens no catalog and evaluates no invariant itself. Of the catalog's private modules it imports
only `_logcommits.is_store_url`, to tell a `--catalog` URL from a file path.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

from .._cli_base import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_INTERRUPTED, EXIT_OK, EXIT_THRESHOLD
from .._logcommits import is_store_url
from ..errors import ValidationError
from . import config as stress_config
from . import history as op_history
from . import html_report
from . import thresholds as stress_thresholds
from ._cli_logging import configure_logging
from ._cli_run_options import RUN_EPILOG, add_run_arguments
from .outputs import check_output_path, csv_text, junit_text, write_text
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


def add_run_command(actions: Any) -> None:
    """Register `stress run` on the stress command's actions."""
    run = actions.add_parser(
        "run",
        help="run scenarios (default: the five core ones)",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(run)
    # Its product is the run and its files: a reader that stops reading (head) does not stop it.
    run.set_defaults(handler=_run, survives_closed_stdout=True)


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


def _replace(config: stress_config.StressConfig, **changes: Any) -> stress_config.StressConfig:
    return dataclasses.replace(config, **changes)
