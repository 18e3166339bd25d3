"""A module imports only from stages before it, and no modules import each other in a
cycle (lazy imports inside functions count for both)."""

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
    "pci": (4, ""),
    "config": (5, ""),
    "zones": (5, ""),
    "pci_layout": (6, ""),
    "firmware": (7, "firmware"),
    "acpi": (7, "acpi"),
    "devicetree": (7, "devicetree"),
    "report": (8, ""),
    "output": (8, ""),
    "artifacts": (9, ""),
    "inspect": (10, ""),
    "api": (11, ""),
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


def _module_name(path: Path) -> str:
    """`pci.assign` for pci/assign.py, `pci` for pci/__init__.py, `` for the root."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement at any depth (functions included), except those under
    `if TYPE_CHECKING:`: they never run, so they cannot take part in an import cycle."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the vmlayout modules it imports. `from vmlayout.pci import assign` is an
    edge to the submodule `pci.assign`, `from vmlayout.pci import bdf_text` one to the
    package's `__init__` (`pci`); relative imports are resolved like absolute ones."""
    paths = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = name.split(".") if name else []
                    base = base[: len(base) - node.level + (1 if is_package else 0)]
                    module = ".".join(["vmlayout", *base, *([node.module] if node.module else [])])
                else:
                    module = node.module or ""
                targets = [module] + [f"{module}.{a.name}" for a in node.names]
            for target in targets:
                if target != "vmlayout" and not target.startswith("vmlayout."):
                    continue
                module_name = target.removeprefix("vmlayout").removeprefix(".")
                if module_name in paths:
                    edges.add(module_name)
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_function_level_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_sees_function_level_and_package_imports() -> None:
    graph = import_graph()
    # report.py imports the PCI rows only inside a function.
    assert "pci_layout.report" in graph["report"]
    # `from vmlayout.pci import AssignmentParams` is an edge to the package itself.
    assert "pci" in graph["pci_layout.resolved"]
    # Imports under `if TYPE_CHECKING:` never run (vmlayout/__init__ names api there).
    assert "api" not in graph[""]


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "modules importing each other in a cycle: " + "; ".join(
        " <-> ".join(c) for c in found
    )
