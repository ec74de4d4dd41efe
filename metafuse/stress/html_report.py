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

import datetime as _dt
import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from .compare import Comparison
from .history import read_history
from .linearizability import check, summary
from .report import format_value, plural
from .result import LATENCY_KEYS, ScenarioResult
from .svg_chart import MAX_POINTS, Bar, Series, bar_chart, downsample, line_chart
from .thresholds import ThresholdResult

HISTORY_TIMEOUT = 60
"""Seconds the report's history check may take before it calls the undecided keys undecided."""
MAX_COUNTEREXAMPLES = 5
"""Keys whose failing operations the report lists at most (the rest are counted)."""


def verdict_word(result: ScenarioResult) -> str:
    """Return the run's verdict as the text report prints it: PASSED, FAILED, THRESHOLD FAILED or
    INTERRUPTED."""
    if result.interrupted:
        return "INTERRUPTED"
    if not result.passed:
        return "FAILED"
    return "PASSED" if result.thresholds_passed else "THRESHOLD FAILED"


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
    overall = _overall(verdicts + ["THRESHOLD FAILED"] * bool(unmatched))
    head = [
        _header(title, overall, [f"{plural(len(results), 'scenario run')}; report written {_now()}"]),
    ]
    index = [
        "<nav><table><thead><tr><th>scenario</th><th>verdict</th><th>mode</th><th>clients</th>"
        "<th>duration</th><th>ops/s</th><th>worst p99 ms</th><th>failed invariants</th></tr></thead><tbody>"
    ]
    for number, (result, verdict) in enumerate(zip(results, verdicts)):
        failed = ", ".join(i.name for i in result.invariants if not i.ok) or "none"
        index.append(
            f'<tr><td><a href="#run-{number}">{escape(result.scenario)}</a></td>'
            f'<td class="{_tone(verdict)}">{escape(verdict)}</td><td>{escape(result.mode)}</td>'
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
        body.append(_scenario_section(result, number, histories.get(result.scenario)))
    body.append(_environment(environment))
    return _page(title, overall, "".join(body))


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
        _header(
            "Stress comparison",
            overall,
            [
                f"{plural(regressions, 'regression')} beyond {tolerance:.0%} tolerance;"
                f" report written {_now()}"
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
            f'<td class="n">{_cell(row.baseline)}</td>'
            f'<td class="n">{_cell(row.current)}</td><td class="n">{escape(row.change)}</td>{mark}</tr>'
        )
    out.append("</tbody></table></section>")
    out.append(_environment(environment))
    return _page("Stress comparison", overall, "".join(out))


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
        _header(title, overall, [*summary_lines, f"report written {_now()}"]),
        "<section><table><thead><tr>",
        *(f"<th>{escape(column)}</th>" for column in columns),
        "</tr></thead><tbody>",
    ]
    for row in rows:
        cells = []
        for value in row:
            text = _cell(value)
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
    out.append(_settings_table("Settings", settings))
    out.append(_environment(environment))
    return _page(title, overall, "".join(out))


# -- one scenario ------------------------------------------------------------------------------


def _scenario_section(result: ScenarioResult, number: int, history: Mapping[str, Any] | None) -> str:
    verdict = verdict_word(result)
    anchor = f"run-{number}"
    out = [
        f'<section class="run" id="{anchor}"><h2>{escape(result.title or result.scenario)}'
        f' <span class="tag {_tone(verdict)}">{escape(verdict)}</span></h2>',
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
        + _settings_table("Settings", settings)
        + "</div><div>"
        + _settings_table("Scenario metrics", metrics)
        + "</div></div>"
    )


# -- the page ----------------------------------------------------------------------------------


def _header(title: str, verdict: str, lines: Iterable[str]) -> str:
    tone = _tone(verdict)
    return (
        f'<header><h1>{escape(title)}</h1><p class="verdict {tone}" id="verdict">{escape(verdict)}</p>'
        + "".join(f'<p class="sub">{escape(line)}</p>' for line in lines)
        + "</header>"
    )


def _settings_table(title: str, values: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{escape(str(k))}</th><td>{escape(_plain(v))}</td></tr>" for k, v in values.items()
    )
    return f'<h3>{escape(title)}</h3><table class="kv"><tbody>{rows}</tbody></table>'


def _environment(environment: Mapping[str, Any]) -> str:
    return (
        "<section><h2>Environment</h2>" + _settings_table("Machine and versions", environment) + "</section>"
    )


def _plain(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _cell(value: Any) -> str:
    return escape(f"{value:,.3f}" if isinstance(value, float) else str(value))


def _overall(verdicts: Sequence[str]) -> str:
    for word in ("INTERRUPTED", "FAILED", "THRESHOLD FAILED"):
        if word in verdicts:
            return word
    return "PASSED" if verdicts else "NO RESULTS"


def _tone(verdict: str) -> str:
    if verdict in ("PASSED", "NO REGRESSION"):
        return "ok"
    if verdict in ("INTERRUPTED", "THRESHOLD FAILED", "NO RESULTS"):
        return "warn"
    return "bad"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


_STYLE = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1d232b;--muted:#5b6570;--line:#d8dde3;--card:#f6f8fa;
--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--c0:#0969da;--c1:#cf222e;--c2:#1a7f37;--c3:#bc4c00;
--c4:#8250df;--c5:#0e8a9a;--c6:#bf3989;--c7:#57606a}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--line:#30363d;
--card:#161b22;--ok:#3fb950;--bad:#f85149;--warn:#d29922;--c0:#4493f8;--c1:#f85149;--c2:#3fb950;
--c3:#f0883e;--c4:#a371f7;--c5:#39c5cf;--c6:#db61a2;--c7:#9198a1}}
*{box-sizing:border-box}body{margin:0 auto;max-width:1200px;padding:16px 24px 48px;background:var(--bg);
color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
h1{margin:0;font-size:22px}h2{margin:28px 0 8px;font-size:18px}h3{margin:20px 0 6px;font-size:15px}
small,.sub,.promise,.label{color:var(--muted)}
header{display:flex;flex-wrap:wrap;align-items:center;gap:8px 16px}
header .sub{flex-basis:100%;margin:0}.verdict{margin:0;padding:4px 14px;border-radius:6px;font-weight:700;
font-size:18px;color:#fff}.verdict.ok{background:var(--ok)}.verdict.bad{background:var(--bad)}
.verdict.warn{background:var(--warn)}.tag{font-size:12px;padding:1px 8px;border-radius:10px;
border:1px solid currentColor;vertical-align:middle}td.ok,.tag.ok{color:var(--ok)}
td.bad,.tag.bad,p.alert{color:var(--bad);font-weight:700}td.warn,.tag.warn{color:var(--warn);font-weight:700}
table{border-collapse:collapse;margin:6px 0}th,td{padding:3px 10px;border-bottom:1px solid var(--line);
text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{font-weight:600;color:var(--muted)}section.run{border-top:2px solid var(--line);margin-top:24px}
nav{margin-top:12px;overflow-x:auto}.scroll{overflow-x:auto}a{color:var(--c0)}
.figures{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}.figures div{background:var(--card);
border:1px solid var(--line);border-radius:6px;padding:6px 14px;min-width:120px}
.big{display:block;font-size:20px;font-weight:700;font-variant-numeric:tabular-nums}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:12px}
figure{margin:0;max-width:760px;background:var(--card);border:1px solid var(--line);border-radius:6px;
padding:6px}
pre{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:8px 12px;
overflow-x:auto;white-space:pre-wrap;word-break:break-all}code{font-size:13px}
svg.chart{display:block;width:100%;height:auto}svg .grid{stroke:var(--line);stroke-width:1}
svg .frame{stroke:var(--muted);stroke-width:1}svg .axis,svg .legend{fill:var(--muted);font-size:12px}
svg .legend{fill:var(--fg)}svg .line{fill:none;stroke-width:1.8;stroke-linejoin:round}
svg .dashed{stroke-dasharray:5 3;stroke-width:1.3}svg .c0{stroke:var(--c0);fill:var(--c0)}
svg .c1{stroke:var(--c1);fill:var(--c1)}svg .c2{stroke:var(--c2);fill:var(--c2)}
svg .c3{stroke:var(--c3);fill:var(--c3)}svg .c4{stroke:var(--c4);fill:var(--c4)}
svg .c5{stroke:var(--c5);fill:var(--c5)}svg .c6{stroke:var(--c6);fill:var(--c6)}
svg .c7{stroke:var(--c7);fill:var(--c7)}svg .line.c0,svg .line.c1,svg .line.c2,svg .line.c3,svg .line.c4,
svg .line.c5,svg .line.c6,svg .line.c7{fill:none}svg rect.fill{stroke:none}
svg line.line{stroke-width:6}svg line.line.dashed{stroke-width:2}
"""

_SCRIPT = """
(function(){var charts=document.querySelectorAll("svg.chart");
for(var i=0;i<charts.length;i++){var c=charts[i],box=c.getBoundingClientRect(),marks=0,
lines=c.querySelectorAll("path.line");for(var j=0;j<lines.length;j++){if(lines[j].getTotalLength()>0)marks++}
var bars=c.querySelectorAll("rect.fill");for(var k=0;k<bars.length;k++){var b=bars[k].getBBox();
if(b.width>0&&b.height>0)marks++}c.setAttribute("data-rendered-width",Math.round(box.width));
c.setAttribute("data-rendered-marks",marks)}
var root=document.documentElement;root.setAttribute("data-charts-rendered",String(charts.length));
root.setAttribute("data-background",getComputedStyle(document.body).backgroundColor);
var verdict=document.getElementById("verdict");if(verdict){var style=getComputedStyle(verdict);
root.setAttribute("data-verdict-colours",style.color+" on "+style.backgroundColor)}})();
"""


def _page(title: str, verdict: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        # No request leaves the page: everything it needs is inline.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';'
        " style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{escape(verdict)}: {escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}<script>{_SCRIPT}</script></body></html>\n"
    )
