"""Compare two pytest-benchmark runs by each benchmark's ratio to raw sqlite3 in the same run.

Every benchmark in `benchmarks/` is a group with a `[catalog]` and a `[raw_sqlite]` side measured
back to back on the same machine, so catalog mean / raw mean is what the catalog costs over
SQLite, and a change of machine (a faster or slower CI runner) moves both sides alike and cancels
out. Absolute means compared across runners swing by 2x on noise; these ratios do not.

    python tools/bench_ratios.py BASELINE.json CURRENT.json [--tolerance 20%]
    python tools/bench_ratios.py --newest-in .benchmarks CURRENT.json

Exit status: 0 no ratio grew by more than the tolerance, 1 some did, 2 bad input. Standard
library only.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

CATALOG, RAW = "catalog", "raw_sqlite"


@dataclasses.dataclass(frozen=True)
class Row:
    """One benchmark group in both runs."""

    group: str
    baseline: float
    current: float

    @property
    def change(self) -> float:
        """Relative change of the ratio (0.25: the catalog's cost over SQLite grew by 25%)."""
        return self.current / self.baseline - 1 if self.baseline else 0.0


class BadInput(Exception):
    """A file that is missing, not JSON, or not a pytest-benchmark run."""


def ratios(document: dict[str, Any]) -> dict[str, float]:
    """Return catalog mean / raw_sqlite mean for every group that has both sides."""
    means: dict[str, dict[str, float]] = {}
    for bench in document.get("benchmarks", []):
        impl = (bench.get("params") or {}).get("impl")
        if impl in (CATALOG, RAW) and bench.get("group"):
            means.setdefault(bench["group"], {})[impl] = float(bench["stats"]["mean"])
    return {
        group: sides[CATALOG] / sides[RAW]
        for group, sides in sorted(means.items())
        if CATALOG in sides and sides.get(RAW)
    }


def load(path: str) -> dict[str, float]:
    """Read a pytest-benchmark JSON file and return its ratios."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as error:
        raise BadInput(f"{path}: cannot be read ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise BadInput(f"{path}: not JSON ({error.msg})") from None
    if not isinstance(document, dict) or not isinstance(document.get("benchmarks"), list):
        raise BadInput(f"{path}: not a pytest-benchmark run (no 'benchmarks' list)")
    try:
        return ratios(document)
    except (KeyError, TypeError, ValueError) as error:
        raise BadInput(f"{path}: a benchmark has no usable stats ({error})") from None


def newest(folder: str, *, besides: str = "") -> str | None:
    """The newest saved run under `folder` (pytest-benchmark's `<machine>/NNNN_*.json`)."""
    found = [
        path
        for path in glob.glob(os.path.join(folder, "*", "*.json"))
        if os.path.abspath(path) != os.path.abspath(besides) and "fixtures" not in path
    ]
    return max(found, key=lambda path: (os.path.basename(path), os.path.getmtime(path)), default=None)


def compare(baseline: dict[str, float], current: dict[str, float]) -> list[Row]:
    """Return a row per group present in both runs."""
    return [Row(group, baseline[group], current[group]) for group in sorted(baseline.keys() & current.keys())]


def parse_tolerance(text: str) -> float:
    """'20%' or '0.2' as a fraction, 0 or more."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise BadInput(f"--tolerance {text!r}: use a percentage like 20% or a fraction like 0.2") from None
    if value < 0:
        raise BadInput(f"--tolerance {text!r}: cannot be negative")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Print the ratio table; return 1 when a ratio grew past the tolerance."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("baseline", nargs="?", help="the earlier run's JSON")
    parser.add_argument("current", help="this run's JSON (pytest --benchmark-json)")
    parser.add_argument("--newest-in", metavar="DIR", help="take the newest saved run in DIR as the baseline")
    parser.add_argument("--tolerance", default="20%", help="allowed growth of a ratio (default 20%%)")
    args = parser.parse_args(argv)
    try:
        tolerance = parse_tolerance(args.tolerance)
        baseline_path = args.baseline
        if baseline_path is None:
            if not args.newest_in:
                raise BadInput("give BASELINE.json or --newest-in DIR")
            baseline_path = newest(args.newest_in, besides=args.current)
            if baseline_path is None:
                raise BadInput(f"no saved run in {args.newest_in}: run `nox -s benchmark` first")
        rows = compare(load(baseline_path), load(args.current))
        if not rows:
            raise BadInput(f"{baseline_path} and {args.current} share no benchmark group with both sides")
    except BadInput as error:
        print(f"bench_ratios: error: {error}", file=sys.stderr)
        return 2
    print(f"catalog / raw sqlite3, per benchmark: {baseline_path} -> {args.current}")
    width = max(len(row.group) for row in rows)
    print(f"{'group':<{width}}  {'baseline':>9}  {'current':>9}  {'change':>8}")
    regressed = [row for row in rows if row.change > tolerance]
    for row in rows:
        flag = "  REGRESSED" if row in regressed else ""
        print(f"{row.group:<{width}}  {row.baseline:>8.2f}x  {row.current:>8.2f}x  {row.change:>+8.1%}{flag}")
    print(f"{len(regressed)} of {len(rows)} ratios grew by more than {tolerance:.0%}")
    return 1 if regressed else 0


if __name__ == "__main__":
    sys.exit(main())
