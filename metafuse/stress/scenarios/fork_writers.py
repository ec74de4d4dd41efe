"""Probe: forked children write while the parent's threads write; writers exclude each other, nothing is lost.

Every client runs `WRITERS` threads on its Catalog (in thread mode the one every client shares).
Each of them, in turn, bumps the shared counter dataset inside `transaction()` (read, then save
with the version read: a conflict there means another writer was inside a write at the same
time) and saves a dataset of its own through group commit. Client 0's own thread meanwhile forks
a child now and then, without pausing anyone, while `BURST` threads of its own save back to back
through group commit. The first of them saves until it leads a group and is held there
(`perturb.hold` at `LEADER_HELD`, the writer lock taken) until the fork is made, so at every fork
the write queue has a leader holding the writer lock, whatever the timing. The child, through
the Catalog it inherited, saves once through group commit and bumps the counter `CHILD_BUMPS`
times, then exits with what it did as its status. The other clients' own threads read the counter
at full speed through the cache, each read checked against the newest bump acknowledged before it
started (parent's and children's alike, in this process).

A child that inherited the parent's write queue waits for a leader that does not exist in it.
After its first fork, client 0 also runs the fork probes (`_fork_probes`): `lock_excluded`, whose
child must wait for a slot-file lock its parent holds (one that shares the parent's `flock`
description does not, whatever the timing), and `hooks_unblocked`, whose children, forked while
a thread holds SQLite's VFS mutex and another reads a catalog's file through a connection of its
own, must get through their after-fork hooks (one that closes an inherited connection waits
forever on that mutex, at every fork).
"""

from __future__ import annotations

import contextlib
import faulthandler
import mmap
import os
import struct
import threading
import time
from typing import Any

from ... import perturb
from ..._connections import FORK_WAIT
from ...catalog import Catalog
from ...errors import BusyError, CatalogFileError, ConflictError
from ..client import ClientContext
from ..scenario import RunView, SetupContext, Verdict, inconclusive, scenario
from ._content import recreate, rewrite, tokened
from ._fork_probes import run_probes
from ._lifecycle.fork import fork_with_threads, wait_child

WRITERS = 3
"""Writing threads per client."""
CHILD_BUMPS = 3
"""Counter bumps each forked child makes."""
CHILD_TIMEOUT = 4.0
"""Seconds a child gets to exit before it is killed as hung (a child forked by the end of the run
still ends inside the runner's 5 s watchdog grace)."""
FORK_EVERY = 0.1
"""Seconds between the end of one child and the next fork."""
PAUSE = 0.002
"""Seconds each parent writer waits between writes: SQLite's busy handler is not fair, and a parent
writing flat out could starve a child that waits in it."""
BURST = 3
"""Threads that save through group commit, back to back, while each fork happens."""
BURST_SAVES = 8
"""Saves each of those threads makes per fork."""
LEADER_HELD = "group: lead taken -> batch collected"
"""Where burst thread 0 is held across each fork: leading a group, the writer lock taken."""
LEAD_WAIT = 30.0
"""Longest a fork waits for burst thread 0 to lead a group (it gives up sooner when the run ends)."""
COUNTER = "stress.fork.counter"
NEWEST = 0  # board slot: the newest counter version a parent writer had acknowledged
# Child exit statuses above CHILD_BUMPS (a status <= CHILD_BUMPS is the bumps it acknowledged).
CHILD_OVERLAP, CHILD_BUSY, CHILD_ERROR, CHILD_REFUSED = 60, 61, 62, 63
_SLOT = struct.Struct("<q")
_WHY = 200  # bytes of the shared mapping where a failing child leaves its error


def _own(client: int, writer: int) -> str:
    return f"stress.fork.{client}.{writer}"


def _child_dataset(client: int) -> str:
    return f"stress.fork.child.{client}"


def _burst_dataset(client: int, thread: int) -> str:
    return f"stress.fork.burst.{client}.{thread}"


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    names = [COUNTER] + [_child_dataset(c) for c in range(setup.clients)]
    names += [_own(c, w) for c in range(setup.clients) for w in range(WRITERS)]
    names += [_burst_dataset(c, t) for c in range(setup.clients) for t in range(BURST)]
    recreate(catalog, [tokened(name, "v1-setup") for name in names])
    return {}


