"""Which of its parent's locks a forked child takes over: those covering SQLite's two ranges."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from metafuse import _forklocks


def test_a_lock_merged_with_its_neighbour_still_counts_as_held(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db-shm"
    path.write_bytes(b"\0" * 256)
    fd = os.open(path, os.O_RDONLY)
    try:
        inode = os.fstat(fd).st_ino
        start, length = _forklocks.DMS
        assert not _forklocks._covered(_forklocks._read_locks(os.getpid()), inode, start, length)
        # A read mark beside the DMS lock: the kernel lists the two as one range.
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 2, start - 1, os.SEEK_SET)
        assert _forklocks._covered(_forklocks._read_locks(os.getpid()), inode, start, length)
        assert not _forklocks._covered(_forklocks._read_locks(os.getpid()), inode, start + 1, length)
        assert not _forklocks._covered(_forklocks._read_locks(os.getppid()), inode, start, length)
    finally:
        os.close(fd)
