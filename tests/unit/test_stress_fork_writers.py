"""fork_writers: a run judges only its own writes, however many runs its process made before."""

from __future__ import annotations

from metafuse.stress.config import StressConfig
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY


def test_a_second_thread_mode_run_in_one_process_starts_from_its_own_counter() -> None:
    """The newest acknowledged bump was once kept per process: a second run in the same process
    (a campaign, a test session) compared its fresh counter with the first run's newest bump and
    counted every read stale."""
    scenario = REGISTRY["fork_writers"]
    for seed in (1, 2):
        result = run_scenario(scenario, StressConfig(clients=2, duration=1, mode="thread", seed=seed))
        stale = next(invariant for invariant in result.invariants if invariant.name == "no_stale_read")
        assert stale.ok, (seed, stale.detail)
        assert result.metrics["bumps"] > 0, seed
