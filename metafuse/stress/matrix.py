"""The stress matrix: sweep scenarios x modes x clients x durations, then summarise.

`python -m metafuse.stress.matrix` runs every cell in this process, one after another, writes one
JSON per cell plus `summary.json` and `summary.md` under `.stress/<UTC timestamp>/`, names the
knee of each throughput curve, and exits 1 if any cell failed an invariant (a failed cell does not
stop the sweep). `nox -s stress-matrix` calls it and then draws `throughput.png`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from .._cli_base import EXIT_FAILED, EXIT_OK, EXIT_USAGE, OneLineParser
from ..errors import CatalogError, ValidationError
from . import config as stress_config
from ._cli_logging import configure_logging
from .html_report import matrix_preface, run_report
from .outputs import add_html_option, check_output_path, write_text
from .report import environment, reproduce_command, results_document, write_json
from .result import ScenarioResult
from .runner import run_scenario
from .scenario import REGISTRY
from .scenarios import CORE

DEFAULT_CLIENTS = (1, 5, 10, 20, 50)
"""Client counts swept by default."""
DEFAULT_DURATIONS = (5, 20)
"""Durations swept by default: 5 scenarios x 5 client counts x (5 + 20) s is about 11 minutes
of running plus set-up, inside the 15-minute budget on a 2-core machine."""
DEFAULT_MODES = ("thread",)
"""Client modes swept by default."""
KNEE_GAIN = 0.10
"""Throughput must grow by more than this fraction for more clients to count as scaling."""
ENV = {
    "clients": "STRESS_MATRIX_CLIENTS",
    "durations": "STRESS_MATRIX_DURATIONS",
    "modes": "STRESS_MATRIX_MODES",
    "scenarios": "STRESS_MATRIX_SCENARIOS",
}
"""Environment variables that override each axis (comma-separated)."""


@dataclasses.dataclass(frozen=True)
class Cell:
    """One point of the sweep."""

    scenario: str
    mode: str
    clients: int
    duration: int

    def label(self) -> str:
        """Return the progress label, e.g. 'read_heavy_workload thread 20 clients 5 s'."""
        return f"{self.scenario} {self.mode} {self.clients} clients {self.duration} s"

    def slug(self) -> str:
        """Return a file-name-safe name for the cell's JSON."""
        return f"{self.scenario}-{self.mode}-c{self.clients}-d{self.duration}"


def plan(
    scenarios: Sequence[str], modes: Sequence[str], clients: Sequence[int], durations: Sequence[int]
) -> list[Cell]:
    """Return every cell, durations outermost so a short sweep finishes first."""
    return [
        Cell(scenario, mode, count, duration)
        for duration in durations
        for scenario in scenarios
        for mode in modes
        for count in clients
    ]


def knees(results: Sequence[ScenarioResult]) -> dict[str, int | None]:
    """For each scenario, mode and duration: the client count past which throughput stops growing.

    The knee is the last client count whose throughput beat the best so far by more than
    `KNEE_GAIN`; None when the curve has fewer than two points.
    """
    curves: dict[str, list[tuple[int, float]]] = {}
    for result in results:
        key = f"{result.scenario} {result.mode} {result.duration}s"
        curves.setdefault(key, []).append((result.clients, result.throughput))
    found: dict[str, int | None] = {}
    for key, points in sorted(curves.items()):
        points.sort()
        if len(points) < 2:
            found[key] = None
            continue
        knee, best = points[0]
        for clients, rate in points[1:]:
            if rate > best * (1 + KNEE_GAIN):
                knee, best = clients, rate
        found[key] = knee
    return found


def summary_markdown(results: Sequence[ScenarioResult], knee: dict[str, int | None]) -> str:
    """Return the sweep as a Markdown table plus the knee of each curve."""
    lines = [
        "| scenario | mode | clients | duration | ops/s | p99 ms | conflicts | errors | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        lines.append(
            f"| {result.scenario} | {result.mode} | {result.clients} | {result.duration} s"
            f" | {result.throughput:,.1f} | {result.p99_ms():.3f} | {result.total('conflict')}"
            f" | {result.total('error')} | {_verdict(result, 'pass', '**FAIL**')} |"
        )
    lines += ["", "Knee (client count past which throughput stops growing by more than 10%):", ""]
    for key, clients in knee.items():
        lines.append(f"- {key}: {clients if clients is not None else 'n/a (one point)'}")
    failures = failed_invariants(results)
    if failures:
        lines += ["", "Failed invariants, each with the command that reproduces its cell:", ""]
        lines += [
            f"- {cell}: `{name}`: {detail}  \n  `{command}`" for cell, name, detail, command in failures
        ]
    return "\n".join(lines) + "\n"


def _verdict(result: ScenarioResult, passed: str, failed: str) -> str:
    return passed if result.passed else "INCONCLUSIVE" if result.inconclusive else failed


def failed_invariants(results: Sequence[ScenarioResult]) -> list[tuple[str, str, str, str]]:
    """Return (cell, invariant, detail, reproduce command) for every invariant that failed."""
    found = []
    for result in results:
        cell = f"{result.scenario} {result.mode} {result.clients} clients {result.duration} s"
        command = result.command or reproduce_command(result)
        found += [(cell, i.name, i.detail, command) for i in result.invariants if not i.ok]
    return found


