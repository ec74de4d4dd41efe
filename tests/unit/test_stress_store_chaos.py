"""`store_chaos`'s `lost_reply` act, played directly on a `log+file://` catalog."""

from __future__ import annotations

from pathlib import Path

from metafuse import Catalog
from metafuse.objectstore import CommitLog, LocalDirStore
from metafuse.stress.scenarios.store_chaos import ACTS, KEPT, LOCAL_ONLY, acts_for, play


def test_a_writer_whose_number_a_rival_took_while_its_reply_was_lost_is_kept_once(tmp_path: Path) -> None:
    url = f"log+file://{tmp_path}/chaos"
    assert play(url, "lost_reply") == KEPT
    with Catalog.open(url) as fresh:
        mine = fresh.get("chaos.mine")
        rival = fresh.get("chaos.rival")
    assert mine is not None
    assert rival is not None
    # Three commits, three entries: the late copy of the lost one added none.
    assert [entry.sequence for entry in CommitLog(LocalDirStore(tmp_path / "chaos")).tail()] == [1, 2, 3]


def test_the_lost_reply_act_is_played_only_where_the_store_can_misbehave(tmp_path: Path) -> None:
    assert acts_for(f"log+file://{tmp_path}/c") == ACTS
    on_s3 = acts_for("s3://bucket/prefix?endpoint_url=http://127.0.0.1:9")
    assert on_s3 == tuple(act for act in ACTS if act not in LOCAL_ONLY)
    assert on_s3[0] == "foreign_snapshot"
    assert on_s3[1] == "deleted_entry"
