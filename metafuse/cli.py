"""The `metafuse` command: a thin layer that opens the catalog, calls one method, prints the result.

Owns the subcommands, their output and the mapping of errors to exit codes. It runs no SQL and
touches no catalog file itself: each command opens the catalog with `Catalog.open` and calls public
verbs. Of the private modules it imports only `_cli_base` and `_catalogmarker`'s retention bounds
(for `init --retention`); `stress.cli` adds the stress commands and `stress._cli_logging` checks the
log level.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, Callable, TextIO, cast

from . import __version__, faults, perturb
from ._catalogmarker import MAX_RETENTION, RETENTION
from ._cli_base import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_INCONCLUSIVE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_THRESHOLD,
    EXIT_USAGE,
    GuardedStdout,
    OneLineParser,
    OutputError,
    discard_stdout,
    file_path,
    whole_number,
)
from .catalog import DEFAULT_PATH, Catalog
from .errors import BusyError, CatalogError, ConflictError, NotFoundError, ValidationError
from .model import Dataset
from .stress._cli_logging import check_log_level
from .stress.cli import add_stress_commands

EXIT_BROKEN_PIPE = 141
"""The reader of our output went away (`metafuse list | head`): we stop quietly with 128 + SIGPIPE,
the status a shell reports for a program that SIGPIPE ended, so `set -o pipefail` still sees it."""

EXIT_CODES_HELP = f"""\
exit status:
  {EXIT_OK}    success
  {EXIT_FAILED}    a conflict, a missing dataset, or (stress) an invariant that did not hold
  {EXIT_USAGE}    bad input, a catalog file that is unusable (or missing, for a read command),
       or standard output that cannot be written (a full disk)
  {EXIT_BUSY}    the catalog stayed locked by another writer past the busy timeout: try again
  {EXIT_THRESHOLD}    (stress) every invariant held but a --threshold failed
  {EXIT_INCONCLUSIVE}    (stress) no invariant failed, but one was inconclusive (too little progress)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
  {EXIT_BROKEN_PIPE}  the output pipe closed early (e.g. piped into head): stopped quietly
       ('stress run' goes on instead, writes its files and exits with its verdict)
