"""The import graph of the ``zoo`` package: no cycles, and the low layers stay low.

Every module under ``zoo/`` is parsed with :mod:`ast` (nothing is imported) and each ``import`` statement that names a
zoo module becomes an edge of the graph:

- imports inside functions and methods (lazy imports) count like those at the top of a file;
- a package's ``__init__.py`` is the package's module, so its re-exports are edges from the package;
- relative imports are resolved against the importing module's package;
- ``from zoo.x import y`` is an edge to ``zoo.x.y`` when ``y`` is a submodule (a file or a folder), else to ``zoo.x``;
- an edge goes to the module named, not to the packages above it (``import zoo.a.b`` is an edge to ``zoo.a.b`` only);
- imports under ``if TYPE_CHECKING:`` are left out: they only run for type checkers, never at run time.

Modules are found from the files themselves, so a module that becomes a package (``zoo/data/toy_world.py`` turned
into ``zoo/data/toy_world/``) needs no change here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "zoo"

#: Packages of building blocks (networks, losses, metrics) and the modules they must never reach: the methods that
#: use them and the layers above those (model registry, loading, command line, trainer).
LOW_LEVEL_PACKAGES = ("zoo.nets", "zoo.losses", "zoo.metrics")
HIGH_LEVEL_MODULES = ("zoo.methods", "zoo.hub", "zoo.registry", "zoo.cli", "zoo.trainer")


def module_name(path: Path, package_dir: Path = PACKAGE_DIR) -> str:
    """Dotted name of the module in ``path`` (a package's ``__init__.py`` is the package)."""
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every module of the package in ``package_dir``, by dotted name."""
    paths = sorted(path for path in package_dir.rglob("*.py") if "__pycache__" not in path.parts)
    return {module_name(path, package_dir): path for path in paths}


def _is_type_checking(test: ast.expr) -> bool:
    """Whether an ``if`` test is ``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_statements(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """All import statements of a module, at any depth, except the bodies of ``if TYPE_CHECKING:`` blocks."""
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
        else:
            pending.extend(ast.iter_child_nodes(node))


def _known_module(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a zoo module (``zoo.a.b.attr`` -> ``zoo.a.b``), or ``None``."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def _absolute_base(importer: str, node: ast.ImportFrom, modules: dict[str, Path]) -> str:
    """The absolute module a ``from ... import`` statement imports from, relative imports resolved."""
    if not node.level:
        return node.module or ""
    is_package = modules[importer].name == "__init__.py"
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def imported_modules(importer: str, modules: dict[str, Path]) -> set[str]:
    """The zoo modules that ``importer`` imports, per the rules in this file's docstring."""
    tree = ast.parse(modules[importer].read_text(encoding="utf-8"), filename=str(modules[importer]))
    targets: set[str | None] = set()
    for node in _import_statements(tree):
        if isinstance(node, ast.Import):
            targets.update(_known_module(alias.name, modules) for alias in node.names)
            continue
        base = _absolute_base(importer, node, modules)
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            targets.add(submodule if submodule in modules else _known_module(base, modules))
    return {target for target in targets if target is not None and target != importer}


def import_graph(package_dir: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """``{module: modules it imports}`` for every module of the package in ``package_dir``."""
    modules = find_modules(package_dir)
    return {name: imported_modules(name, modules) for name in modules}


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted; only those that hold a cycle."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = lowlink[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = lowlink[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    lowlink[node] = min(lowlink[node], index[child])
                continue
            work.pop()
            if work:
                lowlink[work[-1][0]] = min(lowlink[work[-1][0]], lowlink[node])
            if lowlink[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def path_between(graph: dict[str, set[str]], start: str, goal: str, within: set[str] | None = None) -> list[str]:
    """A shortest import chain ``start -> ... -> goal`` (breadth first), only through ``within`` when given; ``[]``
    when there is none."""
    previous: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph.get(node, ())):
                if within is not None and child not in within:
                    continue
                if child == goal:
                    chain = [goal, node]
                    while previous[chain[-1]] is not None:
                        chain.append(previous[chain[-1]])  # type: ignore[arg-type]
                    return chain[::-1]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return []


def describe_cycle(graph: dict[str, set[str]], component: list[str]) -> str:
    """One cycle through the first module of a strongly connected component, as ``a -> b -> a``."""
    first = component[0]
    return " -> ".join(path_between(graph, first, first, within=set(component)))


def _is_in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_graph_sees_the_package() -> None:
    graph = import_graph()
    assert {"zoo", "zoo.hub", "zoo.registry", "zoo.weights", "zoo.trainer"} <= set(graph)
    assert "zoo.registry" in graph["zoo.hub"]
    assert any(_is_in(module, "zoo.methods") for module in graph["zoo.methods"])


def test_relative_imports_and_submodules_resolve(tmp_path: Path) -> None:
    """A throwaway package checks the rules of the module docstring on known input."""
    root = tmp_path / "zoo"
    files = {
        "__init__.py": "def helper():\n    from zoo import b\n",
        "a/__init__.py": "from .c import thing\nfrom . import d\n",
        "a/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import zoo.b\nfrom ..b import value\n",
        "a/d/__init__.py": "",
        "a/d/e.py": "from ... import a\nimport zoo.a.c.missing\n",
        "b.py": "import os\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    assert import_graph(root) == {
        "zoo": {"zoo.b"},
        "zoo.a": {"zoo.a.c", "zoo.a.d"},
        "zoo.a.c": {"zoo.b"},
        "zoo.a.d": set(),
        "zoo.a.d.e": {"zoo.a", "zoo.a.c"},
        "zoo.b": set(),
    }


def test_cycle_report_names_the_modules() -> None:
    graph = {"x": {"y"}, "y": {"z"}, "z": {"x", "w"}, "w": set()}
    (component,) = strongly_connected_components(graph)
    assert component == ["x", "y", "z"]
    assert describe_cycle(graph, component) == "x -> y -> z -> x"


def test_zoo_has_no_import_cycle() -> None:
    graph = import_graph()
    cycles = [describe_cycle(graph, component) for component in strongly_connected_components(graph)]
    assert not cycles, "import cycles in zoo:\n  " + "\n  ".join(cycles)


@pytest.mark.parametrize("package", LOW_LEVEL_PACKAGES)
def test_building_blocks_do_not_reach_methods_or_loading(package: str) -> None:
    """Networks, losses and metrics reach neither the methods nor the modules above them, directly or through
    another module."""
    graph = import_graph()
    high_level = sorted(name for name in graph if any(_is_in(name, high) for high in HIGH_LEVEL_MODULES))
    chains = []
    for module in sorted(name for name in graph if _is_in(name, package)):
        chains += [" -> ".join(chain) for target in high_level if (chain := path_between(graph, module, target))]
    assert not chains, f"{package} reaches modules above it:\n  " + "\n  ".join(chains)


def test_weights_module_imports_nothing_of_zoo() -> None:
    """``zoo.weights`` sits below everything that uses weight files, so it may import no other zoo module."""
    assert import_graph()["zoo.weights"] == set()