class _Shared:
    """What the parent's threads and its forked children share: the newest bump each acknowledged.

    An anonymous shared mapping, so a child's acknowledgement reaches the parent's readers; two
    slots (parent, child), each only raised, and a reader takes the larger. After them, a
    failing child leaves its error there for the parent to report (`why`).
    """

    def __init__(self) -> None:
        self.map = mmap.mmap(-1, 2 * _SLOT.size + _WHY)
        self.lock = threading.Lock()
        # A parent's writer may hold the lock at the fork: the child's copy would stay held.
        os.register_at_fork(after_in_child=self._renew_lock)

    def _renew_lock(self) -> None:
        self.lock = threading.Lock()

    def raise_to(self, slot: int, version: int) -> None:
        with self.lock:
            if version > _SLOT.unpack_from(self.map, slot * _SLOT.size)[0]:
                _SLOT.pack_into(self.map, slot * _SLOT.size, version)

    def tell(self, error: BaseException) -> None:
        """In a failing child: leave `error` for the parent (cut to fit)."""
        text = f"{type(error).__name__}: {error}".encode("utf-8", "replace")[: _WHY - 1]
        self.map[2 * _SLOT.size : 2 * _SLOT.size + _WHY] = text.ljust(_WHY, b"\0")

    def why(self) -> str:
        """What the last failing child left (empty if none); clears it."""
        start = 2 * _SLOT.size
        text = bytes(self.map[start : start + _WHY]).rstrip(b"\0").decode("utf-8", "replace")
        self.map[start : start + _WHY] = bytes(_WHY)
        return text

    def newest(self) -> int:
        return max(int(_SLOT.unpack_from(self.map, 0)[0]), int(_SLOT.unpack_from(self.map, _SLOT.size)[0]))


def _bump(catalog: Catalog, token: str) -> int:
    """Bump the counter inside one transaction; return its new version. `ConflictError` here means
    another writer committed between this transaction's read and its save: no exclusion."""
    with catalog.transaction():
        current = catalog.get(COUNTER)
        assert current is not None
        return catalog.save(rewrite(current, token), expected_version=current.version).version


class _Writer:
    def __init__(self, ctx: ClientContext, index: int, shared: _Shared) -> None:
        self.ctx, self.index, self.shared = ctx, index, shared
        self.bumps = self.overlaps = self.busy = 0
        self.errors: list[str] = []

    def run(self) -> None:
        ctx, sequence = self.ctx, 0
        name = _own(ctx.client, self.index)
        while not ctx.should_stop():
            sequence += 1
            try:
                version = _bump(ctx.catalog, f"client-{ctx.client}-writer-{self.index}-{sequence}")
                self.bumps += 1
                self.shared.raise_to(0, version)
                ctx.board.raise_to(NEWEST, version)
                current = ctx.catalog.get(name)
                assert current is not None
                ctx.catalog.save(rewrite(current, f"own-{sequence}"), expected_version=current.version)
            except ConflictError as error:
                self.overlaps += error.name == COUNTER
                if error.name != COUNTER:
                    self.errors.append(f"ConflictError: {error}")
            except BusyError:
                self.busy += 1
            except Exception as error:
                self.errors.append(f"{type(error).__name__}: {error}")
            time.sleep(PAUSE)


def _child(catalog: Catalog, client: int, shared: _Shared, fork: int) -> int:
    """In a forked child: one group-commit save, then `CHILD_BUMPS` bumps; return the exit status."""
    bumps = 0
    try:
        name = _child_dataset(client)
        current = catalog.get(name)
        assert current is not None
        catalog.save(rewrite(current, f"child-{fork}"), expected_version=current.version)
        for bump in range(CHILD_BUMPS):
            shared.raise_to(1, _bump(catalog, f"client-{client}-child-{fork}-{bump}"))
            bumps += 1
        return bumps
    except ConflictError as error:
        shared.tell(error)
        return CHILD_OVERLAP
    except BusyError as error:
        shared.tell(error)
        return CHILD_BUSY
    except CatalogFileError as error:
        shared.tell(error)  # the library refuses a child forked with a call still in flight
        return CHILD_REFUSED
    except BaseException as error:
        shared.tell(error)
        return CHILD_ERROR