"""
"""The exit statuses, as `metafuse --help` prints them."""

CATALOG_ENV = "METAFUSE_CATALOG"
"""Environment variable naming the catalog file when `--catalog` is not given."""


Handler = Callable[[argparse.Namespace], int]


def build_parser() -> OneLineParser:
    """Return the parser for every `metafuse` command (also used to check the docs)."""
    parser = OneLineParser(
        prog="metafuse",
        description="A serverless data catalog in one SQLite file.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--catalog",
        metavar="PATH|URL",
        default=None,
        type=file_path("--catalog"),
        help="catalog file, or a catalog on an object store: s3://bucket/prefix?endpoint_url=...&region=..."
        f" or log+file:///dir (default: ${CATALOG_ENV}, else ./{DEFAULT_PATH})",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    commands.required = True

    # Only init and put create a missing catalog; every read command refuses one that is not there.
    init = commands.add_parser("init", help="create (or migrate) the catalog file")
    init.add_argument(
        "--retention",
        type=whole_number(0, MAX_RETENTION),
        default=None,
        metavar="SECONDS",
        help="on an object store: how long snapshots and log entries a newer snapshot covers are kept,"
        f" 0 to {MAX_RETENTION} (fixed when the catalog is created; default {RETENTION}, a day;"
        " under a few minutes only for tests, see docs/object-store.md)",
    )
    init.set_defaults(handler=_init)

    put = commands.add_parser("put", help="create a dataset from JSON, or save it over a version")
    put.add_argument("file", metavar="FILE.json", help="dataset as a JSON object ('-' for stdin)")
    put.add_argument(
        "--expected-version",
        type=_non_negative,
        metavar="N",
        help="save over version N instead of creating (conflict if the stored version differs)",
    )
    put.set_defaults(handler=_put)

    get = commands.add_parser("get", help="show one dataset")
    get.add_argument("name", help="dataset name")
    get.set_defaults(handler=_get)

    list_ = commands.add_parser("list", help="list datasets by name, optionally filtered")
    list_.add_argument("--domain", help="only this domain")
    list_.add_argument("--owner", help="only this owner")
    list_.add_argument("--tag", help="only datasets with this tag")
    list_.add_argument("--limit", type=_positive, default=100, help="page size (default 100)")
    list_.add_argument("--after", metavar="NAME", help="start after this name (next page)")
    list_.set_defaults(handler=_list)

    search = commands.add_parser("search", help="full-text search over names, descriptions, fields, tags")
    search.add_argument("query", help="words or an FTS5 query")
    search.add_argument("--limit", type=_positive, default=20, help="most results (default 20)")
    search.set_defaults(handler=_search)

    lineage = commands.add_parser("lineage", help="show what a dataset derives from, or feeds")
    lineage.add_argument("name", help="dataset name")
    lineage.add_argument("--direction", choices=("upstream", "downstream"), default="upstream")
    lineage.add_argument("--depth", type=_positive, default=3, help="steps to walk (default 3)")
    lineage.set_defaults(handler=_lineage)

    stats = commands.add_parser("stats", help="show catalog counts, version and cache settings")
    stats.set_defaults(handler=_stats)

    for command in (get, list_, search, lineage, stats):
        command.add_argument("--json", action="store_true", help="print JSON instead of text")

    add_stress_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status (see `EXIT_CODES_HELP`: 0 ok, 1 failed, 2 bad input,
    3 busy, 4 threshold, 5 inconclusive, 130 interrupted, 141 output pipe closed). Never ends in a
    traceback for bad input, a locked catalog, a closed pipe or standard output that cannot be
    written."""
    guard = GuardedStdout(sys.stdout)
    sys.stdout = cast(TextIO, guard)
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit:
            sys.stdout.flush()  # --help and --version: a failed write ends like any other
            raise
        handler: Handler = args.handler
        # A command whose product is its files finishes them when its reader goes away.
        guard.keep_going = bool(getattr(args, "survives_closed_stdout", False))
        faults.check_environment()  # a bad METAFUSE_FAULTS is one line, before anything runs
        perturb.check_environment()  # and so is a bad METAFUSE_PERTURB
        check_log_level()
        code = handler(args)
        sys.stdout.flush()  # a reader that left early shows up here, not at interpreter exit
        return code
    except BrokenPipeError:
        discard_stdout(guard.stream)
        return EXIT_BROKEN_PIPE
    except OutputError as error:
        discard_stdout(guard.stream)
        _fail(error)
        return EXIT_USAGE
    except (ConflictError, NotFoundError) as error:
        _fail(error)
        return EXIT_FAILED
    except BusyError as error:
        _fail(error)
        return EXIT_BUSY
    except CatalogError as error:
        _fail(error)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("metafuse: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        sys.stdout = guard.stream


def catalog_path(args: argparse.Namespace) -> str:
    """Return the catalog path from `--catalog`, `$METAFUSE_CATALOG` (empty counts as unset) or
    the default."""
    path: str | None = args.catalog or os.environ.get(CATALOG_ENV, "").strip() or None
    return path or DEFAULT_PATH


def _fail(error: Exception) -> None:
    print(f"metafuse: error: {error}", file=sys.stderr)


def _open(args: argparse.Namespace) -> Catalog:
    """Open the catalog for a command that may create it (init, put)."""
    return Catalog.open(catalog_path(args))


def _open_existing(args: argparse.Namespace) -> Catalog:
    """Open the catalog for a read command: a missing file is an error, never a new catalog."""
    return Catalog.open(catalog_path(args), create=False)


def _init(args: argparse.Namespace) -> int:
    options = {} if args.retention is None else {"retention": args.retention}
    with Catalog.open(catalog_path(args), **options) as catalog:
        count = catalog.count
        noun = "dataset" if count == 1 else "datasets"
        print(f"catalog {catalog.location} ready: {count} {noun}, version {catalog.version}")
    return EXIT_OK


def _put(args: argparse.Namespace) -> int:
    dataset = Dataset.from_dict(_read_json(args.file))
    with _open(args) as catalog:
        if args.expected_version is None:
            stored = catalog.create(dataset)
        else:
            stored = catalog.save(dataset, expected_version=args.expected_version)
    print(f"{stored.name} version {stored.version}")
    return EXIT_OK


def _get(args: argparse.Namespace) -> int:
    with _open_existing(args) as catalog:
        dataset = catalog.get(args.name)
    if dataset is None:
        raise NotFoundError(args.name)
    if args.json:
        _print_json(dataset.to_dict())
    else:
        for key, value in dataset.to_dict().items():
            if key == "fields":
                print("fields:")
                for field in dataset.fields:
                    null = "" if field.nullable else " not null"
                    print(f"  {field.name} {field.data_type}{null}")
            else:
                print(f"{key}: {_text(value)}")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    with _open_existing(args) as catalog:
        found = catalog.list(
            domain=args.domain, owner=args.owner, tag=args.tag, limit=args.limit, after=args.after
        )
    _print_datasets(found, args.json)
    return EXIT_OK


def _search(args: argparse.Namespace) -> int:
    with _open_existing(args) as catalog:
        found = catalog.search(args.query, limit=args.limit)
    _print_datasets(found, args.json)
    return EXIT_OK


def _lineage(args: argparse.Namespace) -> int:
    with _open_existing(args) as catalog:
        edges = catalog.lineage(args.name, direction=args.direction, depth=args.depth)
    if args.json:
        _print_json([vars(edge) for edge in edges])
    else:
        for edge in edges:
            print(f"{edge.depth}  {edge.downstream} <- {edge.upstream}")
    return EXIT_OK


def _stats(args: argparse.Namespace) -> int:
    with _open_existing(args) as catalog:
        facts = {"datasets": catalog.count, "catalog_version": catalog.version}
        facts.update(catalog.stats().to_dict())
    if args.json:
        _print_json(facts)
    else:
        for key, value in facts.items():
            print(f"{key}: {value}")
    return EXIT_OK


def _print_datasets(found: list[Dataset], as_json: bool) -> None:
    if as_json:
        _print_json([dataset.to_dict() for dataset in found])
        return
    for dataset in found:
        print(f"{dataset.name}  v{dataset.version}  {dataset.domain or '-'}  {dataset.owner or '-'}")


def _read_json(path: str) -> Any:
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
    except OSError as error:
        raise ValidationError(f"dataset file {path}", f"cannot be read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ValidationError(f"dataset file {path}", "is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValidationError(
            f"dataset file {path}",
            f"is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}",
        ) from None
    except (ValueError, RecursionError) as error:  # absurdly long numbers, absurd nesting
        raise ValidationError(f"dataset file {path}", f"is not usable JSON ({error})") from None


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "-"
    return str(value)


_positive = whole_number(1)
_non_negative = whole_number(0)
