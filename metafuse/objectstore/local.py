"""`LocalDirStore`: the object-store contract on one local directory, for tests and single hosts.

Every object is a file under the root, written whole to a temporary file first and then made
visible in one atomic step, so a reader sees the old bytes or the new, never a mix:

- `create` links the temporary file into place (`link(2)` fails if the name exists), so exactly
  one of many concurrent creators wins, across threads and processes;
- `update` compares the current file's hash with the expected tag and renames into place while
  holding an exclusive `flock` on the store's lock file, which every writer takes;
- `overwrite` renames into place under the same lock; `delete` unlinks under it.

Tags are SHA-256 hashes of the content, like S3's ETags are MD5 hashes of simple uploads.
The lock is a POSIX advisory `flock`: it serializes processes on one host, not over NFS.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ._base import GetResult, ObjectMeta, ObjectStore, PutMode, check_key
from .errors import AlreadyExists, InvalidKey, NotFound, PreconditionFailed, StoreUnavailable

INTERNAL_DIR = ".metafuse-store"
"""Under the root: the lock file and temporary files (keys never start with '.', so never clash)."""


def content_tag(data: bytes) -> str:
    """The tag `LocalDirStore` gives these bytes: a quoted SHA-256 hex digest."""
    return '"' + hashlib.sha256(data).hexdigest() + '"'


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

    def get(self, key: str) -> GetResult:
        data = self._read(key)
        return GetResult(data, content_tag(data))

    def head(self, key: str) -> ObjectMeta:
        path = self._path(key)
        data = self._read(key)
        try:
            modified = os.stat(path).st_mtime
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(key) from None
        except OSError as exc:
            raise StoreUnavailable(f"head {key}", exc.strerror or str(exc)) from exc
        return ObjectMeta(key, len(data), content_tag(data), modified)

    def put(self, key: str, data: bytes, mode: PutMode) -> str:
        target = self._path(key)
        tag = content_tag(data)
        temp = self._write_temp(key, data)
        try:
            with self._locked(f"put {key}"):
                self._ensure_parent(key, target)
                if mode.kind == "create":
                    try:
                        os.link(temp, target)
                    except FileExistsError:
                        raise AlreadyExists(key) from None
                elif mode.kind == "update":
                    assert mode.tag is not None
                    current = self._read(key)
                    if content_tag(current) != mode.tag:
                        raise PreconditionFailed(key, mode.tag)
                    os.replace(temp, target)
                elif mode.kind == "overwrite":
                    os.replace(temp, target)
                else:
                    raise ValueError(f"unknown put mode {mode.kind!r}: use CREATE, OVERWRITE or update(tag)")
                _fsync_dir(target.parent)
        except OSError as exc:
            raise self._os_error(f"put {key}", key, exc) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        return tag

    def list(self, prefix: str = "", start_after: str = "", limit: int | None = None) -> builtins.list[str]:
        # Walk only the directory the prefix names, not the whole store.
        top = self.root
        if "/" in prefix:
            parts = prefix.rsplit("/", 1)[0].split("/")
            if any(not part or part.startswith(".") for part in parts):
                return []  # no valid key has such a component
            top = self.root.joinpath(*parts)
        keys: builtins.list[str] = []
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = os.path.relpath(dirpath, self.root)
            base = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            for name in filenames:
                key = base + name
                if not name.startswith(".") and key.startswith(prefix) and _utf8(key) > _utf8(start_after):
                    keys.append(key)
        keys.sort(key=_utf8)
        return keys if limit is None else keys[:limit]

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

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _read(self, key: str) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(key) from None
        except OSError as exc:
            raise StoreUnavailable(f"get {key}", exc.strerror or str(exc)) from exc

    def _write_temp(self, key: str, data: bytes) -> str:
        try:
            fd, temp = tempfile.mkstemp(dir=self._internal / "tmp", prefix="put-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise StoreUnavailable(f"put {key}", exc.strerror or str(exc)) from exc
        return temp

    def _ensure_parent(self, key: str, target: Path) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InvalidKey(key, "a prefix of this key is already an object in a local store") from None

    @contextlib.contextmanager
    def _locked(self, what: str) -> Iterator[None]:
        # A fresh open file description per call: flock then excludes other threads of this
        # process as well as other processes.
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreUnavailable(what, f"cannot open lock file {self._lock_path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _os_error(self, what: str, key: str, exc: OSError) -> Exception:
        if exc.errno in (errno.ENOTDIR, errno.EISDIR):
            return InvalidKey(key, "a prefix of this key is already an object in a local store")
        return StoreUnavailable(what, exc.strerror or str(exc))


def _utf8(key: str) -> bytes:
    return key.encode("utf-8", "surrogatepass")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
