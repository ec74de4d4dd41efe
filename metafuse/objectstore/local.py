"""`LocalDirStore`: the object-store contract on one local directory, for tests and single hosts.

Every object is a file under the root, written whole to a temporary file first and then made
visible in one atomic step, so a reader sees the old bytes or the new, never a mix. Every change
to the directory tree of keys happens under an exclusive `flock` on the store's lock file
(queued through a second one, the gate, so that listings cannot starve writers):

- `create` links the temporary file into place (`link(2)` fails if the name exists), so exactly
  one of many concurrent creators wins, across threads and processes;
- `update` compares the current file's tag with the expected one and renames into place;
- `overwrite` renames into place; `delete` unlinks.

`list` and `list_meta` read the directories under the same lock, shared: readdir alone is not a
snapshot (entries added during a walk may or may not be seen, in hash order, so a listing taken
during appends could hold `n + 2` but not `n`), and no key can appear or go while the lock is held.

A tag names the file an object's bytes were written to: its inode, size and modification time in
nanoseconds, read with `fstat`, so `head` and `list_meta` never read the object. Each put sets
the new file's modification time, under the lock, to the current time and later than the version
it replaces, so two versions of a key never share a tag even if the file system reuses the
inode. The lock is a POSIX advisory `flock`: it serializes processes on one host, not over NFS.

A store whose directory was removed after it was opened raises `StoreInaccessible` from
`list`, `list_meta`, `put` and `delete` (each takes the lock, which lives there); it is never
re-created silently. `get` and `head` of a key raise `NotFound`, as for any absent key.

For tests of what a store's misbehaviour does to its clients, `misbehaving(root, hook)` routes the
puts of every `LocalDirStore` opened on `root` meanwhile (in this process) through `hook`, which
may land a put and then lose its reply, or hold it and land it late (see
`metafuse.objectstore.lost_replies.LostReplies`). No directory has a hook unless a test gives it one.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import heapq
import itertools
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ._base import GetResult, ObjectMeta, ObjectStore, PutMode, check_key
from .errors import (
    AlreadyExists,
    InvalidKey,
    NotFound,
    PreconditionFailed,
    StoreInaccessible,
    StoreUnavailable,
)

INTERNAL_DIR = ".metafuse-store"
"""Under the root: the lock file and temporary files (keys never start with '.', so never clash)."""


PutHook = Callable[[str, bytes, PutMode, Callable[[], str]], str]
"""A test's stand-in for the world between a client and the store: called as `hook(key, data,
mode, land)`, where `land()` makes the put and returns its tag (or raises what the store says).
It returns a tag or raises as a store's `put` does, whether or not (or when) it called `land`."""

_hooks: dict[str, PutHook] = {}
_hooks_changed = threading.Condition()


@contextlib.contextmanager
def misbehaving(root: str | os.PathLike[str], hook: PutHook) -> Iterator[None]:
    """Route the puts of every `LocalDirStore` opened on `root` inside the block through `hook`
    (in this process; a store keeps its hook after the block). For tests only.

    One block per directory at a time: a thread entering a block for a directory another
    thread's block holds waits until that one ends, so each store gets the hook of the block it
    was opened in."""
    path = os.path.abspath(os.fspath(root))
    with _hooks_changed:
        _hooks_changed.wait_for(lambda: path not in _hooks)
        _hooks[path] = hook
    try:
        yield
    finally:
        with _hooks_changed:
            del _hooks[path]
            _hooks_changed.notify_all()


def file_tag(info: os.stat_result) -> str:
    """The tag `LocalDirStore` gives the object whose file has this `stat`: inode, size, mtime.

    Not the change time: creating a key links and then unlinks the temporary name, and a delete
    unlinks, each moving the change time of a file whose bytes did not change.
    """
    return f'"{info.st_ino:x}-{info.st_size:x}-{info.st_mtime_ns:x}"'


class LocalDirStore(ObjectStore):
    """An `ObjectStore` in a directory (created if absent); safe across threads and processes."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        path = Path(os.path.abspath(os.fspath(root)))
        try:
            (path / INTERNAL_DIR / "tmp").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"opening {path}", exc.strerror or str(exc)) from exc
        self.root = path
        self.url = f"file://{path}"
        self._internal = path / INTERNAL_DIR
        self._lock_path = self._internal / "lock"
        self._gate_path = self._internal / "gate"
        with _hooks_changed:
            self._hook = _hooks.get(str(path))

    def get(self, key: str) -> GetResult:
        path = self._path(key)
        try:
            with open(path, "rb") as handle:
                # The tag of the file opened: the store never writes into a visible file, so
                # these are the bytes of exactly this version.
                info = os.fstat(handle.fileno())
                data = handle.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(key) from None
        except OSError as exc:
            raise StoreUnavailable(f"get {key}", exc.strerror or str(exc)) from exc
        return GetResult(data, file_tag(info))

    def head(self, key: str) -> ObjectMeta:
        info = self._stat(key, f"head {key}")
        if info is None:
            raise NotFound(key)
        return _meta(key, info)

    def put(self, key: str, data: bytes, mode: PutMode) -> str:
        if self._hook is not None:
            return self._hook(key, data, mode, lambda: self._put(key, data, mode))
        return self._put(key, data, mode)

    def _put(self, key: str, data: bytes, mode: PutMode) -> str:
        if mode.kind not in ("create", "update", "overwrite"):
            raise ValueError(f"unknown put mode {mode.kind!r}: use CREATE, OVERWRITE or update(tag)")
        target = self._path(key)
        temp = self._write_temp(key, data)
        try:
            with self._locked(f"put {key}"):
                self._ensure_parent(key, target)
                current = None if mode.kind == "create" else self._stat(key, f"put {key}")
                if mode.kind == "update":
                    assert mode.tag is not None
                    if current is None:
                        raise NotFound(key)
                    if file_tag(current) != mode.tag:
                        raise PreconditionFailed(key, mode.tag)
                # Later than the version it replaces, even if the clock stepped back or the
                # file system hands this file the replaced one's inode: the tags then differ.
                now = time.time_ns()
                if current is not None:
                    now = max(now, current.st_mtime_ns + 1)
                os.utime(temp, ns=(now, now))
                if mode.kind == "create":
                    try:
                        os.link(temp, target)
                    except FileExistsError:
                        raise AlreadyExists(key) from None
                    os.unlink(temp)
                else:
                    os.replace(temp, target)
                tag = file_tag(os.stat(target))
                _fsync_dir(target.parent)
        except OSError as exc:
            raise self._os_error(f"put {key}", key, exc) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        return tag

    def list(self, prefix: str = "", start_after: str = "", limit: int | None = None) -> builtins.list[str]:
        with self._locked(f"list {prefix!r}", shared=True):
            return builtins.list(itertools.islice(self._keys(prefix, start_after, limit), limit))

    def list_meta(
        self, prefix: str = "", start_after: str = "", limit: int | None = None
    ) -> builtins.list[ObjectMeta]:
        found: builtins.list[ObjectMeta] = []
        with self._locked(f"list {prefix!r}", shared=True):
            for key in itertools.islice(self._keys(prefix, start_after, limit), limit):
                info = self._stat(key, f"list {prefix!r}")
                if info is not None:  # only a process ignoring the lock can remove it meanwhile
                    found.append(_meta(key, info))
        return found

    def delete(self, key: str) -> None:
        target = self._path(key)
        try:
            with self._locked(f"delete {key}"):
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    os.unlink(target)
                _fsync_dir(target.parent)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._os_error(f"delete {key}", key, exc) from exc

    def _keys(self, prefix: str, start_after: str, limit: int | None) -> Iterator[str]:
        """The keys under `prefix` after `start_after`, in UTF-8 byte order, found lazily.

        Walks only the directory the prefix names and, below it, only directories that can hold
        a wanted key. With a `limit`, each directory's names come off a heap, so taking the
        first `k` keys orders `k` of them, not the whole directory. Call it with the lock held.
        """
        base = ""
        if "/" in prefix:
            base = prefix.rsplit("/", 1)[0] + "/"
            if any(not part or part.startswith(".") for part in base[:-1].split("/")):
                return iter(())  # no valid key has such a component
        return self._walk(base, prefix, start_after, limit is not None)

    def _walk(self, base: str, prefix: str, after: str, lazy: bool) -> Iterator[str]:
        # Strings compare by code point, which is the byte order of their UTF-8 encoding: no
        # name needs encoding to be ordered as S3 orders keys.
        directory = self.root.joinpath(*base.split("/")[:-1]) if base else self.root
        wanted: builtins.list[str] = []  # keys, and subdirectories as "base/name/"
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    name = entry.name
                    if name.startswith("."):
                        continue  # the store's own files, or a name no key can have
                    if entry.is_dir(follow_symlinks=False):
                        # Every key below starts with `sort`, so they sort together, right there.
                        sort = base + name + "/"
                        below_prefix = sort.startswith(prefix) or prefix.startswith(sort)
                        if below_prefix and (sort > after or after.startswith(sort)):
                            wanted.append(sort)
                    else:
                        sort = base + name
                        if sort > after and sort.startswith(prefix) and entry.is_file():
                            wanted.append(sort)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise StoreUnavailable(f"list {base!r}", exc.strerror or str(exc)) from exc
        if lazy:
            heapq.heapify(wanted)
            ordered: Iterator[str] = (heapq.heappop(wanted) for _ in range(len(wanted)))
        else:
            wanted.sort()
            ordered = iter(wanted)
        for sort in ordered:
            if sort.endswith("/"):  # a key never does: this is a subdirectory
                yield from self._walk(sort, prefix, after, lazy)
            else:
                yield sort

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _stat(self, key: str, what: str) -> os.stat_result | None:
        """The stat of the object's file, or None if there is no such object."""
        try:
            info = os.stat(self._path(key))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StoreUnavailable(what, exc.strerror or str(exc)) from exc
        return info if stat.S_ISREG(info.st_mode) else None

    def _write_temp(self, key: str, data: bytes) -> str:
        try:
            fd, temp = tempfile.mkstemp(dir=self._internal / "tmp", prefix="put-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            self._raise_if_gone(f"put {key}")
            raise StoreUnavailable(f"put {key}", exc.strerror or str(exc)) from exc
        return temp

    def _ensure_parent(self, key: str, target: Path) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InvalidKey(key, "a prefix of this key is already an object in a local store") from None

    @contextlib.contextmanager
    def _locked(self, what: str, shared: bool = False) -> Iterator[None]:
        """Hold the store's lock, exclusive (a write) or shared (a listing).

        Everyone passes the gate (an exclusive `flock` held only while queueing for the lock),
        so a writer waiting for listings to finish holds back new ones: with listings on every
        read, shared holders that kept overlapping would otherwise starve the writers.
        """
        lock = self._open_lock(self._lock_path, what)
        try:
            gate = self._open_lock(self._gate_path, what)
            try:
                fcntl.flock(gate, fcntl.LOCK_EX)
                fcntl.flock(lock, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            finally:
                os.close(gate)
            yield
        finally:
            os.close(lock)

    def _open_lock(self, path: Path, what: str) -> int:
        # A fresh open file description per call: flock then excludes other threads of this
        # process as well as other processes.
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            self._raise_if_gone(what)
            raise StoreUnavailable(what, f"cannot open lock file {path}: {exc.strerror}") from exc

    def _raise_if_gone(self, what: str) -> None:
        """Raise `StoreInaccessible` if the store's directory was removed (or moved) under it."""
        if not self._internal.is_dir():
            raise StoreInaccessible(
                self.url, str(self.root), what, f"{self._internal} is gone: the store was removed or moved"
            )

    def _os_error(self, what: str, key: str, exc: OSError) -> Exception:
        if exc.errno in (errno.ENOTDIR, errno.EISDIR):
            return InvalidKey(key, "a prefix of this key is already an object in a local store")
        return StoreUnavailable(what, exc.strerror or str(exc))


def _meta(key: str, info: os.stat_result) -> ObjectMeta:
    return ObjectMeta(key, info.st_size, file_tag(info), info.st_mtime)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
