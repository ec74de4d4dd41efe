"""The module map that opens docs/architecture.md lists every module of `metafuse/` in layer order."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "metafuse"
_ENTRY = re.compile(r"^(?P<name>[\w.]+/?)\s{2,}\S")


def documented_map() -> list[str]:
    """The names of the map's lines, in order (`x.py` as `x`, `pkg/` as `pkg`)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Map of the modules", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    names = []
    for line in section.strip().splitlines():
        match = _ENTRY.match(line)
        assert match is not None, f"not a map line: {line!r}"
        names.append(match["name"].removesuffix("/").removesuffix(".py"))
    return names


def modules() -> set[str]:
    """The modules and subpackages directly under metafuse/."""
    files = {path.stem for path in PACKAGE.glob("*.py")}
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    return files | packages


def imports_of(name: str) -> set[str]:
    """The modules of metafuse/ that `name` (a module or a whole subpackage) imports."""
    base = PACKAGE / name
    files = sorted(base.rglob("*.py")) if base.is_dir() else [PACKAGE / f"{name}.py"]
    found: set[str] = set()
    for file in files:
        depth = len(file.relative_to(PACKAGE).parts) - 1
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == depth + 1:
                found.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
            elif (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and (node.module or "").startswith("metafuse.")
            ):
                found.add((node.module or "").split(".")[1])
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("metafuse."))
    return (found & modules()) - {name}


def upward_imports(order: list[str]) -> list[str]:
    """Every import of a module on a line at or below the importer's own, as `importer -> imported`."""
    position = {name: index for index, name in enumerate(order)}
    return [
        f"{name} -> {imported}"
        for name in order
        for imported in sorted(imports_of(name))
        if position.get(imported, len(order)) >= position[name]
    ]


def test_the_map_lists_every_module_once() -> None:
    names = documented_map()
    assert len(names) == len(set(names))
    assert set(names) == modules()


def test_every_module_imports_only_modules_above_it_on_the_map() -> None:
    assert upward_imports(documented_map()) == []


def test_the_order_check_catches_an_import_that_runs_up() -> None:
    order = documented_map()
    order.remove("catalog")
    order.insert(0, "catalog")
    assert "catalog -> _groupcommit" in upward_imports(order)


def test_every_module_says_what_it_owns() -> None:
    missing = [
        path.name
        for path in sorted(PACKAGE.glob("*.py"))
        if path.stem not in ("__main__",)
        and not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert missing == []
