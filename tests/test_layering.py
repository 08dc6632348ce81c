"""The package graph flows one way, and the import name cannot collide with an application's modules."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A shell may defer its imports so that `agentic-router --help` answers at once; library code may not:
# a function-level import of our own module there only ever hid a cycle.
# the command line defers imports so that `--help` answers at once: cli.py and the command groups it registers
DEFERRED_OK = {"cli.py", "__init__.py", "commands/models.py", "commands/service.py", "commands/shell.py",
               "commands/state.py"}


def _import_graph():  # noqa: ANN202 - the scripts/import_graph.py module
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_packages_import_one_way_without_cycles() -> None:
    graph = _import_graph()
    imports = graph.all_imports()
    assert len(imports) > 50  # the walk really read the sources
    assert graph.violations(imports) == []
    assert graph.part_violations(imports) == []  # inside indexes and router, the parts flow one way too
    assert graph.cycles(graph.package_graph(imports)) == []
    edges = graph.package_graph(imports)
    assert "router" not in edges.get("indexes", set()) and "training" not in edges.get("router", set())


def test_the_checker_catches_an_upward_import(tmp_path: Path) -> None:
    graph = _import_graph()
    bad = [graph.Import("indexes/x.py", 3, "agentic_router.router.app", False),
           graph.Import("router/y.py", 4, "agentic_router.indexes.storage.catalog", False)]
    assert graph.violations(bad) == ["indexes/x.py:3: indexes imports agentic_router.router.app (a higher layer)"]
    assert graph.cycles({"indexes": {"router"}, "router": {"indexes"}}) == [["indexes", "router", "indexes"]]


def test_the_checker_catches_an_import_up_the_parts_of_a_layer() -> None:
    graph = _import_graph()
    rows = [graph.Import("indexes/storage/catalog.py", 1, "agentic_router.indexes.sources.documents", False),
            graph.Import("indexes/encoders/cpu.py", 2, "agentic_router.indexes.storage.chroma", False),
            graph.Import("indexes/storage/catalog.py", 3, "agentic_router.indexes.newpart", False),
            graph.Import("router/retrieval/fit.py", 4, "agentic_router.router.workspace", False, True),
            graph.Import("indexes/sources/openapi.py", 5, "agentic_router.indexes.storage.catalog", False)]
    assert graph.part_violations(rows) == [
        "indexes/storage/catalog.py:1: indexes.storage imports agentic_router.indexes.sources.documents (not below it)",
        "indexes/encoders/cpu.py:2: indexes.encoders imports agentic_router.indexes.storage.chroma (not below it)",
        "indexes/storage/catalog.py:3: indexes.newpart has no rank in PARTS",
    ]  # a type-only import up the parts (4) and an import down them (5) are fine


def test_library_code_has_no_deferred_imports_of_its_own_modules() -> None:
    deferred = [f"{i.source}:{i.line} {i.target}" for i in _import_graph().all_imports()
                if i.in_function and i.source not in DEFERRED_OK]
    assert deferred == []


def test_import_script_prints_the_graph() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "import_graph.py"), "--json"],
                         capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["violations"] == [] and data["cycles"] == [] and data["graph"]["cli"]


def test_an_application_with_its_own_router_module(tmp_path: Path) -> None:
    """Every FastAPI app has a `router` module; ours lives under `agentic_router` and must not collide."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "router.py").write_text("NAME = 'the application router'\n", encoding="utf-8")
    (app / "indexes.py").write_text("NAME = 'the application indexes'\n", encoding="utf-8")
    script = (
        "import json, router, indexes\n"
        "from agentic_router import AgenticRouter, InputError\n"
        "from agentic_router.indexes.schema import ToolSpec\n"
        "r = AgenticRouter.open('ws', llm_provider='none')\n"
        "r.add_tools([ToolSpec(name='get_weather', description='Weather forecast for a city', kind='external'),\n"
        "             ToolSpec(name='send_email', description='Send an email message to someone', kind='external')])\n"
        "hits = r.route('will it rain in Lisbon tomorrow?', k=2)\n"
        "try:\n"
        "    r.route('  ')\n"
        "except InputError as exc:\n"
        "    err = str(exc)\n"
        "print(json.dumps({'app': router.NAME, 'idx': indexes.NAME, 'first': hits[0].name, 'err': err}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=app, capture_output=True, text=True, timeout=300,
                         env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"app": "the application router", "idx": "the application indexes", "first": "get_weather",
                      "err": "the question is empty"}
