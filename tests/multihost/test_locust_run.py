"""A master and two workers, each a `locust` process on loopback, and the master's one verdict.

Each run is headless and short. A clean run must pass; a run with a fault planted on one worker
must fail at the master (exit 6) through the merged history: the workers' own statistics show no
failure, since a lost update or a stale read raises nothing.

The clean and the faulty runs are the same work, not the same time: every user makes
`OPERATIONS` calls (`--metafuse-operations`), and `CAP_SECONDS` only caps the run (reached first,
the verdict is INCONCLUSIVE, exit 7, never a pass). The users are `OwnerUser`s on two datasets:
worker i read-modify-saves dataset i, racing its own three other users, then reads the other
worker's dataset. Why that work exposes both faults in every run, however slowly the machine runs:

- `lost_update` (the save skips its version check): each user yields between its read and its
  save (on a store every call yields too), so the four users of the faulty worker read the same
  version before the first of them saves it, and in a clean run all but one conflict. With the
  fault the others succeed, each with a version already acknowledged (`version_chain`). No
  other host writes that dataset, so no other commit can turn those saves into conflicts (on a
  store, a log entry of the other worker touches only its own dataset). One such round suffices;
  each user makes OPERATIONS / 3 of them.
- `stale_cache` (the read cache ignores other connections' commits): the faulty worker never
  saves the other worker's dataset, so nothing of its own ever drops its cached copy; once a read
  has cached one (a read made while a commit of that dataset is in flight is not cached, so on a
  file that can take a while), every later read it makes of that dataset returns that version
  while the other worker keeps saving newer ones (`no_stale_read`). Each user reads it
  OPERATIONS / 3 times, and users work on past their quota until every user has made its own,
  so the other worker is still saving while the faulty one makes its reads. This half leans on
  timing: the copy must be cached before the faulty worker's last reads.

Each such operation alone fails the verdict (docs/stress-testing.md, "Tests").
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metafuse.faults import ENV_VAR as FAULTS_ENV
from metafuse.stress.locust import LOCUSTFILE

CLOCK_STEP_ENV = "METAFUSE_LOCUST_CLOCK_STEP_MS"  # `_clocks.STEP_ENV`; importing it imports Locust

# Importing locust would monkey-patch this process with gevent: look for it instead.
if importlib.util.find_spec("locust") is None:
    pytest.fail("these tests need Locust: pip install -e '.[locust,s3,test]' (or run `nox -s locust`)")

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_SECONDS = {"file": 3, "s3": 6}
"""Run time per catalog kind for the runs that are not about catching a fault: a store's calls
are round trips to moto, a hundred times slower."""
OPERATIONS = {"file": 200, "s3": 40}
"""Calls each user makes in the clean and the faulty runs (`--metafuse-operations`)."""
CAP_SECONDS = 150
"""The cap on those runs (`--run-time`): only reached when the machine makes far too little progress."""
WORK = ("--metafuse-datasets=2", "OwnerUser")
"""Those runs' users and dataset: every user writes and reads the one dataset."""
EXIT_NOT_LINEARIZABLE = 6
EXIT_INCONCLUSIVE = 7


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _locust(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", LOCUSTFILE, *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=log.parent,
        )


