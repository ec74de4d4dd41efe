"""The performance targets of `benchmarks/perf.py`, one module per group of targets.

- `measure`: what every group measures with (`Target`, `Sample`, `Group`, the shared `Scratch`
  directory and its warmed catalog, the timed loops and the stress-scenario runs).
- `report`: a report row (`Row`) and the fixed-width table.
- `reads`: targets 1, 2 and 7a-7c, reads by threads and processes, cached and through read_heavy.
- `writes`: targets 3, 7d and 7e, concurrent_writers and ten threads saving.
- `harness`: targets 4 and 6, what the stress harness itself costs per call and per histogram.
- `bulk`: targets 5a-5g, a fresh 10,000-dataset catalog: load, latencies, size, memory.

A target is declared once, in its group's `TARGETS`, with its raw baseline and its check; the
group's `measure` returns one `Sample` per declared key each round. `perf.py` runs the groups
in its `GROUPS` order and prints their rows in that order.

Importing this package makes `metafuse` importable from a checkout without `pip install -e .`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository's root."""

if importlib.util.find_spec("metafuse") is None:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))
