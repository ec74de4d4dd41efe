"""Replica directories: each store catalog's private local copy, owned by one process.

A replica lives in a fresh directory `metafuse-replica-*` under the replica root, holding an
`owner.json` that names the process that made it: the host, the boot, the PID namespace, the
PID and that process's start time. Only that process removes it (`release`): a forked child
that closes an inherited catalog leaves its parent's replica alone. A process that exits without
closing, or is killed, leaves its directory behind; the next store catalog opened under the same
root removes every directory whose owner is provably gone (same host, boot and PID namespace,
and no process with that PID and start time), and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
from typing import Any

PREFIX = "metafuse-replica-"
"""Each replica directory's name starts so."""
OWNER_FILE = "owner.json"


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    """The start time of process `pid` in clock ticks since boot (Linux), or None."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _identity(pid: int) -> dict[str, Any]:
    try:
        namespace: int | None = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = None
    return {
        "host": socket.gethostname(),
        "boot": (_read("/proc/sys/kernel/random/boot_id") or "").strip() or None,
        "pid_namespace": namespace,
        "pid": pid,
        "start": _start_time(pid),
    }


def make(root: str) -> str:
    """Make a new replica directory under `root`, owned by this process; return its path."""
    directory = tempfile.mkdtemp(prefix=PREFIX, dir=root)
    with open(os.path.join(directory, OWNER_FILE), "w", encoding="utf-8") as file:
        json.dump(_identity(os.getpid()), file)
    return directory


def owned_here(directory: str) -> bool:
    """Whether this process made `directory` (a forked child did not)."""
    text = _read(os.path.join(directory, OWNER_FILE))
    try:
        owner = json.loads(text) if text is not None else None
    except ValueError:
        owner = None
    return isinstance(owner, dict) and owner.get("pid") == os.getpid() and owner == _identity(os.getpid())


def release(directory: str) -> None:
    """Remove `directory` if this process made it; leave it to its owner otherwise."""
    if owned_here(directory):
        shutil.rmtree(directory, ignore_errors=True)


def reclaim(root: str) -> list[str]:
    """Remove the replica directories under `root` whose owner process is provably gone."""
    here = _identity(os.getpid())
    removed: list[str] = []
    try:
        names = os.listdir(root)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(PREFIX):
            continue
        directory = os.path.join(root, name)
        text = _read(os.path.join(directory, OWNER_FILE))
        if text is None:
            continue  # being made right now, or made before owners were recorded: leave it
        try:
            owner = json.loads(text)
        except ValueError:
            continue
        if not isinstance(owner, dict) or owner.get("host") != here["host"]:
            continue
        same_boot = owner.get("boot") == here["boot"] and here["boot"] is not None
        if same_boot:
            pid = owner.get("pid")
            if owner.get("pid_namespace") != here["pid_namespace"] or not isinstance(pid, int):
                continue
            if _start_time(pid) == owner.get("start") and _start_time(pid) is not None:
                continue  # alive
        elif owner.get("boot") is None or here["boot"] is None:
            continue
        with contextlib.suppress(OSError):
            shutil.rmtree(directory)
            removed.append(directory)
    return removed
