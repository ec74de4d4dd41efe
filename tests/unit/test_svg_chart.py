"""Tests for metafuse.stress.svg_chart: well-formed SVG that carries the numbers it draws."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from metafuse.stress.svg_chart import (
    MAX_POINTS,
    Bar,
    Series,
    bar_chart,
    downsample,
    line_chart,
    log_ticks,
    nice_ticks,
    number,
)

SVG = "{http://www.w3.org/2000/svg}"


def test_a_long_series_is_cut_to_the_limit_and_keeps_its_mean_rate() -> None:
    values = [float(second % 7) for second in range(300)]
    points = downsample(values)
    assert len(points) <= MAX_POINTS
    assert sum(y for _, y in points) / len(points) == pytest.approx(sum(values) / len(values))
    assert points[0][0] == 1.0, "x is the middle of the first 2-second interval"


def test_a_latency_spike_survives_downsampling_by_max() -> None:
    values = [1.0] * 300
    values[123] = 250.0
    assert max(y for _, y in downsample(values, how="max")) == 250.0
    assert max(y for _, y in downsample(values, how="mean")) < 250.0


def test_a_short_series_is_kept_point_for_point() -> None:
    assert downsample([3.0, 4.0, 5.0]) == [(0.5, 3.0), (1.5, 4.0), (2.5, 5.0)]


@pytest.mark.parametrize(("how", "limit"), [("median", 10), ("mean", 0)])
def test_downsample_refuses_a_bad_argument(how: str, limit: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        downsample([1.0], limit, how)


@pytest.mark.parametrize("high", [0.003, 0.7, 1.0, 9.5, 42.0, 1234.0, 2_000_000.0])
def test_ticks_start_at_zero_reach_the_top_and_are_evenly_spaced(high: float) -> None:
    ticks = nice_ticks(high)
    assert ticks[0] == 0.0
    assert ticks[-1] >= high
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1
    assert 2 <= len(ticks) <= 12


def test_log_ticks_are_powers_of_ten_around_the_range() -> None:
    assert log_ticks(0.02, 35.0) == [0.01, 0.1, 1.0, 10.0, 100.0]


@pytest.mark.parametrize(
    ("value", "text"), [(0, "0"), (0.5, "0.5"), (12, "12"), (1500, "1.5k"), (2e6, "2M"), (0.001, "0.001")]
)
def test_axis_numbers_are_short(value: float, text: str) -> None:
    assert number(value) == text


def test_a_line_chart_is_well_formed_and_each_line_carries_its_peak() -> None:
    chart = line_chart(
        [Series("read", ((0.5, 10.0), (1.5, 30.0))), Series("write", ((0.5, 5.0), (1.5, 2.0)), 1)],
        title="Throughput",
        x_label="second",
        y_label="ops/s",
        chart_id="t",
    )
    root = ET.fromstring(chart)
    paths = {p.get("data-series"): p for p in root.iter(f"{SVG}path")}
    assert set(paths) == {"read", "write"}
    assert paths["read"].get("data-peak") == "30"
    assert paths["write"].get("data-peak") == "5"
    assert root.get("data-points") == "4"
    assert root.get("id") == "t"
    # The highest point sits on or under the top tick, never above the plot.
    ys = [float(y) for y in re.findall(r"[ML][\d.]+,([\d.]+)", paths["read"].get("d", ""))]
    assert min(ys) >= 28


def test_a_log_chart_leaves_out_zeros_it_cannot_draw() -> None:
    chart = line_chart(
        [Series("p99", ((0.5, 0.0), (1.5, 2.0), (2.5, 40.0)))],
        title="Latency",
        x_label="s",
        y_label="ms",
        log=True,
    )
    root = ET.fromstring(chart)
    assert root.get("data-points") == "2"
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "1" in labels
    assert "100" in labels


def test_an_empty_chart_says_so() -> None:
    chart = line_chart([Series("read", ())], title="T", x_label="s", y_label="ops/s")
    assert "no data" in chart
    ET.fromstring(chart)


def test_text_from_a_run_is_escaped_in_charts() -> None:
    hostile = '<script>alert("x")</script>&'
    chart = line_chart([Series(hostile, ((1.0, 1.0),))], title=hostile, x_label=hostile, y_label=hostile)
    chart += bar_chart([Bar(hostile, (1.0,))], [hostile], title=hostile, y_label=hostile)
    assert "<script>" not in chart
    assert "&lt;script&gt;" in chart


def test_fifty_stacked_bars_carry_their_totals_and_thin_their_labels() -> None:
    bars = [Bar(str(client), (100.0 + client, 10.0, 0.0, 1.0)) for client in range(50)]
    root = ET.fromstring(bar_chart(bars, ["ok", "conflict", "busy", "error"], title="Clients", y_label="ops"))
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "bar"]
    assert [float(g.get("data-total", "")) for g in groups] == [111.0 + c for c in range(50)]
    # A zero part draws nothing; the others one rectangle each.
    assert all(len(list(g.iter(f"{SVG}rect"))) == 3 for g in groups)
    under = [
        t for t in root.iter(f"{SVG}text") if t.text and t.text.isdigit() and t.get("text-anchor") == "middle"
    ]
    assert 10 <= len(under) <= 25


def test_a_short_solid_line_marks_each_point_and_a_long_one_does_not() -> None:
    short = Series("4 clients", ((1.0, 100.0), (4.0, 250.0), (8.0, 260.0)))
    root = ET.fromstring(line_chart([short], title="T", x_label="clients", y_label="ops/s"))
    dots = list(root.iter(f"{SVG}circle"))
    assert len(dots) == 3
    assert [d.findtext(f"{SVG}title") for d in dots][1] == "4 clients: 4, 250"
    long = Series("per second", tuple((s + 0.5, 1.0) for s in range(60)))
    dashed = Series("p50", ((1.0, 1.0), (2.0, 2.0)), dashed=True)
    root = ET.fromstring(line_chart([long, dashed], title="T", x_label="s", y_label="ops/s"))
    assert not list(root.iter(f"{SVG}circle"))
