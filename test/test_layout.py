"""The package's layering, read from every module's imports (also those inside functions: a
deferred import still ties two modules together): libraries never import the command-line
tools, the ROS-free core imports neither rclpy nor training, tools or nodes, and no modules
import each other in a circle."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = 'neulens_ros'
CORE = ('supernet', 'gate', 'control', 'lifting', 'data', 'runtime', 'bridge')  # __init__.py
ABOVE_CORE = ('train', 'tools', 'nodes', 'rclpy')


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


MODULES = {module_name(p): p for p in sorted((ROOT / PACKAGE).rglob('*.py'))}


def imported_names(name: str, path: Path) -> set[str]:
    """Every module name `name`'s imports mention (`from a import b` names a and a.b)."""
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = '.'.join(package.split('.')[:len(package.split('.')) + 1 - node.level]) \
                if node.level else ''
            base = '.'.join(p for p in (parent, node.module) if p)
            names |= {base} | {f'{base}.{alias.name}' for alias in node.names}
    return names


IMPORTS = {name: imported_names(name, path) for name, path in MODULES.items()}


def layer(module: str) -> str:
    """`neulens_ros.gate.cgg` -> 'gate'; 'rclpy.node' -> 'rclpy'."""
    parts = module.split('.')
    return parts[1] if parts[0] == PACKAGE and len(parts) > 1 else parts[0]


def imports_across(importers: set[str], imported: set[str]) -> dict[str, list[str]]:
    """{module of a layer in `importers`: what it imports of the layers `imported`}, where
    it imports any."""
    found = {name: sorted(m for m in names if layer(m) in imported)
             for name, names in IMPORTS.items() if layer(name) in importers}
    return {name: modules for name, modules in found.items() if modules}


def test_libraries_do_not_import_the_tools() -> None:
    libraries = {layer(name) for name in MODULES} - {'tools'}
    assert imports_across(libraries, {'tools'}) == {}


def test_the_core_imports_no_ros_training_tools_or_nodes() -> None:
    assert imports_across(set(CORE), set(ABOVE_CORE)) == {}


def test_no_import_circles() -> None:
    graph = {name: names & MODULES.keys() for name, names in IMPORTS.items()}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        raise AssertionError(f'import circle: {" -> ".join(exc.args[1])}') from None
