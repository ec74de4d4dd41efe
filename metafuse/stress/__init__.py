"""The stress suite: scenarios that hammer one catalog file and check invariants that can fail.

Run it with `metafuse stress run`, or under pytest with `RUN_STRESS_TESTS=1 pytest tests/stress`.

Defines nothing of its own: it re-exports the suite's public names, opens no catalog and runs no
scenario. Importing it registers the built-in scenarios (through `scenarios`).
"""

from __future__ import annotations

from .client import ClientContext
from .config import StressConfig, from_environment
from .result import ScenarioResult
from .runner import run_scenario
from .scenario import REGISTRY, RunView, Verdict, scenario
from .scenarios import CORE  # importing the package registers the built-in scenarios

__all__ = [
    "CORE",
    "REGISTRY",
    "ClientContext",
    "RunView",
    "ScenarioResult",
    "StressConfig",
    "Verdict",
    "from_environment",
    "run_scenario",
    "scenario",
]
