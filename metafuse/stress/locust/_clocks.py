"""Each worker's wall clock, as the master measures it by round trips (as NTP does).

The worker answers a probe with its wall-clock time; the master keeps the probe with the shortest
round trip (`metafuse.stress.distributed.ClockOffset.from_probes`): the offset is its midpoint and
the uncertainty half the round trip. The master measures a worker twice, when it says hello and
after its history arrived (see `_collect`); `_verdict` compares the two.

Owns the probe messages, a worker's `Clock` and the master's `Measurements`; the offset itself is
`distributed`'s arithmetic. It touches no catalog and no history, and judges nothing: `_verdict`
compares the two measurements.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time
from collections.abc import Callable

import gevent
from locust.env import Environment
from locust.rpc import Message
from locust.runners import MasterRunner

from metafuse.stress import distributed

PROBES = 5
"""Probes per measurement."""
TIMEOUT = 10.0
"""Seconds the master waits for one worker's probes."""
STEP_ENV = "METAFUSE_LOCUST_CLOCK_STEP_MS"
"""For tests: a worker whose environment sets this (milliseconds, may be negative) steps its wall
clock by that much once it has answered the master's first measurement, as a clock set by hand
mid-run would. Only what the worker reads changes (its recorded times and its answers to the
master's probes); the master measures, detects and widens exactly as for a real clock."""
PROBE, REPLY = "metafuse_clock", "metafuse_clock_reply"
"""The messages: the master's probe, and the worker's answer."""


@dataclasses.dataclass
class Clock:
    """A worker's wall clock: the real one, plus a step taken after the first measurement (tests)."""

    step_ns: int = 0
    applied_ns: int = 0
    answered: int = 0

    def now(self) -> int:
        """The time to record and to answer with (nanoseconds since the epoch)."""
        return time.time_ns() + self.applied_ns

    def answered_probe(self) -> None:
        self.answered += 1
        if self.answered == PROBES:
            self.applied_ns = self.step_ns


clock = Clock()
"""This worker's clock (in the master, unused)."""


@dataclasses.dataclass
class Measurements:
    """The master's probes of one test: the answers so far, and each worker's first measurement."""

    replies: dict[tuple[str, int], tuple[int, int]] = dataclasses.field(default_factory=dict)
    """(worker, probe) -> (the worker's time, the master's time when the answer arrived)."""
    probes: itertools.count[int] = dataclasses.field(default_factory=itertools.count)
    first: dict[str, distributed.ClockOffset] = dataclasses.field(default_factory=dict)
    """Each worker's clock as measured when it said hello, at the start of its test."""


def wait_until(until: Callable[[], bool], deadline: float) -> bool:
    """Yield to Locust's message listener until `until()` or the monotonic `deadline`."""
    while not until():
        if time.monotonic() >= deadline:
            return False
        gevent.sleep(0.01)
    return True


def set_step(milliseconds: str) -> None:
    """Take this worker's `STEP_ENV` (a number of milliseconds; ValueError if it is not one)."""
    clock.step_ns = round(float(milliseconds) * 1e6) if milliseconds else 0


def answer(environment: Environment, msg: Message) -> None:
    """The worker's side: answer a probe with this worker's time."""
    assert environment.runner is not None
    environment.runner.send_message(REPLY, {"probe": msg.data["probe"], "remote": clock.now()})
    clock.answered_probe()


def note_reply(measurements: Measurements, msg: Message) -> None:
    """The master's side: keep a worker's answer, with the time it arrived."""
    measurements.replies[(msg.node_id, int(msg.data["probe"]))] = (int(msg.data["remote"]), time.time_ns())


def _replied(measurements: Measurements, node: str, probe: int) -> bool:
    return (node, probe) in measurements.replies


def measure(
    runner: MasterRunner, measurements: Measurements, node: str, deadline: float
) -> distributed.ClockOffset | None:
    """Probe worker `node`'s clock (until `deadline`); None if no probe was answered in time."""
    probes = []
    for _ in range(PROBES):
        probe = next(measurements.probes)
        sent = time.time_ns()
        runner.send_message(PROBE, {"probe": probe}, client_id=node)
        if not wait_until(functools.partial(_replied, measurements, node, probe), deadline):
            break
        remote, received = measurements.replies[(node, probe)]
        probes.append((sent, remote, received))
    return distributed.ClockOffset.from_probes(probes) if probes else None
