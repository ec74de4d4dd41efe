"""The runners: the watchdog bounds a run, crashes are reported, and selfcheck catches every bug."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from metafuse.stress import _watchdog
from metafuse.stress.client import ClientContext
from metafuse.stress.config import StressConfig
from metafuse.stress.result import ScenarioResult
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY, RunView, Verdict, scenario
from metafuse.stress.selfcheck import PROBES, run_selfcheck

_release = threading.Event()
HANG_SECONDS = 120
"""How long the hung client hangs: a runner that waited for it would take at least this long."""


def _hang(ctx: ClientContext) -> None:
    """Client 0 ignores the deadline (a hung client); the others do one call and finish.

    They finish at once rather than at the deadline, so that they have the whole run, not only
    the short watchdog grace, to report back on a loaded machine.
    """
    if ctx.client == 0:
        _release.wait(HANG_SECONDS) if ctx.mode == "thread" else time.sleep(HANG_SECONDS)
        return
    ctx.call("noop", time.sleep, 0.01)


def _linger(ctx: ClientContext) -> None:
    """Client i finishes 0.1 s x i after the deadline (well inside the watchdog's grace), but
    its process lives on until the run has ended."""
    ctx.call("noop", time.sleep, 0.01)
    while not ctx.should_stop():
        time.sleep(0.01)
    time.sleep(0.1 * ctx.client)
    threading.Thread(target=_wait_for_the_end, args=(ctx,), daemon=False).start()


def _wait_for_the_end(ctx: ClientContext) -> None:
    """Return once the runner has ended the run (it sets the stop event only then)."""
    while not ctx._stopped():
        time.sleep(0.01)


def _crash(ctx: ClientContext) -> None:
    """Client 1 raises after one operation."""
    ctx.call("noop", time.sleep, 0.01)
    if ctx.client == 1:
        raise RuntimeError("client blew up")
    while not ctx.should_stop():
        ctx.call("noop", time.sleep, 0.01)


_late_release = threading.Event()
_late_done = threading.Event()
_late_outcome: list[str] = []


def _hang_then_read(ctx: ClientContext) -> None:
    """Client 0 hangs past the watchdog, then uses the shared catalog (thread mode only)."""
    if ctx.client == 0:
        _late_release.wait(60)
        try:
            ctx.catalog.get("stress.absent")
            _late_outcome.append("ok")
        except Exception as error:
            _late_outcome.append(f"{type(error).__name__}: {error}")
        finally:
            _late_done.set()
        return
    while not ctx.should_stop():
        ctx.call("noop", time.sleep, 0.01)


def _counting(ctx: ClientContext) -> None:
    """Count at least once, then until the deadline (a client started late still counts)."""
    while True:
        ctx.call("noop", time.sleep, 0.005)
        ctx.event(ctx.client)
        if ctx.should_stop():
            return


HANG = REGISTRY.get("test_hang") or scenario("test_hang", title="hang", summary="one client hangs")(_hang)
CRASH = REGISTRY.get("test_crash") or scenario("test_crash", title="crash", summary="one client crashes")(
    _crash
)
HANG_THEN_READ = REGISTRY.get("test_hang_then_read") or scenario(
    "test_hang_then_read", title="hang then read", summary="a hung client still uses the catalog"
)(_hang_then_read)
LINGER = REGISTRY.get("test_linger") or scenario(
    "test_linger", title="linger", summary="client processes outlive their reports"
)(_linger)
COUNTING = REGISTRY.get("test_counting") or scenario(
    "test_counting", title="counting", summary="every client counts"
)(_counting)


def _own_catalog(ctx: ClientContext) -> None:
    """Report which Catalog this client was handed, before anything else (it must be open already)."""
    ctx.event(ctx.client, id(ctx.catalog), ctx.catalog.get("stress.absent") is None)


OWN = REGISTRY.get("test_own_catalog") or scenario(
    "test_own_catalog", title="own catalog", summary="each client has its own catalog", own_catalogs=True
)(_own_catalog)


@OWN.invariant("catalogs_owned", "every client was handed an open catalog no other client has")
def _catalogs_owned(run: RunView) -> Verdict:
    clients = sorted(client for client, _, _ in run.merged.events)
    catalogs = {catalog for _, catalog, _ in run.merged.events}
    opened = all(absent for *_, absent in run.merged.events)
    return clients == list(range(run.clients)) and len(catalogs) == run.clients and opened, (
        f"clients {clients}, {len(catalogs)} catalogs"
    )


@COUNTING.invariant("all_clients_acted", "every client recorded events")
def _all_acted(run: RunView) -> Verdict:
    seen = {client for (client,) in run.merged.events}
    return seen == set(range(run.clients)), f"clients seen: {sorted(seen)}"


SHORT_GRACE = 1.0
"""The shortened watchdog grace of the tests whose client hangs or overruns on purpose."""
SHORT_CAP = 10 * SHORT_GRACE
"""The shortened cap: well past `OVERRUN`, so the slow client's test does not meet it, and short
enough for the test whose client spins without end to wait it out."""
OVERRUN = 3 * SHORT_GRACE
"""Seconds past the end that the slow client of `_overrun` keeps working: longer than a fixed grace."""
_spinner_release = threading.Event()


def _spin_for(seconds: float) -> None:
    """Use the CPU for `seconds` of wall-clock time, as a client busy computing does."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        pass


def _overrun(ctx: ClientContext) -> None:
    """Client 0 keeps working, one short busy operation after another, until `OVERRUN` seconds past
    the end: slow to finish, but progressing all along, as a client starved of CPU is. The others
    stop at the end."""
    while not ctx.should_stop():
        ctx.call("noop", time.sleep, 0.01)
    if ctx.client == 0:
        while time.monotonic() < ctx.deadline + OVERRUN:
            ctx.call("spin", _spin_for, 0.05)


def _spin_forever(ctx: ClientContext) -> None:
    """Client 0 never returns but keeps using the CPU (a livelock); the others do one call and finish."""
    if ctx.client == 0:
        while not _spinner_release.is_set():
            _spin_for(0.05)
        return
    ctx.call("noop", time.sleep, 0.01)


OVERRUNNING = REGISTRY.get("test_overrun") or scenario(
    "test_overrun", title="overrun", summary="a client works on past the end"
)(_overrun)
SPINNING = REGISTRY.get("test_spin_forever") or scenario(
    "test_spin_forever", title="spin forever", summary="a client spins without end"
)(_spin_forever)


@pytest.fixture
def short_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 s watchdog grace and a 10 s cap, for the tests whose client hangs or overruns on purpose
    (they wait it out).

    Only for those: a run whose clients must all finish gets the real grace, or a client slow to
    send its report on a loaded machine would be counted as hung (a false alarm, seen in the
    README test loop under load).
    """
    monkeypatch.setattr(_watchdog, "WATCHDOG_GRACE", SHORT_GRACE)
    monkeypatch.setattr(_watchdog, "WATCHDOG_CAP", SHORT_CAP)


def _assert_client_0_hung(result: ScenarioResult) -> None:
    finished = next(i for i in result.invariants if i.name == "clients_finished")
    assert not finished.ok
    assert "[0]" in finished.detail
    assert "hung" in finished.detail
    assert not result.passed


@pytest.mark.usefixtures("short_watchdog")
@pytest.mark.parametrize("mode", ["thread", "process"])
def test_watchdog_ends_a_run_whose_client_hangs(mode: str, tmp_path: Path) -> None:
    started = time.monotonic()
    try:
        config = StressConfig(clients=3, duration=1, mode=mode, seed=1)
        result = run_scenario(HANG, config, path=str(tmp_path / "catalog.db"))
    finally:
        _release.set()
    # The run ended without waiting for the hung client (which would take HANG_SECONDS): a
    # bound tied to the hang, not to how fast a loaded machine starts three processes.
    assert time.monotonic() - started < HANG_SECONDS
    _assert_client_0_hung(result)


@pytest.mark.usefixtures("short_watchdog")
@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_client_still_making_progress_past_the_grace_is_not_hung(mode: str, tmp_path: Path) -> None:
    """The watchdog judges progress, not a fixed time: client 0 cannot finish before 3 graces past
    the end, and a watchdog that gave it one grace would count it as hung."""
    config = StressConfig(clients=2, duration=1, mode=mode, seed=1)
    result = run_scenario(OVERRUNNING, config, path=str(tmp_path / "catalog.db"))
    finished = next(i for i in result.invariants if i.name == "clients_finished")
    assert finished.ok, finished.detail
    assert result.operations["spin"]["ok"] > 0


@pytest.mark.usefixtures("short_watchdog")
@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_client_that_spins_without_end_is_hung_at_the_cap(mode: str, tmp_path: Path) -> None:
    """Progress buys time up to the cap only: a client busy for ever is hung like one that sleeps."""
    try:
        config = StressConfig(clients=2, duration=1, mode=mode, seed=1)
        result = run_scenario(SPINNING, config, path=str(tmp_path / "catalog.db"))
    finally:
        _spinner_release.set()
    _assert_client_0_hung(result)


def test_client_processes_slow_to_exit_after_reporting_are_not_hung(tmp_path: Path) -> None:
    """The runner reads every client's record without waiting for the client's process to exit.

    Each process here lives on until the run has ended, and the records arrive one by one over
    1.5 s. A runner that waited for each process after reading its record (it used to, up to
    1 s each) was still waiting when the watchdog's time came, with records unread, and counted
    clients that had finished as hung.
    """
    clients = 16
    config = StressConfig(clients=clients, duration=1, mode="process", seed=1)
    result = run_scenario(LINGER, config, path=str(tmp_path / "catalog.db"))
    finished = next(i for i in result.invariants if i.name == "clients_finished")
    assert finished.ok, finished.detail
    assert result.operations["noop"]["ok"] == clients


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_crashing_client_fails_the_run_and_keeps_the_message(mode: str) -> None:
    result = run_scenario(CRASH, StressConfig(clients=3, duration=1, mode=mode, seed=1))
    finished = next(i for i in result.invariants if i.name == "clients_finished")
    assert not finished.ok
    assert "crashed" in finished.detail
    assert any("client blew up" in error for error in result.errors)


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_every_client_runs_and_reports_back(mode: str) -> None:
    result = run_scenario(COUNTING, StressConfig(clients=3, duration=1, mode=mode, seed=1))
    assert result.passed, result.invariants
    assert result.operations["noop"]["ok"] > 3
    assert result.operations["noop"]["latency_ms"]["p50"] >= 4.0  # each op slept 5 ms
    round_trip = ScenarioResult.from_dict(result.to_dict())
    assert round_trip.passed
    assert round_trip.throughput == result.throughput


@pytest.mark.parametrize("asked", [None, "shared", "mixed"])
def test_a_scenario_with_own_catalogs_gives_every_thread_one_whatever_the_run_asks(asked: str | None) -> None:
    """Each client's catalog is open when the client starts (the runner opened it before the clock)."""
    config = StressConfig(clients=4, duration=1, mode="thread", seed=1, catalogs=asked)
    result = run_scenario(OWN, config)
    assert result.passed, result.invariants
    assert result.settings["catalogs"] == "per-client"
    assert OWN.catalogs == "per-client"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["thread", "process"])
