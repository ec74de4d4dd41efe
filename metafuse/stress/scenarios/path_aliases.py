"""Extra scenario: clients open one catalog through different spellings of its path.

Freshness must follow the file, not the spelling: writers write through the absolute path,
readers read through a relative path, a symlink and a `dir/../dir/` spelling, each with a warm
cache, and no read may be older than a write acknowledged before it started (checked online
through the run's shared board, as in `cache_invalidation_race`). Each reader starts with a
handshake that makes the interleaving happen rather than waiting for it: it warms its cache,
writes every dataset through the absolute path, and reads again through its own spelling.

Where each spelling lives, so that no alias disturbs the others:
- relative: from the current directory at open. Threads share one current directory, so in
  thread mode nobody changes it; in process mode the relative client changes into a directory
  of its own *after* opening, and then also opens the catalog relative to that new directory.
- symlink: each symlink client makes its own link in a temporary directory of its own, removed
  when it stops.
- hard link: a second hard link gives the file a link count of 2, and the catalog refuses any
  spelling of such a file (SQLite keys its -wal/-shm on the name, so two names would corrupt
  it). A hard link to the catalog under test would therefore make every other client's opens
  fail. So setup links the catalog once, before any client starts, checks the link is refused,
  and removes it; during the run each client checks the same refusal on a catalog of its own
  (a small copy in its temporary directory), which disturbs nobody.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from ...catalog import Catalog
from ...errors import CatalogFileError, ConflictError
from ...model import Dataset
from ..client import ClientContext
from ..scenario import RunView, SetupContext, Verdict, inconclusive, scenario
from ._content import recreate, tokened

DATASETS = 2
NAMES = tuple(f"stress.alias.{index}" for index in range(DATASETS))
SPELLINGS = ("absolute", "relative", "symlink", "dotdot")
"""Client `i` opens the catalog through `SPELLINGS[i % 4]`; the absolute ones write."""


def _token(version: int, client: int, sequence: int) -> str:
    return f"v{version}-client-{client}-write-{sequence}"


def hard_link_check(catalog_path: str, link_path: str) -> str:
    """Give `catalog_path` a second name `link_path`, try to open it by each name, then unlink it.

    Returns "refused" when both opens raised `CatalogFileError`, "opened" when either did not
    (the bug), "unsupported" when the file system has no hard links, and "error: ..." for any
    other exception. Every file an open may have made beside the link is removed again.
    """
    try:
        os.link(catalog_path, link_path)
    except OSError as error:
        return f"unsupported ({error.strerror})"
    try:
        for name in (link_path, catalog_path):
            try:
                with Catalog(name, cache_size=0):
                    return "opened"
            except CatalogFileError:
                continue
        return "refused"
    except Exception as error:
        return f"error: {type(error).__name__}: {error}"
    finally:
        for leftover in ("", "-wal", "-shm", "-mfgen"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link_path + leftover)


def _setup(catalog: Catalog, setup: SetupContext) -> dict[str, Any]:
    recreate(catalog, [tokened(name, _token(1, -1, 0)) for name in NAMES])
    real = os.path.realpath(setup.path)
    link = os.path.join(os.path.dirname(real), f".{os.path.basename(real)}.hard-link-check")
    return {"setup_hard_link": hard_link_check(real, link)}


def spellings(path: str, cwd: str) -> dict[str, str]:
    """Return the spellings of `path` that need no new file: absolute, relative to `cwd`, and dir/../dir."""
    absolute = os.path.abspath(path)
    directory, base = os.path.split(absolute)
    return {
        "absolute": absolute,
        "relative": os.path.relpath(absolute, cwd),
        "dotdot": os.path.join(directory, "..", os.path.basename(directory), base),
    }


@contextlib.contextmanager
def _scratch() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="metafuse-alias-")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _copy_refused(scratch: str) -> tuple[int, int, int]:
    """Check the hard-link refusal on a catalog of this client's own: (refused, not refused, controls failed).

    The control: once the second name is gone, the same file must open normally again, or the
    refusal would prove nothing.
    """
    copy = os.path.join(scratch, "copy.db")
    if not os.path.exists(copy):
        Catalog(copy).close()
    outcome = hard_link_check(copy, os.path.join(scratch, "hard.db"))
    if outcome.startswith("unsupported"):
        return 0, 0, 0
    try:
        Catalog(copy).close()
        control_failed = 0
    except Exception:
        control_failed = 1
    return int(outcome == "refused"), int(outcome != "refused"), control_failed


@scenario(
    "path_aliases",
    title="path aliases",
    summary="Clients open one catalog by absolute, relative, symlink and dir/../ paths; no read is stale.",
    setup=_setup,
    default_clients=5,
    default_duration=10,
    shared_catalog=False,
    file_only="path spellings and hard links are properties of a local file",
)
def path_aliases(ctx: ClientContext) -> None:
    """Absolute-path clients write; the others read through their own spelling with a warm cache."""
    spelling = SPELLINGS[ctx.client % len(SPELLINGS)]
    writer = spelling == "absolute"
    reader = not writer or ctx.clients == 1
    with _scratch() as scratch:
        # The hard-link check (several catalog creations) runs after the loop, not before it:
        # before, it could use up a short run, leaving no reads to prove the freshness invariant.
        names = spellings(ctx.path, os.getcwd())
        if spelling == "symlink":
            names["symlink"] = os.path.join(scratch, "catalog-link.db")
            os.symlink(names["absolute"], names["symlink"])
        home = os.getcwd()
        catalogs: list[Catalog] = []
        try:
            _, first = ctx.call("open", Catalog, names[spelling])
            if first is not None:
                catalogs.append(first)
            if spelling == "relative" and ctx.mode == "process":
                # Only a process may change directory: threads share one current directory.
                os.chdir(scratch)
                _, second = ctx.call("open", Catalog, os.path.relpath(names["absolute"], scratch))
                if second is not None:
                    catalogs.append(second)
            reads = _Reads(ctx)
            if catalogs and not writer:
                _handshake(ctx, reads, catalogs, names["absolute"])
            if catalogs:
                _loop(ctx, reads, catalogs, writer, reader)
        finally:
            for catalog in catalogs:
                catalog.close()
            os.chdir(home)
        refused, opened, control_failed = _copy_refused(scratch)
    ctx.recorder.metrics.update(
        hard_links_refused=refused,
        hard_links_opened=opened,
        hard_link_controls_failed=control_failed,
        spelling=spelling,
        catalogs_opened=len(catalogs),
    )


class _Reads:
    """A reader's stale-read check against the run's board, and what it saw."""

    def __init__(self, ctx: ClientContext) -> None:
        self.ctx = ctx
        self.stale = self.behind = self.changes = 0
        self.last: dict[int, int] = {}

    def read_all(self, catalog: Catalog) -> None:
        """Read every dataset once; count each read older than a write acknowledged before it."""
        for index, name in enumerate(NAMES):
            newest = self.ctx.board.read(index)  # acknowledged before this read starts
            _, seen = self.ctx.call("read", catalog.get, name)
            if seen is None:
                continue
            if seen.version < newest:
                self.stale += 1
                self.behind = max(self.behind, newest - seen.version)
            if self.last.get(index) != seen.version:
                self.last[index] = seen.version
                self.changes += 1


def _handshake(ctx: ClientContext, reads: _Reads, catalogs: list[Catalog], absolute: str) -> None:
    """Warm each of this reader's catalogs, write every dataset through `absolute`, read again.

    The interleaving the freshness invariant is about, made to happen rather than hoped for:
    an entry cached under this reader's spelling, a write acknowledged through another spelling,
    then a read through the first, which must see the write. The writers' loop then repeats it
    at random.
    """
    with Catalog(absolute, cache_size=0) as other:
        for catalog in catalogs:
            reads.read_all(catalog)
            for index, name in enumerate(NAMES):
                outcome, stored = ctx.call("write", other.update, name, _touch)
                if outcome == "ok" and stored is not None:
                    ctx.board.raise_to(index, stored.version)
            reads.read_all(catalog)
    ctx.recorder.metrics.update(handshake_stale_reads=reads.stale)


def _touch(dataset: Dataset) -> Dataset:
    return dataset.replace(row_count=(dataset.row_count or 0) + 1)


def _loop(ctx: ClientContext, reads: _Reads, catalogs: list[Catalog], writer: bool, reader: bool) -> None:
    board = ctx.board
    known = dict.fromkeys(range(DATASETS), 1)  # setup created version 1 of each
    sequence = 0
    while not ctx.should_stop():
        sequence += 1
        catalog = catalogs[sequence % len(catalogs)]
        index = sequence % DATASETS
        if writer:
            # Blind writes: a conflict says which version to name next (see cache_invalidation_race).
            proposed = tokened(NAMES[index], _token(known[index] + 1, ctx.client, sequence))
            outcome, stored = ctx.call("write", catalog.save, proposed, expected_version=known[index])
            if outcome == "ok" and stored is not None:
                known[index] = stored.version
                board.raise_to(index, stored.version)
            elif isinstance(ctx.last_error, ConflictError) and ctx.last_error.actual is not None:
                known[index] = ctx.last_error.actual
        if reader:
            reads.read_all(catalog)
    ctx.recorder.metrics.update(
        stale_reads=reads.stale,
        max_versions_behind=reads.behind,
        versions_seen=reads.changes if reader else 0,
    )


SCENARIO = path_aliases


@path_aliases.invariant(
    "no_stale_read",
    "no read, whatever path spelling it used, returned a version older than a write acknowledged before it",
)
def _no_stale_read(run: RunView) -> Verdict:
    return run.no_stale_reads()


@path_aliases.invariant(
    "hard_link_refused", "a catalog file with a second hard link was refused under either name, never opened"
)
def _hard_link_refused(run: RunView) -> Verdict:
    setup = run.shared.get("setup_hard_link", "not checked")
    refused = run.metric_sum("hard_links_refused")
    opened = run.metric_sum("hard_links_opened")
    controls = run.metric_sum("hard_link_controls_failed")
    if setup.startswith("unsupported") and refused + opened == 0:
        return True, f"not applicable: this file system has no hard links ({setup})"
    ok = setup == "refused" and opened == 0 and controls == 0 and refused > 0
    return ok, (
        f"catalog under test: {setup}; clients' own copies: {refused} refused, {opened} not refused,"
        f" {controls} failed to open again once unlinked"
    )


@path_aliases.invariant("every_spelling_read", "every spelling was opened and read, and versions advanced")
def _every_spelling_read(run: RunView) -> Verdict:
    used = {str(r.metrics.get("spelling")) for r in run.recorders if int(r.metrics.get("catalogs_opened", 0))}
    wanted = set(SPELLINGS[: min(run.clients, len(SPELLINGS))])
    advanced = run.metric_max("versions_seen")
    missing = sorted(wanted - used)
    detail = f"spellings used: {sorted(used)}, missing: {missing or 'none'}; up to {advanced} versions seen"
    if missing or not (advanced > DATASETS or run.clients == 1):
        return inconclusive(detail)  # a client that never got to open or read: too little progress
    return True, detail


@path_aliases.invariant("no_errors", "no open, read or write failed unexpectedly")
def _no_errors(run: RunView) -> Verdict:
    return run.no_unexpected_errors()


def _metrics(run: RunView) -> dict[str, Any]:
    return {
        "stale_reads": run.metric_sum("stale_reads"),
        "hard_links_refused": run.metric_sum("hard_links_refused"),
        "setup_hard_link": run.shared.get("setup_hard_link"),
        "handshake_stale_reads": _handshake_stale_reads(run),
    }


def _handshake_stale_reads(run: RunView) -> dict[str, int]:
    """Stale reads in the readers' handshakes, per spelling (all zero unless freshness is broken)."""
    counts: dict[str, int] = {}
    for recorder in run.recorders:
        if "handshake_stale_reads" in recorder.metrics:
            spelling = str(recorder.metrics.get("spelling"))
            counts[spelling] = counts.get(spelling, 0) + int(recorder.metrics["handshake_stale_reads"])
    return counts


def _headline(result: dict[str, Any]) -> list[tuple[str, Any]]:
    operations = result["operations"]
    metrics = result["metrics"]
    return [
        ("Reads", operations.get("read", {}).get("total", 0)),
        ("Successful writes", operations.get("write", {}).get("ok", 0)),
        ("Stale reads", metrics.get("stale_reads", 0)),
        ("Hard links refused", metrics.get("hard_links_refused", 0)),
        ("Errors", sum(op.get("error", 0) for op in operations.values())),
    ]


path_aliases.metrics = _metrics
path_aliases.headline = _headline
