"""Measure MetaFuse against its performance targets, each next to a raw `sqlite3` baseline of the same run.

    python benchmarks/perf.py [--json PATH] [--seconds N] [--rounds R]

Every target is measured in `--rounds` rounds (default 5). A round measures each target once,
catalog and raw baseline back to back (which goes first alternates from round to round), so a
change in machine load reaches both sides of a ratio alike. The table reports, per target, the
median of the measured figures and of the baselines, and the median, minimum and maximum of
the per-round ratios; the verdict is taken on the median ratio, so one noisy round can neither
make nor break a target. The same rows, with every round's figures, are written as JSON
(default `.benchmarks/perf.json`). A report, not a gate: it exits 0 whether or not the targets
are met, and 2 only on bad arguments. Standard library and metafuse only; about three minutes
on a 2-core machine with the defaults (`--seconds 2`: each timed loop or stress run lasts 2 s,
each raw loop 1 s).

This file is the runner: options, rounds, medians, the table and the JSON. The targets are
declared in `benchmarks/_perf/`, one module per group (reads, writes, harness, bulk), each with
its raw baseline and its check beside the code that measures it; `GROUPS` lists the groups in
the order they are measured and reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from _perf import ROOT
from _perf.bulk import Bulk
from _perf.harness import Harness
from _perf.measure import Group, Sample, Scratch, Target, log
from _perf.reads import Reads
from _perf.report import Row, table
from _perf.writes import Writes

DEFAULT_JSON = ROOT / ".benchmarks" / "perf.json"
DEFAULT_SECONDS = 2
DEFAULT_ROUNDS = 5
GROUPS: tuple[type[Group], ...] = (Reads, Writes, Harness, Bulk)
"""The groups of targets, in the order each round measures them and the table reports them."""


def run_rounds(groups: Sequence[Group], rounds: int) -> dict[str, list[Sample]]:
    """Measure every target once per round, the groups interleaved; return each target's samples."""
    samples: dict[str, list[Sample]] = {target.key: [] for group in groups for target in group.TARGETS}
    for round_index in range(rounds):
        for group in groups:
            log(f"round {round_index + 1}/{rounds}: {group.name}")
            measured = group.measure(round_index)
            declared = [target.key for target in group.TARGETS]
            if sorted(measured) != sorted(declared):  # a target declared but not measured, or the reverse
                raise RuntimeError(f"{group.name}: measured {sorted(measured)}, declares {sorted(declared)}")
            for key, sample in measured.items():
                samples[key].append(sample)
    return samples


def summarise(target: Target, samples: list[Sample]) -> Row:
    """One report row: medians of the figures and of the per-round ratios, and their spread."""
    ratios = [sample.ratio for sample in samples]
    measured = statistics.median(sample.measured for sample in samples)
    baseline = statistics.median(sample.baseline for sample in samples)
    ratio = statistics.median(ratios)
    spread = ", ".join(f"{value:.3g}" for value in ratios)
    detail = "; ".join(part for part in (target.detail, f"per-round ratios {spread}") if part)
    return Row(
        target.key,
        target.target,
        measured,
        target.unit,
        baseline,
        target.baseline_label,
        ratio,
        target.check(measured, ratio) if target.check is not None else None,
        detail,
        target.baseline_unit,
        min(ratios),
        max(ratios),
        [dataclasses.asdict(sample) | {"ratio": sample.ratio} for sample in samples],
    )


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/perf.py",
        description="Measure the performance targets against raw sqlite3 baselines from the same rounds.",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        type=Path,
        default=DEFAULT_JSON,
        help=f"where to write the JSON report (default {DEFAULT_JSON.relative_to(ROOT)})",
    )
    parser.add_argument(
        "--seconds",
        type=int,
        default=DEFAULT_SECONDS,
        metavar="N",
        help=f"each timed loop and stress run, 1-300 s (default {DEFAULT_SECONDS}); raw loops N/2, >= 1 s",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        metavar="R",
        help=f"rounds of every measurement, 1-50 (default {DEFAULT_ROUNDS}); verdicts use the median",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 300:
        parser.error(f"--seconds must be from 1 to 300, not {args.seconds}")
    if not 1 <= args.rounds <= 50:
        parser.error(f"--rounds must be from 1 to 50, not {args.rounds}")
    if args.json.is_dir():
        parser.error(f"--json {args.json} is a directory; give a file path")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every measurement, print the table, write the JSON; 0 whatever the verdicts."""
    args = parse(argv)
    began = time.perf_counter()
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="metafuse-perf-") as workdir:
        scratch = Scratch(Path(workdir), args.seconds)
        groups: list[Group] = []
        try:
            for kind in GROUPS:
                groups.append(kind(scratch))
            samples = run_rounds(groups, args.rounds)
        finally:
            for group in reversed(groups):
                group.close()
            scratch.close()
    rows = [summarise(target, samples[target.key]) for group in groups for target in group.TARGETS]
    rows += [row for group in groups for row in group.after_rounds()]
    elapsed = time.perf_counter() - began
    load_after = _load()
    met = [row for row in rows if row.met is not None]
    print(table(rows))
    print(
        f"\n{sum(1 for row in met if row.met)}/{len(met)} targets met (median of {args.rounds} rounds)",
        end="",
    )
    versions = f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs"
    print(f" in {elapsed:.0f} s ({versions})")
    print(f"load average (1 min) {load_before:.1f} before, {load_after:.1f} after", end="")
    busy = max(load_before, load_after) > (os.cpu_count() or 1)
    print(": other processes competed for the CPUs, so absolute figures are low" if busy else "")
    document = {
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": args.seconds,
        "rounds": args.rounds,
        "elapsed": round(elapsed, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "met": sum(1 for row in met if row.met),
        "targets": len(met),
        "rows": [dataclasses.asdict(row) for row in rows],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
