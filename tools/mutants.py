"""Mutation testing: plant one plausible bug at a time and check that the stress suite turns red.

`python tools/mutants.py` (or `nox -s mutants`) reads the edit rules in mutants/mutants.json. For
each mutant it copies the repository's files to a temporary directory, applies the rule (its
`old` text must occur exactly once in its `file`, else the rule is refused by name), and runs the
scenarios the rule names there, in each mode, `--runs` times with a different seed each time; then
selfcheck's probes for the faults the rule names, if any. A run stops at its first red scenario.

A catch counts only beside a clean control: the same scenarios, on an unmutated copy, with the
same seed, mode and settings. A red control makes its run INCONCLUSIVE, and the run's row with it.
The table says, per mutant and mode, which invariants caught it and in how many of the runs; the
exit status is 0 only when every mutant was caught in every run, 1 when one survived a run or a
control was red, 2 on bad input.

Only the standard library: the mutated package is imported by a worker process (this file, run
with `--worker` inside the copy), never by the runner itself.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its sibling modules, however it is loaded

from mutation_rules import MODES, Mutant, RuleError, apply, check, copy_tree, load_rules
from mutation_verdicts import RunVerdict, Step, exit_status, judge, markdown, rows_of, table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULES = os.path.join(ROOT, "mutants", "mutants.json")
SELFCHECK = "selfcheck"
"""The name under which a selfcheck step appears among a run's scenarios."""
STARTUP_SECONDS = 3.0
"""A scenario run's cost beyond its duration (interpreter, catalog setup, checks), for the estimate."""
SELFCHECK_SECONDS = 30.0
"""A selfcheck step's cost per fault it names, for the estimate and the worker's time limit."""
GRACE_SECONDS = 60.0
"""How long past its budget a worker may run before it is killed and its scenario counted red."""
DETAIL_CHARS = 300
"""How much of a failed invariant's detail a step keeps (shown when a control is red)."""


# -- running --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Settings:
    """How every scenario run is made (the same for mutants and controls)."""

    clients: int
    duration: int
    perturb: bool = True
    """Whether every run is perturbed (`METAFUSE_PERTURB=seed=SEED`, with the run's own seed)."""
    timeout_scale: float = 1.0


Worker = subprocess.Popen[bytes]


