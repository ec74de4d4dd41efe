"""Reliability: a writer SIGKILLed mid-write loses nothing it acknowledged, and no half-write survives."""

from __future__ import annotations

import signal
from pathlib import Path

from metafuse import Catalog, limits

from .reliability_helpers import Child, make

ACKS_BEFORE_KILL = 40
BATCH = 30
BATCHES_BEFORE_KILL = 4


def _wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _parse_acks(lines: list[str]) -> dict[str, tuple[int, int]]:
    """Return, per dataset, the highest acknowledged (version, seq) from `ack NAME VERSION SEQ` lines."""
    acked: dict[str, tuple[int, int]] = {}
    for line in lines:
        kind, name, version, seq = line.split()
        assert kind == "ack", line
        acked[name] = max(acked.get(name, (0, 0)), (int(version), int(seq)))
    return acked


def test_sigkilled_writer_loses_no_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    with Catalog(path) as catalog:
        catalog.create(make("crash.before"))
    lines: list[str] = []
    with Child("ack-writer", str(path)) as child:
        while len(lines) < ACKS_BEFORE_KILL:
            line = child.next_line()
            assert line is not None, f"writer died on its own: {child.finish()}"
            assert line != "done", "the writer stopped before it was killed"
            lines.append(line)
        status = child.kill()
        lines += child.rest()  # acknowledged before it died: these count too
    assert status == -signal.SIGKILL, "the writer must die mid-stream, still writing"
    wal = _wal(path)
    assert wal.exists(), "a killed writer leaves its write-ahead log behind"
    assert wal.stat().st_size > 0

    acked = _parse_acks(lines)
    with Catalog(path, cache_size=0) as catalog:
        assert catalog.integrity_check() == ["ok"]
        assert catalog.get("crash.before") is not None
        for name, (version, seq) in acked.items():
            stored = catalog.get(name)
            assert stored is not None, f"{name} was acknowledged at version {version} and is gone"
            assert stored.version >= version, f"{name}: stored v{stored.version} < acknowledged v{version}"
            if stored.version == version:
                assert stored.description == f"write {seq}"
                assert {field.description for field in stored.fields} == {f"write {seq}"}
        assert catalog.version >= len(lines) + 1
        # The recovered catalog takes writes again.
        survivor = catalog.get("crash.0") or catalog.get("crash.1")
        assert survivor is not None
        catalog.save(survivor.replace(description="after the crash"), expected_version=survivor.version)


def test_read_only_open_after_a_crash_sees_every_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    lines: list[str] = []
    with Child("ack-writer", str(path)) as child:
        while len(lines) < 10:
            line = child.next_line()
            assert line is not None, child.finish()
            assert line != "done"
            lines.append(line)
        assert child.kill() == -signal.SIGKILL
        lines += child.rest()
    assert _wal(path).stat().st_size > 0
    with Catalog(path, read_only=True) as reader:
        assert reader.integrity_check() == ["ok"]
        for name, (version, _) in _parse_acks(lines).items():
            stored = reader.get(name)
            assert stored is not None
            assert stored.version >= version


def test_sigkill_inside_create_many_leaves_whole_batches_only(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    with Catalog(path):
        pass
    with Child("batch-writer", str(path), str(BATCH), str(BATCHES_BEFORE_KILL)) as child:
        lines = child.rest()  # the child kills itself halfway through its last batch
        status = child.kill()
    assert status == -signal.SIGKILL, f"the writer was not killed mid-batch: {lines}"
    acked = [int(line.split()[-1]) for line in lines]
    assert acked == list(range(BATCHES_BEFORE_KILL)), lines
    with Catalog(path, cache_size=0) as catalog:
        assert catalog.integrity_check() == ["ok"]
        names = [dataset.name for dataset in catalog.list(limit=limits.PAGE_MAX)]
        assert catalog.version == BATCH * BATCHES_BEFORE_KILL
    per_batch: dict[int, int] = {}
    for name in names:
        batch = int(name.split(".")[1])
        per_batch[batch] = per_batch.get(batch, 0) + 1
    assert per_batch == dict.fromkeys(range(BATCHES_BEFORE_KILL), BATCH), (
        f"datasets per batch after a kill inside batch {BATCHES_BEFORE_KILL}: {per_batch}"
    )
