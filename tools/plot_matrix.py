"""Draw the charts of a stress-matrix run: throughput.png (ops/s against clients) and latency.png
(the worst operation's p99 latency against clients), a line per scenario, mode and duration.

Usage: python tools/plot_matrix.py .stress/<timestamp>   (needs matplotlib; `nox -s stress-matrix`
installs it in its own environment only).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def curves(
    results: list[dict[str, Any]], figure: Callable[[dict[str, Any]], float]
) -> dict[str, list[tuple[int, float]]]:
    """Points (clients, figure) per scenario, mode and duration, sorted by clients."""
    found: dict[str, list[tuple[int, float]]] = {}
    for item in results:
        key = f"{item['scenario']} ({item['mode']}, {item['duration']}s)"
        found.setdefault(key, []).append((item["clients"], figure(item)))
    return {key: sorted(points) for key, points in sorted(found.items())}


def worst_p99(item: dict[str, Any]) -> float:
    """The largest p99 latency (ms) of any operation in one result."""
    values = [float(op.get("latency_ms", {}).get("p99", 0.0)) for op in item["operations"].values()]
    return max(values, default=0.0)


def draw(points: dict[str, list[tuple[int, float]]], ylabel: str, title: str, target: str) -> None:
    """Write one log-scale line chart of `points` to `target`."""
    figure, axes = plt.subplots(figsize=(10, 6))
    for key, line in points.items():
        axes.plot([p[0] for p in line], [p[1] for p in line], marker="o", label=key)
    axes.set_xlabel("clients")
    axes.set_ylabel(ylabel)
    axes.set_yscale("log")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(target, dpi=120)
    plt.close(figure)
    print(f"chart: {target}")


def main(folder: str) -> int:
    """Read summary.json in `folder` and write throughput.png and latency.png beside it."""
    with open(os.path.join(folder, "summary.json"), encoding="utf-8") as handle:
        results = json.load(handle)["results"]
    draw(
        curves(results, lambda item: float(item["throughput"])),
        "operations per second",
        "MetaFuse stress matrix: throughput against clients",
        os.path.join(folder, "throughput.png"),
    )
    draw(
        curves(results, worst_p99),
        "p99 latency, worst operation (ms)",
        "MetaFuse stress matrix: p99 latency against clients",
        os.path.join(folder, "latency.png"),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
