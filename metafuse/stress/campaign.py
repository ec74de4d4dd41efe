"""The false-alarm campaign: every scenario, again and again, on an overloaded machine.

`python -m metafuse.stress.campaign` (or `nox -s false-alarms`) starts CPU hogs, busy processes
that outnumber the cores (twice as many by default), and while they run it repeats every
registered scenario in thread and in process mode with no fault on, then runs each planted
fault's probes (`selfcheck.PROBES`) under the same load. It reports:

- clean runs: scenario runs with no fault in which every invariant held;
- false failures: runs with no fault in which an invariant failed, each with the invariant, its
  detail and the command that reproduces the run. A false failure is a bug in the suite (or in
  the catalog): a verdict that cannot be trusted;
- for each fault and each probe that targets it, the detection rate: in how many runs of the
  probe's scenario, with the fault on, one of the probe's invariants failed.

It passes (exit 0) when there was no false failure and every fault was caught in every run.
The hogs stop by themselves when the time budget is over, even if the campaign is killed.

Owns the plan of runs, the CPU hogs and the tally. Every run goes through `run_scenario`, which
owns its catalog, faults and perturbation: the campaign opens no catalog of its own (a store run
gets only a temporary directory) and judges no invariant itself.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .._cli_base import EXIT_FAILED, EXIT_OK, OneLineParser, whole_number
from ..errors import ValidationError
from . import config as stress_config
from ._cli_logging import configure_logging
from .html_report import table_report
from .outputs import add_html_option, check_output_path, write_text
from .report import environment, plural, reproduce_command, write_json
from .result import ScenarioResult
from .runner import run_scenario
from .scenario import REGISTRY, Scenario
from .selfcheck import PROBES, Probe, failed_invariants, probe_config

CLEAN_KILLS = 10
"""SIGKILLs per kill_writers run: enough to exercise recovery within a short run."""
_HOG_MARGIN = 60.0  # seconds a hog outlives the budget at most, should the campaign die


@dataclasses.dataclass(frozen=True)
class FalseFailure:
    """A run with no fault on in which an invariant failed."""

    scenario: str
    mode: str
    seed: int
    invariant: str
    detail: str
    command: str


@dataclasses.dataclass
class Detection:
    """How often one probe caught its fault: runs, catches, and the misses' settings."""

    fault: str
    scenario: str
    mode: str
    invariants: tuple[str, ...]
    runs: int = 0
    caught: int = 0
    missed: list[str] = dataclasses.field(default_factory=list)

    @property
    def rate(self) -> float:
        """The share of runs in which the fault was caught (0.0 before any run)."""
        return self.caught / self.runs if self.runs else 0.0


