"""Mutant rules: one plausible bug as an exact edit of one file, refused by name when it no longer applies.

mutants/mutants.json holds the rules; `load_rules` reads and checks them, `apply` plants one in a
copy of the tree made by `copy_tree`. A rule's old text must occur exactly once in its file, so a
refactor that moves the code turns the tool red instead of silently testing nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence

MODES = ("thread", "process")
CATALOGS = ("file", "store")
SHAPES = ("shared", "per-client", "mixed")
"""Thread-mode catalog shapes a rule may ask for (`stress run --catalogs`)."""


class RuleError(Exception):
    """A mutant rule that cannot be used: the message names the rule and what is wrong."""


# -- rules ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One planted bug: replace `old` (which occurs exactly once in `file`) by `new`.

    `scenarios` run in `modes`, on a catalog file or (`catalog == "store"`) on a `log+file://`
    store; `selfcheck` names the selfcheck faults whose probes run on the mutant too; `catalogs`,
    if set, is the thread-mode catalog shape every scenario of the rule runs with (`--catalogs`),
    for a bug that only one shape exercises.
    """

    name: str
    bug: str
    file: str
    old: str
    new: str
    scenarios: tuple[str, ...]
    modes: tuple[str, ...] = MODES
    catalog: str = "file"
    selfcheck: tuple[str, ...] = ()
    catalogs: str | None = None


def load_rules(path: str, scenarios: dict[str, str]) -> list[Mutant]:
    """Read and check the rules in `path`; `scenarios` maps each scenario name to where it runs
    ("file", "store" or "both"). Raises `RuleError` naming the first bad rule."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError) as error:
        raise RuleError(f"{path}: cannot read the mutant rules: {error}") from None
    items = document.get("mutants") if isinstance(document, dict) else None
    if not isinstance(items, list) or not items:
        raise RuleError(f'{path}: needs a non-empty list "mutants"')
    mutants: list[Mutant] = []
    for index, item in enumerate(items):
        mutant = _rule(item, index, scenarios)
        if any(m.name == mutant.name for m in mutants):
            raise RuleError(f"mutant {mutant.name!r}: the name is used twice in {path}")
        mutants.append(mutant)
    return mutants


def _rule(item: object, index: int, scenarios: dict[str, str]) -> Mutant:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
        raise RuleError(f"mutant #{index + 1}: needs a name")
    name = item["name"]

    def text(key: str) -> str:
        value = item.get(key)
        if not isinstance(value, str) or (key != "new" and not value):
            raise RuleError(f"mutant {name!r}: {key!r} must be a non-empty string")
        return value

    def names(key: str, default: Sequence[str], known: Iterable[str]) -> tuple[str, ...]:
        value = item.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RuleError(f"mutant {name!r}: {key!r} must be a list of names")
        allowed = list(known)
        for v in value:
            if v not in allowed:
                raise RuleError(f"mutant {name!r}: unknown {key} entry {v!r}; known: {', '.join(allowed)}")
        return tuple(value)

    unknown = set(item) - {f.name for f in dataclasses.fields(Mutant)}
    if unknown:
        raise RuleError(f"mutant {name!r}: unknown field {sorted(unknown)[0]!r}")
    catalog = item.get("catalog", "file")
    if catalog not in CATALOGS:
        raise RuleError(f"mutant {name!r}: catalog must be one of {', '.join(CATALOGS)}, not {catalog!r}")
    chosen = names("scenarios", list(scenarios), scenarios)
    if catalog == "store":
        chosen = tuple(s for s in chosen if scenarios[s] != "file") if "scenarios" not in item else chosen
        wrong = [s for s in chosen if scenarios[s] == "file"]
        if wrong:
            raise RuleError(
                f"mutant {name!r}: scenario {wrong[0]!r} runs on a catalog file only, not a store"
            )
    if not chosen:
        raise RuleError(f"mutant {name!r}: names no scenario")
    from_selfcheck = item.get("selfcheck", [])
    if not isinstance(from_selfcheck, list) or not all(isinstance(v, str) for v in from_selfcheck):
        raise RuleError(f"mutant {name!r}: 'selfcheck' must be a list of fault names")
    shape = item.get("catalogs")
    if shape is not None and shape not in SHAPES:
        raise RuleError(f"mutant {name!r}: catalogs must be one of {', '.join(SHAPES)}, not {shape!r}")
    return Mutant(
        name=name,
        bug=text("bug"),
        file=text("file"),
        old=text("old"),
        new=text("new"),
        scenarios=chosen,
        modes=names("modes", MODES, MODES),
        catalog=catalog,
        selfcheck=tuple(from_selfcheck),
        catalogs=shape,
    )


def mutated(mutant: Mutant, source: str) -> str:
    """`source` (the text of the mutant's file) with the mutant applied; `RuleError` naming the
    mutant if its old text is missing or occurs more than once."""
    found = source.count(mutant.old)
    if found != 1:
        where = "is not in" if found == 0 else f"occurs {found} times in"
        first = mutant.old.strip().splitlines()[0]
        raise RuleError(
            f"mutant {mutant.name!r}: its old text {where} {mutant.file} (first line: {first!r});"
            " update the rule to the code as it is now"
        )
    return source.replace(mutant.old, mutant.new)


def _read(mutant: Mutant, root: str) -> str:
    try:
        with open(os.path.join(root, mutant.file), encoding="utf-8") as handle:
            return handle.read()
    except OSError as error:
        raise RuleError(f"mutant {mutant.name!r}: cannot read {mutant.file}: {error.strerror}") from None


def check(mutant: Mutant, root: str) -> None:
    """Raise `RuleError` unless `mutant` applies to the tree at `root` (changing nothing)."""
    mutated(mutant, _read(mutant, root))


def apply(mutant: Mutant, root: str) -> None:
    """Apply `mutant` to the tree at `root`; `RuleError` if its text is missing or ambiguous there."""
    text = mutated(mutant, _read(mutant, root))
    with open(os.path.join(root, mutant.file), "w", encoding="utf-8") as handle:
        handle.write(text)


def copy_tree(root: str, destination: str) -> None:
    """Copy the repository's files (tracked, or untracked and not ignored) from `root`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        ignore = shutil.ignore_patterns(".git", ".nox", ".stress", ".benchmarks", "__pycache__", "*.db")
        shutil.copytree(root, destination, ignore=ignore, dirs_exist_ok=True)
        return
    for relative in sorted(set(listed.stdout.decode("utf-8").split("\0")) - {""}):
        source = os.path.join(root, relative)
        if not os.path.isfile(source):
            continue  # deleted in the working tree
        target = os.path.join(destination, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)
