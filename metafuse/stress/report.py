"""Stress results for people (plain text in the user guide's style) and for machines (JSON).

It opens no catalog and judges nothing (of SQLite it reads only the library's version); it prints
nothing itself, and the one file it writes is `write_json`'s, atomically.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import sqlite3
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .. import __version__
from .result import LATENCY_KEYS, ScenarioResult
from .scenario import REGISTRY


def plural(count: int, noun: str) -> str:
    """Return '1 client', '2 clients', '2 retries': a count with its noun in the right number."""
    if count == 1:
        return f"{count} {noun}"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return f"{count} {noun[:-1]}ies"
    return f"{count} {noun}s"


def announce(
    title: str,
    clients: int,
    duration: int,
    mode: str,
    *,
    rate: float | None = None,
    ramp_up: float = 0.0,
    warmup: float = 0.0,
) -> str:
    """Return the line printed before a scenario starts: its size, and the load model when it is
    not the default (closed model, no ramp-up, no warm-up)."""
    kind = "" if mode == "thread" else f" {mode}"
    line = f"Running {title} stress test: {clients}{kind} {'client' if clients == 1 else 'clients'}"
    line += f", {duration}s duration"
    if rate is not None:
        line += f", open model at {rate:g} ops/s"
    if ramp_up:
        line += f", ramp-up {ramp_up:g}s"
    if warmup:
        line += f", first {warmup:g}s excluded as warm-up"
    return line


def format_value(value: Any) -> str:
    """Return a headline value as people write it: mappings as `key: value, ...`, lists joined."""
    if isinstance(value, Mapping):
        return ", ".join(f"{key}: {format_value(item)}" for key, item in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(item) for item in value) or "none"
    return str(value)


def format_result(result: ScenarioResult) -> str:
    """Return the human-readable report of one scenario run."""
    scenario = REGISTRY.get(result.scenario)
    data = result.to_dict()
    lines = ["Results:"]
    if scenario is not None:
        lines += [f"  {label}: {format_value(value)}" for label, value in scenario.headline(data)]
    settings = result.settings or {}
    if settings.get("perturb"):
        lines.append(f"  Perturbation: {settings['perturb']} (metafuse.perturb: races made likely)")
    if settings.get("catalogs") and settings["catalogs"] != "shared":
        lines.append(f"  Catalogs: {settings['catalogs']} (thread mode)")
    lines.append(
        f"  Throughput: {result.throughput:,.1f} ops/s over {result.elapsed:.1f}s"
        f" (ok {result.rate('ok'):,.1f}/s, conflicts {result.rate('conflict'):,.1f}/s,"
        f" errors {result.rate('error'):,.1f}/s)"
    )
    counts = ("count", "ok", "conflict", "busy", "error", "ok/s")
    lines.append(f"  {'Operations':<16}" + "".join(f"{key:>10}" for key in counts))
    for op, row in result.operations.items():
        figures = [row["total"], row["ok"], row["conflict"], row["busy"], row["error"]]
        ok_rate = float(row.get("ok_per_sec", 0.0))
        lines.append(f"    {op:<14}" + "".join(f"{value:>10}" for value in figures) + f"{ok_rate:>10,.1f}")
    lines.append(f"  {'Latency (ms)':<16}" + "".join(f"{key:>10}" for key in LATENCY_KEYS))
    for op, row in result.operations.items():
        latency = row["latency_ms"]
        if latency:
            lines.append(f"    {op:<14}" + "".join(_ms(latency.get(key)) for key in LATENCY_KEYS))
    retries = result.retries
    lines.append(
        f"  Retries: {plural(retries['operations_retried'], 'operation')} retried,"
        f" {plural(retries['total_retries'], 'retry')} in all;"
        f" longest conflict streak {retries['longest_conflict_streak']}"
    )
    if result.scheduled is not None:
        scheduled = f"{result.scheduled:,} scheduled operation{'' if result.scheduled == 1 else 's'}"
        if result.never_started:
            lines.append(
                f"  Open model: {result.never_started:,} of {scheduled} never started:"
                " the run could not keep up with --rate"
            )
        else:
            lines.append(f"  Open model: all {scheduled} started")
    busy = result.total("busy")
    if busy:
        lines.append(f"  Busy (lock timeouts): {busy}")
    lines.append("Invariants:")
    for invariant in result.invariants:
        mark = "ok  " if invariant.ok else "INCONCLUSIVE" if invariant.inconclusive else "FAIL"
        lines.append(f"  [{mark}] {invariant.name}: {invariant.detail}")
    for error in result.errors[:5]:
        lines.append(f"  error sample: {error}")
    if result.thresholds:
        lines.append("Thresholds:")
        for threshold in result.thresholds:
            mark = "ok  " if threshold.passed else "FAIL"
            lines.append(f"  [{mark}] {threshold.threshold}: {threshold.detail}")
    if result.interrupted:
        verdict = "INTERRUPTED"
    elif result.failed:
        verdict = "FAILED"
    elif result.inconclusive:
        verdict = "INCONCLUSIVE"
    else:
        verdict = "PASSED" if result.thresholds_passed else "THRESHOLD FAILED"
    lines.append(f"{verdict}: {result.scenario} ({result.mode}, seed {result.seed})")
    if (not result.passed or not result.thresholds_passed) and result.command:  # inconclusive too
        lines.append(f"Reproduce with: {result.command}")
    return "\n".join(lines)


def _ms(value: Any) -> str:
    if value is None:
        return f"{'-':>10}"
    number = float(value)
    return f"{number:>10.3f}" if number < 100_000 else f"{number:>10.0f}"


def reproduce_command(result: ScenarioResult, *, kills: int | None = None, extra: Sequence[str] = ()) -> str:
    """Return the exact command that re-runs `result`'s scenario with every setting of its
    workload (`result.settings`: load model, catalog, durability, kills, faults, perturbation,
    thread-mode catalogs) and its seed.

    `kills` overrides the recorded one; `extra` holds further options of the run that are not
    settings of the workload, such as `--threshold read.p99<5ms` or `--thresholds FILE`.
    """
    settings = result.settings
    words = [
        "python3",
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
    kills = kills if kills is not None else settings.get("kills")
    if kills is not None:
        words += ["--kills", str(kills)]
    if settings.get("rate") is not None:
        words += ["--rate", _exact(settings["rate"])]
    if settings.get("ramp_up"):
        words += ["--ramp-up", _exact(settings["ramp_up"])]
    if settings.get("warmup"):
        words += ["--warmup", _exact(settings["warmup"])]
    if settings.get("synchronous", "FULL") != "FULL":
        words += ["--synchronous", str(settings["synchronous"])]
    if settings.get("catalog_path"):
        words += ["--catalog", str(settings["catalog_path"])]
    if settings.get("perturb"):
        words += ["--perturb", str(settings["perturb"])]
    declared = REGISTRY[result.scenario].catalogs if result.scenario in REGISTRY else None
    if settings.get("catalogs") and settings["catalogs"] != declared:
        words += ["--catalogs", str(settings["catalogs"])]
    words += list(extra)
    prefix = f"METAFUSE_FAULTS={','.join(result.faults)} " if result.faults else ""
    return prefix + shlex.join(words)


def _exact(number: float) -> str:
    """`number` as the shortest text that reads back as the same float (200, not 200.0)."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


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


def results_document(results: Iterable[ScenarioResult], *, interrupted: bool = False) -> dict[str, Any]:
    """Return the JSON document `--json` writes: environment, results, overall verdict.

    `passed` only when every invariant held and nothing was interrupted (`interrupted`: the run
    as a whole was, say before a scenario's clients started: a run cut short proved nothing about
    what did not run); `inconclusive` when none failed but some could not be judged.
    """
    items = [result.to_dict() for result in results]
    interrupted = interrupted or any(item["interrupted"] for item in items)
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "results": items,
        "passed": not interrupted and all(item["passed"] for item in items),
        # No result failed, and some could not be judged: not passed, not failed.
        "inconclusive": any(item["inconclusive"] for item in items)
        and all(item["passed"] or item["inconclusive"] for item in items),
        "thresholds_passed": all(item["thresholds_passed"] for item in items),
        "interrupted": interrupted,
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