class Tally:
    """The campaign's bookkeeping; one instance per campaign, used from one thread."""

    def __init__(self) -> None:
        self.clean_runs = 0
        self.failed_runs = 0
        # Commands of runs with no fault on that failed nothing but could not judge every invariant.
        self.inconclusive_runs: list[str] = []
        self.clean_by: dict[str, int] = {}
        self.false_failures: list[FalseFailure] = []
        self.detections: dict[tuple[str, str, str], Detection] = {}

    @property
    def runs(self) -> int:
        """Runs with no fault on, clean or not."""
        return self.clean_runs + self.failed_runs + len(self.inconclusive_runs)

    def record_clean(self, result: ScenarioResult, command: str) -> bool:
        """Record a run with no fault on; return whether no invariant failed (an inconclusive run,
        too slow to judge some invariant, is counted apart: neither clean nor a false failure)."""
        failed = [invariant for invariant in result.invariants if invariant.failed]
        for invariant in failed:
            self.false_failures.append(
                FalseFailure(
                    result.scenario, result.mode, result.seed, invariant.name, invariant.detail, command
                )
            )
        if failed:
            self.failed_runs += 1
        elif result.inconclusive:
            self.inconclusive_runs.append(command)
        else:
            self.clean_runs += 1
            key = f"{result.scenario} {result.mode}"
            self.clean_by[key] = self.clean_by.get(key, 0) + 1
        return not failed

    def record_crash(self, scenario: str, mode: str, seed: int, detail: str, command: str) -> None:
        """Record a run with no fault on that raised (`detail`) instead of returning a result."""
        self.failed_runs += 1
        self.false_failures.append(FalseFailure(scenario, mode, seed, "runner", detail, command))

    def record_fault(self, fault: str, probe: Probe, result: ScenarioResult, command: str) -> bool:
        """Record a run with `fault` on; return whether one of `probe`'s invariants failed."""
        key = (fault, probe.scenario, result.mode)
        detection = self.detections.setdefault(
            key, Detection(fault, probe.scenario, result.mode, probe.invariants)
        )
        caught = bool(failed_invariants(result) & set(probe.invariants))
        detection.runs += 1
        if caught:
            detection.caught += 1
        else:
            detection.missed.append(command)
        return caught

    @property
    def passed(self) -> bool:
        """No false failure, and every probe caught its fault in every one of its runs."""
        return not self.false_failures and all(d.caught == d.runs for d in self.detections.values())

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as JSON-ready data."""
        return {
            "runs": self.runs,
            "clean_runs": self.clean_runs,
            "clean_runs_by_scenario": dict(sorted(self.clean_by.items())),
            "inconclusive_runs": list(self.inconclusive_runs),
            "false_failures": [dataclasses.asdict(failure) for failure in self.false_failures],
            "detection": [
                {**dataclasses.asdict(d), "rate": round(d.rate, 4)} for d in self.detections.values()
            ],
            "passed": self.passed,
        }

    def summary(self) -> str:
        """Return the figures as text for people."""
        lines = [
            f"Clean runs: {self.clean_runs} of {self.runs} runs with no fault on",
            f"False failures: {len(self.false_failures)}",
            f"Inconclusive runs (too little progress to judge an invariant): {len(self.inconclusive_runs)}",
        ]
        lines += [f"    reproduce: {command}" for command in self.inconclusive_runs[:3]]
        for failure in self.false_failures:
            lines.append(f"  {failure.scenario} ({failure.mode}) {failure.invariant}: {failure.detail}")
            lines.append(f"    reproduce: {failure.command}")
        lines.append("Planted faults (caught / runs of the probe's scenario):")
        for d in self.detections.values():
            lines.append(
                f"  {d.fault:<16} {d.scenario:<28} {d.mode:<8} {d.caught}/{d.runs} ({d.rate:.0%})"
                f"  by {', '.join(d.invariants)}"
            )
            for command in d.missed[:3]:
                lines.append(f"    missed: {command}")
        lines.append("PASSED" if self.passed else "FAILED")
        return "\n".join(lines)


class CpuHog:
    """Busy processes that keep every core overloaded while the campaign runs.

    Each is a separate interpreter spinning in a loop that ends by itself at `until`
    (`time.time()` seconds), so no hog outlives a campaign that was killed; `stop` ends them
    at once. Use as a context manager.
    """

    def __init__(self, processes: int, until: float) -> None:
        self.processes = processes
        self._until = until
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> CpuHog:
        code = f"import time\nwhile time.time() < {self._until!r}:\n    pass\n"
        for _ in range(self.processes):
            self._procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
                )
            )
        return self

    def alive(self) -> int:
        """How many hogs are still running."""
        return sum(proc.poll() is None for proc in self._procs)

    def stop(self) -> None:
        """Kill every hog and wait for it."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self._procs:
            proc.wait()
        self._procs = []

    def __exit__(self, *_: object) -> None:
        self.stop()


@dataclasses.dataclass(frozen=True)
class _Run:
    scenario: Scenario
    config: stress_config.StressConfig
    fault: str | None = None
    probe: Probe | None = None


