"""Thresholds: pass/fail limits on a run's figures, checked inside the run (as k6 does).

A threshold is one expression, `[SCENARIO:][OPERATION.]METRIC OP VALUE[UNIT]`:

    read.p99<5ms              p99 latency of every scenario's `read` operations under 5 ms
    write.ok_rate>100/s       more than 100 successful writes per second
    conflict_ratio<0.5        fewer than half of all operations conflicted
    concurrent_writers:write.p99.9<=50ms

Metrics, per operation or (without `OPERATION.`) over every operation of a scenario:

- latency, in ms unless a unit says otherwise (`ns`, `us`, `ms`, `s`): `min`, `mean`, `stddev`,
  `p50`, `p90`, `p95`, `p99`, `p99.9`, `max` (over every operation: the worst operation's value);
- rates per second (`/s` optional): `rate` (every outcome), `ok_rate`, `conflict_rate`, `error_rate`;
- ratios of all operations (a fraction, or a percentage with `%`): `conflict_ratio`, `error_ratio`;
- counts: `count`, `ok`, `conflicts`, `busy`, `errors`.

A threshold applies to each scenario that has its operation (or to every scenario); one that
applies to none fails, so a misspelt operation cannot pass unnoticed. Thresholds may also come
from a TOML file holding `thresholds = ["read.p99<5ms", ...]`: read with `tomllib` on Python 3.11
and later; on 3.9 and 3.10, which have no TOML reader in the standard library, exactly that one
key with an array of plain strings is understood, and anything else is refused with a message.

It judges the figures it is handed (a result's operations table) and touches no catalog; the only
file it reads is the TOML file it is given, and of the catalog it imports only `errors`.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable, Optional

from ..errors import ValidationError

LATENCY_METRICS = ("min", "mean", "stddev", "p50", "p90", "p95", "p99", "p99.9", "max")
"""Latency figures a threshold may name (milliseconds in results)."""
RATE_METRICS = {"rate": None, "ok_rate": "ok", "conflict_rate": "conflict", "error_rate": "error"}
"""Rates per second, and the outcome each counts (None: every outcome)."""
RATIO_METRICS = {"conflict_ratio": "conflict", "error_ratio": "error"}
"""Fractions of all operations, and the outcome each counts."""
COUNT_METRICS = {"count": None, "ok": "ok", "conflicts": "conflict", "busy": "busy", "errors": "error"}
"""Operation counts, and the outcome each counts (None: every outcome)."""
_UNITS_MS = {"": 1.0, "ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_EXPRESSION = re.compile(
    r"^\s*(?:(?P<scenario>[A-Za-z_]\w*):)?"
    r"(?:(?P<operation>[A-Za-z_][\w-]*)\.)?"
    r"(?P<metric>p99\.9|[a-z_][a-z0-9_]*)"
    r"\s*(?P<compare><=|>=|<|>)\s*"
    r"(?P<value>[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*"
    r"(?P<unit>ns|us|µs|ms|s|/s|%)?\s*$"
)
_SOURCE = "--threshold"


@dataclasses.dataclass(frozen=True)
class Threshold:
    """One parsed threshold; `limit` is in result units (ms, per second, fraction, count)."""

    text: str
    scenario: Optional[str]  # noqa: UP045 - evaluated at runtime on Python 3.9
    operation: Optional[str]  # noqa: UP045
    metric: str
    compare: str
    limit: float

    @property
    def unit(self) -> str:
        """How figures of this metric are shown: ms, /s or nothing."""
        if self.metric in LATENCY_METRICS:
            return " ms"
        if self.metric in RATE_METRICS:
            return "/s"
        return ""

    def holds(self, actual: float) -> bool:
        """Whether `actual` satisfies the threshold."""
        return _COMPARE[self.compare](actual, self.limit)


@dataclasses.dataclass(frozen=True)
class ThresholdResult:
    """A threshold's verdict on one scenario run (`scenario` is '*' when it matched no run)."""

    threshold: str
    scenario: str
    passed: bool
    actual: Optional[float]  # noqa: UP045 - evaluated at runtime on Python 3.9
    detail: str


def parse(text: str, source: str = _SOURCE) -> Threshold:
    """Parse one threshold expression; a `ValidationError` names `source` and says what is valid."""
    match = _EXPRESSION.match(text)
    if match is None:
        raise ValidationError(source, "use [scenario:][operation.]metric<value, e.g. read.p99<5ms", text)
    metric, unit = match["metric"], match["unit"] or ""
    value = float(match["value"])
    if metric in LATENCY_METRICS:
        if unit not in _UNITS_MS:
            raise ValidationError(source, f"{metric} is a latency: use ns, us, ms or s", text)
        limit = value * _UNITS_MS[unit]
    elif metric in RATE_METRICS:
        if unit not in ("", "/s"):
            raise ValidationError(
                source, f"{metric} is a rate: write it as a number per second, e.g. 100/s", text
            )
        limit = value
    elif metric in RATIO_METRICS:
        if unit not in ("", "%"):
            raise ValidationError(source, f"{metric} is a ratio: write 0.5 or 50%", text)
        limit = value / 100 if unit == "%" else value
    elif metric in COUNT_METRICS:
        if unit:
            raise ValidationError(source, f"{metric} is a count: write a plain number", text)
        limit = value
    else:
        known = [*LATENCY_METRICS, *RATE_METRICS, *RATIO_METRICS, *COUNT_METRICS]
        raise ValidationError(source, f"unknown metric {metric!r} (known: {', '.join(known)})", text)
    return Threshold(text.strip(), match["scenario"], match["operation"], metric, match["compare"], limit)


