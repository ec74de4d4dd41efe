"""WAL pages written per commit by a one-field save, per search-index variant, against raw `sqlite3`.

    python benchmarks/wal_pages.py [--datasets 1000] [--commits 200] [--json PATH]

Builds one catalog of `--datasets` generated datasets (10 fields, 3 tags each; `_bigcatalog`),
copies it once per variant of the full-text index (FTS5 options, merge settings, triggers) and,
on each copy, runs the same `--commits` saves of a random dataset, in two scenarios:

- `description`: `Catalog.save` of the dataset with a new description (an indexed column);
- `row_count`: `Catalog.save` with a new row count (a column the search index does not hold).

Frames are counted, not timed: before the loop the WAL is checkpointed and truncated, and a read
transaction is held open on another connection so no checkpoint can restart the log; the frames
the loop appended are then (wal size - 32) / (page size + 24), cross-checked against the frame
count `PRAGMA wal_checkpoint` reports. Each frame's page number is mapped to the b-tree that owns
the page (`dbstat`), which says where the pages go. The raw baseline is the conditional
single-row `UPDATE` loop of `_bigcatalog.raw_save`, on a copy without the search index and
triggers (the floor) and on a copy with them (what the search trigger alone costs).

Every variant also runs the same probe queries as `Catalog.search` does (rowid and rank, best
first) after the saves, and the table says which probes fail or rank differently from the
current schema's.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

if importlib.util.find_spec("metafuse") is None:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _bigcatalog as big

from metafuse import Catalog, _schema

COLUMNS = "name, description, field_names, tags"
_SOURCE = (
    "SELECT d.id, d.name, coalesce(d.description, '') AS description,"
    " coalesce((SELECT group_concat(name, ' ') FROM fields WHERE dataset_id = d.id), '') AS field_names,"
    " coalesce((SELECT group_concat(tag, ' ') FROM tags WHERE dataset_id = d.id), '') AS tags"
    " FROM datasets AS d"
)
# The external-content and contentless variants remove a row's old terms with the 'delete'
# command, which needs the old text. A BEFORE trigger on the version bump has the old name and
# description, but the catalog has already rewritten the fields and tags by then: these triggers
# are right only for saves that leave fields and tags alone (both scenarios here), so they
# measure the pages such a design would write, not a design the catalog could use as it is.
_DELETE_WITH_OLD_TEXT = f"""
CREATE TRIGGER datasets_search_forget BEFORE UPDATE OF version ON datasets WHEN old.version > 0 BEGIN
    INSERT INTO search_index (search_index, rowid, {COLUMNS}) VALUES ('delete',
        old.id, old.name, coalesce(old.description, ''),
        coalesce((SELECT group_concat(name, ' ') FROM fields WHERE dataset_id = old.id), ''),
        coalesce((SELECT group_concat(tag, ' ') FROM tags WHERE dataset_id = old.id), ''));
END;
CREATE TRIGGER datasets_search_add AFTER UPDATE OF version ON datasets BEGIN
    INSERT INTO search_index (rowid, {COLUMNS}) VALUES (
        new.id, new.name, coalesce(new.description, ''),
        coalesce((SELECT group_concat(name, ' ') FROM fields WHERE dataset_id = new.id), ''),
        coalesce((SELECT group_concat(tag, ' ') FROM tags WHERE dataset_id = new.id), ''));
END;
"""


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way to build the search index: its CREATE statement, triggers and FTS5 settings."""

    name: str
    index: str
    triggers: str = ""
    settings: tuple[tuple[str, int], ...] = ()
    view: bool = False
    note: str = ""


def fts(options: str = "") -> str:
    """The catalog's FTS5 table with extra `options` appended."""
    return f"CREATE VIRTUAL TABLE search_index USING fts5({COLUMNS}, tokenize = 'unicode61'{options})"


