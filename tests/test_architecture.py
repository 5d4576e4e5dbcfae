"""The house rules of docs/ARCHITECTURE.md, checked on the source: which layer may import which, and no import
cycles between modules (imports inside functions and ``if TYPE_CHECKING:`` blocks count too)."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import pytest

from .conftest import ROOT

LEAVES = (
    "worker.errors",
    "worker.settings",
    "worker.options",
    "worker.wire",
    "worker.text",
    "worker.inputs",
    "worker.display",
    "worker.listen",
)
# layer → the layers it may import (besides itself). A module's layer is the longest prefix listed here.
RULES: dict[str, tuple[str, ...]] = {
    **{leaf: LEAVES for leaf in LEAVES},
    "worker.model": LEAVES,
    "worker.streams": LEAVES,
    "worker.sources": (*LEAVES, "worker.streams"),
    "worker.service": (*LEAVES, "worker.model", "worker.streams"),
    "worker.web": (*LEAVES, "worker.model", "worker.streams"),
    "worker.tools": (*LEAVES, "worker.model", "worker.streams", "worker.sources", "worker.service"),
    "worker.cli": ("worker", "trainer"),
    "worker.__main__": ("worker.cli",),
    "worker": (),
    "trainer": (*LEAVES, "worker.model"),
    # tools for developing livetopic, run from a checkout and never installed: nothing installed imports them
    "devtools": (*LEAVES, "worker.model", "worker.streams", "worker.service"),
}
PACKAGES = ("worker", "trainer", "devtools")


def module_files(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    out = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _target(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module → the project modules it imports (a name imported from a package counts as its submodule when
    there is one)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _target(module, path, node)
                names = [f"{base}.{alias.name}" for alias in node.names] + [base]
            else:
                continue
            for name in names:
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != module and not module.startswith(name + "."):
                    found.add(name)
        graph[module] = found
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
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
                    work.append((child, iter(sorted(graph.get(child, ())))))
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


def layer(module: str) -> str:
    matches = [key for key in RULES if module == key or module.startswith(key + ".")]
    return max(matches, key=len)


def violations(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for module, targets in sorted(graph.items()):
        mine = layer(module)
        allowed = (mine, *RULES[mine])
        for target in sorted(targets):
            if not any(target == a or target.startswith(a + ".") for a in allowed):
                out.append(f"{module} ({mine}) imports {target} ({layer(target)})")
    return out


def test_the_project_keeps_the_rules() -> None:
    graph = imports(module_files(ROOT))
    assert cycles(graph) == []
    assert violations(graph) == []
    runtime = [m for m in graph if m.startswith(("worker.model", "worker.streams", "worker.service"))]
    assert len(runtime) >= 15  # the check sees the sub-packages


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("files", "expect"),
    [
        (
            {
                "worker/__init__.py": "",
                "worker/service/__init__.py": "",
                "worker/tools/__init__.py": "",
                "worker/service/a.py": "from ..tools import demo\n",
                "worker/tools/demo.py": "",
            },
            "worker.service.a (worker.service) imports worker.tools.demo (worker.tools)",
        ),
        (
            {
                "worker/__init__.py": "",
                "worker/model/__init__.py": "",
                "trainer/__init__.py": "",
                "worker/model/x.py": "def f():\n    import trainer.train\n",
                "trainer/train.py": "",
            },
            "worker.model.x (worker.model) imports trainer.train (trainer)",
        ),
        (
            {
                "worker/__init__.py": "",
                "worker/wire.py": "from .model.load import x\n",
                "worker/model/__init__.py": "",
                "worker/model/load.py": "",
                "trainer/__init__.py": "",
            },
            "worker.wire (worker.wire) imports worker.model.load (worker.model)",
        ),
    ],
)
def test_the_check_catches_a_wrong_direction(tmp_path: Path, files: dict[str, str], expect: str) -> None:
    _write(tmp_path, files)
    assert expect in violations(imports(module_files(tmp_path)))


def test_nothing_installed_imports_the_dev_tools(tmp_path: Path) -> None:
    files = {
        "worker/__init__.py": "",
        "trainer/__init__.py": "",
        "devtools/__init__.py": "",
        "devtools/x.py": "",
        "worker/a.py": "from devtools import x\n",
        "trainer/b.py": "def f():\n    import devtools.x\n",
    }
    _write(tmp_path, files)
    found = violations(imports(module_files(tmp_path)))
    assert "trainer.b (trainer) imports devtools.x (devtools)" in found
    assert "worker.a (worker) imports devtools.x (devtools)" in found


def test_the_check_catches_a_type_only_cycle(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "worker/__init__.py": "",
            "trainer/__init__.py": "",
            "worker/service/__init__.py": "",
            "worker/service/a.py": "from .b import B\n",
            "worker/service/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\n",
        },
    )
    assert cycles(imports(module_files(tmp_path))) == [["worker.service.a", "worker.service.b"]]


def test_every_package_is_a_regular_package() -> None:
    """A folder of modules without ``__init__.py`` is left out of a non-editable install (the images)."""
    folders = {path.parent for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    assert sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file()) == []


def test_the_install_ships_the_runtime_and_no_dev_tools() -> None:
    """What ``pip install .`` packages (pyproject's find rule): worker and trainer, not devtools (the deploy checks
    and their vendored schemas are run from a checkout)."""
    import tomllib

    from setuptools import find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    shipped = find_packages(str(ROOT), include=config["packages"]["find"]["include"])
    assert {"worker", "worker.service", "trainer"} <= set(shipped)
    assert [p for p in shipped if "deploycheck" in p or p.startswith("devtools")] == []
    assert not any("deploycheck" in pattern for pattern in config["package-data"]["worker"])


def test_every_data_file_of_the_worker_is_shipped() -> None:
    """Each file of the worker package that is not Python (its sample data, web pages, the bench's CPUID mask
    source) matches one of pyproject's ``package-data`` patterns, so ``pip install .`` carries it."""
    import subprocess
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns = config["package-data"]["worker"]
    listed = subprocess.run(["git", "ls-files", "worker"], cwd=ROOT, capture_output=True, text=True, check=True)
    data = [PurePosixPath(p).relative_to("worker") for p in listed.stdout.split() if not p.endswith(".py")]
    assert data, "git ls-files found no data files"
    assert [str(p) for p in data if not any(p.match(pattern) for pattern in patterns)] == []