class Children:
    """The worker processes running now, so an interrupted runner can stop them all at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[Worker] = set()
        self._stopping = False

    @contextlib.contextmanager
    def start(self, command: list[str], *, cwd: str, env: dict[str, str]) -> Iterator[Worker]:
        """Start `command` in a process group of its own; kill that group when the block ends."""
        with self._lock:
            if self._stopping:
                raise KeyboardInterrupt
            child = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            self._running.add(child)
        try:
            yield child
        finally:
            _kill_group(child)
            with self._lock:
                self._running.discard(child)

    def stop(self) -> None:
        """Kill every running worker (and its clients), and refuse to start new ones."""
        with self._lock:
            self._stopping = True
            running = list(self._running)
        for child in running:
            _kill_group(child)


def _kill_group(child: Worker) -> None:
    # The worker's scenario clients are in its process group: a timed-out or interrupted worker
    # takes them along rather than leaving them to load the machine.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


CHILDREN = Children()


def _worker_command(tree: str, spec: dict[str, Any]) -> list[str]:
    return [sys.executable, os.path.join(tree, "tools", "mutants.py"), "--worker", json.dumps(spec)]


def run_steps(
    tree: str,
    scenarios: Sequence[str],
    *,
    mode: str,
    seed: int,
    store: bool,
    selfcheck: Sequence[str],
    settings: Settings,
    stop_on_red: bool,
    catalogs: str | None = None,
) -> list[Step]:
    """Run `scenarios` (then the selfcheck faults' probes) in a worker process importing the
    package of `tree`; stop at the first red step if `stop_on_red`. Perturbed with `seed` unless
    the settings say not; thread-mode catalogs as `catalogs` says (None: each scenario's own).
    A worker that runs past its time limit is killed, and the step it was on counts as red
    ("timed out")."""
    with tempfile.TemporaryDirectory(prefix="metafuse-mutant-out-") as workdir:
        out = os.path.join(workdir, "steps.jsonl")
        spec = {
            "scenarios": list(scenarios),
            "mode": mode,
            "seed": seed,
            "store": store,
            "selfcheck": list(selfcheck),
            "clients": settings.clients,
            "duration": settings.duration,
            "stop_on_red": stop_on_red,
            "catalogs": catalogs,
            "out": out,
        }
        # The run's schedule comes from its seed alone, never from the caller's environment, so
        # a mutant and its control (same seed) are perturbed alike.
        env = {k: v for k, v in os.environ.items() if k not in ("METAFUSE_FAULTS", "METAFUSE_PERTURB")}
        env["PYTHONPATH"] = tree
        if settings.perturb:
            env["METAFUSE_PERTURB"] = f"seed={seed}"
        limit = (
            len(scenarios) * (settings.duration + STARTUP_SECONDS) + len(selfcheck) * SELFCHECK_SECONDS
        ) * settings.timeout_scale + GRACE_SECONDS
        error = ""
        with CHILDREN.start(_worker_command(tree, spec), cwd=tree, env=env) as child:
            try:
                _, stderr = child.communicate(timeout=limit)
                if child.returncode != 0:
                    last = stderr.decode("utf-8", "replace").strip().splitlines()
                    error = f"the worker exited {child.returncode}: {last[-1] if last else 'no message'}"
            except subprocess.TimeoutExpired:
                error = f"timed out after {limit:.0f} s"
        steps = []
        if os.path.exists(out):
            with open(out, encoding="utf-8") as handle:
                steps = [
                    Step(**{**d, **{k: tuple(d.get(k, ())) for k in ("failed", "inconclusive", "details")}})
                    for d in map(json.loads, handle)
                ]
    if error and not (steps and steps[-1].red and stop_on_red):
        names = [*scenarios, *([SELFCHECK] if selfcheck else [])]
        steps.append(Step(names[min(len(steps), len(names) - 1)], error=error))
    return steps


class Controls:
    """Control runs on the unmutated copy, each made once and shared by every mutant that needs it.

    Keyed by (scenario, mode, seed, catalog, selfcheck faults, catalogs); safe to call from several threads:
    a second caller of a key waits for the first one's run instead of making its own.
    """

    def __init__(self, tree: str, settings: Settings) -> None:
        self.tree = tree
        self.settings = settings
        self._lock = threading.Lock()
        self._made: dict[tuple[Any, ...], concurrent.futures.Future[Step]] = {}
        self.made = 0

    def get(
        self,
        scenario: str,
        mode: str,
        seed: int,
        store: bool,
        selfcheck: Sequence[str],
        catalogs: str | None = None,
    ) -> Step:
        """The control step of `scenario` (or of the selfcheck faults) with these settings."""
        if scenario == SELFCHECK:
            key: tuple[Any, ...] = (scenario, mode, seed, store, tuple(selfcheck), None)
        else:
            key = (scenario, mode, seed, store, (), catalogs)
        with self._lock:
            future = self._made.get(key)
            mine = future is None
            if future is None:
                future = self._made[key] = concurrent.futures.Future()
                self.made += 1
        if mine:
            try:
                scenarios = [] if scenario == SELFCHECK else [scenario]
                steps = run_steps(
                    self.tree,
                    scenarios,
                    mode=mode,
                    seed=seed,
                    store=store,
                    selfcheck=key[4],
                    settings=self.settings,
                    stop_on_red=False,
                    catalogs=key[5],
                )
                future.set_result(steps[0] if steps else Step(scenario, error="the control made no step"))
            except BaseException as error:
                future.set_exception(error)
                raise
        return future.result()


def run_mutant(
    mutant: Mutant, tree: str, mode: str, seed: int, controls: Controls, settings: Settings
) -> RunVerdict:
    """Run `mutant` (already applied in `tree`) once in `mode` and judge it beside its controls."""
    store = mutant.catalog == "store"
    steps = run_steps(
        tree,
        mutant.scenarios,
        mode=mode,
        seed=seed,
        store=store,
        selfcheck=mutant.selfcheck,
        settings=settings,
        stop_on_red=True,
        catalogs=mutant.catalogs,
    )
    paired = {
        step.scenario: controls.get(step.scenario, mode, seed, store, mutant.selfcheck, mutant.catalogs)
        for step in steps
    }
    return judge(mutant.name, mode, seed, steps, paired)


def estimate(mutants: Sequence[Mutant], modes: Sequence[str], runs: int, jobs: int, duration: int) -> float:
    """Seconds the whole table takes at worst (every mutant surviving every scenario), plus the
    controls, spread over `jobs`."""
    per_scenario = duration + STARTUP_SECONDS
    mutant_seconds = sum(
        len(m.scenarios) * per_scenario + len(m.selfcheck) * SELFCHECK_SECONDS
        for m in mutants
        for mode in modes
        if mode in m.modes
    )
    control_keys = {(s, m.catalog, m.catalogs) for m in mutants for s in m.scenarios}
    control_seconds = len(control_keys) * per_scenario * len(modes)
    control_seconds += len({m.selfcheck for m in mutants if m.selfcheck}) * SELFCHECK_SECONDS * len(modes)
    return (mutant_seconds + control_seconds) * runs / max(1, jobs)


def scenario_places() -> dict[str, str]:
    """Each registered scenario and where it runs ("file", "store" or "both"), from this tree."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    import metafuse.stress.runner  # noqa: F401, PLC0415 - registers the scenarios
    from metafuse.stress.scenario import REGISTRY  # noqa: PLC0415 - only the runner needs it

    return {
        name: "file" if s.file_only is not None else "store" if s.store_only is not None else "both"
        for name, s in REGISTRY.items()
    }


def _prepare(mutant: Mutant, base: str, work: str) -> str:
    tree = os.path.join(work, mutant.name)
    shutil.copytree(base, tree)
    apply(mutant, tree)
    return tree


def campaign(
    mutants: Sequence[Mutant],
    modes: Sequence[str],
    *,
    runs: int,
    jobs: int,
    seed: int,
    settings: Settings,
    on_verdict: Callable[[str], None] = print,
) -> list[RunVerdict]:
    """Run every mutant in every mode `runs` times (run i with seed `seed + i`), `jobs` at a time."""
    work = tempfile.mkdtemp(prefix="metafuse-mutants-")
    try:
        clean = os.path.join(work, "clean")
        copy_tree(ROOT, clean)
        trees = {mutant.name: _prepare(mutant, clean, work) for mutant in mutants}
        controls = Controls(clean, settings)
        tasks = [
            (mutant, mode, seed + index)
            for index in range(runs)
            for mutant in mutants
            for mode in modes
            if mode in mutant.modes
        ]
        verdicts: list[RunVerdict] = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [
                pool.submit(run_mutant, mutant, trees[mutant.name], mode, run_seed, controls, settings)
                for mutant, mode, run_seed in tasks
            ]
            try:
                for future in concurrent.futures.as_completed(futures):
                    verdict = future.result()
                    verdicts.append(verdict)
                    on_verdict(_line(verdict, len(verdicts), len(tasks)))
            except BaseException:
                for future in futures:
                    future.cancel()
                CHILDREN.stop()
                raise
        rank = {mutant.name: index for index, mutant in enumerate(mutants)}
        return sorted(verdicts, key=lambda v: (rank[v.mutant], MODES.index(v.mode), v.seed))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _line(verdict: RunVerdict, made: int, total: int) -> str:
    what = ", ".join(verdict.caught_by) if verdict.caught_by else verdict.detail
    head = f"[{made}/{total}] {verdict.mutant} {verdict.mode} seed {verdict.seed}"
    return f"{head}: {verdict.outcome.upper()} ({what})"


# -- the worker (runs inside a mutated copy) ------------------------------------------------


def worker(spec_text: str) -> int:
    """Run the scenarios of `spec_text` (JSON) with the package this process imports; write one
    JSON line per step to the spec's `out` as soon as the step ends."""
    spec = json.loads(spec_text)
    import metafuse  # noqa: PLC0415 - the mutated package, in the worker only
    from metafuse.stress import selfcheck  # noqa: PLC0415
    from metafuse.stress.config import StressConfig  # noqa: PLC0415
    from metafuse.stress.scenario import REGISTRY  # noqa: PLC0415

    tree = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.abspath(metafuse.__file__).startswith(os.path.join(tree, "")):
        # An installed copy shadowing the mutated one would make every mutant "survive".
        raise SystemExit(f"the worker imported metafuse from {metafuse.__file__}, not from {tree}")

    def write(step: dict[str, Any]) -> bool:
        with open(spec["out"], "a", encoding="utf-8") as handle:
            handle.write(json.dumps(step) + "\n")
        return bool(step["failed"] or step["error"])

    for name in spec["scenarios"]:
        config = StressConfig(
            clients=spec["clients"],
            duration=spec["duration"],
            mode=spec["mode"],
            seed=spec["seed"],
            kills=10,
            catalogs=spec["catalogs"],
        )
        # A store-only scenario makes its own temporary store; the others get one when asked.
        store = spec["store"] and REGISTRY[name].store_only is None
        step: dict[str, Any] = {"scenario": name, "failed": [], "inconclusive": [], "error": ""}
        try:
            result = selfcheck.run_probe(selfcheck.Probe(name, (), store=store), config)
            step["failed"] = sorted(selfcheck.failed_invariants(result))
            step["inconclusive"] = sorted(i.name for i in result.invariants if i.inconclusive)
            step["details"] = [
                f"{i.name} ({i.detail[:DETAIL_CHARS]})" for i in result.invariants if i.name in step["failed"]
            ]
        except Exception as error:  # a run that raises turns the suite red as surely as a failed invariant
            step["error"] = f"the run raised {type(error).__name__}: {error}"
        if write(step) and spec["stop_on_red"]:
            return 0
    if spec["selfcheck"]:
        write(_selfcheck_step(spec, selfcheck))
    return 0


def _selfcheck_step(spec: dict[str, Any], selfcheck: Any) -> dict[str, Any]:
    """Selfcheck's probes (and history probes) for the spec's faults: red when one fails to catch
    its fault, or its control run fails."""
    failed: list[str] = []
    faults = tuple(spec["selfcheck"])
    settings = {"duration": spec["duration"], "clients": spec["clients"], "seed": spec["seed"]}
    for verdict in selfcheck.run_selfcheck((spec["mode"],), bugs=faults, **settings):
        if not verdict.caught:
            why = f"control {', '.join(verdict.control_failures)}" if verdict.control_failures else "missed"
            failed.append(f"{verdict.bug} ({why})")
    controls: dict[tuple[str, str], list[str]] = {}
    for fault in faults:
        if fault in selfcheck.HISTORY_PROBES:
            history = selfcheck.run_history_probe(fault, spec["mode"], controls=controls, **settings)
            if not history.caught:
                why = "control not linearizable" if history.control_failing_keys else "missed"
                failed.append(f"{fault}.history ({why})")
    return {"scenario": SELFCHECK, "failed": failed, "inconclusive": [], "error": ""}


# -- command line ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The runner's options (see `--help`)."""
    parser = argparse.ArgumentParser(prog="python tools/mutants.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mutant", action="append", default=[], metavar="NAME", help="run only NAME (repeatable)"
    )
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated (default thread,process)")
    parser.add_argument(
        "--runs", type=int, default=5, help="runs per mutant and mode, each its own seed (default 5)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    parser.add_argument("--clients", type=int, default=6, help="clients per scenario run (default 6)")
    parser.add_argument("--duration", type=int, default=2, help="seconds per scenario run (default 2)")
    parser.add_argument("--seed", type=int, help="seed of the first run (default random)")
    parser.add_argument(
        "--no-perturb",
        dest="perturb",
        action="store_false",
        help="run without schedule perturbation (default: every run perturbed, seeded with its seed)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write every run's verdict as JSON to FILE")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown to FILE")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--rules", default=RULES, help="the rules file (default mutants/mutants.json)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for option in ("runs", "jobs", "clients", "duration"):
        if getattr(args, option) < 1:
            parser.error(f"--{option} must be at least 1, not {getattr(args, option)}")
    return args


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the table; exit 0 when every mutant was caught in every run, 1 if not, 2 on bad input."""
    args = parse_args(argv)
    if args.worker is not None:
        return worker(args.worker)
    try:
        mutants = load_rules(args.rules, scenario_places())
        modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
        for mode in modes:
            if mode not in MODES:
                raise RuleError(f"--modes: unknown mode {mode!r}; known: {', '.join(MODES)}")
        if args.mutant:
            known = [m.name for m in mutants]
            for name in args.mutant:
                if name not in known:
                    raise RuleError(f"--mutant: no mutant {name!r}; known: {', '.join(known)}")
            mutants = [m for m in mutants if m.name in args.mutant]
        for mutant in mutants:  # refuse a stale rule before any run starts
            check(mutant, ROOT)
    except (RuleError, OSError) as error:
        print(f"mutants: {error}", file=sys.stderr)
        return 2
    if args.list:
        for mutant in mutants:
            print(f"{mutant.name:<30} {mutant.file}: {mutant.bug}")
        return 0
    seed = args.seed if args.seed is not None else random.randrange(1, 1_000_000)
    settings = Settings(args.clients, args.duration, args.perturb)
    schedule = "each run perturbed with its seed" if args.perturb else "not perturbed"
    worst = estimate(mutants, modes, args.runs, args.jobs, args.duration)
    print(
        f"Mutants: {len(mutants)} x {len(modes)} modes x {args.runs} runs"
        f" (seeds {seed}..{seed + args.runs - 1}),"
        f" {args.clients} clients x {args.duration} s per scenario, {args.jobs} at a time,"
        f" {schedule};"
        f" at most ~{worst / 60:.0f} min (a run stops at its first red scenario: caught mutants cost less)",
        flush=True,
    )
    started = time.monotonic()
    signal.signal(signal.SIGTERM, _terminated)  # unwind like Ctrl-C: the workers are stopped
    verdicts = campaign(
        mutants,
        modes,
        runs=args.runs,
        jobs=args.jobs,
        seed=seed,
        settings=settings,
        on_verdict=lambda line: print(line, flush=True),
    )
    rows = rows_of(verdicts)
    print(table(rows))
    elapsed = time.monotonic() - started
    status = exit_status(rows)
    print(f"{'PASSED' if status == 0 else 'FAILED'} in {elapsed / 60:.1f} min")
    command = "python tools/mutants.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            document = {
                "seed": seed,
                "settings": dataclasses.asdict(settings),
                "elapsed": round(elapsed, 1),
                "runs": [dataclasses.asdict(v) for v in verdicts],
                "passed": status == 0,
            }
            json.dump(document, handle, indent=2)
    if args.markdown:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        where = f"{os.cpu_count()} cores, {elapsed / 60:.0f} min, first seed {seed}"
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write(markdown(rows, mutants, command.strip(), f"{when}, {where}"))
    return status


if __name__ == "__main__":
    sys.exit(main())
