"""`metafuse stress run`'s options: the run's settings, the load model, outputs and thresholds.

Owns the argument definitions of `stress run` and the parsing of their values into the one-line
errors the library's configuration gives. Runs nothing: `_cli_run` handles the parsed arguments.
"""

from __future__ import annotations

import argparse
from typing import Any

from .._cli_base import file_path, whole_number
from ..errors import ValidationError
from . import config as stress_config
from ._cli_logging import add_output_options
from .outputs import add_html_option


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """Add every argument of `stress run` to `run`, in the order its help lists them."""
    run.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="scenario names (see 'stress list')")
    add_run_options(run)
    add_load_options(run)
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


def add_run_options(parser: argparse.ArgumentParser) -> None:
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
    add_output_options(parser)


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


def add_load_options(parser: argparse.ArgumentParser) -> None:
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