class _Lead:
    """Burst thread 0's hold at `LEADER_HELD`, handed to the forker: it forks once the thread is
    held there as a group's leader, then lets it go on."""

    def __init__(self) -> None:
        self._held: perturb.Hold | None = None
        self._gone = False

    def armed(self, held: perturb.Hold) -> None:
        """Burst thread 0 armed its hold and is about to save."""
        self._held = held

    def gone(self) -> None:
        """Burst thread 0 is done: nothing more to wait for."""
        self._gone = True

    def wanted(self) -> bool:
        """Whether the leader is still to be held (burst thread 0 has not led a group yet)."""
        return self._held is not None and not self._held.reached.is_set()

    def wait(self, timeout: float) -> bool:
        """Wait until the leader is held (True), or it cannot be (False, after at most `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._held is not None and self._held.reached.is_set():
                return True
            if self._gone:
                return False
            time.sleep(0.002)
        return False

    def release(self) -> None:
        """Let the held leader go on (at once, if it has not got there)."""
        if self._held is not None:
            self._held.release()


class _Forker:
    def __init__(self, ctx: ClientContext, shared: _Shared) -> None:
        self.ctx, self.shared = ctx, shared
        self.forks = self.child_bumps = self.refused_after_wait = self.busy = self.leader_held = 0
        self.failed: dict[str, int] = {}
        self.errors: list[str] = []
        self.probes: dict[str, str] = {}

    def _burst(self, thread: int, started: threading.Barrier, lead: _Lead) -> None:
        """Save one dataset back to back, so the write queue has a leader and waiting writes at the
        fork. Thread 0 saves first, alone, and is held as a group's leader (`lead`)."""
        catalog = self.ctx.catalog
        try:
            current = catalog.get(_burst_dataset(self.ctx.client, thread))
            assert current is not None
            with perturb.hold(LEADER_HELD) if thread == 0 else contextlib.nullcontext() as held:
                if held is not None:
                    lead.armed(held)
                else:
                    started.wait(timeout=CHILD_TIMEOUT)  # once the leader is held
                save = 0
                # Thread 0 saves until it has led a group (a writer leading first takes its write
                # into its own group, or the lock stays busy): the fork waits for that.
                while save < BURST_SAVES or (
                    lead.wanted() and held is not None and not self.ctx.should_stop()
                ):
                    save += 1
                    try:
                        current = catalog.save(
                            rewrite(current, f"burst-{save}"), expected_version=current.version
                        )
                    except BusyError:
                        self.busy += 1  # the busy timeout ran out, as for the writers: counted, not an error
                        if held is None or not lead.wanted():
                            return
        except Exception as error:
            self.errors.append(f"burst: {type(error).__name__}: {error}")
        finally:
            if thread == 0:
                lead.gone()

    def _judge(self, outcome: str, waited: float) -> None:
        """Count how a child ended (`wait_child`'s outcome); `waited`: seconds its fork took."""
        why = self.shared.why()
        status = int(outcome.split()[1]) if outcome.startswith("exit ") else -1
        if status == CHILD_REFUSED and waited >= FORK_WAIT:
            # Documented: a fork waits FORK_WAIT for the calls in flight, and a child forked with
            # one still in flight refuses to write. A loaded machine gets there.
            self.refused_after_wait += 1
            return
        if why:
            self.errors.append(f"child {self.forks}: {outcome}: {why}")
        if 0 <= status <= CHILD_BUMPS:
            self.child_bumps += status
            if status != CHILD_BUMPS:
                self.failed[outcome] = self.failed.get(outcome, 0) + 1
            return
        labels = {CHILD_OVERLAP: "overlap", CHILD_BUSY: "busy", CHILD_ERROR: "error"}
        label = {**labels, CHILD_REFUSED: f"refused after a {waited:.1f} s wait"}.get(status, outcome)
        self.failed[label] = self.failed.get(label, 0) + 1

    def run(self) -> None:
        ctx = self.ctx
        probed = False
        while not ctx.should_stop():
            self.forks += 1
            lead = _Lead()
            started = threading.Barrier(BURST)  # the forker and burst threads 1 and up
            burst = [
                threading.Thread(target=self._burst, args=(thread, started, lead), daemon=True)
                for thread in range(BURST)
            ]
            for thread in burst:
                thread.start()
            # Burst thread 0 leads a group and is held there, the writer lock taken; the other
            # burst threads then queue behind it. So at every fork the write queue has a leader
            # and writes waiting, whatever the timing.
            self.leader_held += lead.wait(LEAD_WAIT)
            with contextlib.suppress(threading.BrokenBarrierError):
                started.wait(timeout=CHILD_TIMEOUT)
            began = time.monotonic()
            pid = fork_with_threads()  # while the parent's threads write
            waited = time.monotonic() - began
            if pid != 0:
                lead.release()
            if pid == 0:
                code = CHILD_ERROR
                try:
                    # A child about to be killed as hung first says where it is stuck.
                    faulthandler.dump_traceback_later(CHILD_TIMEOUT * 0.9, exit=False)
                    code = _child(ctx.catalog, ctx.client, self.shared, self.forks)
                finally:
                    os._exit(code)
            for thread in burst:
                thread.join()
            self._judge(wait_child(pid, CHILD_TIMEOUT), waited)
            if not probed:
                # After the first round, not before it: on a loaded machine the probe must not
                # leave a short run without a child.
                self.probes, probed = run_probes(), True
            time.sleep(FORK_EVERY)
        if not probed:
            self.probes = run_probes()