def load_file(path: str) -> list[Threshold]:
    """Read thresholds from a TOML file holding `thresholds = ["...", ...]`."""
    source = f"thresholds file {path}"
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise ValidationError(source, f"cannot be read ({error.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(source, "is not UTF-8 text") from None
    expressions = _read_toml(text, source)
    return [parse(expression, source) for expression in expressions]


def _read_toml(text: str, source: str) -> list[str]:
    if sys.version_info < (3, 11):
        return _read_subset(text, source)
    else:  # mypy analyses only the branch of the running Python
        import tomllib  # noqa: PLC0415 - standard library from 3.11 only

        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ValidationError(source, f"is not valid TOML ({error})") from None
        value = document.get("thresholds")
        unknown = sorted(set(document) - {"thresholds"})
        if unknown:
            raise ValidationError(source, f"has unknown key {unknown[0]!r}: only 'thresholds' is read")
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValidationError(source, 'must hold thresholds = ["read.p99<5ms", ...]')
        return list(value)


_SUBSET = re.compile(r'^\s*thresholds\s*=\s*\[(?P<items>(?:\s*"[^"\\\n]*"\s*,?)*)\s*\]\s*$')


def _read_subset(text: str, source: str) -> list[str]:
    """The TOML this module accepts where `tomllib` is missing: one array of plain strings."""
    lines = [_without_comment(line) for line in text.splitlines()]
    match = _SUBSET.match(" ".join(lines))
    if match is None:
        raise ValidationError(
            source,
            'on Python before 3.11 only thresholds = ["...", ...] (plain strings, no escapes) is understood',
        )
    return re.findall(r'"([^"]*)"', match["items"])


def evaluate(
    thresholds: Sequence[Threshold],
    scenario: str,
    operations: Mapping[str, Mapping[str, Any]],
    elapsed: float,
) -> list[ThresholdResult]:
    """Check each threshold that applies to this scenario run (its `operations` table, as in the
    JSON results, measured over `elapsed` seconds)."""
    verdicts = []
    for threshold in thresholds:
        if threshold.scenario not in (None, scenario):
            continue
        if threshold.operation is not None and threshold.operation not in operations:
            continue
        rows = [operations[threshold.operation]] if threshold.operation else list(operations.values())
        actual = _figure(threshold, rows, elapsed)
        if actual is None:
            verdicts.append(ThresholdResult(threshold.text, scenario, False, None, "no operations measured"))
            continue
        passed = threshold.holds(actual)
        verdicts.append(
            ThresholdResult(threshold.text, scenario, passed, round(actual, 4), _shown(threshold, actual))
        )
    return verdicts


def unmatched(
    thresholds: Iterable[Threshold], verdicts: Iterable[ThresholdResult], seen: Iterable[str]
) -> list[ThresholdResult]:
    """Failed verdicts for thresholds that applied to no scenario run (a misspelt name, usually)."""
    used = {verdict.threshold for verdict in verdicts}
    operations = ", ".join(sorted(set(seen))) or "none"
    return [
        ThresholdResult(
            threshold.text, "*", False, None, f"matched no scenario run (operations seen: {operations})"
        )
        for threshold in thresholds
        if threshold.text not in used
    ]


def _figure(threshold: Threshold, rows: list[Mapping[str, Any]], elapsed: float) -> float | None:
    metric = threshold.metric
    if metric in LATENCY_METRICS:
        values = [
            float(row["latency_ms"][metric])
            for row in rows
            if row.get("latency_ms", {}).get(metric) is not None
        ]
        return max(values) if values else None
    if metric in RATE_METRICS:
        return _count(rows, RATE_METRICS[metric]) / elapsed if elapsed > 0 else 0.0
    if metric in RATIO_METRICS:
        total = _count(rows, None)
        return _count(rows, RATIO_METRICS[metric]) / total if total else 0.0
    return float(_count(rows, COUNT_METRICS[metric]))


def _count(rows: list[Mapping[str, Any]], outcome: str | None) -> int:
    if outcome is None:
        return sum(int(row.get("total", 0)) for row in rows)
    return sum(int(row.get(outcome, 0)) for row in rows)


def _shown(threshold: Threshold, actual: float) -> str:
    if threshold.metric in RATIO_METRICS:
        return f"{actual:.1%} (limit {threshold.compare} {threshold.limit:.1%})"
    limit = f"{_number(threshold.limit)}{threshold.unit}"
    return f"{_number(actual)}{threshold.unit} (limit {threshold.compare} {limit})"


def _number(value: float) -> str:
    """`value` with three decimals, or three significant digits below 1, so that a small limit
    (0.0001 ms) never shows as 0."""
    if not math.isfinite(value):
        return str(value)
    if float(value).is_integer():
        return f"{value:,.0f}"
    decimals = 3 if abs(value) >= 1 else max(3, 2 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}".rstrip("0").rstrip(".")


def _without_comment(line: str) -> str:
    """`line` without a `#` comment (a `#` inside a quoted string is kept)."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == "#" and not quoted:
            return line[:index]
    return line
