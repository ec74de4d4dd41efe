"""What a run measures about the process it runs in: descriptors and resident memory.

Leak verdicts count only what they name: descriptors whose `/proc/self/fd` link points at one of
the catalog's own files (`catalog_fds`), read at points where nothing else touches the catalog.
Other threads may open and close unrelated files at any time (a memory probe, a logger, the
interpreter itself), so the whole-process count (`count_open_fds`) is a figure to report, never a
verdict. `RssProbe` opens `/proc/self/status` once, when it is created, and re-reads it with
`pread`: it opens no descriptor while clients run.
"""

from __future__ import annotations

import os
import threading

from .._logcommits import REPLICA_DIR_PREFIX, is_store_url, replica_root

CATALOG_SUFFIXES = ("", "-wal", "-mfgen")
"""The files a catalog at `path` holds descriptors on per Catalog: the database, its WAL, the slots.

`-shm` is left out on purpose: its descriptors are per process, not per Catalog. SQLite keeps one
while any connection of the process has the database open, and the cache's WAL-index view maps
it once per process and never closes it (closing would drop SQLite's locks: see
`metafuse._walindex`). A leaked connection still shows, in its database and `-wal` descriptors."""
_DELETED = " (deleted)"


def replica_prefix() -> str:
    """Where every replica of a catalog on an object store lives: its descriptors count as the catalog's."""
    return os.path.join(replica_root(), REPLICA_DIR_PREFIX)


def catalog_files(path: str) -> frozenset[str]:
    """Return the real paths of the catalog's own files (`os.path.realpath` of `path` + suffixes)."""
    real = os.path.realpath(path)
    return frozenset(real + suffix for suffix in CATALOG_SUFFIXES)


def catalog_fds(path: str) -> int:
    """Return how many of this process's descriptors refer to the catalog at `path`'s files.

    For a catalog on an object store (`path` is its URL) those are the files of every replica.

    A descriptor on a file that was unlinked since still counts (it is still held). Exact when
    no thread opens or closes one of those files while it runs; unrelated descriptors opened by
    other threads meanwhile never change the answer. -1 where `/proc/self/fd` is unavailable.
    """
    names = catalog_files(path)
    replicas = replica_prefix() if is_store_url(path) else None
    try:
        entries = os.listdir("/proc/self/fd")
    except OSError:
        return -1
    held = 0
    for entry in entries:
        try:
            target = os.readlink(f"/proc/self/fd/{entry}")
        except OSError:  # closed since the listing (listdir's own descriptor, for one)
            continue
        if target.endswith(_DELETED):
            target = target[: -len(_DELETED)]
        if target in names or (replicas is not None and target.startswith(replicas)):
            held += 1
    return held


def count_open_fds() -> int:
    """Return this process's open file descriptors (-1 where /proc is unavailable).

    Every thread's descriptors count, so this is a figure to report, not a leak verdict.
    """
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # minus the descriptor listdir itself used
    except OSError:
        return -1


def _vmrss(status: bytes) -> int:
    for line in status.split(b"\n"):
        if line.startswith(b"VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def resident_bytes() -> int:
    """Return this process's resident set size in bytes (0 where /proc is unavailable)."""
    try:
        with open("/proc/self/status", "rb") as status:
            return _vmrss(status.read())
    except (OSError, ValueError, IndexError):
        return 0


def warmup_seconds(duration: float) -> float:
    """When memory counts as warmed up: after the first minute, or the first sixth of a short run."""
    return min(60.0, duration / 6)


class RssProbe:
    """Reads resident memory once the run has warmed up, and again when asked at the end.

    `/proc/self/status` is opened here, once, and re-read with `pread` from the timer thread and
    from `finish`: the probe opens no file while the clients run, so it cannot disturb a count
    of descriptors taken meanwhile. Call `finish` exactly once; it closes the file.
    """

    def __init__(self, duration: float) -> None:
        self.warm = 0
        self._lock = threading.Lock()
        try:
            self._fd = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._fd = -1
        self._timer = threading.Timer(warmup_seconds(duration), self._sample)
        self._timer.daemon = True
        self._timer.start()

    def _read(self) -> int:
        with self._lock:  # never pread a descriptor that `finish` is closing
            if self._fd < 0:
                return 0
            try:
                return _vmrss(os.pread(self._fd, 65536, 0))
            except (OSError, ValueError, IndexError):
                return 0

    def _sample(self) -> None:
        self.warm = self._read()

    def finish(self) -> tuple[int, int]:
        """Stop waiting and return (RSS after warm-up, RSS now); 0 where warm-up never came."""
        self._timer.cancel()
        end = self._read()
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        return self.warm, end


def rss_growth(warm: int, end: int) -> float | None:
    """Growth of resident memory from warm-up to the end, or None when not measured."""
    return (end - warm) / warm if warm and end else None
