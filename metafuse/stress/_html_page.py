"""The shell of every stress HTML page: its style, its script, the header with the verdict, and
the small pieces every page shares (key-value tables, the environment, cells, verdict colours).

Owns what makes a page self-contained: inline styles that follow the reader's colour scheme, a
Content-Security-Policy that lets no request leave the page, and the script that records what
the browser laid out. It may not know what a run, a comparison or a campaign is: the pages
(`html_report`) and the scenario sections (`_html_scenario`) fill the body.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any


def header(title: str, verdict: str, lines: Iterable[str]) -> str:
    """The page's header: its title, the verdict coloured by `tone` (id `verdict`), and `lines` under it."""
    colour = tone(verdict)
    return (
        f'<header><h1>{escape(title)}</h1><p class="verdict {colour}" id="verdict">{escape(verdict)}</p>'
        + "".join(f'<p class="sub">{escape(line)}</p>' for line in lines)
        + "</header>"
    )


def settings_table(title: str, values: Mapping[str, Any]) -> str:
    """A titled table of `values`, one escaped row per key (lists spaced, mappings as JSON)."""
    rows = "".join(
        f"<tr><th>{escape(str(k))}</th><td>{escape(_plain(v))}</td></tr>" for k, v in values.items()
    )
    return f'<h3>{escape(title)}</h3><table class="kv"><tbody>{rows}</tbody></table>'


def environment(environment: Mapping[str, Any]) -> str:
    """The page's closing section: the machine and versions the run had."""
    return (
        "<section><h2>Environment</h2>" + settings_table("Machine and versions", environment) + "</section>"
    )


def _plain(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True)
    return str(value)


def cell(value: Any) -> str:
    """One escaped table cell's text (a float with three decimals)."""
    return escape(f"{value:,.3f}" if isinstance(value, float) else str(value))


def overall(verdicts: Sequence[str]) -> str:
    """The worst of `verdicts` (INTERRUPTED, FAILED, THRESHOLD FAILED, PASSED); NO RESULTS for none."""
    for word in ("INTERRUPTED", "FAILED", "THRESHOLD FAILED"):
        if word in verdicts:
            return word
    return "PASSED" if verdicts else "NO RESULTS"


def tone(verdict: str) -> str:
    """The colour class of a verdict: `ok`, `warn` or `bad`."""
    if verdict in ("PASSED", "NO REGRESSION"):
        return "ok"
    if verdict in ("INTERRUPTED", "THRESHOLD FAILED", "NO RESULTS"):
        return "warn"
    return "bad"


def now() -> str:
    """The time the page is written, in UTC, to the second."""
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


def page(title: str, verdict: str, body: str) -> str:
    """The whole page around `body`, with its style and script inline and no request leaving it."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        # No request leaves the page: everything it needs is inline.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';'
        " style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{escape(verdict)}: {escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}<script>{_SCRIPT}</script></body></html>\n"
    )