def variants() -> list[Variant]:
    """Every variant measured: schema 1 (the reference), this checkout's, then one change each."""
    return [
        Variant("schema 1: fts5 defaults, every save refreshes", fts(), _V1_TRIGGERS),
        Variant(f"schema {_schema.SCHEMA_VERSION} (this checkout)", _schema._FTS_INDEX, _schema._TRIGGERS),
        Variant("columnsize=0", fts(", columnsize = 0"), _V1_TRIGGERS),
        Variant("detail=column", fts(", detail = column"), _V1_TRIGGERS),
        Variant("detail=none", fts(", detail = none"), _V1_TRIGGERS),
        Variant("detail=none, columnsize=0", fts(", detail = none, columnsize = 0"), _V1_TRIGGERS),
        Variant("automerge=0 (crisismerge 16)", fts(), _V1_TRIGGERS, (("automerge", 0),)),
        Variant("automerge=16", fts(), _V1_TRIGGERS, (("automerge", 16),)),
        Variant("automerge=2", fts(), _V1_TRIGGERS, (("automerge", 2),)),
        Variant("automerge=0, crisismerge=64", fts(), _V1_TRIGGERS, (("automerge", 0), ("crisismerge", 64))),
        Variant("pgsz=4050 (default 1000)", fts(), _V1_TRIGGERS, (("pgsz", 4050),)),
        Variant(
            "external content (view)*",
            fts(", content = 'search_source', content_rowid = 'id'"),
            _DELETE_WITH_OLD_TEXT,
            view=True,
        ),
        Variant("contentless (content='')*", fts(", content = ''"), _DELETE_WITH_OLD_TEXT),
        Variant("trigger skips unchanged text", fts(), _GUARDED_TRIGGERS),
    ]


_V1_TRIGGERS = f"""
CREATE TRIGGER datasets_search_refresh AFTER UPDATE OF version ON datasets BEGIN
    DELETE FROM search_index WHERE rowid = new.id;
    INSERT INTO search_index (rowid, {COLUMNS}) VALUES (
        new.id, new.name, coalesce(new.description, ''),
        coalesce((SELECT group_concat(name, ' ') FROM fields WHERE dataset_id = new.id), ''),
        coalesce((SELECT group_concat(tag, ' ') FROM tags WHERE dataset_id = new.id), ''));
END;
CREATE TRIGGER datasets_search_remove AFTER DELETE ON datasets BEGIN
    DELETE FROM search_index WHERE rowid = old.id;
END;
"""
"""Schema version 1's triggers: every version bump rewrites the dataset's search row."""

_NEW_TEXT = """SELECT new.name, coalesce(new.description, ''),
        coalesce((SELECT group_concat(name, ' ') FROM fields WHERE dataset_id = new.id), ''),
        coalesce((SELECT group_concat(tag, ' ') FROM tags WHERE dataset_id = new.id), '')"""
_GUARDED_TRIGGERS = f"""
CREATE TRIGGER datasets_search_refresh AFTER UPDATE OF version ON datasets
WHEN NOT EXISTS (SELECT {COLUMNS} FROM search_index WHERE rowid = new.id INTERSECT {_NEW_TEXT}) BEGIN
    DELETE FROM search_index WHERE rowid = new.id;
    INSERT INTO search_index (rowid, {COLUMNS}) {_NEW_TEXT.replace("new.name", "new.id, new.name", 1)};
END;
CREATE TRIGGER datasets_search_remove AFTER DELETE ON datasets BEGIN
    DELETE FROM search_index WHERE rowid = old.id;
END;
"""
"""A candidate: the same refresh, skipped when the dataset's indexed text is what the index holds."""


def _script(script: str) -> list[str]:
    return [part.strip() + " END;" for part in script.split("END;") if part.strip()]


