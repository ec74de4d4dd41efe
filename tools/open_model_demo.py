"""Run one stress scenario twice, closed model then open model, and print both latency tables.

    METAFUSE_FAULTS=stall python tools/open_model_demo.py [--scenario NAME] [--rate R] ...

The closed model runs each client's next operation as soon as the last one returns, so a stall
delays only the operations in flight; the open model starts operations on a fixed schedule of
`--rate` per second and measures each from its intended start, so a stall also counts against
every operation that should have started during it. Latencies are in milliseconds.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from metafuse import faults
from metafuse.stress import scenarios  # noqa: F401  (registers the scenarios)
from metafuse.stress.config import StressConfig
from metafuse.stress.result import ScenarioResult
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY

COLUMNS = ("p50", "p90", "p99", "p99.9", "max")


def table(title: str, result: ScenarioResult) -> str:
    """One run's operations as fixed-width text: count, throughput and latency percentiles."""
    lines = [title, f"  {'op':<6} {'ok':>7} {'ok/s':>8} " + " ".join(f"{name:>8}" for name in COLUMNS)]
    for op, row in result.operations.items():
        latency = row["latency_ms"]
        cells = " ".join(f"{latency.get(name, 0.0):>8.2f}" for name in COLUMNS)
        lines.append(f"  {op:<6} {row['ok']:>7,} {row['ok_per_sec']:>8,.1f} {cells}")
    verdict = "all invariants held" if result.passed else "INVARIANTS FAILED"
    return "\n".join([*lines, f"  {verdict}; faults: {', '.join(result.faults) or 'none'}"])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the closed-model and open-model runs and print their tables; 0 unless arguments are bad."""
    parser = argparse.ArgumentParser(prog="python tools/open_model_demo.py", description=__doc__)
    parser.add_argument("--scenario", default="concurrent_writers", choices=sorted(REGISTRY))
    parser.add_argument("--rate", type=float, default=200.0, help="open model: operations/s in all")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.clients < 1 or args.duration < 1:
        parser.error("--rate, --clients and --duration must be positive")
    faults.check_environment()
    scenario = REGISTRY[args.scenario]
    base = {"clients": args.clients, "duration": args.duration, "seed": args.seed}
    closed = run_scenario(scenario, StressConfig(**base))
    print(table(f"closed model: {args.clients} clients, each as fast as it can, {args.duration} s", closed))
    opened = run_scenario(scenario, StressConfig(**base, rate=args.rate))
    print()
    print(
        table(
            f"open model: {args.rate:g} operations/s over {args.clients} clients, {args.duration} s", opened
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
