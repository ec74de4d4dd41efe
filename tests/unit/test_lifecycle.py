"""close() and fork() at any time: no crash, only CatalogClosedError, nothing half-written.

The risky runs happen in a child interpreter (`_lifecycle_child.py`), so a crash (a segfault from
closing a connection inside an SQLite call) shows up as that child's exit status instead of
killing the test worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from metafuse import Catalog, CatalogClosedError

from ._support import make

CHILD = Path(__file__).with_name("_lifecycle_child.py")
ROOT = Path(__file__).resolve().parents[2]


def _python(*args: str, faults: str = "", timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a fresh interpreter on `args`, with this checkout's package and no METAFUSE_/STRESS_
    settings of the test run (only `faults`, if given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFUSE_", "STRESS_"))}
    env["PYTHONPATH"] = str(ROOT)
    if faults:
        env["METAFUSE_FAULTS"] = faults
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def _child(*args: str, faults: str = "", timeout: float = 120) -> dict[str, object]:
    done = _python(str(CHILD), *args, faults=faults, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    report: dict[str, object] = json.loads(lines[-1]) if lines else {}
    report["returncode"] = done.returncode
    report["stderr"] = done.stderr[-2000:]
    return report


def test_close_under_busy_threads_raises_only_catalog_closed(tmp_path: Path) -> None:
    report = _child("close-under-threads", str(tmp_path / "catalog.db"))
    assert report["returncode"] == 0, report
    assert report["unexpected"] == [], report
    assert report["closed_errors"] > 0, "no call met the closed catalog: the test proved nothing"
    assert report["calls_after_close"] > 0
    assert report["catalog_fds_after"] == 0, report
    assert report["integrity"] == ["ok"]
    assert report["lost"] == [], report


@pytest.mark.slow
def test_close_unguarded_fault_is_caught(tmp_path: Path) -> None:
    report = _child("close-under-threads", str(tmp_path / "catalog.db"), faults="close_unguarded")
    # The bug shows as a crash, or as errors other than CatalogClosedError, or as calls that
    # went on after close().
    assert report["returncode"] != 0 or report["unexpected"] or report["closed_errors"] == 0, report


def test_calls_after_close_raise_catalog_closed(catalog: Catalog) -> None:
    catalog.create(make("a"))
    catalog.get("a")
    catalog.close()
    for call in (
        lambda: catalog.get("a"),  # would be a cache hit
        lambda: catalog.get("b"),
        lambda: catalog.create(make("c")),
        lambda: catalog.search("a"),
        lambda: catalog.update("a", lambda d: d),
        catalog.list,
    ):
        with pytest.raises(CatalogClosedError):
            call()


def _refused_cleanly(report: dict[str, object]) -> bool:
    """The child of a fork under an open transaction read, and refused both writes, saying why."""
    child = report.get("child")
    return (
        report.get("child_status") == 0
        and isinstance(child, dict)
        and child.get("read") == "ok"
        and all(
            str(child.get(key, "")).startswith("CatalogFileError")
            and "forked while another thread had a transaction open" in str(child.get(key))
            for key in ("inherited", "new")
        )
    )


@pytest.mark.parametrize("held", ["transaction", "reading"])
def test_fork_while_another_thread_uses_the_catalog(tmp_path: Path, held: str) -> None:
    # Another thread runs short transactions (or reads) back to back: the fork waits for the
    # one in flight and holds back the next, so the child starts with nothing half-done.
    report = _child("fork", str(tmp_path / "catalog.db"), held)
    assert report["returncode"] == 0, report
    assert report["child_status"] == 0, report
    assert report["child"] == {"read": "ok", "inherited": "ok", "new": "ok"}, report
    assert report["parent_after"] == "ok", report


def test_fork_while_a_transaction_stays_open_refuses_writes_in_the_child(tmp_path: Path) -> None:
    # The transaction outlives the fork's wait: SQLite's record of it cannot be cleared in the
    # child without rewriting shared memory under the parent's transaction, so the child reads
    # but refuses to write, saying why, and the parent's data is untouched.
    report = _child("fork", str(tmp_path / "catalog.db"), "writer-lock")
    assert report["returncode"] == 0, report
    assert _refused_cleanly(report), report
    assert report["parent_after"] == "ok", report


def test_fork_inside_a_transaction_aborts_it_in_the_child(tmp_path: Path) -> None:
    report = _child("fork-inside-transaction", str(tmp_path / "catalog.db"))
    assert report["returncode"] == 0, report
    assert report["child_status"] == 0, report
    assert report["child_block"] == "TransactionAbortedError", report
    assert report["child_committed_nothing"] is True, report
    assert report["parent_committed"] is True, report


@pytest.mark.slow
def test_fork_unsafe_fault_is_caught(tmp_path: Path) -> None:
    # The other thread holds its transaction open across the fork, by construction (a thread
    # running transactions back to back leaves it to the scheduler whether the fork lands inside
    # one). Without the fault the child refuses its writes cleanly; with it, it does not.
    path = str(tmp_path / "catalog.db")
    assert _refused_cleanly(_child("fork", path, "writer-lock")), "the clean control changed"
    report = _child("fork", str(tmp_path / "faulty.db"), "writer-lock", faults="fork_unsafe")
    assert not _refused_cleanly(report), report


def test_a_closed_catalog_stays_registered_until_its_busy_connection_closes(catalog_path: Path) -> None:
    # A new catalog may open the file itself (to check its header) only while no connection of
    # this process is open on it: closing that descriptor would drop SQLite's locks. A catalog
    # closed while another thread is inside a transaction still has that connection open.
    import threading

    from metafuse import _schema

    first = Catalog(catalog_path)
    first.create(make("a"))
    inside = threading.Event()
    leave = threading.Event()

    def hold() -> None:
        with first.transaction():
            first.get("a")
            inside.set()
            leave.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert inside.wait(30)
        first.close()
        real = str(catalog_path.resolve())
        assert _schema._open_catalogs.get(real) == 1, "unregistered while its connection is open"
        with Catalog(catalog_path) as second:
            assert _schema._open_catalogs.get(real) == 2
            assert second.get("a") is not None
    finally:
        leave.set()
        holder.join(30)
    assert _schema._open_catalogs.get(str(catalog_path.resolve())) is None


_OPEN_AT_FORK = """
import os, sys, threading
from metafuse import Catalog, _schema
from metafuse.stress.scenarios._lifecycle.fork import wait_child

