"""One self-contained HTML page per stress run, matrix, comparison, self-check or campaign.

The page needs no network and no file beside it: styles, charts (inline SVG from `svg_chart`)
and one small script are in the file. It reads top to bottom in the order a person asks: the
verdict and each invariant, then throughput and latency over the run's time per operation, the
spread over clients, conflicts and retries, the history check, the settings, the environment
and the command that reproduces the run. Every piece of text from a run is HTML-escaped. The
page follows the reader's colour scheme (`prefers-color-scheme`) and stays small at 50 clients
and 300 s: series are cut to `svg_chart.MAX_POINTS` points and per-client rows fold away.

The script only records what the browser laid out (`data-rendered-*` attributes on each chart,
`data-charts-rendered`, `data-background` and `data-verdict-colours` on the page), so a headless
browser can prove the charts rendered, in the colour scheme it asked for, with a legible verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from . import _html_page as shell
from ._html_scenario import scenario_section, verdict_word
from .compare import Comparison
from .history import read_history
from .linearizability import check, summary
from .report import plural
from .result import ScenarioResult
from .svg_chart import Bar, Series, bar_chart, line_chart
from .thresholds import ThresholdResult

__all__ = [
    "HISTORY_TIMEOUT",
    "MAX_COUNTEREXAMPLES",
    "check_history_file",
    "compare_report",
    "matrix_preface",
    "run_report",
    "table_report",
    "verdict_word",
]

HISTORY_TIMEOUT = 60
"""Seconds the report's history check may take before it calls the undecided keys undecided."""
MAX_COUNTEREXAMPLES = 5
"""Keys whose failing operations the report lists at most (the rest are counted)."""


def check_history_file(path: str, timeout: float = HISTORY_TIMEOUT) -> dict[str, Any]:
    """Check a `--history` file for linearizability and return what the report shows of it:
    the counts of `linearizability.summary`, the file, and for each failing key (at most
    `MAX_COUNTEREXAMPLES`) the lines of its counterexample: the operations that prove it."""
    operations = read_history(path)
    results = check(operations, timeout=timeout)
    origin = min((op.invoke for op in operations), default=0)
    failures = [
        {
            "key": result.key,
            "operations": result.operations,
            "lines": result.counterexample.describe(origin) if result.counterexample else [],
        }
        for result in results
        if result.linearizable is False
    ]
    return {"file": path, **summary(results), "failures": failures[:MAX_COUNTEREXAMPLES]}


def run_report(
    results: Sequence[ScenarioResult],
    *,
    environment: Mapping[str, Any],
    title: str = "Stress run",
    histories: Mapping[str, Mapping[str, Any]] | None = None,
    unmatched: Sequence[ThresholdResult] = (),
    preface: str = "",
) -> str:
    """Return the page of a run of one or more scenarios.

    `histories` maps a scenario name to its `check_history_file` result (scenarios run without
    `--history` have none). `unmatched` are the thresholds that applied to no run: each failed,
    and the page says so under the verdict. `preface` is trusted HTML put after the verdict (a
    matrix's summary table, say): callers build it from escaped text.
    """
    verdicts = [verdict_word(result) for result in results]
    overall = shell.overall(verdicts + ["THRESHOLD FAILED"] * bool(unmatched))
    head = [
        shell.header(
            title, overall, [f"{plural(len(results), 'scenario run')}; report written {shell.now()}"]
        ),
    ]
    index = [
        "<nav><table><thead><tr><th>scenario</th><th>verdict</th><th>mode</th><th>clients</th>"
        "<th>duration</th><th>ops/s</th><th>worst p99 ms</th><th>failed invariants</th></tr></thead><tbody>"
    ]
    for number, (result, verdict) in enumerate(zip(results, verdicts)):
        failed = ", ".join(i.name for i in result.invariants if not i.ok) or "none"
        index.append(
            f'<tr><td><a href="#run-{number}">{escape(result.scenario)}</a></td>'
            f'<td class="{shell.tone(verdict)}">{escape(verdict)}</td><td>{escape(result.mode)}</td>'
            f'<td class="n">{result.clients}</td><td class="n">{result.duration} s</td>'
            f'<td class="n">{result.throughput:,.1f}</td><td class="n">{result.p99_ms():,.3f}</td>'
            f"<td>{escape(failed)}</td></tr>"
        )
    index.append("</tbody></table></nav>")
    body = [*head, *index]
    for missed in unmatched:
        threshold, detail = escape(missed.threshold), escape(missed.detail)
        body.append(f'<p class="alert">Threshold <b>{threshold}</b> FAILED: {detail}</p>')
    body.append(preface)
    histories = histories or {}
    for number, result in enumerate(results):
        body.append(scenario_section(result, number, histories.get(result.scenario)))
    body.append(shell.environment(environment))
    return shell.page(title, overall, "".join(body))


