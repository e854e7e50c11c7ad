"""The packages follow the data flow: a module may import only packages on a lower floor than its own.

A back-arrow (storage importing gold, say) makes a change in one layer ripple up and down the tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# floor of each top-level package; api and orchestration are siblings, the CLI sits on top of everything.
FLOORS = {
    "core": 0,
    "storage": 1,
    "bronze": 2,
    "silver": 3,
    "gold": 4,
    "llm": 5,
    "live": 6,
    "governance": 7,
    "api": 8,
    "orchestration": 8,
    "beazap": 9,
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def _product_modules() -> list[Path]:
    return sorted(p for pkg in FLOORS for p in (ROOT / pkg).rglob("*.py") if ".venv" not in p.parts)


def test_every_package_has_a_floor() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    line = next(line for line in pyproject.splitlines() if line.startswith("packages = "))
    assert set(ast.literal_eval(line.split("=", 1)[1].strip())) == set(FLOORS)


@pytest.mark.parametrize("path", _product_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_runs_back_up_the_layers(path: Path) -> None:
    own = path.relative_to(ROOT).parts[0]
    back = [
        f"{path.relative_to(ROOT)}:{line} imports {target} (floor {FLOORS[target]} >= {own}'s {FLOORS[own]})"
        for line, target in _imports(path)
        if target in FLOORS and target != own and FLOORS[target] >= FLOORS[own]
    ]
    assert not back, "\n".join(back)
