"""Placeholder replaced by the stress CLI."""

from __future__ import annotations

from typing import Any


def add_stress_commands(commands: Any) -> None:
    """Register `metafuse stress ...` on the top-level subparsers."""
    del commands