def matrix_preface(results: Sequence[ScenarioResult], knees: Mapping[str, int | None]) -> str:
    """Return the matrix's summary for `run_report`'s `preface`: throughput against clients, one
    line per scenario, mode and duration, and the knee of each curve."""
    curves: dict[str, list[tuple[float, float]]] = {}
    for result in results:
        key = f"{result.scenario} {result.mode} {result.duration}s"
        curves.setdefault(key, []).append((float(result.clients), result.throughput))
    series = [
        Series(key, tuple(sorted(points)), colour) for colour, (key, points) in enumerate(curves.items())
    ]
    knee_rows = "".join(
        f'<tr><td>{escape(key)}</td><td class="n">{"n/a" if clients is None else clients}</td></tr>'
        for key, clients in knees.items()
    )
    return (
        "<section><h2>Throughput against clients</h2><figure>"
        + line_chart(
            series,
            title="Throughput against clients",
            x_label="clients",
            y_label="ops/s",
            chart_id="matrix-throughput",
        )
        + '</figure><h3>Knee of each curve</h3><p class="sub">the client count past which throughput'
        " stops growing by more than 10%</p><table><tbody>" + knee_rows + "</tbody></table></section>"
    )


def compare_report(
    rows: Sequence[Comparison],
    *,
    baseline: str,
    current: str,
    tolerance: float,
    environment: Mapping[str, Any],
) -> str:
    """Return the page of `stress compare`: one row per run and metric, regressions marked, and a
    chart of each shared run's throughput before and after."""
    regressions = sum(row.regressed for row in rows)
    overall = "REGRESSED" if regressions else "NO REGRESSION"
    out = [
        shell.header(
            "Stress comparison",
            overall,
            [
                f"{plural(regressions, 'regression')} beyond {tolerance:.0%} tolerance;"
                f" report written {shell.now()}"
            ],
        ),
        "<section><h2>Files</h2><table><tbody>",
        f"<tr><th>baseline</th><td><code>{escape(baseline)}</code></td></tr>",
        f"<tr><th>current</th><td><code>{escape(current)}</code></td></tr></tbody></table>",
    ]
    rates = [row for row in rows if row.metric == "ops/s"]
    if rates:
        bars = [Bar(row.key, (float(row.baseline), float(row.current))) for row in rates]
        out.append(_two_bars(bars))
    out.append(
        "<h2>Every metric</h2><table><thead><tr><th>run</th><th>metric</th><th>baseline</th>"
        "<th>current</th><th>change</th><th></th></tr></thead><tbody>"
    )
    for row in rows:
        mark = '<td class="bad">REGRESSED</td>' if row.regressed else "<td></td>"
        out.append(
            f"<tr><td>{escape(row.key)}</td><td>{escape(row.metric)}</td>"
            f'<td class="n">{shell.cell(row.baseline)}</td>'
            f'<td class="n">{shell.cell(row.current)}</td><td class="n">{escape(row.change)}</td>{mark}</tr>'
        )
    out.append("</tbody></table></section>")
    out.append(shell.environment(environment))
    return shell.page("Stress comparison", overall, "".join(out))


def _two_bars(bars: Sequence[Bar]) -> str:
    """Throughput of each run, baseline bar beside current bar, on one scale."""
    pairs = [
        Bar(part, values)
        for bar in bars
        for part, values in ((bar.label, (bar.values[0], 0.0)), ("", (0.0, bar.values[1])))
    ]
    return (
        "<figure>"
        + bar_chart(
            pairs,
            ["baseline", "current"],
            title="Throughput per run: baseline beside current",
            y_label="ops/s",
            chart_id="compare-throughput",
        )
        + "</figure>"
    )


def table_report(
    title: str,
    *,
    passed: bool,
    summary_lines: Iterable[str],
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    settings: Mapping[str, Any],
    environment: Mapping[str, Any],
    failures: Iterable[tuple[str, str]] = (),
) -> str:
    """Return a page for a self-check or a campaign: verdict, summary lines, one table, the
    failures (label and the command that reproduces each), the settings and the environment.

    A cell whose text says "NOT CAUGHT" or "FAIL" is marked as bad, "INCONCLUSIVE" as a warning.
    """
    overall = "PASSED" if passed else "FAILED"
    out = [
        shell.header(title, overall, [*summary_lines, f"report written {shell.now()}"]),
        "<section><table><thead><tr>",
        *(f"<th>{escape(column)}</th>" for column in columns),
        "</tr></thead><tbody>",
    ]
    for row in rows:
        cells = []
        for value in row:
            text = shell.cell(value)
            tone = "bad" if "NOT CAUGHT" in text or "FAIL" in text else ""
            tone = tone or ("warn" if "INCONCLUSIVE" in text else "")
            cells.append(f'<td class="{tone}">{text}</td>' if tone else f"<td>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></section>")
    shown = list(failures)
    if shown:
        out.append("<section><h2>Failures, each with the command that reproduces it</h2>")
        for label, command in shown:
            out.append(f'<p>{escape(label)}</p><pre class="cmd">{escape(command)}</pre>')
        out.append("</section>")
    out.append(shell.settings_table("Settings", settings))
    out.append(shell.environment(environment))
    return shell.page(title, overall, "".join(out))