def _read(ctx: ClientContext, shared: _Shared) -> tuple[int, int]:
    """Read the counter through the cache until the run ends; return (reads, stale reads)."""
    reads = stale = 0
    while not ctx.should_stop():
        newest = max(shared.newest(), ctx.board.read(NEWEST))  # acknowledged before the read
        _, seen = ctx.call("read", ctx.catalog.get, COUNTER)
        reads += 1
        if seen is not None and seen.version < newest:
            stale += 1
    return reads, stale


_SHARED: dict[str, _Shared] = {}
_SHARED_LOCK = threading.Lock()


def _shared_for_run(path: str) -> _Shared:
    """One shared mapping per run and process: thread-mode clients of a run share it, as they
    share the Catalog. Keyed by the run's catalog path, so a later run in the same process (a
    campaign, a test session) starts from zero instead of the newest bump of an earlier run."""
    with _SHARED_LOCK:
        shared = _SHARED.get(path)
        if shared is None:
            _SHARED.clear()  # an earlier run's mapping: nothing of it is read again
            shared = _SHARED[path] = _Shared()
        return shared


@scenario(
    "fork_writers",
    title="fork while writing",
    summary="Forked children write while the parent's threads write; writers exclude each other.",
    setup=_setup,
    default_clients=4,
    default_duration=5,
    catalogs="mixed",
    file_only="it forks clients of a catalog file",
)
def fork_writers(ctx: ClientContext) -> None:
    """Writers on threads; client 0 forks writing children, the other clients read the counter."""
    shared = _shared_for_run(ctx.path)
    writers = [_Writer(ctx, index, shared) for index in range(WRITERS)]
    threads = [
        threading.Thread(target=w.run, name=f"stress-{ctx.client}-writer-{w.index}", daemon=True)
        for w in writers
    ]
    for thread in threads:
        thread.start()
    forker = _Forker(ctx, shared) if ctx.client == 0 else None
    reads = stale = 0
    try:
        if forker is not None:
            forker.run()
        else:
            reads, stale = _read(ctx, shared)
    finally:
        for thread in threads:
            thread.join()
    ctx.recorder.metrics.update(
        bumps=sum(w.bumps for w in writers) + (forker.child_bumps if forker else 0),
        overlaps=sum(w.overlaps for w in writers),
        busy=sum(w.busy for w in writers) + (forker.busy if forker else 0),
        forks=forker.forks if forker else 0,
        refused_after_wait=forker.refused_after_wait if forker else 0,
        leader_held=forker.leader_held if forker else 0,
        children_failed=forker.failed if forker else {},
        probes_run=int(forker is not None),
        probes_failed=forker.probes if forker else {},
        reads=reads,
        stale_reads=stale,
        max_versions_behind=0,
    )
    errors = [error for w in writers for error in w.errors] + (forker.errors if forker else [])
    for error in errors[:3]:
        ctx.recorder.error(error)
    ctx.recorder.metrics["other_errors"] = len(errors)


SCENARIO = fork_writers