def plan(
    scenarios: Sequence[str],
    modes: Sequence[str],
    faults: Sequence[str],
    *,
    runs: int,
    duration: int,
    clients: int,
    seed: int,
    faults_every: int = 1,
    perturb: bool = True,
) -> Iterator[_Run]:
    """Yield the campaign's runs, round by round, so that a budget cut leaves a fair sample.

    Each round runs every scenario in every mode with no fault (a scenario that always uses
    processes once); every `faults_every`-th round, starting with the first, then runs every
    probe of every fault in every mode. With `perturb` every run perturbs its schedule,
    seeded with its own seed (`metafuse.perturb`).
    """
    for index in range(runs):
        round_seed = seed + 1_000 * index
        for mode_index, mode in enumerate(modes):
            for offset, name in enumerate(scenarios, start=100 * mode_index):
                scenario = REGISTRY[name]
                if scenario.always_process and mode != modes[-1]:
                    continue  # the same run in either mode: count it once per round
                run_seed = round_seed + offset
                config = stress_config.StressConfig(
                    clients=clients,
                    duration=duration,
                    mode=mode,
                    seed=run_seed,
                    kills=CLEAN_KILLS,
                    perturb=stress_config.perturb_for(run_seed) if perturb else None,
                )
                yield _Run(scenario, config)
        if index % faults_every:
            continue
        for mode in modes:
            for fault in faults:
                for probe in PROBES[fault]:
                    config = probe_config(
                        probe,
                        mode,
                        duration=duration,
                        clients=clients,
                        seed=round_seed,
                        perturb=stress_config.perturb_for(round_seed) if perturb else None,
                    )
                    yield _Run(REGISTRY[probe.scenario], config, fault, probe)


def _command(result: ScenarioResult, run: _Run) -> str:
    kills = run.config.kills if run.scenario.driver is not None else None
    command = reproduce_command(result, kills=kills)
    if run.probe is not None:
        command += f"  # selfcheck probe: {run.probe}"
    return command


def _execute(
    name: str, config: stress_config.StressConfig, fault: str | None, store: bool = False
) -> ScenarioResult | str:
    """Run one scenario (on a temporary directory store if `store`); return its result, or the
    error that kept it from returning one."""
    try:
        if store:
            with tempfile.TemporaryDirectory(prefix="metafuse-campaign-") as directory:
                url = f"log+file://{directory}/store"
                return run_scenario(REGISTRY[name], config, path=url, faults=(fault,) if fault else ())
        return run_scenario(REGISTRY[name], config, faults=(fault,) if fault else ())
    except Exception as error:  # a runner that raises is a false alarm of its own kind
        return f"{type(error).__name__}: {error}"


def _on_store(run: _Run) -> bool:
    return run.probe is not None and run.probe.store


def _record(run: _Run, outcome: ScenarioResult | str, tally: Tally) -> str:
    label = f"{run.scenario.name} {run.config.mode} seed {run.config.seed}"
    if isinstance(outcome, str):
        if run.fault is None:
            mode = "process" if run.scenario.always_process else run.config.mode
            command = (
                f"python -m metafuse stress run {run.scenario.name} --mode {mode} --seed {run.config.seed}"
            )
            if run.config.perturb:
                command += f" --perturb {run.config.perturb}"
            tally.record_crash(run.scenario.name, mode, run.config.seed, outcome, command)
        return f"{label}: the runner raised {outcome}"
    command = _command(outcome, run)
    if run.fault is None:
        if tally.record_clean(outcome, command):
            return f"{label}: clean"
        failed = "; ".join(f"{i.name}: {i.detail}" for i in outcome.invariants if not i.ok)
        return f"{label}: FALSE FAILURE {failed}\n    reproduce: {command}"
    assert run.probe is not None
    caught = tally.record_fault(run.fault, run.probe, outcome, command)
    return f"{label} with {run.fault}: {'caught' if caught else 'MISSED'}"


