"""One scenario run's section of a stress HTML page, top to bottom as a person asks.

Owns the section of one run: the verdict and each invariant, the figures, throughput and latency
over the run per operation, the per-operation table, the spread over clients, conflicts and
retries, the history check and the run's settings. It may not build a page or decide an overall
verdict (`html_report` does, with the shell of `_html_page`), nor run a history check: it shows
the result of `html_report.check_history_file` it is given.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from html import escape
from typing import Any

from . import _html_page as shell
from .report import format_value, plural
from .result import LATENCY_KEYS, ScenarioResult
from .svg_chart import MAX_POINTS, Bar, Series, bar_chart, downsample, line_chart


def verdict_word(result: ScenarioResult) -> str:
    """Return the run's verdict as the text report prints it: PASSED, FAILED, THRESHOLD FAILED or
    INTERRUPTED."""
    if result.interrupted:
        return "INTERRUPTED"
    if not result.passed:
        return "FAILED"
    return "PASSED" if result.thresholds_passed else "THRESHOLD FAILED"


def scenario_section(result: ScenarioResult, number: int, history: Mapping[str, Any] | None) -> str:
    """Return the section of run `number` (anchored `run-<number>`), with `history` the run's
    `check_history_file` result, or None when it recorded none."""
    verdict = verdict_word(result)
    anchor = f"run-{number}"
    out = [
        f'<section class="run" id="{anchor}"><h2>{escape(result.title or result.scenario)}'
        f' <span class="tag {shell.tone(verdict)}">{escape(verdict)}</span></h2>',
        f'<p class="sub">{escape(result.scenario)}: {escape(result.mode)},'
        f" {plural(result.clients, 'client')},"
        f" {result.duration} s (measured {result.elapsed:.1f} s), seed {result.seed}"
        + (f", faults on: {escape(', '.join(result.faults))}" if result.faults else "")
        + "</p>",
        _invariants(result),
    ]
    if result.command and verdict != "PASSED":  # a failure's next step, before any figure
        out.append(f'<p>Reproduce with:</p><pre class="cmd">{escape(result.command)}</pre>')
    out.append(_figures(result))
    table = _by_operation(result)
    out.append(_time_charts(table, anchor))
    out.append(_operations(result))
    out.append(
        '<div class="grid2"><div>'
        + _clients(result, anchor)
        + "</div><div>"
        + _conflicts(result, table, anchor)
        + "</div></div>"
    )
    out.append(_history(history))
    out.append(_run_settings(result))
    if result.command:
        out.append(f'<h3>Reproduce</h3><pre class="cmd">{escape(result.command)}</pre>')
    out.append("</section>")
    return "".join(out)


def _invariants(result: ScenarioResult) -> str:
    out = ['<h3>Invariants</h3><table class="inv"><tbody>']
    for invariant in result.invariants:
        mark = '<td class="ok">ok</td>' if invariant.ok else '<td class="bad">FAIL</td>'
        out.append(
            f'<tr>{mark}<td><b>{escape(invariant.name)}</b><br><span class="promise">'
            f"{escape(invariant.promise)}</span></td><td>{escape(invariant.detail)}</td></tr>"
        )
    for threshold in result.thresholds:
        mark = '<td class="ok">ok</td>' if threshold.passed else '<td class="bad">FAIL</td>'
        out.append(
            f"<tr>{mark}<td><b>threshold {escape(threshold.threshold)}</b></td>"
            f"<td>{escape(threshold.detail)}</td></tr>"
        )
    out.append("</tbody></table>")
    if result.errors:
        out.append("<details open><summary>Error samples</summary><ul>")
        out += [f"<li><code>{escape(error)}</code></li>" for error in result.errors[:20]]
        out.append("</ul></details>")
    return "".join(out)


def _figures(result: ScenarioResult) -> str:
    figures = [
        ("ops/s", f"{result.throughput:,.1f}"),
        ("ok/s", f"{result.rate('ok'):,.1f}"),
        ("conflicts/s", f"{result.rate('conflict'):,.1f}"),
        ("errors", f"{result.total('error'):,}"),
        ("worst p99", f"{result.p99_ms():,.3f} ms"),
        ("retries", f"{int(result.retries.get('total_retries', 0)):,}"),
    ]
    return (
        '<div class="figures">'
        + "".join(
            f'<div><span class="big">{escape(value)}</span><span class="label">{escape(label)}</span></div>'
            for label, value in figures
        )
        + "</div>"
    )


def _by_operation(result: ScenarioResult) -> dict[str, dict[str, list[float]]]:
    """Per operation: ops, conflict, error, p50 and p99 per second, indexed by the run second."""
    seconds = max((int(row["second"]) for row in result.series), default=-1) + 1
    table: dict[str, dict[str, list[float]]] = {}
    for row in result.series:
        columns = table.setdefault(
            str(row["operation"]),
            {key: [0.0] * seconds for key in ("ops", "conflict", "error", "p50_ms", "p99_ms")},
        )
        for key in columns:
            value = row.get(key)
            columns[key][int(row["second"])] = float(value) if value is not None else 0.0
    return table


def _time_charts(table: dict[str, dict[str, list[float]]], anchor: str) -> str:
    if not table:
        return "<h3>Over the run</h3><p>No complete second was measured.</p>"
    seconds = len(next(iter(table.values()))["ops"])
    interval = max(1, -(-seconds // MAX_POINTS))
    note = "per second" if interval == 1 else f"per {interval}-second interval (mean rate, worst latency)"
    rates = [
        Series(op, tuple(downsample(cols["ops"])), colour) for colour, (op, cols) in enumerate(table.items())
    ]
    if len(table) > 1:
        total = [sum(cols["ops"][s] for cols in table.values()) for s in range(seconds)]
        rates.append(Series("all operations", tuple(downsample(total)), 7, dashed=True))
    latency: list[Series] = []
    for colour, (op, cols) in enumerate(table.items()):
        latency.append(Series(f"{op} p99", tuple(downsample(cols["p99_ms"], how="max")), colour))
        latency.append(Series(f"{op} p50", tuple(downsample(cols["p50_ms"], how="max")), colour, dashed=True))
    return (
        f"<h3>Over the run <small>({escape(note)}; complete seconds only)</small></h3>"
        '<div class="grid2"><figure>'
        + line_chart(
            rates,
            title="Throughput per operation",
            x_label="second of the run",
            y_label="ops/s",
            x_max=seconds,
            chart_id=f"{anchor}-throughput",
        )
        + "</figure><figure>"
        + line_chart(
            latency,
            title="Latency per operation: p99 solid, p50 dashed",
            x_label="second of the run",
            y_label="ms (log)",
            log=True,
            x_max=seconds,
            chart_id=f"{anchor}-latency",
        )
        + "</figure></div>"
    )


def _operations(result: ScenarioResult) -> str:
    out = [
        '<h3>Per operation</h3><div class="scroll"><table><thead><tr><th>operation</th>'
        "<th>count</th><th>ok</th><th>conflict</th><th>busy</th><th>error</th><th>ok/s</th>",
        *(f"<th>{escape(key)} ms</th>" for key in LATENCY_KEYS),
        "</tr></thead><tbody>",
    ]
    for op, row in result.operations.items():
        latency = row.get("latency_ms") or {}
        out.append(
            f"<tr><td>{escape(op)}</td>"
            + "".join(
                f'<td class="n">{int(row.get(k, 0)):,}</td>'
                for k in ("total", "ok", "conflict", "busy", "error")
            )
            + f'<td class="n">{float(row.get("ok_per_sec", 0.0)):,.1f}</td>'
            + "".join(
                f'<td class="n">{float(latency[k]):,.3f}</td>' if k in latency else '<td class="n">-</td>'
                for k in LATENCY_KEYS
            )
            + "</tr>"
        )
    out.append("</tbody></table></div>")
    return "".join(out)


def _clients(result: ScenarioResult, anchor: str) -> str:
    rows = result.per_client
    if not rows:
        return "<h3>Per client</h3><p>No client sent a record.</p>"
    totals = [int(row["total"]) for row in rows]
    low, high = min(totals), max(totals)
    spread = f"ops per client: min {low:,}, median {statistics.median(totals):,.0f}, max {high:,}" + (
        f"; the busiest did {high / low:.2f}x the least busy" if low else ""
    )
    bars = [
        Bar(str(row["client"]), tuple(float(row.get(k, 0)) for k in ("ok", "conflict", "busy", "error")))
        for row in rows
    ]
    out = [
        f"<h3>Per client</h3><p>{escape(spread)}</p><figure>",
        bar_chart(
            bars,
            ["ok", "conflict", "busy", "error"],
            title="Operations per client by outcome",
            y_label="ops",
            chart_id=f"{anchor}-clients",
        ),
        "</figure>",
        f"<details><summary>Per-client table ({plural(len(rows), 'client')})</summary><table><thead><tr>"
        "<th>client</th><th>total</th><th>ok</th><th>conflict</th><th>busy</th><th>error</th><th>retries</th>"
        "</tr></thead><tbody>",
    ]
    for row in rows:
        out.append(
            "<tr>"
            + "".join(
                f'<td class="n">{int(row.get(k, 0)):,}</td>'
                for k in ("client", "total", "ok", "conflict", "busy", "error", "retries")
            )
            + "</tr>"
        )
    out.append("</tbody></table></details>")
    return "".join(out)


def _conflicts(result: ScenarioResult, table: dict[str, dict[str, list[float]]], anchor: str) -> str:
    retries = result.retries
    seconds = len(next(iter(table.values()))["ops"]) if table else 0
    chart = ""
    if table:
        trouble = [
            Series(
                name,
                tuple(downsample([sum(c[key][s] for c in table.values()) for s in range(seconds)])),
                colour,
            )
            for name, key, colour in (("conflicts", "conflict", 3), ("errors", "error", 1))
        ]
        chart = (
            "<figure>"
            + line_chart(
                trouble,
                title="Conflicts and errors over the run",
                x_label="second of the run",
                y_label="per s",
                x_max=seconds,
                chart_id=f"{anchor}-conflicts",
            )
            + "</figure>"
        )
    return (
        "<h3>Conflicts and retries</h3><p>"
        + escape(
            f"{result.total('conflict'):,} conflicts, {result.total('busy'):,} lock timeouts,"
            f" {result.total('error'):,} errors; {int(retries.get('operations_retried', 0)):,} operations"
            f" retried, {int(retries.get('total_retries', 0)):,} retries in all; longest conflict streak"
            f" {int(retries.get('longest_conflict_streak', 0)):,}"
        )
        + "</p>"
        + chart
    )


def _history(history: Mapping[str, Any] | None) -> str:
    if history is None:
        return (
            "<h3>History check</h3><p>No history was recorded for this run"
            " (<code>stress run --history FILE</code> records one and checks it here).</p>"
        )
    if history.get("linearizable"):
        state, tone = "linearizable", "ok"
    elif history.get("not_linearizable"):
        state, tone = "NOT linearizable", "bad"
    else:
        state, tone = "UNDECIDED", "warn"
    out = [
        f'<h3>History check <span class="tag {tone}">{escape(state)}</span></h3><p>'
        + escape(
            f"{history.get('operations', 0):,} operations on {history.get('keys', 0):,} keys in"
            f" {history.get('file', '')}: {history.get('not_linearizable', 0)} keys not linearizable,"
            f" {history.get('undecided', 0)} undecided"
        )
        + "</p>"
    ]
    for failure in history.get("failures", []):
        out.append(
            f"<p><b>{escape(str(failure['key']))}</b> ({int(failure['operations']):,} operations):"
            " the operations that prove it</p>"
            f'<pre class="proof">{escape(chr(10).join(failure["lines"]))}</pre>'
        )
    return "".join(out)


def _run_settings(result: ScenarioResult) -> str:
    settings = {
        "scenario": result.scenario,
        "mode": result.mode,
        "clients": result.clients,
        "duration (s)": result.duration,
        "measured (s)": result.elapsed,
        "seed": result.seed,
        "faults": ", ".join(result.faults) or "none",
        "interrupted": result.interrupted,
    }
    metrics = {key: format_value(value) for key, value in result.metrics.items()}
    return (
        '<div class="grid2"><div>'
        + shell.settings_table("Settings", settings)
        + "</div><div>"
        + shell.settings_table("Scenario metrics", metrics)
        + "</div></div>"
    )
