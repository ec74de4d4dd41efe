"""The soak: every scenario with many clients for a long time, watching memory and descriptors.

`python -m metafuse.stress.soak` (or `nox -s soak`) runs each scenario in each mode and passes
when every invariant holds, no operation failed unexpectedly, this process's open file
descriptors are back to their starting count after every run, and its resident memory grew by at most
`RSS_GROWTH_LIMIT` between the end of the first minute (or the first sixth of a shorter run)
and the end of each scenario. Defaults: 50 clients, 300 s, thread and process mode.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time
from collections.abc import Sequence

from .._cli_base import EXIT_FAILED, EXIT_OK, OneLineParser, whole_number
from . import config as stress_config
from .cli import configure_logging
from .report import format_result, results_document, write_json
from .runner import count_open_fds, run_scenario
from .scenario import REGISTRY

RSS_GROWTH_LIMIT = 0.10
"""Largest accepted growth of resident memory from the first minute to the end of a scenario."""


def resident_bytes() -> int:
    """Return this process's resident set size in bytes (0 where /proc is unavailable)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class RssSampler:
    """Samples resident memory every `interval` seconds on a daemon thread."""

    def __init__(self, interval: float = 1.0) -> None:
        self.samples: list[tuple[float, int]] = []
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._start = time.monotonic()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.monotonic() - self._start, resident_bytes()))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.samples.append((time.monotonic() - self._start, resident_bytes()))

    def growth(self, warmup: float) -> tuple[int, int, float]:
        """Return (RSS after `warmup` seconds, RSS at the end, growth fraction)."""
        if not self.samples:
            return 0, 0, 0.0
        after = [rss for moment, rss in self.samples if moment >= warmup] or [self.samples[-1][1]]
        first, last = after[0], self.samples[-1][1]
        return first, last, (last - first) / first if first else 0.0


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
            with RssSampler() as sampler:
                result = run_scenario(REGISTRY[name], config)
            first, last, growth = sampler.growth(warmup=min(60.0, args.duration / 6))
            result.metrics["rss_after_warmup_mb"] = round(first / 2**20, 1)
            result.metrics["rss_end_mb"] = round(last / 2**20, 1)
            result.metrics["rss_growth"] = round(growth, 4)
            results.append(result)
            fd_counts.append(count_open_fds())
            print(format_result(result))
            print(f"  RSS {first / 2**20:.1f} MB -> {last / 2**20:.1f} MB ({growth:+.1%})\n", flush=True)
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