def apply(path: Path, variant: Variant) -> None:
    """Replace the search index and its triggers in the catalog at `path` with `variant`'s."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN")
        for (trigger,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("DROP TABLE search_index")
        if variant.view:
            conn.execute(f"CREATE VIEW search_source AS {_SOURCE}")
        conn.execute(variant.index)
        if variant.view:
            conn.execute("INSERT INTO search_index (search_index) VALUES ('rebuild')")
        else:
            conn.execute(f"INSERT INTO search_index (rowid, {COLUMNS}) {_SOURCE}")
        for option, value in variant.settings:
            conn.execute(f"INSERT INTO search_index (search_index, rank) VALUES ('{option}', {value})")
        for statement in _script(variant.triggers):
            conn.execute(statement)
        conn.execute("COMMIT")
        conn.execute("VACUUM")


def strip_search(path: Path) -> None:
    """Drop the search index and its triggers: the raw floor's file."""
    apply_raw = sqlite3.connect(path, isolation_level=None)
    with contextlib.closing(apply_raw) as conn:
        for (trigger,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("DROP TABLE search_index")
        conn.execute("VACUUM")


@dataclasses.dataclass
class Count:
    """Frames appended to the WAL by one loop of commits, and the b-trees their pages belong to."""

    commits: int
    frames: int
    by_tree: dict[str, int]

    @property
    def per_commit(self) -> float:
        return self.frames / self.commits


@contextlib.contextmanager
def counting(path: Path) -> Iterator[list[Count]]:
    """Count the WAL frames written inside the block; the caller sets `commits` on the result."""
    wal = Path(f"{path}-wal")
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            raise RuntimeError(f"{path}: the WAL could not be truncated before counting")
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    pin = sqlite3.connect(path, isolation_level=None)
    pin.execute("BEGIN")
    pin.execute("SELECT count(*) FROM sqlite_master").fetchone()  # holds a snapshot: no WAL restart
    result: list[Count] = []
    try:
        yield result
    finally:
        pin.close()
    data = wal.read_bytes()
    frame = page_size + 24
    frames = (len(data) - 32) // frame if len(data) >= 32 else 0
    if frames and (len(data) - 32) % frame:
        raise RuntimeError(f"{wal}: {len(data)} bytes is not a whole number of frames")
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        logged = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        owners = dict(conn.execute("SELECT pageno, name FROM dbstat"))
    if logged != frames:
        raise RuntimeError(f"{wal}: {frames} frames by size, {logged} by wal_checkpoint")
    pages = (int.from_bytes(data[32 + i * frame : 36 + i * frame], "big") for i in range(frames))
    by_tree = Counter(owners.get(page, "freelist/other") for page in pages)
    result.append(Count(0, frames, dict(by_tree.most_common())))


Change = Callable[[int, random.Random], dict[str, object]]
SCENARIOS: dict[str, Change] = {
    "description": lambda i, rng: {"description": " ".join(rng.sample(big.WORDS, 8)) + f". Edit {i}."},
    "row_count": lambda i, rng: {"row_count": 1_000 + i},
}


def catalog_loop(path: Path, names: Sequence[str], change: Change, commits: int, warmup: int) -> Count:
    """`Catalog.save` of `names[i]` with `change` applied, `warmup` times, then `commits` counted."""
    rng = random.Random(7)
    with Catalog(path) as catalog:

        def run(first: int, count: int) -> None:
            for i in range(first, first + count):
                current = catalog.get(names[i])
                assert current is not None
                catalog.save(current.replace(**change(i, rng)), expected_version=current.version)

        run(0, warmup)
        with counting(path) as counted:
            run(warmup, commits)
    counted[0].commits = commits
    return counted[0]


_VERSION_OF = "SELECT version FROM datasets WHERE name = ?"
_EVERY_COLUMN = (
    "UPDATE datasets SET uri = uri, format = format, description = ?, owner = owner, domain = domain,"
    " partitions = partitions, size_bytes = size_bytes, row_count = row_count, last_modified = ?,"
    " version = version + 1 WHERE id = ? AND version = ?"
)
"""The shape of the catalog's save: every column is assigned, changed or not."""


def raw_loop(
    path: Path, names: Sequence[str], commits: int, warmup: int, *, every_column: bool, secure_delete: str
) -> Count:
    """BEGIN IMMEDIATE, select the version, conditional single-row UPDATE, COMMIT, per name.

    With `every_column` the UPDATE assigns every column as `Catalog.save` does; otherwise it is
    `_bigcatalog.raw_save` (description, version and last_modified only).
    """
    rng = random.Random(7)
    versions: dict[str, int] = {}
    conn = big.raw_connect(path)
    conn.execute(f"PRAGMA secure_delete = {secure_delete}")

    def save(name: str, description: str) -> None:
        if not every_column:
            versions[name] = big.raw_save(conn, name, versions[name], description)
            return
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute("SELECT id, version FROM datasets WHERE name = ?", (name,)).fetchone()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        updated = conn.execute(_EVERY_COLUMN, (description, stamp, row[0], versions[name])).rowcount
        conn.execute("COMMIT")
        assert updated == 1
        versions[name] += 1

    def run(first: int, count: int) -> None:
        for i in range(first, first + count):
            name = names[i]
            if name not in versions:
                versions[name] = conn.execute(_VERSION_OF, (name,)).fetchone()[0]
            save(name, str(SCENARIOS["description"](i, rng)["description"]))

    try:
        run(0, warmup)
        with counting(path) as counted:
            run(warmup, commits)
    finally:
        conn.close()
    counted[0].commits = commits
    return counted[0]


def probes() -> list[tuple[str, str]]:
    """(kind, FTS5 query) pairs over the generated vocabulary, one per search feature."""
    word, other = big.WORDS[0], big.WORDS[1]
    return [
        ("word", word),
        ("prefix", f"{word[:4]}*"),
        ("AND/OR/NOT", f"({word} OR {other}) NOT tier"),
        ("column filter", f"field_names:amount AND description:{word}"),
        ("phrase", '"synthetic dataset"'),
        ("NEAR", f"NEAR({word} benchmarks, 12)"),
        ("every row (bm25 of all)", "synthetic"),
    ]


_PROBE = "SELECT rowid, rank FROM search_index WHERE search_index MATCH ? ORDER BY rank, rowid LIMIT 100"


Hits = list[tuple[int, float]]


def search_results(path: Path, rounds: int = 15) -> tuple[dict[str, Hits | str], dict[str, float]]:
    """Each probe's (rowid, rank) hits, best first, or its error; and each probe's median ms."""
    results: dict[str, Hits | str] = {}
    times: dict[str, list[float]] = {kind: [] for kind, _ in probes()}
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        for _ in range(rounds):
            for kind, query in probes():
                start = time.perf_counter()
                try:
                    results[kind] = [(row[0], round(row[1], 9)) for row in conn.execute(_PROBE, (query,))]
                except sqlite3.OperationalError as error:
                    results[kind] = f"error: {error}"
                times[kind].append((time.perf_counter() - start) * 1e3)
    return results, {kind: statistics.median(spent) for kind, spent in times.items()}


def differences(results: dict[str, Hits | str], reference: dict[str, Hits | str]) -> str:
    """Which probes fail or answer differently (rows, order or bm25 score) from `reference`."""
    failed = [kind for kind, got in results.items() if isinstance(got, str)]
    changed = [kind for kind, got in results.items() if not isinstance(got, str) and got != reference[kind]]
    parts = [f"fails: {', '.join(failed)}"] if failed else []
    if changed:
        parts.append(f"differs: {', '.join(changed)}")
    return "; ".join(parts) or "same"


def measure(datasets: int, commits: int, warmup: int, workdir: Path) -> dict[str, object]:
    """Build, copy, run every variant and baseline; return the report as plain data."""
    base = workdir / "base.db"
    big.build(base, list(big.generate(datasets)))
    rng = random.Random(11)
    names = [big.dataset_name(rng.randrange(datasets)) for _ in range(warmup + commits)]
    rows: list[dict[str, object]] = []
    reference: dict[str, Hits | str] | None = None
    for index, variant in enumerate(variants()):
        row: dict[str, object] = {"variant": variant.name, "note": variant.note}
        for scenario, change in SCENARIOS.items():
            path = workdir / f"v{index}-{scenario}.db"
            shutil.copyfile(base, path)
            apply(path, variant)
            count = catalog_loop(path, names, change, commits, warmup)
            row[scenario] = count.per_commit
            row[f"{scenario}_by_tree"] = {tree: n / commits for tree, n in count.by_tree.items()}
            if scenario == "description":
                results, ms = search_results(path)
                reference = reference if reference is not None else results
                row["search"] = differences(results, reference)
                row["probe_ms"] = ms
                row["hits"] = {kind: len(got) for kind, got in results.items() if not isinstance(got, str)}
            big.remove(path)
        rows.append(row)
        print(f"  {variant.name}: {row['description']:.2f} / {row['row_count']:.2f} pages", file=sys.stderr)
    raw: list[dict[str, object]] = []
    for label, strip, every_column, secure_delete in (
        ("raw: description UPDATE, no search index (the floor)", True, False, "ON"),
        ("raw: every column assigned (as saves did before), no search index", True, True, "ON"),
        ("raw: description UPDATE + v1 search trigger", False, False, "ON"),
        ("raw: description UPDATE + v1 search trigger, secure_delete=OFF", False, False, "OFF"),
    ):
        path = workdir / "raw.db"
        shutil.copyfile(base, path)
        if strip:
            strip_search(path)
        else:
            apply(path, variants()[0])
        count = raw_loop(path, names, commits, warmup, every_column=every_column, secure_delete=secure_delete)
        raw.append(
            {
                "variant": label,
                "description": count.per_commit,
                "description_by_tree": {tree: n / commits for tree, n in count.by_tree.items()},
            }
        )
        big.remove(path)
    return {
        "datasets": datasets,
        "commits": commits,
        "warmup": warmup,
        "sqlite": sqlite3.sqlite_version,
        "python": sys.version.split()[0],
        "secure_delete_default": _secure_delete_default(),
        "variants": rows,
        "raw": raw,
    }


def _secure_delete_default() -> int:
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        return int(conn.execute("PRAGMA secure_delete").fetchone()[0])


def _trees(by_tree: object) -> str:
    assert isinstance(by_tree, dict)
    return ", ".join(f"{tree} {n:.2f}" for tree, n in by_tree.items())


def table(report: dict[str, object]) -> str:
    """The report as a Markdown table: pages per commit per scenario, search effect, where pages go."""
    lines = [
        "| variant | description save | row_count save | search probes vs schema 1"
        " | one word ms | every row ms |",
        "|---|---:|---:|---|---:|---:|",
    ]
    variant_rows = report["variants"]
    assert isinstance(variant_rows, list)
    for row in variant_rows:
        lines.append(
            f"| {row['variant']} | {row['description']:.2f} | {row['row_count']:.2f} | {row['search']}"
            f" | {row['probe_ms']['word']:.3f} | {row['probe_ms']['every row (bm25 of all)']:.3f} |"
        )
    raw_rows = report["raw"]
    assert isinstance(raw_rows, list)
    for row in raw_rows:
        lines.append(f"| {row['variant']} | {row['description']:.2f} | | | | |")
    lines += ["", "Pages per description save, by the b-tree that owns the page (`dbstat`):", ""]
    for row in [*variant_rows, *raw_rows]:
        lines.append(f"- {row['variant']}: {_trees(row['description_by_tree'])}")
    return "\n".join(lines)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, default=1_000, help="datasets in the catalog (default 1000)")
    parser.add_argument("--commits", type=int, default=200, help="saves counted per loop (default 200)")
    parser.add_argument("--warmup", type=int, default=50, help="saves before counting (default 50)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="wal-pages-") as workdir:
        report = measure(args.datasets, args.commits, args.warmup, Path(workdir))
    print(
        f"{args.datasets:,} datasets; {args.commits} saves counted after {args.warmup} warm-up saves;"
        f" SQLite {report['sqlite']}, Python {report['python']}, secure_delete default"
        f" {report['secure_delete_default']}"
    )
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
