"""Compare two stress result files: throughput, p99 latency and verdicts, within a tolerance.

Owns `load_results`, `compare`, `setting_differences` and the tolerance's parsing. It reads the two
JSON files and nothing else, prints nothing (`_cli_compare` shows the rows), opens no catalog, and
of the catalog imports only `errors`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ..errors import ValidationError


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One metric of one scenario run in both files."""

    key: str
    metric: str
    baseline: Any
    current: Any
    change: str
    regressed: bool


def parse_tolerance(text: str) -> float:
    """Parse '20%' or '0.2' into a fraction; a `ValidationError` names the bad value."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ValidationError(
            "--tolerance", "use a percentage like 20% or a fraction like 0.2", text
        ) from None
    if value < 0:
        raise ValidationError(
            "--tolerance", "is how much worse a figure may get, so it cannot be negative (e.g. 5%)", text
        )
    if not value < 10:
        raise ValidationError("--tolerance", "must be between 0% and 1000%", text)
    return value


def load_results(path: str) -> dict[str, dict[str, Any]]:
    """Read a `--json` file or a matrix summary; return results keyed by scenario/mode/clients."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as error:
        raise ValidationError(f"results file {path}", f"cannot be read ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise ValidationError(f"results file {path}", f"is not valid JSON ({error.msg})") from None
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, list):
        raise ValidationError(f"results file {path}", "has no 'results' list (write it with --json)")
    keyed = {}
    for number, item in enumerate(results, 1):
        if not isinstance(item, dict):
            raise ValidationError(f"results file {path}", f"result {number} is not a JSON object")
        missing = [key for key in REQUIRED_KEYS if key not in item]
        if missing:
            raise ValidationError(
                f"results file {path}", f"result {number} has no {missing[0]!r} (write it with --json)"
            )
        operations = item["operations"]
        if not isinstance(operations, dict) or not all(isinstance(op, dict) for op in operations.values()):
            raise ValidationError(f"results file {path}", f"result {number} has a malformed 'operations'")
        try:
            float(item["throughput"])
        except (TypeError, ValueError):
            raise ValidationError(
                f"results file {path}", f"result {number} has a non-numeric 'throughput'"
            ) from None
        key = f"{item['scenario']} {item['mode']} {item['clients']} clients {item['duration']}s"
        keyed[key] = item
    return keyed


REQUIRED_KEYS = ("scenario", "mode", "clients", "duration", "throughput", "passed", "operations")
"""What each result in a results file must have for `compare` to use it."""


def compare(
    baseline: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]], tolerance: float
) -> list[Comparison]:
    """Return a row per shared run and metric; `regressed` marks drops past `tolerance`."""
    rows = []
    for key in sorted(baseline.keys() & current.keys()):
        old, new = baseline[key], current[key]
        old_rate, new_rate = float(old["throughput"]), float(new["throughput"])
        rows.append(
            Comparison(
                key,
                "ops/s",
                old_rate,
                new_rate,
                _change(old_rate, new_rate),
                new_rate < old_rate * (1 - tolerance),
            )
        )
        old_p99, new_p99 = _p99(old), _p99(new)
        rows.append(
            Comparison(
                key,
                "p99 ms",
                old_p99,
                new_p99,
                _change(old_p99, new_p99),
                new_p99 > old_p99 * (1 + tolerance) and new_p99 - old_p99 > 0.01,
            )
        )
        rows.append(
            Comparison(
                key,
                "verdict",
                _verdict(old),
                _verdict(new),
                "" if old["passed"] == new["passed"] else "changed",
                bool(old["passed"]) and not new["passed"],
            )
        )
    return rows


IGNORED_SETTINGS = frozenset({"seed", "catalog_path"})
"""Settings two compared runs may differ in: a new seed is the point of a second run, and the same
kind of catalog (`catalog`) at another path or bucket runs the same workload."""


def setting_differences(baseline: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]]) -> list[str]:
    """Return, per run both files share, the workload settings they differ in, as
    `run: name baseline-value -> current-value`; a run whose file records no settings (written by
    an older version) differs by that alone. Empty when every shared run was set up alike."""
    found = []
    for key in sorted(baseline.keys() & current.keys()):
        old, new = baseline[key].get("settings"), current[key].get("settings")
        if not isinstance(old, dict) or not isinstance(new, dict):
            missing = [
                side for side, value in (("baseline", old), ("current", new)) if not isinstance(value, dict)
            ]
            where = "either file" if len(missing) == 2 else f"the {missing[0]} file"
            found.append(f"{key}: settings not recorded in {where} (written by an older metafuse)")
            continue
        names = sorted((old.keys() | new.keys()) - IGNORED_SETTINGS)
        changed = [
            f"{name} {_shown(old.get(name))} -> {_shown(new.get(name))}"
            for name in names
            if old.get(name) != new.get(name)
        ]
        if changed:
            found.append(f"{key}: {', '.join(changed)}")
    return found


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return ",".join(str(item) for item in value) or "none"
    return str(value)


def _p99(result: dict[str, Any]) -> float:
    values = []
    for op in result["operations"].values():
        latency = op.get("latency_ms")
        if isinstance(latency, dict) and isinstance(latency.get("p99"), (int, float)):
            values.append(float(latency["p99"]))
    return max(values, default=0.0)


def _verdict(result: dict[str, Any]) -> str:
    return "pass" if result["passed"] else "FAIL"


def _change(old: float, new: float) -> str:
    if old == 0:
        return "n/a" if new == 0 else "+inf"
    return f"{(new - old) / old:+.1%}"