path = sys.argv[1]
Catalog.open(path).close()
holding, release = threading.Event(), threading.Event()

def opening() -> None:
    # Another thread is inside the process-wide open/close registration at the fork.
    with _schema._open_lock:
        holding.set()
        release.wait()

threading.Thread(target=opening, daemon=True).start()
holding.wait()
pid = os.fork()
if pid == 0:
    code = 1
    try:
        with Catalog.open(path):
            code = 0
    finally:
        os._exit(code)
print(wait_child(pid, 10.0))
release.set()
"""


def test_a_child_forked_while_another_thread_opens_a_catalog_can_open_one(tmp_path: Path) -> None:
    # The thread that held the open/close registration's lock at the fork does not exist in the
    # child: the child's copy of the lock must not stay held.
    done = _python("-c", _OPEN_AT_FORK, str(tmp_path / "catalog.db"), timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "exit 0", done.stdout


_CONNECTING_AT_FORK = """
import os, threading, time
from metafuse import _connections

inside, left = threading.Event(), threading.Event()

def connecting() -> None:
    # Another thread is inside SQLite outside any session call (opening or closing a connection).
    with _connections.native_call():
        inside.set()
        time.sleep(0.2)
        left.set()

threading.Thread(target=connecting, daemon=True).start()
inside.wait()
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
print("waited" if left.is_set() else "did not wait")
"""


def test_a_fork_waits_for_a_connection_being_opened_or_closed(tmp_path: Path) -> None:
    # Opening or closing a connection holds SQLite's process-wide mutexes with the GIL released;
    # a child forked meanwhile would inherit them locked and hang on its first connection.
    done = _python("-c", _CONNECTING_AT_FORK, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "waited", done.stdout


_READING_AT_FORK = """
import os, sqlite3, sys, threading
from metafuse import Catalog, _connections
from metafuse.stress.scenarios._lifecycle.fork import fork_with_threads, wait_child