def test_selfcheck_catches_every_bug(mode: str) -> None:
    """The proof the issue asks for: each deliberate bug makes its named invariant fail."""
    verdicts = run_selfcheck((mode,), duration=1, clients=4, seed=11)
    assert {v.bug for v in verdicts} == set(PROBES)
    missed = [(v.bug, v.caught_by, v.control_failures) for v in verdicts if not v.caught]
    assert not missed


@pytest.mark.usefixtures("short_watchdog")
def test_the_thread_runner_leaves_the_shared_catalog_open_under_a_hung_client(tmp_path: Path) -> None:
    try:
        config = StressConfig(clients=2, duration=1, mode="thread", seed=1)
        result = run_scenario(HANG_THEN_READ, config, path=str(tmp_path / "catalog.db"))
    finally:
        _late_release.set()
    finished = next(i for i in result.invariants if i.name == "clients_finished")
    assert not finished.ok
    assert "hung" in finished.detail
    assert _late_done.wait(30)
    assert _late_outcome == ["ok"]


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_lockstep_makes_every_optimistic_attempt_conflict(mode: str) -> None:
    """With the bound ignored, the k-th update of every round needs exactly k attempts."""
    config = StressConfig(clients=4, duration=1, mode=mode, seed=3, max_attempts=2, lockstep=True)
    scenario = REGISTRY["optimistic_lock_resolution"]
    result = run_scenario(scenario, config, faults=("unbounded_retry",))
    histogram = result.metrics["attempts_histogram"]
    rounds = result.metrics["rounds"]
    assert rounds > 0
    assert histogram == {str(k): rounds for k in range(1, 5)}
    assert result.metrics["lockstep_broken"] == 0
    bounded = next(i for i in result.invariants if i.name == "attempts_bounded")
    assert not bounded.ok
    control = run_scenario(scenario, config)
    assert control.metrics["lockstep_broken"] == 0
    assert all(i.ok for i in control.invariants if i.name in ("attempts_bounded", "no_lost_update"))


def _slow(ctx: ClientContext) -> None:
    """Every operation takes at least half a second: no rate above 2/s per client is kept up."""
    while not ctx.should_stop():
        ctx.call("slow", time.sleep, 0.5)


SLOW = REGISTRY.get("test_slow") or scenario("test_slow", title="slow", summary="half-second operations")(
    _slow
)


def test_an_overloaded_open_model_run_counts_the_operations_that_never_started() -> None:
    from metafuse.stress.report import format_result

    config = StressConfig(clients=1, duration=1, mode="thread", seed=1, rate=100.0)
    result = run_scenario(SLOW, config)
    started = result.operations["slow"]["total"]
    # The schedule makes 100 operations due in the second; a half-second sleep starts at most 3.
    assert result.scheduled == 100
    assert 1 <= started <= 3
    assert result.never_started == 100 - started
    assert result.to_dict()["never_started"] == result.never_started
    text = format_result(result)
    assert f"Open model: {result.never_started} of 100 scheduled operations never started" in text


def test_a_closed_model_run_schedules_nothing() -> None:
    result = run_scenario(SLOW, StressConfig(clients=1, duration=1, mode="thread", seed=1))
    assert (result.scheduled, result.never_started) == (None, None)
    assert result.settings["rate"] is None
