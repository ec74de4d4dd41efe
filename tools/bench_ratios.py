"""Compare two pytest-benchmark runs by each benchmark's ratio to raw sqlite3 in the same run.

Every benchmark in `benchmarks/` is a group with a `[catalog]` and a `[raw_sqlite]` side measured
back to back on the same machine, so catalog median / raw median is what the catalog costs over
SQLite, and a change of machine (a faster or slower CI runner) moves both sides alike and cancels
out. Absolute means compared across runners swing by 2x on noise; these ratios do not.

Each run measures every pair in several rounds (`--bench-rounds`, benchmarks/conftest.py), so a
group has one ratio per round in each run, and the rounds show how much the ratio moves on its
own on this machine under this load. A group is

- `ok` when the median of its current ratios grew by no more than the tolerance;
- `REGRESSED` when it grew by more, and a one-sided Mann-Whitney U test says the current rounds'
  ratios are larger than the baseline's beyond the noise between rounds (p <= --alpha);
- `INCONCLUSIVE` when it grew by more but the rounds are too noisy (or too few: a run saved
  before rounds existed has one) to tell that growth from noise.

    python tools/bench_ratios.py BASELINE.json CURRENT.json [--tolerance 20%] [--alpha 0.01]
    python tools/bench_ratios.py --newest-in .benchmarks CURRENT.json

Exit status: 0 no ratio regressed (inconclusive groups are listed, and under GitHub Actions
also annotated as warnings), 1 some did, 2 bad input. Standard library only.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import math
import os
import statistics
import sys
from collections.abc import Sequence
from typing import Any

CATALOG, RAW = "catalog", "raw_sqlite"
OK, REGRESSED, INCONCLUSIVE = "ok", "REGRESSED", "INCONCLUSIVE"


@dataclasses.dataclass(frozen=True)
class Row:
    """One benchmark group in both runs: its per-round ratios in each."""

    group: str
    baseline_rounds: tuple[float, ...]
    current_rounds: tuple[float, ...]

    @property
    def baseline(self) -> float:
        """The median of the baseline's per-round ratios."""
        return statistics.median(self.baseline_rounds)

    @property
    def current(self) -> float:
        """The median of the current run's per-round ratios."""
        return statistics.median(self.current_rounds)

    @property
    def change(self) -> float:
        """Relative change of the median ratio (0.25: the catalog's cost over SQLite grew by 25%)."""
        return self.current / self.baseline - 1 if self.baseline else 0.0

    @property
    def p_value(self) -> float:
        """One-sided Mann-Whitney U p-value that the current ratios are larger than the baseline's."""
        return mann_whitney_greater(self.current_rounds, self.baseline_rounds)

    def verdict(self, tolerance: float, alpha: float) -> str:
        """`ok`, `REGRESSED` or `INCONCLUSIVE` (see the module docstring)."""
        if self.change <= tolerance:
            return OK
        return REGRESSED if self.p_value <= alpha else INCONCLUSIVE


class BadInput(Exception):
    """A file that is missing, not JSON, or not a pytest-benchmark run."""


