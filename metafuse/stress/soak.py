"""The soak: every scenario with many clients for a long time, watching memory and descriptors.

`python -m metafuse.stress.soak` (or `nox -s soak`) runs each scenario in each mode and passes
when every invariant holds, no operation failed unexpectedly, this process's open file
descriptors are back to their starting count after every run, and resident memory grew by at
most `RSS_GROWTH_LIMIT` from the end of the first minute (or the first sixth of a shorter run) to
the moment the clients stopped: this process's in thread mode, each client process's in process
mode (the runner measures both; see `metafuse.stress.resources.RssProbe`). Defaults: 50 clients,
300 s, thread and process mode.

The soak opens no catalog and judges no invariant itself: each run goes through `run_scenario`,
as a `stress run` does, and the runner measures resident memory.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Sequence

from .._cli_base import EXIT_FAILED, EXIT_OK, OneLineParser, whole_number
from . import config as stress_config
from ._cli_logging import configure_logging
from .report import format_result, results_document, write_json
from .resources import count_open_fds
from .runner import run_scenario
from .scenario import REGISTRY

RSS_GROWTH_LIMIT = 0.10
"""Largest accepted growth of resident memory from the first minute to the end of a scenario."""


def warm_up_multiprocessing() -> None:
    """Open what multiprocessing keeps for the life of the process, before the baseline count.

    The first shared array maps an arena that is reused, never closed; the first lock starts the
    resource tracker, whose pipe stays open. Both would otherwise look like a leak of the first
    run that uses processes (kill_writers does, in either mode).
    """
    context = multiprocessing.get_context("spawn")
    context.RawArray("q", 1)
    context.Lock()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak; exit 0 when every check held, 1 otherwise, 2 on bad input."""
    parser = OneLineParser(prog="python -m metafuse.stress.soak", description=__doc__)
    parser.add_argument("--clients", type=whole_number(1, 50), default=50, help="clients (default 50)")
    parser.add_argument(
        "--duration", type=whole_number(1, 3600), default=300, help="seconds per scenario (default 300)"
    )
    parser.add_argument(
        "--modes", default="thread,process", help="comma-separated modes (default thread,process)"
    )
    parser.add_argument(
        "--scenarios", default=",".join(REGISTRY), help="comma-separated scenarios (default: all)"
    )
    parser.add_argument(
        "--json", default=".stress/soak.json", help="results file (default .stress/soak.json)"
    )
    parser.add_argument("--seed", type=whole_number(0), help="random seed")
    args = parser.parse_args(argv)
    configure_logging(False)
    modes = [stress_config.parse_mode(mode, "--modes") for mode in args.modes.split(",") if mode.strip()]
    names = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = [name for name in names if name not in REGISTRY]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}; known: {', '.join(REGISTRY)}")
    seed = stress_config.from_environment(seed=args.seed).seed
    warm_up_multiprocessing()
    fds_at_start = count_open_fds()
    fd_counts: list[int] = []
    results, problems = [], []
    for mode in modes:
        for name in names:
            config = stress_config.StressConfig(
                clients=args.clients, duration=args.duration, mode=mode, seed=seed
            )
            print(f"soak: {name} {mode} {args.clients} clients {args.duration} s", flush=True)
            result = run_scenario(REGISTRY[name], config)
            results.append(result)
            fd_counts.append(count_open_fds())
            print(format_result(result))
            growth = result.metrics.get("rss_growth")
            if growth is None:
                problems.append(f"{name} {mode}: resident memory was not measured")
                growth = 0.0
            print(
                f"  RSS {result.metrics.get('rss_warm_mb')} MB after warm-up -> "
                f"{result.metrics.get('rss_end_mb')} MB at the end ({growth:+.1%})\n",
                flush=True,
            )
            if not result.passed:
                problems.append(f"{name} {mode}: an invariant failed")
            if result.total("error"):
                problems.append(f"{name} {mode}: {result.total('error')} unexpected errors")
            if growth > RSS_GROWTH_LIMIT:
                problems.append(f"{name} {mode}: RSS grew {growth:.1%} (limit {RSS_GROWTH_LIMIT:.0%})")
            partial = results_document(results)  # kept after every run: a soak is long
            partial["soak"] = {
                "fds_at_start": fds_at_start,
                "fds_after_each_run": fd_counts,
                "problems": problems,
            }
            write_json(args.json, partial)
    if any(count != fds_at_start for count in fd_counts):
        problems.append(f"open file descriptors: {fds_at_start} at start, after each run {fd_counts}")
    document = results_document(results)
    document["soak"] = {"fds_at_start": fds_at_start, "fds_after_each_run": fd_counts, "problems": problems}
    write_json(args.json, document)
    print(f"soak results: {args.json}")
    if problems:
        for problem in problems:
            print(f"soak: FAILED: {problem}", file=sys.stderr)
        return EXIT_FAILED
    print(f"soak passed: {len(results)} runs, file descriptors {fds_at_start} at start and after every run")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
