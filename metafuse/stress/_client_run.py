"""What a thread run and a process run share: their inputs, their outcome, running one client.

Owns `ClientRun` (a run's fixed inputs), `Outcome` (what the clients left behind for the verdicts)
and `run_client` (one client function, its crash caught and its record published). Starts no
client and judges nothing: `_thread_run` and `_process_run` start them, `_run_verdicts` judges.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from .client import ClientContext
from .config import StressConfig
from .progress import Progress
from .recorder import Recorder
from .scenario import Scenario

log = logging.getLogger("metafuse.stress")


@dataclasses.dataclass
class Outcome:
    """What a run's clients left behind: their records and reports, and which hung, crashed or were killed."""

    recorders: list[Recorder]
    reports: Any
    elapsed: float
    hung: list[int]
    crashed: list[int]
    killed: list[int]
    rss: tuple[int, int] = (0, 0)  # thread mode: this process after warm-up, and as clients stop
    left_open: bool = False  # thread mode: the shared catalog stayed open under a hung client
    interrupted: bool = False  # Ctrl-C stopped the clients early; the figures cover what ran


def run_client(scenario: Scenario, ctx: ClientContext) -> None:
    """Run `scenario`'s client function with `ctx`; a crash is recorded, never raised, and the
    record and history are published whatever happened."""
    try:
        scenario.client(ctx)
        ctx.recorder.finished = True
    except BaseException as error:
        ctx.recorder.error(f"client {ctx.client} crashed: {type(error).__name__}: {error}")
        log.debug("client %d crashed", ctx.client, exc_info=True)
    finally:
        ctx.publish()
        if ctx.history is not None:
            ctx.history.flush()


class ClientRun:
    """The inputs of one run of a scenario's clients; `run()` of a subclass starts them and returns
    their `Outcome`."""

    def __init__(
        self,
        scenario: Scenario,
        config: StressConfig,
        path: str,
        clients: int,
        duration: int,
        shared: dict[str, Any],
        faults: tuple[str, ...],
        meter: Progress,
    ) -> None:
        self.scenario = scenario
        self.config = config
        self.path = path
        self.clients = clients
        self.duration = duration
        self.shared = shared
        self.faults = faults
        self.meter = meter
