"""The import rules of docs/architecture.md hold for every module under src/dockwall.

The rules live in one place, the doc's table; this test parses it, so the map a newcomer
reads and the rule the suite enforces cannot drift apart.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "dockwall"
MAP = ROOT / "docs" / "architecture.md"
HEADER = "| package | owns | may import |"
CLI_WIRING = {"commands", "cli"}


def package_of(module: str) -> str:
    """`dockwall.explain.nft.parse` -> `explain`; `dockwall.engine` -> `engine`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def names(cell: str) -> list[str]:
    """Backticked names with the `/` of a package and the `.py` of a module dropped."""
    return [re.sub(r"(/|\.py)$", "", name) for name in re.findall(r"`([^`]+)`", cell)]


def table_rows(text: str) -> Iterator[tuple[list[str], str]]:
    lines = text.splitlines()
    start = lines.index(HEADER) + 2
    for line in lines[start:]:
        if not line.startswith("|"):
            return
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == 3, f"docs/architecture.md: a row needs 3 cells: {line}"
        yield names(cells[0]), cells[2]


def existing_packages() -> set[str]:
    """Every subpackage and top-level module of dockwall (not `dockwall/__init__.py`)."""
    found = {p.stem for p in SOURCE.glob("*.py") if p.name != "__init__.py"}
    return found | {p.parent.name for p in SOURCE.glob("*/__init__.py")}


def read_map() -> dict[str, set[str]]:
    """Package -> what it may import, from the doc's table."""
    known = existing_packages()
    allowed: dict[str, set[str]] = {}
    for packages, cell in table_rows(MAP.read_text()):
        listed = set(names(cell))
        assert listed <= known, f"docs/architecture.md names no such package: {listed - known}"
        if cell.startswith("any package"):
            may = known - listed
        elif cell == "nothing":
            may = set()
        else:
            may = listed
        for package in packages:
            assert package in known, f"docs/architecture.md: a row for no package: {package}"
            allowed[package] = may
    return allowed


@cache
def imports(path: Path) -> tuple[tuple[int, str], ...]:
    """(line, module) for every import in `path`, TYPE_CHECKING ones included; parsed once
    for all the tests here."""
    return tuple(walk_imports(path))


def walk_imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "dockwall":
                yield from ((node.lineno, f"dockwall.{alias.name}") for alias in node.names)
            else:
                yield node.lineno, node.module


def owner(path: Path) -> str:
    relative = path.relative_to(SOURCE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def violations(allowed: dict[str, set[str]]) -> list[str]:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        if path == SOURCE / "__init__.py":
            continue
        me = owner(path)
        for line, module in imports(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            target = package_of(module) if module.startswith("dockwall.") else None
            if target is not None and target != me and target not in allowed[me]:
                found.append(f"{where}: {me} imports {module}, not allowed by the map")
            if module.split(".")[0] == "typer" and me not in CLI_WIRING:
                found.append(f"{where}: typer wiring belongs under commands/ or cli.py")
    return found


def test_every_package_has_a_row_in_the_map() -> None:
    assert existing_packages() - set(read_map()) == set()


def test_no_import_goes_against_the_map() -> None:
    assert violations(read_map()) == []


def test_the_check_catches_an_upward_import() -> None:
    """The walk sees real imports: with explain not allowed `sources`, explain fails."""
    allowed = read_map()
    assert "sources" in allowed["explain"]
    narrowed = {**allowed, "explain": allowed["explain"] - {"sources"}}
    assert any("explain imports dockwall.sources" in v for v in violations(narrowed))


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("| `a/`, `b.py` | x | `c`, `d` |", (["a", "b"], "`c`, `d`")),
        ("| `lab/` | x | nothing |", (["lab"], "nothing")),
    ],
)
def test_rows_parse(row: str, expected: tuple[list[str], str]) -> None:
    assert next(table_rows(f"{HEADER}\n|---|---|---|\n{row}\n")) == expected