def mann_whitney_greater(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Exact one-sided p-value of the Mann-Whitney U test that `xs` tend to exceed `ys`.

    The statistic is the rank sum of `xs` in the pooled sample (tied values share their mean
    rank); the p-value is the share of the C(n+m, n) equally likely ways to pick n of the pooled
    ranks whose sum is at least the observed one, counted exactly (ties included). 1.0 when
    either side is empty.
    """
    n, m = len(xs), len(ys)
    if not n or not m:
        return 1.0
    pooled = sorted([*xs, *ys])
    doubled: dict[float, int] = {}  # value -> twice its mean rank (1-based), an integer
    start = 0
    while start < len(pooled):
        end = start
        while end < len(pooled) and pooled[end] == pooled[start]:
            end += 1
        doubled[pooled[start]] = start + 1 + end  # (start+1 + end) / 2 is the mean rank, doubled
        start = end
    observed = sum(doubled[x] for x in xs)
    ways: list[dict[int, int]] = [{0: 1}] + [{} for _ in range(n)]  # ways[k][sum]: k ranks picked
    for value in pooled:
        rank = doubled[value]
        for k in range(min(n, len(pooled)) - 1, -1, -1):
            for total, count in ways[k].items():
                ways[k + 1][total + rank] = ways[k + 1].get(total + rank, 0) + count
    at_least = sum(count for total, count in ways[n].items() if total >= observed)
    return at_least / math.comb(n + m, n)


def ratios(document: dict[str, Any]) -> dict[str, tuple[float, ...]]:
    """Return, per group with both sides, catalog median / raw_sqlite median for every round
    measured on both sides (a run without rounds has one, from the benchmarks' own stats)."""
    medians: dict[str, dict[int, dict[str, float]]] = {}
    for bench in document.get("benchmarks", []):
        params = bench.get("params") or {}
        impl = params.get("impl")
        if impl in (CATALOG, RAW) and bench.get("group"):
            stats = bench["stats"]
            value = float(stats["median"] if "median" in stats else stats["mean"])
            round_ = int(params.get("bench_round", 0))
            medians.setdefault(bench["group"], {}).setdefault(round_, {})[impl] = value
    found: dict[str, tuple[float, ...]] = {}
    for group, rounds in sorted(medians.items()):
        values = tuple(
            sides[CATALOG] / sides[RAW]
            for _, sides in sorted(rounds.items())
            if CATALOG in sides and sides.get(RAW)
        )
        if values:
            found[group] = values
    return found


def load(path: str) -> dict[str, tuple[float, ...]]:
    """Read a pytest-benchmark JSON file and return its per-round ratios."""
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


def compare(baseline: dict[str, tuple[float, ...]], current: dict[str, tuple[float, ...]]) -> list[Row]:
    """Return a row per group present in both runs."""
    return [Row(group, baseline[group], current[group]) for group in sorted(baseline.keys() & current.keys())]


def parse_tolerance(text: str) -> float:
    """'20%' or '0.2' as a fraction, 0 or more."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise BadInput(f"--tolerance {text!r}: use a percentage like 20% or a fraction like 0.2") from None
    if not value >= 0:
        raise BadInput(f"--tolerance {text!r}: cannot be negative")
    return value


def parse_alpha(text: str) -> float:
    """A significance level strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise BadInput(f"--alpha {text!r}: use a number between 0 and 1, like 0.01") from None
    if not 0 < value < 1:
        raise BadInput(f"--alpha {text!r}: must be between 0 and 1 (exclusive)")
    return value


def _spread(values: Sequence[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the ratio table; return 1 when a ratio regressed beyond the noise of its rounds."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("baseline", nargs="?", help="the earlier run's JSON")
    parser.add_argument("current", help="this run's JSON (pytest --benchmark-json)")
    parser.add_argument("--newest-in", metavar="DIR", help="take the newest saved run in DIR as the baseline")
    parser.add_argument("--tolerance", default="20%", help="allowed growth of a median ratio (default 20%%)")
    parser.add_argument(
        "--alpha", default="0.01", help="significance of the rank test that calls a regression (default 0.01)"
    )
    args = parser.parse_args(argv)
    try:
        tolerance = parse_tolerance(args.tolerance)
        alpha = parse_alpha(args.alpha)
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
    print(f"catalog / raw sqlite3, median of each run's per-round ratios: {baseline_path} -> {args.current}")
    width = max(len(row.group) for row in rows)
    print(
        f"{'group':<{width}}  {'baseline':>9}  {'rounds':>11}  {'current':>9}  {'rounds':>11}"
        f"  {'change':>8}  {'p':>6}  verdict"
    )
    verdicts = {row.group: row.verdict(tolerance, alpha) for row in rows}
    for row in rows:
        print(
            f"{row.group:<{width}}  {row.baseline:>8.2f}x  {_spread(row.baseline_rounds):>11}"
            f"  {row.current:>8.2f}x  {_spread(row.current_rounds):>11}  {row.change:>+8.1%}"
            f"  {row.p_value:>6.3f}  {verdicts[row.group]}"
        )
    regressed = [group for group, verdict in verdicts.items() if verdict == REGRESSED]
    unsure = [group for group, verdict in verdicts.items() if verdict == INCONCLUSIVE]
    print(
        f"{len(regressed)} of {len(rows)} ratios regressed (grew by more than {tolerance:.0%},"
        f" beyond the noise between rounds at p <= {alpha:g}); {len(unsure)} inconclusive"
    )
    if unsure:
        note = (
            f"grew by more than {tolerance:.0%} but within the noise between rounds:"
            f" {', '.join(unsure)} (inconclusive, not a failure; rerun on a quieter machine to decide)"
        )
        print(
            f"::warning title=benchmark-compare inconclusive::{note}"
            if os.environ.get("GITHUB_ACTIONS")
            else note
        )
    return 1 if regressed else 0


if __name__ == "__main__":
    sys.exit(main())