@fork_writers.invariant(
    "writers_excluded", "no two writers were inside a write at once (no conflict inside a transaction)"
)
def _writers_excluded(run: RunView) -> Verdict:
    overlaps = run.metric_sum("overlaps")
    failed = _children_failed(run)
    child = failed.get("overlap", 0)
    return overlaps + child == 0, f"{overlaps} parent and {child} child transactions met another writer"


@fork_writers.invariant(
    "fork_lock_excluded", "a forked child waited for the slot-file lock its parent held across the fork"
)
def _fork_lock_excluded(run: RunView) -> Verdict:
    return _probe_verdict(run, "lock_excluded", "the child waited until its parent let go")


@fork_writers.invariant(
    "fork_hooks_unblocked",
    "children forked while other threads were inside SQLite (holding its VFS mutex, reading) all exited",
)
def _fork_hooks_unblocked(run: RunView) -> Verdict:
    return _probe_verdict(run, "hooks_unblocked", "every child got through its after-fork hooks")


def _probe_verdict(run: RunView, probe: str, held: str) -> Verdict:
    """The verdict of one of client 0's fork probes: `held` when it found nothing wrong."""
    if not run.metric_sum("probes_run"):
        return inconclusive("client 0 did not run its fork probes")
    problems = {
        name: problem
        for recorder in run.recorders
        for name, problem in dict(recorder.metrics.get("probes_failed", {})).items()
    }
    problem = problems.get(probe)
    return problem is None, problem or held


def _children_failed(run: RunView) -> dict[str, int]:
    total: dict[str, int] = {}
    for recorder in run.recorders:
        for key, count in dict(recorder.metrics.get("children_failed", {})).items():
            total[key] = total.get(key, 0) + int(count)
    return total


@fork_writers.invariant(
    "children_wrote", "every forked child made all its writes and exited in time (none hung or refused)"
)
def _children_wrote(run: RunView) -> Verdict:
    forks, failed = run.metric_sum("forks"), _children_failed(run)
    refused = run.metric_sum("refused_after_wait")
    if not forks:
        return inconclusive("no child was forked: too little progress to judge")
    if forks == refused:
        return inconclusive(
            f"all {forks} children were forked with a call still in flight after {FORK_WAIT:g} s"
        )
    note = f" ({refused} forked with a call in flight after {FORK_WAIT:g} s refused, as documented)"
    if not failed and not run.metric_sum("leader_held"):
        # A child that inherited the parent's write queue hangs only if a leader was in it.
        return inconclusive(f"{forks} children, none forked with a group-commit leader held")
    return not failed, f"{forks} children, failed: {failed or 'none'}{note if refused else ''}"


@fork_writers.invariant(
    "nothing_lost", "the counter's final version counts every bump acknowledged, by parent or child"
)
def _nothing_lost(run: RunView) -> Verdict:
    final = run.catalog.get(COUNTER)
    bumps = run.metric_sum("bumps")
    version = final.version if final is not None else 0
    return version >= 1 + bumps, f"final version {version}, {bumps} bumps acknowledged"


@fork_writers.invariant(
    "no_stale_read", "no read returned a counter older than a bump acknowledged before it started"
)
def _no_stale_read(run: RunView) -> Verdict:
    return run.no_stale_reads()


@fork_writers.invariant("no_errors", "no write or read failed unexpectedly")
def _no_errors(run: RunView) -> Verdict:
    return run.no_unexpected_errors("other_errors")


def _metrics(run: RunView) -> dict[str, Any]:
    return {
        "bumps": run.metric_sum("bumps"),
        "forks": run.metric_sum("forks"),
        "leader_held": run.metric_sum("leader_held"),
        "children_failed": _children_failed(run),
        "reads": run.metric_sum("reads"),
        "stale_reads": run.metric_sum("stale_reads"),
    }


def _headline(result: dict[str, Any]) -> list[tuple[str, Any]]:
    metrics = result["metrics"]
    return [
        ("Counter bumps acknowledged", metrics.get("bumps", 0)),
        ("Children forked", metrics.get("forks", 0)),
        ("Forks with a group-commit leader held", metrics.get("leader_held", 0)),
        ("Children that failed", metrics.get("children_failed", {}) or "none"),
        ("Stale reads", metrics.get("stale_reads", 0)),
    ]


fork_writers.metrics = _metrics
fork_writers.headline = _headline
