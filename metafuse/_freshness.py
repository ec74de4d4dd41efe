"""Cross-process change slots: how a cached read knows, without a system call, that it is fresh.

A small file beside the catalog (`<catalog>-mfgen`) is mapped into every process that opens the
catalog. It holds `SLOTS` 64-bit slots; a dataset name hashes (CRC-32, stable across processes) to
one slot. Every write to a dataset stores a new random token in its slot twice:

1. inside the write transaction, before COMMIT, a token with the PENDING bit set;
2. after COMMIT, a fresh token without it, but only if the slot still holds this writer's
   pending token (a compare-and-set under an exclusive `flock`, so a slow writer cannot clear a
   newer writer's pending mark).

A reader loads the slot *before* reading the database and caches what it read under that token;
a later read may use the cached copy only if the slot still holds the same token and it is not
PENDING. A commit the cached read did not see changed the slot after that token was loaded, and
tokens are never reused, so the cached copy is refused. A writer killed between COMMIT and step 2
leaves the slot PENDING, which makes readers bypass the cache for it until the next write: safe.

Loading a slot is a read from shared memory: no system call and no GIL release, which keeps the
threaded read path free of the convoy that a `PRAGMA data_version` per read would cause.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
import weakref
import zlib

SLOTS = 4096
"""Number of change slots; names that share a slot only share invalidations, never data."""
PENDING = 1 << 63
"""Bit set in a slot while a write to one of its datasets may be committing."""
_SIZE = SLOTS * 8
_SLOT = struct.Struct("<Q")
_live: weakref.WeakSet[ChangeSlots] = weakref.WeakSet()


def sidecar_path(catalog_path: str) -> str:
    """Return the path of the change-slot file that belongs to `catalog_path`."""
    return f"{catalog_path}-mfgen"


def slot_of(name: str) -> int:
    """Return the byte offset of the slot for dataset `name`."""
    return (zlib.crc32(name.encode("utf-8")) % SLOTS) * 8


def _new_token() -> int:
    # os.urandom, not `random`: forked processes would otherwise repeat each other's tokens.
    return (int.from_bytes(os.urandom(8), "little") & ~PENDING) | 1


class ChangeSlots:
    """The mapped change-slot file of one catalog.

    Thread-safe. `token` may be called from any thread at any time; `begin`/`finish` serialise
    through a per-object lock and an exclusive `flock` shared by every process.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if os.fstat(self._fd).st_size < _SIZE:
                # Growing only: a second process that already sees the full size leaves it alone.
                with self._locked():
                    if os.fstat(self._fd).st_size < _SIZE:
                        os.ftruncate(self._fd, _SIZE)
            self._map = mmap.mmap(self._fd, _SIZE, mmap.MAP_SHARED)
        except BaseException:
            os.close(self._fd)
            raise
        self._lock = threading.Lock()
        _live.add(self)

    def token(self, name: str) -> int:
        """Return the slot token for `name` as it is now (may have PENDING set)."""
        return self.token_at(slot_of(name))

    def token_at(self, offset: int) -> int:
        """Return the token in the slot at byte `offset` (see `slot_of`)."""
        return int(_SLOT.unpack_from(self._map, offset)[0])

    def begin(self, name: str) -> int:
        """Mark `name`'s slot PENDING before a commit; return the mark for `finish`."""
        mark = _new_token() | PENDING
        offset = slot_of(name)
        with self._lock, self._locked():
            _SLOT.pack_into(self._map, offset, mark)
        return mark

    def finish(self, name: str, mark: int) -> None:
        """After the commit (or rollback), replace `mark` with a fresh token unless overtaken."""
        offset = slot_of(name)
        with self._lock, self._locked():
            if _SLOT.unpack_from(self._map, offset)[0] == mark:
                _SLOT.pack_into(self._map, offset, _new_token())

    def close(self) -> None:
        """Unmap and close the file; later calls are errors."""
        _live.discard(self)
        self._map.close()
        os.close(self._fd)

    def _locked(self) -> _Flock:
        return _Flock(self._fd)

    def _reopen_after_fork(self) -> None:
        # flock belongs to the open file description, which a forked child shares with its
        # parent; a child needs its own description or the two would not exclude each other.
        fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        os.dup2(fd, self._fd)
        os.close(fd)
        self._lock = threading.Lock()


class _Flock:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def __enter__(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *_: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)


def open_slots(catalog_path: str) -> ChangeSlots | None:
    """Open the change slots of a catalog, or return None where the file cannot be written."""
    try:
        return ChangeSlots(sidecar_path(catalog_path))
    except OSError:
        return None


def _after_fork_in_child() -> None:
    for slots in list(_live):
        slots._reopen_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
