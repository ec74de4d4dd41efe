"""Child interpreter for tests/unit/test_lifecycle.py: risky close() and fork() runs, one JSON report.

Usage: `python _lifecycle_child.py MODE PATH [ARG]`, with MODE one of
- `close-under-threads PATH`: six threads call get/save/update/search/list/create in a loop; the
  main thread closes the catalog while they run; they go on calling for a while. Reports the
  errors met, the descriptors still open on the catalog's files, and acknowledged writes lost.
- `fork PATH HELD`: a second thread holds the catalog (HELD: `writer-lock`, `transaction` or
  `reading`) while the main thread forks; the child uses the inherited catalog and a new one.
- `fork-inside-transaction PATH`: the main thread forks inside its own transaction block.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import threading
import time
import warnings
from typing import Any

from metafuse import Catalog, CatalogClosedError, CatalogError, Dataset, Field

THREADS = 6
CALLS_BEFORE_CLOSE = 40
CALLS_AFTER_CLOSE = 30


def make(name: str, description: str = "") -> Dataset:
    """A small valid dataset."""
    return Dataset(
        name=name,
        uri=f"s3://bucket/{name}",
        description=description or f"rows of {name}",
        tags=("t",),
        fields=(Field("id", "bigint"),),
    )


def catalog_fds(path: str) -> int:
    """Descriptors of this process on the catalog's per-Catalog files (not `-shm`, which is held
    per process: see metafuse._walindex)."""
    names = {path, f"{path}-wal", f"{path}-mfgen"}
    count = 0
    for entry in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{entry}") in names:
                count += 1
    return count


def close_under_threads(path: str) -> dict[str, Any]:
    catalog = Catalog(path)
    names = [f"ds.{i}" for i in range(8)]
    catalog.create_many(make(name) for name in names)
    unexpected: list[str] = []
    acked: dict[str, int] = {}
    counts = {"closed_errors": 0, "calls_after_close": 0}
    lock = threading.Lock()
    started = threading.Barrier(THREADS + 1)
    closed = threading.Event()
    done_before = threading.Semaphore(0)

    def work(client: int) -> None:
        rng = random.Random(client)
        started.wait()
        calls = after = 0
        while after < CALLS_AFTER_CLOSE:
            name = rng.choice(names)
            was_closed = closed.is_set()
            try:
                kind = rng.randrange(6)
                if kind == 0:
                    catalog.get(name)
                elif kind == 1:
                    stored = catalog.update(name, lambda d: d.replace(description=f"c{client}"))
                    with lock:
                        acked[name] = max(acked.get(name, 0), stored.version)
                elif kind == 2:
                    catalog.search("rows")
                elif kind == 3:
                    catalog.list(limit=5)
                elif kind == 4:
                    created = catalog.create(make(f"new.{client}.{calls}"))
                    with lock:
                        acked[created.name] = created.version
                else:
                    catalog.get(name)
                    catalog.get(name)
            except CatalogClosedError:
                with lock:
                    counts["closed_errors"] += 1
            except Exception as error:  # anything else is the bug this test looks for
                with lock:
                    unexpected.append(f"{type(error).__name__}: {error}")
            calls += 1
            if calls == CALLS_BEFORE_CLOSE:
                done_before.release()
            if was_closed:
                after += 1
                with lock:
                    counts["calls_after_close"] += 1

    threads = [threading.Thread(target=work, args=(client,)) for client in range(THREADS)]
    for thread in threads:
        thread.start()
    started.wait()
    for _ in threads:
        done_before.acquire()
    catalog.close()
    closed.set()
    for thread in threads:
        thread.join(60)
    hung = sum(thread.is_alive() for thread in threads)
    fds_after = catalog_fds(os.path.realpath(path))  # once no call is in flight: none may be left
    with Catalog(path, cache_size=0) as reader:
        lost = [name for name, version in acked.items() if (reader.get(name) or make(name)).version < version]
        integrity = reader.integrity_check()
    return {
        "unexpected": unexpected[:10],
        "hung": hung,
        "lost": lost,
        "integrity": integrity,
        "catalog_fds_after": fds_after,
        **counts,
    }


def _fork_and_check(
    path: str, catalog: Catalog, release: threading.Event
) -> tuple[int | str, dict[str, str]]:
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a threaded process may deadlock; that is what we test.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid:
        release.set()  # a transaction held across the fork ends now, in the parent
    else:
        os.close(read_end)
        report: dict[str, str] = {}
        try:
            got = catalog.get("shared")
            assert got is not None
            report["read"] = "ok"
            catalog.create(make(f"child.{os.getpid()}"))
            report["inherited"] = "ok"
        except Exception as error:
            report["inherited"] = f"{type(error).__name__}: {error}"
        try:
            with Catalog(path, busy_timeout=5) as fresh:
                fresh.get("shared")
                fresh.update("shared", lambda d: d.replace(description="child"))
            report["new"] = "ok"
        except Exception as error:
            report["new"] = f"{type(error).__name__}: {error}"
        os.write(write_end, json.dumps(report).encode())
        os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + 30
    status: int | str = "hung"
    while time.monotonic() < deadline:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(raw)
            break
        time.sleep(0.02)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    return status, json.loads(data) if data else {}


def fork_while_held(path: str, held: str) -> dict[str, Any]:
    catalog = Catalog(path, busy_timeout=10)
    catalog.create(make("shared"))
    holding = threading.Event()
    release = threading.Event()
    stop = threading.Event()

    def hold() -> None:
        if held == "writer-lock":
            with catalog.transaction():
                catalog.create(make("held"))
                holding.set()
                release.wait(60)
        elif held == "transaction":
            # Back to back until the fork; then no more, so that the child's own writes test a
            # clean start, not how long a writer in another process can go without the lock
            # against a thread that takes it again the moment it lets go (SQLite's busy wait is
            # not fair, and on a loaded machine the child lost that race for 5 s).
            i = 0
            while not stop.is_set() and not release.is_set():
                with catalog.transaction():
                    catalog.create(make(f"busy.{i}"))
                    holding.set()
                i += 1
        else:
            while not stop.is_set():
                catalog.list(limit=50)
                catalog.search("rows")
                holding.set()

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(30)
    child_status, child = _fork_and_check(path, catalog, release)
    stop.set()
    thread.join(60)
    try:
        catalog.update("shared", lambda d: d.replace(description="parent"))
        parent_after = "ok" if catalog.integrity_check() == ["ok"] else "damaged"
    except CatalogError as error:
        parent_after = f"{type(error).__name__}: {error}"
    catalog.close()
    return {"child_status": child_status, "child": child, "parent_after": parent_after}


def fork_inside_transaction(path: str) -> dict[str, Any]:
    catalog = Catalog(path)
    read_end, write_end = os.pipe()
    with catalog.transaction():
        catalog.create(make("in-parent"))
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            outcome = "committed?"
            try:
                try:
                    catalog.create(make("in-child"))
                    outcome = "wrote inside the parent's transaction"
                except CatalogError as error:
                    outcome = type(error).__name__
                    raise
            except CatalogError as error:
                outcome = type(error).__name__
            with Catalog(path, cache_size=0) as reader:
                nothing = reader.get("in-child") is None and reader.get("in-parent") is None
            os.write(write_end, json.dumps({"block": outcome, "nothing": nothing}).encode())
            os._exit(0)
        os.close(write_end)
        _, raw = os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        child = json.loads(pipe.read() or b"{}")
    committed = catalog.get("in-parent") is not None and catalog.get("in-child") is None
    catalog.close()
    return {
        "child_status": os.waitstatus_to_exitcode(raw),
        "child_block": child.get("block"),
        "child_committed_nothing": child.get("nothing"),
        "parent_committed": committed,
    }


def main(argv: list[str]) -> int:
    mode, path = argv[0], argv[1]
    if mode == "close-under-threads":
        report = close_under_threads(path)
    elif mode == "fork":
        report = fork_while_held(path, argv[2])
    elif mode == "fork-inside-transaction":
        report = fork_inside_transaction(path)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
