"""Stress results for people (plain text in the user guide's style) and for machines (JSON)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import sqlite3
import sys
from collections.abc import Iterable
from typing import Any

from .. import __version__
from .result import ScenarioResult
from .scenario import REGISTRY


def announce(title: str, clients: int, duration: int, mode: str) -> str:
    """Return the line printed before a scenario starts."""
    kind = "" if mode == "thread" else f" {mode}"
    return f"Running {title} stress test: {clients}{kind} clients, {duration}s duration"


def format_result(result: ScenarioResult) -> str:
    """Return the human-readable report of one scenario run."""
    scenario = REGISTRY.get(result.scenario)
    data = result.to_dict()
    lines = ["Results:"]
    if scenario is not None:
        lines += [f"  {label}: {value}" for label, value in scenario.headline(data)]
    lines.append(f"  Throughput: {result.throughput:,.1f} ops/s over {result.elapsed:.1f}s")
    lines.append("  Latency (ms)        count       p50       p95       p99       max")
    for op, row in result.operations.items():
        latency = row["latency_ms"]
        if latency:
            lines.append(
                f"    {op:<14}{row['total']:>9}{latency['p50']:>10.3f}{latency['p95']:>10.3f}"
                f"{latency['p99']:>10.3f}{latency['max']:>10.3f}"
            )
    retries = result.retries
    lines.append(
        f"  Retries: {retries['operations_retried']} operations retried,"
        f" {retries['total_retries']} retries in all;"
        f" longest conflict streak {retries['longest_conflict_streak']}"
    )
    busy = result.total("busy")
    if busy:
        lines.append(f"  Busy (lock timeouts): {busy}")
    lines.append("Invariants:")
    for invariant in result.invariants:
        mark = "ok  " if invariant.ok else "FAIL"
        lines.append(f"  [{mark}] {invariant.name}: {invariant.detail}")
    for error in result.errors[:5]:
        lines.append(f"  error sample: {error}")
    verdict = "PASSED" if result.passed else "FAILED"
    lines.append(f"{verdict}: {result.scenario} ({result.mode}, seed {result.seed})")
    if not result.passed and result.command:
        lines.append(f"Reproduce with: {result.command}")
    return "\n".join(lines)


def reproduce_command(result: ScenarioResult, *, kills: int | None = None) -> str:
    """Return the exact command that re-runs `result`'s scenario with its settings and seed."""
    words = [
        "python",
        "-m",
        "metafuse",
        "stress",
        "run",
        result.scenario,
        "--clients",
        str(result.clients),
        "--duration",
        str(result.duration),
        "--mode",
        result.mode,
        "--seed",
        str(result.seed),
    ]
    if kills is not None:
        words += ["--kills", str(kills)]
    prefix = f"METAFUSE_FAULTS={','.join(result.faults)} " if result.faults else ""
    return prefix + shlex.join(words)


def environment() -> dict[str, Any]:
    """Return facts about the machine and versions, recorded beside every result."""
    return {
        "metafuse": __version__,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "argv": sys.argv,
    }


def results_document(results: Iterable[ScenarioResult]) -> dict[str, Any]:
    """Return the JSON document `--json` writes: environment, results, overall verdict."""
    items = [result.to_dict() for result in results]
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "results": items,
        "passed": all(item["passed"] for item in items),
    }


def write_json(path: str, document: dict[str, Any]) -> None:
    """Write `document` to `path` atomically (a partial file is never left behind)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=False)
        handle.write("\n")
    os.replace(temporary, path)
