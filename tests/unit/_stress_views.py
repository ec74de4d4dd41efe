"""Builds the `RunView` an invariant sees, from per-client metrics, so invariants are tested alone."""

from __future__ import annotations

from typing import Any

from metafuse import Catalog
from metafuse.stress.recorder import Recorder, merge
from metafuse.stress.scenario import RunView


def view(
    catalog: Catalog,
    metrics: list[dict[str, Any]],
    *,
    shared: dict[str, Any] | None = None,
    mode: str = "thread",
    errors: list[str] | None = None,
) -> RunView:
    """A finished run of `len(metrics)` clients whose recorders carry `metrics` (and `errors` on client 0)."""
    recorders = []
    for client, values in enumerate(metrics):
        recorder = Recorder(client=client, metrics=dict(values), finished=True)
        for message in (errors or []) if client == 0 else []:
            recorder.error(message)
        recorders.append(recorder)
    return RunView(
        scenario="test",
        mode=mode,
        clients=len(metrics),
        duration=1,
        seed=1,
        shared=shared or {},
        recorders=recorders,
        merged=merge(recorders),
        reports=[],
        catalog=catalog,
        elapsed=1.0,
        hung=[],
        crashed=[],
        killed=[],
        fd_before=0,
        fd_after=0,
    )
