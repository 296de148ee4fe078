"""The modules of `shared/` import each other without a cycle.

Every `import` / `from ... import` counts, at module level or inside a function: a lazy import
only postpones a cycle to the first call, it does not remove the knot. An edge goes to the module
named (`from shared.domain import rollout` names `shared.domain.rollout`), not to the packages
above it: importing a submodule runs its package's `__init__` first, but a package re-exporting
its own submodules (`shared.domain.rules`) is not a cycle unless a submodule imports the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SHARED.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SHARED.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of `shared` that `path` imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return {m for m in found if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read_from_the_code():
    graph = _graph()
    assert len(graph) > 40
    # Known edges, one of each kind the reader must see: module level, inside a function, a
    # module named in `from package import module`, and a package re-exporting its submodules.
    assert "shared.domain.model" in graph["shared.domain.events"]
    assert "shared.bootstrap" in graph["shared.entrypoints"]
    assert "shared.domain.rules.document" in graph["shared.domain.rules"]
    assert "shared.domain.traffic" in graph["shared.services.rollout_manual"]


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_shared_has_no_import_cycle():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles inside shared/: " + "; ".join(" <-> ".join(c) for c in cycles)