def _run(
    catalog: str,
    seconds: int,
    fault: str,
    tmp_path: Path,
    *,
    kill_one: bool = False,
    first_worker_env: dict[str, str] | None = None,
    master_args: tuple[str, ...] = (),
) -> tuple[int, str]:
    """Run a master and two workers (with `fault` planted in both); return its exit and output.

    With `kill_one`, the first worker is killed (SIGKILL) once its users have written.
    `first_worker_env` is added to the first worker's environment alone; `master_args` to the
    master's command line.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env.pop(FAULTS_ENV, None)
    port = str(_free_port())
    master = _locust(
        "--master",
        "--headless",
        "--master-bind-host=127.0.0.1",
        f"--master-bind-port={port}",
        "--expect-workers=2",
        "--expect-workers-max-wait=120",
        "--users=8",
        "--spawn-rate=8",
        f"--run-time={seconds}s",
        f"--catalog={catalog}",
        f"--history={tmp_path / 'merged.jsonl'}",
        f"--html={tmp_path / 'report.html'}",
        *master_args,
        env=env,
        log=tmp_path / "master.log",
    )
    worker_env = {**env, FAULTS_ENV: fault} if fault else env
    workers = [
        _locust(
            "--worker",
            "--master-host=127.0.0.1",
            f"--master-port={port}",
            # Opened before the test starts (see `_collect._open_early`).
            f"--catalog={catalog}",
            env={**worker_env, **(first_worker_env or {})} if index == 0 else worker_env,
            log=tmp_path / f"worker{index}.log",
        )
        for index in range(2)
    ]
    try:
        if kill_one:
            _wait_for_writes(tmp_path / "master.log")
            workers[0].kill()
        status = master.wait(timeout=300)
        for worker in workers:
            worker.wait(timeout=60)
    finally:
        for process in (master, *workers):
            if process.poll() is None:
                process.kill()
                process.wait()
    return status, (tmp_path / "master.log").read_text(encoding="utf-8", errors="replace")


def _wait_for_writes(log: Path) -> None:
    """Wait (up to 120 s) until the master's statistics show saves."""
    deadline = time.monotonic() + 120
    while "catalog  save" not in log.read_text(encoding="utf-8", errors="replace"):
        assert time.monotonic() < deadline, "no save was reported within 120 s"
        time.sleep(0.1)