def run_campaign(
    items: Iterator[_Run],
    *,
    budget: float,
    tally: Tally,
    jobs: int = 1,
    on_run: Callable[[str], None] = lambda line: None,
) -> int:
    """Run `items`, `jobs` at a time, until done or `budget` seconds passed; return the runs made.

    With `jobs` above 1 each run happens in a worker process (faults are switched on
    process-wide, so two runs never share a process at the same time).
    """
    started = time.monotonic()
    made = 0
    iterator = iter(items)

    def next_run() -> _Run | None:
        if time.monotonic() - started >= budget:
            return None
        return next(iterator, None)

    if jobs <= 1:
        run = next_run()
        while run is not None:
            made += 1
            outcome = _execute(run.scenario.name, run.config, run.fault, _on_store(run))
            on_run(f"[{made}] {_record(run, outcome, tally)}")
            run = next_run()
        return made
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=spawn) as pool:
        pending: dict[concurrent.futures.Future[ScenarioResult | str], _Run] = {}

        def submit() -> None:
            run = next_run()
            if run is not None:
                future = pool.submit(_execute, run.scenario.name, run.config, run.fault, _on_store(run))
                pending[future] = run

        for _ in range(jobs):
            submit()
        while pending:
            done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                run = pending.pop(future)
                try:
                    outcome = future.result()
                except Exception as error:  # the worker itself died
                    outcome = f"{type(error).__name__}: {error}"
                made += 1
                on_run(f"[{made}] {_record(run, outcome, tally)}")
                submit()
    return made


def campaign_page(document: dict[str, Any], tally: Tally) -> str:
    """Return the campaign as an HTML page (`html_report.table_report`): the verdict, clean runs
    and false failures, each fault's detection rate, every false failure and missed detection
    with the command that reproduces it, the settings, the load and the environment."""
    load = document["load"]
    failures = [
        (f"false failure: {f.scenario} ({f.mode}) {f.invariant}: {f.detail}", f.command)
        for f in tally.false_failures
    ]
    failures += [
        (f"missed: {d.fault} in {d.scenario} ({d.mode})", command)
        for d in tally.detections.values()
        for command in d.missed[:3]
    ]
    return table_report(
        "False-alarm campaign",
        passed=tally.passed,
        summary_lines=[
            f"clean runs: {tally.clean_runs} of {plural(tally.runs, 'run')} with no fault on;"
            f" false failures: {len(tally.false_failures)}",
            f"{plural(document['runs_made'], 'run')} in {document['elapsed']} s; load average before"
            f" {load['before']}, at the end {load['at_end']}",
        ],
        columns=["fault", "scenario", "mode", "caught / runs", "rate", "by invariants"],
        rows=[
            (
                d.fault,
                d.scenario,
                d.mode,
                f"{d.caught}/{d.runs}"
                if d.caught == d.runs
                else f"NOT CAUGHT in {d.runs - d.caught}: {d.caught}/{d.runs}",
                f"{d.rate:.0%}",
                ", ".join(d.invariants),
            )
            for d in tally.detections.values()
        ],
        settings={**document["settings"], "clean runs by scenario": tally.clean_by},
        environment=document["environment"],
        failures=failures,
    )


def _names(text: str, known: Sequence[str], what: str, parser: OneLineParser) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"unknown {what} {unknown[0]!r}; known: {', '.join(known)}")
    return names


