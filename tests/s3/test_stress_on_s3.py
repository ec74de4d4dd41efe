"""Every stress scenario that can run on an object store, against S3, in thread and process mode.

Each run gets a catalog of its own (a fresh prefix), clients are short-lived (2 clients, 2 s) so
the whole file stays within a few minutes; `nox -s s3` runs it. Process clients each keep their
own replica and meet only through the store, as separate machines would. The planted faults
that the object-store path shares with a file (lost update, stale cache, leaked connection) must
still turn their scenario red here: a verdict that cannot fail on S3 would prove nothing.
"""

from __future__ import annotations

import uuid

import pytest

from metafuse.stress.config import StressConfig
from metafuse.stress.runner import run_scenario
from metafuse.stress.scenario import REGISTRY
from metafuse.stress.selfcheck import PROBES, failed_invariants, probe_config

from ._support import S3Location

ON_STORE = [name for name, scenario in REGISTRY.items() if scenario.file_only is None]


def _fresh(location: S3Location) -> str:
    return S3Location(location.bucket, f"{location.prefix}/{uuid.uuid4().hex[:12]}", location.options).url()


@pytest.mark.parametrize("mode", ["thread", "process"])
@pytest.mark.parametrize("name", ON_STORE)
def test_scenario_holds_on_s3(name: str, mode: str, s3_location: S3Location) -> None:
    config = StressConfig(clients=2, duration=2, mode=mode, seed=11, kills=3)
    result = run_scenario(REGISTRY[name], config, path=_fresh(s3_location))
    failed = [f"{i.name}: {i.detail}" for i in result.invariants if i.failed]
    assert failed == []
    # A run that made no acknowledged operation must say it judged nothing (INCONCLUSIVE, as a
    # 2 s run on a starved machine can), never pass on no evidence.
    assert result.total("ok") > 0 or result.inconclusive or name == "kill_writers", result.invariants


@pytest.mark.parametrize(
    "bug", ["lost_update", "stale_cache", "connection_leak", "unvalidated_reads", "unchecked_group"]
)
def test_a_planted_fault_turns_its_scenario_red_on_s3(bug: str, s3_location: S3Location) -> None:
    probe = PROBES[bug][0]
    config = probe_config(probe, "thread", duration=2, clients=4, seed=5)
    result = run_scenario(REGISTRY[probe.scenario], config, path=_fresh(s3_location), faults=(bug,))
    # Caught, unless the run made too little progress to judge anything (INCONCLUSIVE, as on a
    # store answering slowly under heavy load): a verdict it could not reach is not a miss.
    assert failed_invariants(result) & set(probe.invariants) or result.inconclusive, result.invariants