def _catalog(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "file":
        return str(tmp_path / "catalog.db")
    return str(request.getfixturevalue("s3_catalog"))


def _work(kind: str) -> tuple[str, ...]:
    return (f"--metafuse-operations={OPERATIONS[kind]}", *WORK)


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_a_clean_run_is_linearizable_at_the_master(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    status, output = _run(
        _catalog(kind, tmp_path, request), CAP_SECONDS, "", tmp_path, master_args=_work(kind)
    )
    assert status == 0, output
    assert f"[metafuse] work: all 8 users made their {OPERATIONS[kind]} calls" in output, output
    assert "operations: linearizable (0 keys failed; clocks bound +/-" in output, output
    assert "no history arrived" not in output
    assert "catalog  save" in output  # Locust's own statistics name the catalog's operations
    assert "catalog" in (tmp_path / "report.html").read_text(encoding="utf-8")
    checked = subprocess.run(
        [sys.executable, "-m", "metafuse", "stress", "check-history", str(tmp_path / "merged.jsonl")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("fault", ["lost_update", "stale_cache"])
@pytest.mark.parametrize("kind", ["file", "s3"])
def test_a_fault_planted_on_one_worker_fails_the_verdict(
    kind: str, fault: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    status, output = _run(
        _catalog(kind, tmp_path, request),
        CAP_SECONDS,
        "",
        tmp_path,
        first_worker_env={FAULTS_ENV: fault},
        master_args=_work(kind),
    )
    assert status == EXIT_NOT_LINEARIZABLE, output
    assert "operations: NOT linearizable (" in output, output
    # Each failing key is named with the operations that prove it.
    failing = re.search(
        r"^locust\.writers\.\d: .*(FAILED|NOT LINEARIZABLE).*\n  client \d+: ", output, re.MULTILINE
    )
    assert failing is not None, output


def test_a_run_capped_before_its_work_is_done_is_inconclusive_never_a_pass(tmp_path: Path) -> None:
    # Far more calls than 3 s allow: the history is clean, but too little of what was asked.
    status, output = _run(
        str(tmp_path / "catalog.db"),
        RUN_SECONDS["file"],
        "",
        tmp_path,
        master_args=("--metafuse-operations=100000000", *WORK),
    )
    assert status == EXIT_INCONCLUSIVE, output
    assert "operations: INCONCLUSIVE (0 keys failed; clocks bound +/-" in output, output
    done = re.search(
        r"too little work to pass: 0 of 8 users made their 100000000 calls \((\d+) calls recorded of"
        r" 800000000 asked\) before the test stopped",
        output,
    )
    assert done is not None, output
    assert int(done.group(1)) > 0, output
    assert "[metafuse] work: all" not in output


def test_a_worker_killed_mid_run_makes_the_verdict_inconclusive(tmp_path: Path) -> None:
    # Its history dies with it, and a history with operations missing can make a correct run
    # look wrong: the verdict must say INCONCLUSIVE (exit 7), never pass or fail.
    status, output = _run(str(tmp_path / "catalog.db"), 8, "", tmp_path, kill_one=True)
    assert status == 7, output
    assert "operations: INCONCLUSIVE (" in output
    # Only the killed worker's: the other's history and clock still count.
    assert len(re.findall(r"no history arrived from worker \d \(", output)) == 1, output
    assert "no client operation was recorded" not in output


def test_a_worker_whose_clock_steps_mid_run_is_reported_and_never_raises_a_false_alarm(
    tmp_path: Path,
) -> None:
    # One worker's clock jumps 5 s ahead once the master has first measured it: far beyond
    # either measurement's bound (half the best of 5 round trips). A step of 500 ms, as this test
    # first had, is hidden whenever the two bounds add up to it, which round trips of 500 ms on a
    # starved machine allow. The master must see the two measurements disagree, say so, and
    # widen that worker's intervals over both, so the clean run is never judged wrong.
    # Intervals that wide give the search more orders than it can try in a few seconds, so
    # an undecided search (INCONCLUSIVE, 7) is an honest answer here; a failure (6) is not.
    status, output = _run(
        str(tmp_path / "catalog.db"),
        RUN_SECONDS["file"],
        "",
        tmp_path,
        first_worker_env={CLOCK_STEP_ENV: "5000"},
        master_args=("--check-timeout=10",),
    )
    assert status in (0, 7), output
    moved = re.findall(
        r"^\[metafuse\] clocks: worker \d \(.*\)'s clock moved ([-+]\d+\.\d+) ms", output, re.MULTILINE
    )
    assert len(moved) == 1, output  # the stepped worker, and only it
    # Ahead by 5 s: the master's offset to it drops by 5 s, give or take the bounds.
    shift = float(moved[0])
    assert shift < -2500, output
    verdict = re.search(
        r"operations: (linearizable|INCONCLUSIVE) \(0 keys failed; clocks bound \+/- (\d+\.\d+) ms\)", output
    )
    assert verdict is not None, output
    assert "no history arrived" not in output
    # The bound used covers both measurements, so it is at least half the step measured.
    assert float(verdict.group(2)) >= abs(shift) / 2 - 0.001, output


def test_a_worker_that_cannot_reach_the_store_has_its_errors_counted_and_the_others_decide(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # The first worker's route to the store leads to a closed port (its S3 client goes through
    # a proxy that is not there); the catalog URL is the same for everyone, as in a partition.
    # Each of its calls fails after the store's retries (about 16 s): Locust counts the
    # failures, its history records them, and the verdict is decided from the other worker.
    closed = f"http://127.0.0.1:{_free_port()}"
    status, output = _run(
        str(request.getfixturevalue("s3_catalog")),
        25,
        "",
        tmp_path,
        first_worker_env={"HTTP_PROXY": closed, "http_proxy": closed},
    )
    assert status == 1, output  # Locust's own exit for failed calls; no verdict code
    assert "operations: linearizable (0 keys failed; clocks bound +/-" in output, output
    assert "no history arrived" not in output
    failed = re.findall(r"^catalog\s+get\s+\d+\s+(\d+)\(", output, re.MULTILINE)
    assert failed, output
    assert int(failed[-1]) > 0, output
    assert "object store unavailable" in output, output  # Locust's error report names the cause