def _load() -> list[float]:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return []


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the campaign; exit 0 when it passed, 1 when not, 2 on bad input."""
    parser = OneLineParser(prog="python -m metafuse.stress.campaign", description=__doc__)
    parser.add_argument("--runs", type=whole_number(1, 10_000), default=10, help="rounds (default 10)")
    parser.add_argument(
        "--duration", type=whole_number(1, 300), default=2, help="seconds per run (default 2)"
    )
    parser.add_argument("--clients", type=whole_number(1, 50), default=4, help="clients per run (default 4)")
    parser.add_argument("--modes", default="thread,process", help="comma-separated (default thread,process)")
    parser.add_argument("--scenarios", default=",".join(REGISTRY), help="comma-separated (default: all)")
    parser.add_argument("--faults", default=",".join(PROBES), help="comma-separated (default: every probe's)")
    parser.add_argument(
        "--budget", type=whole_number(1, 86_400), default=1800, help="seconds in all (default 1800)"
    )
    cpus = os.cpu_count() or 1
    parser.add_argument(
        "--hogs", type=whole_number(0, 512), default=2 * cpus, help=f"busy processes (default {2 * cpus})"
    )
    parser.add_argument(
        "--json", default=".stress/false-alarms.json", help="results file (default .stress/false-alarms.json)"
    )
    parser.add_argument(
        "--faults-every",
        type=whole_number(1, 10_000),
        default=1,
        help="probe faults every Nth round (default 1)",
    )
    parser.add_argument(
        "--jobs", type=whole_number(1, 64), default=1, help="runs at a time, each in a process (default 1)"
    )
    parser.add_argument("--seed", type=whole_number(0), help="first random seed (default random)")
    parser.add_argument(
        "--no-perturb",
        dest="perturb",
        action="store_false",
        help="run without schedule perturbation (on by default, each run seeded with its own seed)",
    )
    add_html_option(parser)
    args = parser.parse_args(argv)
    configure_logging(False)
    if threading.current_thread() is not threading.main_thread():
        return _campaign(args, parser, cpus)
    # SIGTERM unwinds like Ctrl-C, so the hogs are stopped on the way out.
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return _campaign(args, parser, cpus)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _campaign(args: argparse.Namespace, parser: OneLineParser, cpus: int) -> int:
    modes = [stress_config.parse_mode(mode, "--modes") for mode in args.modes.split(",") if mode.strip()]
    scenarios = _names(args.scenarios, list(REGISTRY), "scenario", parser)
    faults = _names(args.faults, list(PROBES), "fault", parser) if args.faults.strip() else []
    seed = stress_config.from_environment(seed=args.seed).seed
    if args.html:
        try:
            check_output_path(args.html, "--html")
        except ValidationError as error:
            parser.error(str(error))
    tally = Tally()
    started = time.monotonic()
    load_before = _load()
    print(
        f"False-alarm campaign: {args.runs} rounds of {len(scenarios)} scenarios x {len(modes)} modes"
        f" and {len(faults)} faults, {args.duration}s x {args.clients} clients, {args.jobs} at a time,"
        f" {args.hogs} CPU hogs"
        f" on {cpus} cores, budget {args.budget}s, seed {seed}{'' if args.perturb else ', no perturbation'}",
        flush=True,
    )
    items = plan(
        scenarios,
        modes,
        faults,
        runs=args.runs,
        duration=args.duration,
        clients=args.clients,
        seed=seed,
        faults_every=args.faults_every,
        perturb=args.perturb,
    )
    with CpuHog(args.hogs, time.time() + args.budget + _HOG_MARGIN) as hog:
        made = run_campaign(
            items,
            budget=args.budget,
            tally=tally,
            jobs=args.jobs,
            on_run=lambda line: print(line, flush=True),
        )
        hogs_alive = hog.alive()
        load_during = _load()
    document = {
        "environment": environment(),
        "settings": {
            "rounds": args.runs,
            "duration": args.duration,
            "clients": args.clients,
            "modes": modes,
            "scenarios": scenarios,
            "faults": faults,
            "budget": args.budget,
            "seed": seed,
            "faults_every": args.faults_every,
            "perturb": args.perturb,
            "cpu_hogs": args.hogs,
            "jobs": args.jobs,
            "cpus": cpus,
        },
        "load": {"before": load_before, "at_end": load_during, "hogs_alive_at_end": hogs_alive},
        "runs_made": made,
        "elapsed": round(time.monotonic() - started, 1),
        **tally.to_dict(),
    }
    write_json(args.json, document)
    if args.html:
        write_text(args.html, campaign_page(document, tally))
        print(f"HTML report written to {args.html}")
    print(tally.summary())
    print(
        f"{made} runs in {document['elapsed']}s; load average at the end {load_during}; results: {args.json}"
    )
    return EXIT_OK if tally.passed else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
