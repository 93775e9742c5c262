"""The package's imports run one way: no cycle (lazy and TYPE_CHECKING imports included),
and ``reactor.storage`` imports nothing above it."""

from __future__ import annotations

import ast
from pathlib import Path

import reactor

ROOT = Path(reactor.__file__).parent

# What the storage layer may import from the package: the errors it raises and the status
# values it indexes -- nothing that knows about steps, runs or the sync facade.
STORAGE_MAY_IMPORT = {"reactor.errors", "reactor._status"}


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str], root: Path = ROOT) -> set[str]:
    """Every package module ``path`` imports, anywhere in the file."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from . import x` imports the module x; `from .m import y` imports m.
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = {_module_name(p, root): p for p in root.rglob("*.py")}
    return {name: _imports(path, set(files), root) for name, path in files.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
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
            # A package's __init__ re-exports its modules; importing `reactor.storage`
            # from inside it is not an edge back up.
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


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Drop the edges from a module to the ``__init__`` of a package that contains it:
    Python runs that ``__init__`` first anyway, and ``__init__`` only re-exports."""
    return {
        name: {t for t in targets if not name.startswith(t + ".")}
        for name, targets in graph.items()
    }


def test_no_import_cycles() -> None:
    graph = _without_package_inits(_graph())
    assert _cycles(graph) == []


def test_the_walker_sees_a_cycle() -> None:
    # The check itself can fail: a lazy import inside a function counts as an edge.
    graph = {"a": {"b"}, "b": {"a"}, "c": set()}
    assert _cycles(graph) == [["a", "b"]]


def test_storage_imports_nothing_above_it() -> None:
    graph = _graph()
    for name, targets in graph.items():
        if name == "reactor.storage" or name.startswith("reactor.storage."):
            above = {
                t
                for t in targets
                if not (t == "reactor.storage" or t.startswith("reactor.storage."))
                and t not in STORAGE_MAY_IMPORT
            }
            assert not above, f"{name} imports {sorted(above)}"


def test_lazy_and_type_checking_imports_are_cycles_too(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "low.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub import high\n"
    )
    (package / "sub" / "high.py").write_text("def f():\n    from .. import low\n")
    assert _cycles(_graph(package)) == [["pkg.low", "pkg.sub.high"]]
