"""Helpers for the reliability tests: the child programs they kill, block and starve, and their plumbing.

Run as a script (`python reliability_helpers.py ACTION ARGS...`), this module *is* the child:

- `ack-writer PATH`: writes forever, printing `ack NAME VERSION SEQ` after each write returned;
- `batch-writer PATH SIZE N`: creates N batches of SIZE datasets with `create_many` (`ack batch I`
  after each), then SIGKILLs itself halfway through batch N's transaction;
- `hold-lock PATH`: takes SQLite's write lock with raw `BEGIN IMMEDIATE`, prints `locked`, holds it
  until a line arrives on stdin, rolls back and prints `released`;
- `fill-disk PATH EXTRA`: caps the file size (RLIMIT_FSIZE) at the catalog's size + EXTRA bytes and
  writes ever larger data until the disk "fills", printing JSON lines (acks, then the error);
- `create-fsize PATH LIMIT`: caps the file size at LIMIT bytes and creates a new catalog at PATH;
- `cli-fsize PATH EXTRA ARGS...`: the cap of `fill-disk`, then `metafuse ARGS...`.

Children are plain subprocesses of `sys.executable` running this file, not `multiprocessing`
targets: a script needs no importable test package (tests/unit may or may not be one), its
stdout pipe carries acknowledgements that survive SIGKILL, and its exit status is its own.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from metafuse import Catalog, Dataset, Field

# Imported as part of the tests package, or run as a script (`python reliability_helpers.py ...`)
# with its own folder first on sys.path.
try:
    from . import _support
except ImportError:
    import _support  # type: ignore[no-redef]
from metafuse.errors import CatalogError, CatalogFileError

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository root: children run there, with it on PYTHONPATH, so they import this `metafuse`."""
HELPER = Path(__file__).resolve()
CHILD_TIMEOUT = 60.0
"""Seconds a test waits for a child's next line before it gives up (only reached on a hang)."""
KILL_AT_TICK = 50
"""Progress-handler ticks (100 SQLite VM steps each) before `batch-writer` kills itself; a batch
of 30 datasets takes about 110, so the kill lands halfway through its inserts."""
SAFETY_SECONDS = 60.0
"""A writer that nobody kills stops by itself after this long, so a broken test cannot leak it."""


def make(name: str = "reliability.sample", **changes: Any) -> Dataset:
    """Return a valid dataset called `name`, with `changes` applied over typical values."""
    return _support.make(name, **changes)


