"""The package's shape, checked: what a newcomer reading `federated/` can rely on.

No import cycles, no private names taken from another module, no pointer state set from
outside `pointer.py`, no decision by reference count, and `python -m federated.worker`
starts without runpy's warning about a module imported twice.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "federated"
MODULES = {
    ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): path
    for path in sorted(PACKAGE.rglob("*.py"))
}
POINTER_STATE = {"_gone", "_grad_pointer", "_module_param", "location", "id_at_location"}


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:` (never run)."""
    found: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        found.append(node)
        if _is_type_checking(node):
            stack.extend(node.orelse)  # type: ignore[attr-defined]
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def _imports(name: str) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for each runtime import in module `name`."""
    tree = ast.parse(MODULES[name].read_text())
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1]
                    + ([base] if base else [])
                )
            names = [a.name for a in node.names]
            submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in MODULES]
            found += [(s, []) for s in submodules]
            found.append((base, [n for n in names if f"{base}.{n}" not in MODULES]))
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports when it runs (its package's too)."""
    graph: dict[str, set[str]] = {}
    for name in MODULES:
        edges = set()
        for target, _ in _imports(name):
            if target in MODULES and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None. Packages' `__init__` excluded:
    importing `federated.x` runs `federated/__init__` first by design."""
    edges = {
        m: {t for t in ts if t not in ("federated", "federated.widgets")} for m, ts in graph.items()
    }
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for t in sorted(edges.get(m, ())):
            if state.get(t) == 1:
                return path[path.index(t) :] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_none_where_there_is_none():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_import_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "federated.pointer" in graph["federated.virtual_worker"]
    assert "federated.server" in graph["federated.worker"]  # under `if __name__ == ...`


def test_no_import_cycle_inside_federated():
    assert find_cycle(import_graph()) is None


def test_no_private_name_is_imported_from_another_module():
    offences = [
        f"{name} imports {n} from {target}"
        for name in MODULES
        for target, names in _imports(name)
        for n in names
        if target.startswith("federated") and n.startswith("_")
    ]
    assert offences == []


def test_no_private_name_of_another_package_module_is_used():
    offences = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        aliases = {
            a.asname or a.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "federated"
            for a in node.names
        }
        offences += [
            f"{name}: {ast.unparse(node)}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ]
    assert offences == []


def test_pointer_state_is_set_only_by_the_pointer_itself():
    offences = []
    for name, path in MODULES.items():
        if name == "federated.pointer":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, (ast.AugAssign, ast.AnnAssign))
                else []
            )
            offences += [
                f"{name}: {ast.unparse(t)}"
                for t in targets
                if isinstance(t, ast.Attribute)
                and t.attr in POINTER_STATE
                and not (isinstance(t.value, ast.Name) and t.value.id == "self")
            ]
    assert offences == []


def test_nothing_decides_by_reference_count():
    assert [p.name for p in MODULES.values() if "getrefcount" in p.read_text()] == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_says_what_it_holds(name):
    assert ast.get_docstring(ast.parse(MODULES[name].read_text())), f"{name} has no docstring"