path = sys.argv[1]
catalog = Catalog.open(path)
catalog.get("x")  # an idle connection for each child to inherit
stop = threading.Event()

def reading() -> None:
    # Another thread inside SQLite on the same file, through a connection no fork waits for.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    while not stop.is_set():
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    conn.close()

reader = threading.Thread(target=reading)
reader.start()
outcomes = []
for _ in range(12):
    pid = fork_with_threads()
    if pid == 0:
        # Exit 3 if the hook closed the inherited connection instead of abandoning it.
        kept = [s for s in _connections._orphans if s.conn is not None and not s.closed]
        os._exit(0 if kept else 3)
    outcomes.append(wait_child(pid, 10.0))
    if outcomes[-1] != "exit 0":
        break
stop.set()
reader.join()
catalog.close()
print(" ".join(outcomes))
"""


def test_a_child_forked_while_another_thread_reads_the_file_leaves_connections_alone(tmp_path: Path) -> None:
    # The reader holds SQLite's per-file mutexes about a third of the time at a fork; a child that
    # closed its inherited connection would wait on them forever (its hook never returned).
    done = _python("-c", _READING_AT_FORK, str(tmp_path / "catalog.db"), timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["exit", "0"] * 12, done.stdout


_OUTLIVING_THE_PARENT = """
import os, sqlite3, sys
from metafuse import Catalog, Dataset
from metafuse.stress.scenarios._lifecycle.fork import wait_child

path = sys.argv[1]
catalog = Catalog.open(path)
catalog.create(Dataset(name="a", uri="s3://bucket/a"))
go_read, go_write = os.pipe()
ready_read, ready_write = os.pipe()
pid = os.fork()
if pid == 0:
    code = 1
    try:
        catalog.create(Dataset(name="b", uri="s3://bucket/b"))  # the child's connection has the WAL open
        os.write(ready_write, b"x")
        os.read(go_read, 1)
        catalog.create(Dataset(name="c", uri="s3://bucket/c"))
        code = 0
    finally:
        os._exit(code)
os.read(ready_read, 1)  # the child's after-fork hooks have run
catalog.close()
# Another user of the file comes and goes. If the child did not hold its locks for real, this close
# would see no other user, checkpoint, and delete the WAL the child goes on writing to.
other = sqlite3.connect(path)
other.execute("SELECT count(*) FROM sqlite_master").fetchone()
other.close()
os.write(go_write, b"x")
print(wait_child(pid, 30.0))
with Catalog.open(path) as again:
    print(*(name for name in "abc" if again.get(name) is not None))
"""


# The same, but the child closes the catalog it inherited and opens the file again first: its
# abandoned connections still count their locks as held, so that open must not check the file's
# header through a descriptor of its own (closing it would drop every lock the child holds on it).
_REOPEN = "        catalog.close()\n        catalog = Catalog.open(path)\n"
_REOPENED_IN_THE_CHILD = _OUTLIVING_THE_PARENT.replace(
    '        catalog.create(Dataset(name="b"', _REOPEN + '        catalog.create(Dataset(name="b"', 1
)


def test_a_child_that_outlives_its_parents_connections_keeps_its_writes(tmp_path: Path) -> None:
    # The child abandons the connections it inherited; SQLite still counts their locks as held, so
    # the child must hold them itself, or its acknowledged write is lost.
    done = _python("-c", _OUTLIVING_THE_PARENT, str(tmp_path / "catalog.db"), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["exit 0", "a b c"], done.stdout


def test_a_child_that_reopens_the_file_after_closing_its_inherited_catalog_keeps_its_writes(
    tmp_path: Path,
) -> None:
    assert _REOPENED_IN_THE_CHILD != _OUTLIVING_THE_PARENT
    done = _python("-c", _REOPENED_IN_THE_CHILD, str(tmp_path / "catalog.db"), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["exit 0", "a b c"], done.stdout