def child_env(**extra: str) -> dict[str, str]:
    """Return an environment for a child: this repository first on PYTHONPATH, no faults, no STRESS_*."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STRESS_TEST_", "METAFUSE_")) and key != "RUN_STRESS_TESTS"
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def run_metafuse(
    *args: str, env: dict[str, str] | None = None, timeout: float = CHILD_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run `python -m metafuse ARGS...` in the repository root and return what it did."""
    return subprocess.run(
        [sys.executable, "-m", "metafuse", *args],
        cwd=REPO_ROOT,
        env=child_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_helper(*args: str, timeout: float = CHILD_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run this module as a child to completion and return what it did."""
    return subprocess.run(
        [sys.executable, str(HELPER), *args],
        cwd=REPO_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Child:
    """A running helper child whose stdout lines arrive on a queue; killed and reaped on exit.

    One reader thread owns the child's stdout; the test thread only takes lines off the queue,
    so a wait for the next line can time out instead of hanging the test.
    """

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HELPER), *args],
            cwd=REPO_ROOT,
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._eof = False
        self._reader = threading.Thread(target=self._pump, name="child-stdout", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            for line in stdout:
                if line.endswith("\n"):  # a line cut short by SIGKILL was never acknowledged
                    self._lines.put(line[:-1])
        finally:
            self._lines.put(None)

    def next_line(self, timeout: float = CHILD_TIMEOUT) -> str | None:
        """Return the child's next complete stdout line, or None once it has closed stdout."""
        if self._eof:
            return None
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"child {self.proc.args} printed nothing for {timeout} s") from None
        if line is None:
            self._eof = True
        return line

    def expect(self, wanted: str, timeout: float = CHILD_TIMEOUT) -> None:
        """Wait for the line `wanted`; fail with the child's stderr if it ends first."""
        line = self.next_line(timeout)
        if line != wanted:
            raise AssertionError(f"child said {line!r}, not {wanted!r}; stderr: {self.finish()}")

    def send(self, text: str) -> None:
        """Write one line to the child's stdin."""
        stdin = self.proc.stdin
        assert stdin is not None
        stdin.write(text + "\n")
        stdin.flush()

    def kill(self) -> int:
        """SIGKILL the child, reap it, and return its exit status (negative signal number if killed)."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(CHILD_TIMEOUT)

    def rest(self) -> list[str]:
        """After the child ended: every complete line it printed that was not read yet."""
        lines = []
        while (line := self.next_line()) is not None:
            lines.append(line)
        return lines

    def finish(self) -> str:
        """Wait for the child to end (killing it after the timeout); return its stderr."""
        try:
            self.proc.wait(CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reader.join(CHILD_TIMEOUT)
        stderr = self.proc.stderr
        return stderr.read() if stderr is not None and not stderr.closed else ""

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.proc.poll() is None:
            self.kill()
        self._reader.join(CHILD_TIMEOUT)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def pattern(seq: int, size: int) -> str:
    """Return `size` characters that say which write (`seq`) produced them."""
    unit = f"[write {seq:08d}]"
    return (unit * (size // len(unit) + 1))[:size]


def file_state(path: Path) -> bytes:
    """Return the bytes of `path` (to prove a refused file was not touched)."""
    return path.read_bytes()


# -- the child programs ------------------------------------------------------------------------


def _ack_writer(path: str) -> int:
    names = [f"crash.{index}" for index in range(5)]
    catalog = Catalog(path)  # never closed: the parent SIGKILLs this process mid-write
    deadline = time.monotonic() + SAFETY_SECONDS
    for seq in itertools.count(1):
        if time.monotonic() > deadline:
            print("done", flush=True)
            return 0
        name = names[seq % len(names)]
        # Many fields make each transaction long enough that the kill often lands inside one.
        fields = tuple(Field(f"c{index}", "string", description=f"write {seq}") for index in range(40))
        current = catalog.get(name)
        if current is None:
            stored = catalog.create(make(name, description=f"write {seq}", fields=fields))
        else:
            changed = current.replace(description=f"write {seq}", fields=fields)
            stored = catalog.save(changed, expected_version=current.version)
        print(f"ack {name} {stored.version} {seq}", flush=True)
    return 1  # unreachable: itertools.count never ends


def _batch_writer(path: str, size: int, kill_after: int) -> int:
    catalog = Catalog(path)
    for batch in range(kill_after + 1):
        if batch == kill_after:
            _die_inside_the_next_statements(catalog)
        catalog.create_many(make(f"batch.{batch:05d}.{index:03d}") for index in range(size))
        print(f"ack batch {batch}", flush=True)
    print("done", flush=True)  # reached only if the kill never came
    return 0


def _die_inside_the_next_statements(catalog: Catalog) -> None:
    """SIGKILL this process from inside SQLite, after some VM steps: mid-transaction, every time.

    A kill sent from the parent lands wherever the child happens to be, mostly between
    transactions; a progress handler fires only while a statement runs. `_conn` is private,
    used here because no public API exposes the connection, and only this test child needs it.
    """
    calls = 0

    def tick() -> int:
        nonlocal calls
        calls += 1
        if calls == KILL_AT_TICK:
            os.kill(os.getpid(), signal.SIGKILL)
        return 0

    catalog._pool.session().check(catalog.path).set_progress_handler(tick, 100)


def _hold_lock(path: str) -> int:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    sys.stdin.readline()  # hold the write lock until the parent says so (or closes stdin)
    conn.execute("ROLLBACK")
    conn.close()
    print("released", flush=True)
    return 0


def _cap_file_size(path: str, extra: int) -> None:
    # Python already ignores SIGXFSZ; say so anyway, since the test depends on EFBIG, not a signal.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = os.path.getsize(path) + extra
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))


def _say(**values: Any) -> None:
    print(json.dumps(values), flush=True)


def _fill_disk(path: str, extra: int) -> int:
    _cap_file_size(path, extra)
    catalog = Catalog(path)
    seq = 0
    try:
        for seq in range(1, 4):  # small writes first: these must survive whatever follows
            current = catalog.get("fill.small")
            assert current is not None
            stored = catalog.save(
                current.replace(description=pattern(seq, 100)), expected_version=current.version
            )
            _say(ack="fill.small", version=stored.version, seq=seq)
        for seq in range(4, 400):
            current = catalog.get("fill.big")
            assert current is not None
            big = current.replace(description=pattern(seq, 60_000))
            stored = catalog.save(big, expected_version=current.version)
            _say(ack="fill.big", version=stored.version, seq=seq)
    except Exception as error:  # report any failure: the parent judges what it should have been
        _say(
            error=type(error).__name__,
            catalog_error=isinstance(error, CatalogError),
            file_error=isinstance(error, CatalogFileError),
            message=str(error),
            seq=seq,
        )
        after = catalog.get("fill.big")  # the failed write left this process able to read
        _say(after_version=None if after is None else after.version)
        return 0
    _say(error=None)
    return 0


def _create_fsize(path: str, limit: int) -> int:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        with Catalog(path) as catalog:
            catalog.create(make("fill.first"))
    except Exception as error:
        _say(
            error=type(error).__name__,
            catalog_error=isinstance(error, CatalogError),
            file_error=isinstance(error, CatalogFileError),
            message=str(error),
        )
        return 0
    _say(error=None)
    return 0


def _cli_fsize(path: str, extra: int, argv: list[str]) -> int:
    from metafuse.cli import main

    _cap_file_size(path, extra)
    return main(argv)


def _main(argv: list[str]) -> int:
    action, path, *rest = argv
    if action == "ack-writer":
        return _ack_writer(path)
    if action == "batch-writer":
        return _batch_writer(path, int(rest[0]), int(rest[1]))
    if action == "hold-lock":
        return _hold_lock(path)
    if action == "fill-disk":
        return _fill_disk(path, int(rest[0]))
    if action == "create-fsize":
        return _create_fsize(path, int(rest[0]))
    if action == "cli-fsize":
        return _cli_fsize(path, int(rest[0]), rest[1:])
    print(f"unknown action {action!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
