"""The layers point one way: reading, engines, detection, damages, reporting, then what
runs them; a module imports only from its own layer or the ones below, and no module
imports one that imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "scrapewatch"

# Lowest first. Every module belongs to the layer of the longest prefix it has.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("shared rules and names", (
        "scrapewatch.version", "scrapewatch.errors", "scrapewatch.sql", "scrapewatch.schema",
        "scrapewatch.config", "scrapewatch.allow", "scrapewatch.organisations",
        "scrapewatch.posts", "scrapewatch.entities")),
    ("reading", ("scrapewatch.reading",)),
    ("engines", ("scrapewatch.engine",)),
    ("detect", ("scrapewatch.detect",)),
    ("damages", ("scrapewatch.damages",)),
    ("reporting", ("scrapewatch.reporting",)),
    ("runs", ("scrapewatch.pipeline", "scrapewatch.store",
              "scrapewatch.cli", "scrapewatch.__main__", "scrapewatch")),
]


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: dict[str, Path], *, runtime_only: bool = False) -> set[str]:
    """The package's modules `path` imports: anywhere in it, or (`runtime_only`) at
    its top level outside `if TYPE_CHECKING:`. `from a import b` is module a.b when
    there is one."""
    tree = ast.parse(path.read_text())
    nodes = ast.walk(tree) if not runtime_only else (
        node for node in tree.body if not (isinstance(node, ast.If)
                                           and "TYPE_CHECKING" in ast.unparse(node.test)))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known
                         else node.module for alias in node.names)
    return {name for name in found if name in known}


def layer(module: str) -> int:
    """The index of `module`'s layer in LAYERS."""
    matches = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS)
               for prefix in prefixes if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return max(matches)[1]


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    known = modules()
    upward = [f"{module} ({LAYERS[layer(module)][0]}) imports {name} "
              f"({LAYERS[layer(name)][0]})"
              for module, path in sorted(known.items())
              for name in sorted(imports(path, known)) if layer(name) > layer(module)]
    assert upward == []


def test_no_import_cycle() -> None:
    known = modules()
    graph = {module: imports(path, known, runtime_only=True) - {module}
             for module, path in known.items()}
    cycles = []

    def visit(module: str, trail: list[str], done: set[str]) -> None:
        for name in sorted(graph[module]):
            if name in trail:
                cycles.append(" -> ".join([*trail[trail.index(name):], name]))
            elif name not in done:
                visit(name, [*trail, name], done)
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module], done)
    # a package importing its own modules, which import each other through it, is
    # Python's usual registry and no cycle: only cycles between distinct modules count
    assert [cycle for cycle in cycles if not _package_and_member(cycle)] == []


def _package_and_member(cycle: str) -> bool:
    """Whether `cycle` is a package and one of its own modules (a registry)."""
    names = cycle.split(" -> ")
    return len(set(names)) == 2 and (names[0].startswith(names[1] + ".")
                                     or names[1].startswith(names[0] + "."))


def test_every_layer_names_modules_that_exist() -> None:
    known = modules()
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            assert any(m == prefix or m.startswith(prefix + ".") for m in known), (name, prefix)
