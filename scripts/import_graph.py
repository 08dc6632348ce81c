"""Print the package graph of agentic_router (which package imports which) and check it flows one way.

    .venv/bin/python scripts/import_graph.py [--json]

Layers, lowest first: indexes (the floor: settings, errors, sources, storage, encoders, lexical search,
document indexes) <- router (retrieval, model versions, the agent, the Python API) <- training (data,
trainers, evaluation) <- serve (the HTTP and MCP shells) <- commands (the CLI's command groups) <- cli (the
command line). A package may import only packages below it.

Inside ``indexes`` and ``router`` the parts are ranked too (``PARTS``): a part may import parts of a lower
rank, and modules of its own rank unless both are sub-packages (``encoders`` and ``storage`` stay apart).
Imports under ``if TYPE_CHECKING:`` are exempt from that rule: they never run. Exit code 1 on an edge
against either direction or on a cycle; the test suite runs the same check (tests/test_layering.py).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "agentic_router"
LAYERS = ("indexes", "router", "training", "serve", "commands", "cli")  # lowest first
SOURCES = [*(f"{p}/**/*.py" for p in LAYERS[:-1]), "cli.py", "__init__.py"]
# The parts of a layer, by rank (lowest first); a part is a sub-package or a top-level module of the layer.
PARTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "indexes": (("errors", "schema", "config", "atomic"), ("encoders", "storage"), ("lexical",), ("sources",),
                ("build", "tools")),
    "router": (("retrieval", "versions"), ("workspace",), ("answering",),
               ("activation", "payloads", "catalog_summary", "app")),
}
SUBPACKAGES = {"encoders", "storage", "lexical", "sources", "retrieval", "versions", "answering"}


@dataclass(frozen=True)
class Import:
    source: str  # file, relative to the repository root
    line: int
    target: str  # absolute module name
    in_function: bool
    type_only: bool = False  # under ``if TYPE_CHECKING:``


def layer_of(path_or_module: str) -> str | None:
    """``router/app.py`` or ``agentic_router.router.app`` -> ``router``; the package root -> None."""
    parts = path_or_module.replace("/", ".").removesuffix(".py").split(".")
    if parts and parts[0] == PACKAGE:
        parts = parts[1:]
    return parts[0] if parts and parts[0] in LAYERS else None


def own_imports(path: Path) -> list[Import]:
    """Every import of one of our modules in ``path``, marked when it sits inside a function body."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(ROOT).as_posix()
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            typing = type_only or (isinstance(child, ast.If) and ast.unparse(child.test).endswith("TYPE_CHECKING"))
            if isinstance(child, ast.Import):
                found.extend(Import(rel, child.lineno, a.name, in_function, type_only) for a in child.names
                             if a.name.split(".")[0] == PACKAGE)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                if child.module.split(".")[0] == PACKAGE:
                    found.append(Import(rel, child.lineno, child.module, in_function, type_only))
            visit(child, nested, typing)

    visit(tree, False, False)
    return found


def all_imports() -> list[Import]:
    files = sorted({p for pattern in SOURCES for p in ROOT.glob(pattern)})
    return [imp for f in files for imp in own_imports(f)]


def package_graph(imports: list[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in imports:
        src, dst = layer_of(imp.source), layer_of(imp.target)
        if src and dst and src != dst:
            graph[src].add(dst)
    return graph


def violations(imports: list[Import]) -> list[str]:
    """Imports that point up the layers (a lower package importing a higher one)."""
    out = []
    for imp in imports:
        src, dst = layer_of(imp.source), layer_of(imp.target)
        if src and dst and LAYERS.index(dst) > LAYERS.index(src):
            out.append(f"{imp.source}:{imp.line}: {src} imports {imp.target} (a higher layer)")
    return out


def part_of(path_or_module: str) -> tuple[str, str] | None:
    """``indexes/storage/catalog.py`` or ``agentic_router.indexes.storage.catalog`` -> ("indexes", "storage")."""
    parts = path_or_module.replace("/", ".").removesuffix(".py").split(".")
    if parts and parts[0] == PACKAGE:
        parts = parts[1:]
    if len(parts) < 2 or parts[0] not in PARTS:
        return None
    return parts[0], parts[1]


def rank(layer: str, part: str) -> int | None:
    return next((i for i, group in enumerate(PARTS[layer]) if part in group), None)


def part_violations(imports: list[Import]) -> list[str]:
    """Imports inside ``indexes`` or ``router`` that point up its parts, or across two sub-packages of one
    rank; and parts that ``PARTS`` does not rank (a new module must be given its place)."""
    out = []
    for imp in imports:
        src, dst = part_of(imp.source), part_of(imp.target)
        if src is None or dst is None or src[0] != dst[0] or src[1] == dst[1] or src[1] == "__init__":
            continue
        layer, a, b = src[0], src[1], dst[1]
        ra, rb = rank(layer, a), rank(layer, b)
        if ra is None or rb is None:
            out.append(f"{imp.source}:{imp.line}: {layer}.{a if ra is None else b} has no rank in PARTS")
        elif not imp.type_only and (rb > ra or (rb == ra and a in SUBPACKAGES and b in SUBPACKAGES)):
            out.append(f"{imp.source}:{imp.line}: {layer}.{a} imports {imp.target} (not below it)")
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle in the package graph (found by depth-first search from each package)."""
    found: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == path[0]:
                found.append([*path, nxt])
            elif nxt not in path and nxt > path[0]:
                walk(nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, [start])
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the graph and problems as JSON")
    args = parser.parse_args()
    imports = all_imports()
    graph = package_graph(imports)
    bad, loops = violations(imports) + part_violations(imports), cycles(graph)
    if args.json:
        print(json.dumps({"layers": LAYERS, "graph": {k: sorted(v) for k, v in sorted(graph.items())},
                          "violations": bad, "cycles": loops}, indent=2))
    else:
        print("layers, lowest first: " + " <- ".join(LAYERS))
        for layer in reversed(LAYERS):
            print(f"  {layer:<9} -> {', '.join(sorted(graph.get(layer, ()))) or '(nothing of ours)'}")
        for line in bad:
            print("against the direction: " + line)
        for loop in loops:
            print("cycle: " + " -> ".join(loop))
        print("one way, no cycle" if not bad and not loops else f"{len(bad)} violation(s), {len(loops)} cycle(s)")
    return 1 if bad or loops else 0


if __name__ == "__main__":
    sys.exit(main())
