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

After the slots the file holds a small meta region used to notice commits that did *not* follow
this protocol (another SQLite client, a process that could not open this file): a 64-bit `epoch`
that every cache entry is stamped with, and `known`, the WAL-index header (see
`metafuse._walindex`) as it stood after the last commit this protocol accounted for. See
`metafuse._guard` for how the two are used.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
import weakref
import zlib

from . import perturb

SLOTS = 4096
"""Number of change slots; names that share a slot only share invalidations, never data."""
PENDING = 1 << 63
"""Bit set in a slot while a write to one of its datasets may be committing."""
HEADER_BYTES = 48
"""Size of the WAL-index header copy kept in `known`."""
_EPOCH = SLOTS * 8
_KNOWN = _EPOCH + 8
_KNOWN_END = _KNOWN + HEADER_BYTES
_SIZE = _KNOWN_END + 8
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

    def __init__(self, path: str, *, like: str | None = None) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if like is not None:
                _match_permissions(self._fd, like)
            if os.fstat(self._fd).st_size < _SIZE:
                # Growing only: a second process that already sees the full size leaves it alone.
                with self._locked():
                    if os.fstat(self._fd).st_size < _SIZE:
                        os.ftruncate(self._fd, _SIZE)
            self._map = mmap.mmap(self._fd, _SIZE, mmap.MAP_SHARED)
            identity = os.fstat(self._fd)
        except BaseException:
            os.close(self._fd)
            raise
        self.identity = (identity.st_dev, identity.st_ino)
        self._lock = threading.Lock()
        self._closed = False
        _live.add(self)

    def token(self, name: str) -> int:
        """Return the slot token for `name` as it is now (may have PENDING set)."""
        return self.token_at(slot_of(name))

    def token_at(self, offset: int) -> int:
        """Return the token in the slot at byte `offset` (see `slot_of`)."""
        return int(_SLOT.unpack_from(self._map, offset)[0])

    @property
    def epoch(self) -> int:
        """The current epoch: a cache entry stamped with an older one is refused."""
        return int(_SLOT.unpack_from(self._map, _EPOCH)[0])

    def valid(self, offset: int, token: int, epoch: int) -> bool:
        """Whether an entry read under `token` (slot at `offset`) and `epoch` may still be served."""
        mapped = self._map
        return bool(
            _SLOT.unpack_from(mapped, offset)[0] == token and _SLOT.unpack_from(mapped, _EPOCH)[0] == epoch
        )

    def known(self) -> bytes:
        """The WAL-index header after the last commit this protocol accounted for."""
        return self._map[_KNOWN:_KNOWN_END]

    def account(self, header: bytes, *, bump: bool) -> None:
        """Record `header` as accounted for; with `bump`, first refuse every cached entry.

        Call with the lock held (`locked()`); `bump` is for commits nobody marked in the slots.
        """
        if bump:
            _SLOT.pack_into(self._map, _EPOCH, (self.epoch + 1) & ~PENDING)
        self._map[_KNOWN:_KNOWN_END] = header

    def locked(self) -> _Flock:
        """Exclusive across threads and processes: `with slots.locked(): ...`."""
        return _Both(self._lock, self._fd)

    def replaced(self) -> bool:
        """Whether the file at `path` is no longer the one mapped (deleted, replaced, truncated)."""
        try:
            now = os.stat(self.path)
        except OSError:
            return True
        return (now.st_dev, now.st_ino) != self.identity or now.st_size < _SIZE

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
                if perturb.ON:
                    perturb.point("slot: mark checked -> fresh token stored")
                _SLOT.pack_into(self._map, offset, _new_token())

    def close(self) -> None:
        """Unmap and close the file; later calls are errors. Idempotent."""
        if self._closed:
            return
        self._closed = True
        _live.discard(self)
        self._map.close()
        os.close(self._fd)

    def __del__(self) -> None:
        # A catalog closed while a call was in flight drops its reference instead of closing
        # under that call's feet: the descriptor goes when the last user lets go.
        if not getattr(self, "_closed", True):
            self._closed = True
            os.close(self._fd)

    def _locked(self) -> _Flock:
        return _Flock(self._fd)

    def _abandon_after_fork(self) -> None:
        # In a forked child whose copy could not be reopened: close the child's copy only (the
        # parent's descriptor keeps the description, and its locks, alive).
        self._closed = True
        _live.discard(self)
        self._map.close()
        os.close(self._fd)

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


class _Both(_Flock):
    def __init__(self, lock: threading.Lock, fd: int) -> None:
        super().__init__(fd)
        self._thread_lock = lock

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        try:
            super().__enter__()
        except BaseException:
            self._thread_lock.release()
            raise

    def __exit__(self, *_: object) -> None:
        try:
            super().__exit__()
        finally:
            self._thread_lock.release()


def _match_permissions(fd: int, catalog_path: str) -> None:
    """Give a new sidecar the catalog file's permission bits (and owner, where allowed).

    Whoever may write the catalog must be able to write its change slots too, as SQLite does for
    `-wal` and `-shm`; otherwise their writes would be invisible to the slots.
    """
    try:
        catalog = os.stat(catalog_path)
        mine = os.fstat(fd)
    except OSError:
        return
    wanted = catalog.st_mode & 0o666
    if mine.st_size == 0 and (mine.st_mode & 0o777) != wanted:
        try:
            os.fchmod(fd, wanted)
            if (mine.st_uid, mine.st_gid) != (catalog.st_uid, catalog.st_gid):
                os.fchown(fd, catalog.st_uid, catalog.st_gid)
        except OSError:
            pass  # not ours to change (not root): the catalog's owner made the same file


def open_slots(catalog_path: str, sidecar: str | None = None) -> ChangeSlots | None:
    """Open the change slots of a catalog, or return None where the file cannot be written."""
    try:
        return ChangeSlots(sidecar or sidecar_path(catalog_path), like=catalog_path)
    except OSError:
        return None


def _after_fork_in_child() -> None:
    for slots in list(_live):
        try:
            slots._reopen_after_fork()
        except OSError:
            # Its file is gone or unreadable (a catalog nobody closed, in a directory since
            # removed). The child must not go on sharing the parent's description, nor leave the
            # slots after this one sharing theirs: these are closed here, so a use fails loudly.
            slots._abandon_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