def _axis(text: str, source: str, convert: Any = str) -> list[Any]:
    values = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        try:
            values.append(convert(part))
        except ValueError:
            raise ValidationError(source, "must be a comma-separated list of whole numbers", text) from None
    if not values:
        raise ValidationError(source, "must name at least one value", text)
    repeated = sorted({value for value in values if values.count(value) > 1}, key=str)
    if repeated:
        raise ValidationError(source, f"names {repeated[0]} more than once: each value is one cell", text)
    return values


def _build_parser() -> OneLineParser:
    parser = OneLineParser(prog="python -m metafuse.stress.matrix", description=__doc__)
    parser.add_argument("--clients", help=f"comma-separated client counts (or ${ENV['clients']})")
    parser.add_argument("--durations", help=f"comma-separated seconds (or ${ENV['durations']})")
    parser.add_argument("--modes", help=f"comma-separated thread/process (or ${ENV['modes']})")
    parser.add_argument("--scenarios", help=f"comma-separated scenario names (or ${ENV['scenarios']})")
    parser.add_argument("--seed", type=int, help="random seed (default $STRESS_TEST_SEED or random)")
    parser.add_argument("--output", default=".stress", help="parent folder of the run (default .stress)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    add_html_option(parser)
    return parser


def _choose(args: argparse.Namespace, name: str, default: Sequence[Any], convert: Any = str) -> list[Any]:
    flag = getattr(args, name)
    if flag:
        return _axis(flag, f"--{name}", convert)
    env = os.environ.get(ENV[name], "").strip()
    if env:
        return _axis(env, ENV[name], convert)
    return list(default)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep; return 0 when every cell passed, 1 if any failed, 2 on bad input."""
    args = _build_parser().parse_args(argv)
    try:
        configure_logging(args.verbose)
        clients = [
            stress_config.parse_bounded(stress_config.CLIENTS, str(v), "clients")
            for v in _choose(args, "clients", DEFAULT_CLIENTS, int)
        ]
        durations = [
            stress_config.parse_bounded(stress_config.DURATION, str(v), "durations")
            for v in _choose(args, "durations", DEFAULT_DURATIONS, int)
        ]
        for name, values in (("clients", clients), ("durations", durations)):
            if len(set(values)) < len(values):  # e.g. 50,80: 80 is clamped to 50
                raise ValidationError(name, "name the same value twice once clamped to bounds", values)
        modes = [stress_config.parse_mode(m, "modes") for m in _choose(args, "modes", DEFAULT_MODES)]
        scenarios = _choose(args, "scenarios", CORE)
        unknown = [name for name in scenarios if name not in REGISTRY]
        if unknown:
            raise ValidationError("scenario", f"known: {', '.join(REGISTRY)}", unknown[0])
        seed = stress_config.from_environment(seed=args.seed).seed
        if args.html:
            check_output_path(args.html, "--html")
    except CatalogError as error:
        print(f"stress-matrix: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    cells = plan(scenarios, modes, clients, durations)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = os.path.join(args.output, stamp)
    os.makedirs(folder, exist_ok=True)
    print(f"stress matrix: {len(cells)} cells, seed {seed}, writing {folder}", flush=True)
    results: list[ScenarioResult] = []
    began = time.monotonic()
    for number, cell in enumerate(cells, 1):
        print(f"cell {number}/{len(cells)}: {cell.label()}", flush=True)
        config = stress_config.StressConfig(
            clients=cell.clients, duration=cell.duration, mode=cell.mode, seed=seed
        )
        result = run_scenario(REGISTRY[cell.scenario], config)
        result.command = reproduce_command(result)
        results.append(result)
        write_json(os.path.join(folder, f"{cell.slug()}.json"), results_document([result]))
        verdict = _verdict(result, "pass", "FAIL")
        print(f"    {result.throughput:,.1f} ops/s, p99 {result.p99_ms():.3f} ms, {verdict}", flush=True)
    knee = knees(results)
    document = results_document(results)
    document["knees"] = knee
    document["elapsed_seconds"] = round(time.monotonic() - began, 1)
    write_json(os.path.join(folder, "summary.json"), document)
    markdown = summary_markdown(results, knee)
    with open(os.path.join(folder, "summary.md"), "w", encoding="utf-8") as handle:
        handle.write(f"# Stress matrix {stamp}\n\n{markdown}")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(f"## Stress matrix {stamp}\n\n{markdown}\n")
    print(markdown)
    print(f"summary: {os.path.join(folder, 'summary.md')}")
    if args.html:
        page = run_report(
            results,
            environment=environment(),
            title=f"Stress matrix {stamp}",
            preface=matrix_preface(results, knee),
        )
        write_text(args.html, page)
        print(f"HTML report written to {args.html}")
    failed = [cell.label() for cell, result in zip(cells, results) if not result.passed]
    if failed:
        print(f"{len(failed)} of {len(cells)} cells failed: {'; '.join(failed)}", file=sys.stderr)
        for cell_label, name, detail, command in failed_invariants(results):
            print(f"  {cell_label}: {name}: {detail}\n    reproduce: {command}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
