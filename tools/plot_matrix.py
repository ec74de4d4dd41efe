"""Draw throughput.png for a stress-matrix run: ops/s against clients, a line per scenario and mode.

Usage: python tools/plot_matrix.py .stress/<timestamp>   (needs matplotlib; `nox -s stress-matrix`
installs it in its own environment only).
"""

from __future__ import annotations

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(folder: str) -> int:
    """Read summary.json in `folder` and write throughput.png beside it."""
    with open(os.path.join(folder, "summary.json"), encoding="utf-8") as handle:
        results = json.load(handle)["results"]
    curves: dict[str, list[tuple[int, float]]] = {}
    for item in results:
        key = f"{item['scenario']} ({item['mode']}, {item['duration']}s)"
        curves.setdefault(key, []).append((item["clients"], item["throughput"]))
    figure, axes = plt.subplots(figsize=(10, 6))
    for key, points in sorted(curves.items()):
        points.sort()
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=key)
    axes.set_xlabel("clients")
    axes.set_ylabel("operations per second")
    axes.set_yscale("log")
    axes.set_title("MetaFuse stress matrix: throughput against clients")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    target = os.path.join(folder, "throughput.png")
    figure.savefig(target, dpi=120)
    print(f"chart: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
