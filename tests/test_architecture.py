"""A module imports only from stages before it (lazy imports inside functions count)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "vmlayout"

#: Stage of each top-level module or package; a module may import its own stage's
#: package (its siblings) and earlier stages only. Emitter packages are one stage but
#: independent of each other, so each has its own rank at the same level.
STAGES: dict[str, tuple[int, str]] = {
    "errors": (-1, ""),
    "inputs": (0, ""),
    "binfmt": (0, ""),
    "ranges": (1, ""),
    "arch": (2, ""),
    "schema": (2, ""),
    "layout": (3, ""),
    "allocator": (3, ""),
    "topology": (3, ""),
    "platform": (3, ""),
    "devices": (3, ""),
    "policy": (4, ""),
    "config": (5, ""),
    "pci": (6, ""),
    "firmware": (7, "firmware"),
    "acpi": (7, "acpi"),
    "devicetree": (7, "devicetree"),
    "report": (8, ""),
    "output": (8, ""),
    "artifacts": (9, ""),
    "api": (10, ""),
    "inspect": (11, ""),
    "commands": (12, ""),
    "cli": (13, ""),
    "__main__": (14, ""),
}


def _stage_of(module: str) -> tuple[int, str]:
    return STAGES[module.split(".")[0]]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("vmlayout."):
                found.add(node.module.removeprefix("vmlayout."))
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("vmlayout.")
                for a in node.names
                if a.name.startswith("vmlayout.")
            }
    return found


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts == ("__init__",):
            continue  # the package root re-exports lazily from every stage
        out.append((".".join(parts), path))
    return out


def test_every_module_has_a_stage() -> None:
    assert {name.split(".")[0] for name, _ in _modules()} <= set(STAGES)


@pytest.mark.parametrize(("name", "path"), _modules(), ids=[n for n, _ in _modules()])
def test_module_imports_only_from_earlier_stages(name: str, path: Path) -> None:
    own_rank, own_group = _stage_of(name)
    for imported in _imports(path):
        rank, group = _stage_of(imported)
        same_package = imported.split(".")[0] == name.split(".")[0]
        assert same_package or rank < own_rank, (
            f"{name} imports {imported} (a later or sibling stage)"
        )
        assert not (group and own_group and group != own_group), f"{name} imports {imported}"
