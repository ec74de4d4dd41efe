"""A report row (`Row`) and the fixed-width table `perf.py` prints: one line per target, its raw
baseline and its detail indented below."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass
class Row:
    """One line of the report: medians over the rounds, and the spread of the per-round ratios.

    `ratio` is the median of the per-round measured / baseline ratios, `ratio_min` and
    `ratio_max` their extremes; `met` is None for context lines.
    """

    key: str
    target: str
    measured: float
    unit: str
    baseline: float | None
    baseline_label: str
    ratio: float | None
    met: bool | None
    detail: str = ""
    baseline_unit: str = ""
    ratio_min: float | None = None
    ratio_max: float | None = None
    rounds: list[dict[str, float]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.baseline_unit = self.baseline_unit or self.unit


def show(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "ns":
        return f"{value:,.0f} ns"
    return f"{value:,.3f} {unit}" if unit == "ms" else f"{value:,.2f} {unit}"


def table(rows: Sequence[Row]) -> str:
    """The report as fixed-width text: one line per row, its baseline and detail indented below."""
    head = ("#", "Target", "Measured", "Raw baseline", "Ratio", "min-max", "Result")
    cells = [
        (
            row.key,
            row.target,
            show(row.measured, row.unit),
            show(row.baseline, row.baseline_unit),
            "-" if row.ratio is None else f"{row.ratio:.3g}x",
            "-"
            if row.ratio_min is None or len(row.rounds) < 2
            else f"{row.ratio_min:.3g}-{row.ratio_max:.3g}",
            {True: "met", False: "NOT MET", None: "context"}[row.met],
        )
        for row in rows
    ]
    widths = [max(len(str(line[column])) for line in [head, *cells]) for column in range(len(head))]
    lines = []
    for index, line in enumerate([head, *cells]):
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
        else:
            row = rows[index - 1]
            lines.append(f"{'':{widths[0]}}    baseline: {row.baseline_label}")
            if row.detail:
                lines.append(f"{'':{widths[0]}}    {row.detail}")
    return "\n".join(lines)
