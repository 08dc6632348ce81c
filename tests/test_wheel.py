"""The built wheel is what users install: it must hold every module of the tree and import without the tree.

An editable install resolves ``agentic_router`` to the repository itself, so a package missing from
``pyproject.toml`` (a new sub-folder nobody listed) or a data file left out of ``package-data`` passes every
other test and fails only for users. This test builds the wheel and imports every module from it alone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("indexes", "router", "training", "serve", "commands")  # the folders shipped as agentic_router.<name>


def _library_files() -> set[str]:
    files = {"__init__.py", "cli.py"}
    for top in LIBRARY:
        files |= {p.relative_to(ROOT).as_posix() for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts}
    return files


def test_the_wheel_ships_every_module_and_imports_on_its_own(tmp_path: Path) -> None:
    # from a copy without build products: setuptools reuses build/lib, which would hide a missing package
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", ".import-root", ".mypy_cache", "build", "bench-results", "*.egg-info", "__pycache__",
        ".demo-workspace", ".agentic-router"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=300)
    [wheel] = (tmp_path / "dist").glob("agentic_router-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    shipped = {n.removeprefix("agentic_router/") for n in names if n.startswith("agentic_router/")}
    assert _library_files() - shipped == set(), "modules missing from the wheel: list the package in pyproject.toml"
    assert "router/retrieval/data/background_requests.txt" in shipped  # package data the default abstain rule reads
    assert not any(n.startswith(("agentic_router/tests/", "agentic_router/scripts/")) for n in names)

    modules = sorted("agentic_router." + n.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
                     for n in shipped if n.endswith(".py") and n != "__init__.py")
    probe = ("import importlib, sys; import agentic_router as a; "
             "assert a.__file__.startswith(sys.argv[1]), a.__file__; "
             "[importlib.import_module(m) for m in sys.argv[2:]]; "
             "from agentic_router.router.retrieval.fit import background_requests; assert len(background_requests()) > 100")
    # run from an empty folder with the unpacked wheel first on the path: the repository cannot be reached
    env_path = str(tmp_path / "site")
    done = subprocess.run([sys.executable, "-c", probe, env_path, *modules], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": env_path, "HF_HUB_OFFLINE": "1", "PATH": ""})
    assert done.returncode == 0, done.stderr[-2000:]
