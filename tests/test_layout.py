"""The package's shape: every module imports on its own, every public name resolves.

A module that only imports when another one was imported first hides an import cycle (the full
suite would still pass, by collection order); a public name that does not resolve is a broken
promise of the documented import paths.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import capsvc

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_PACKAGES = (
    "capsvc",
    "capsvc.sources",
    "capsvc.sources.libpcap",
    "capsvc.sources.pfring",
    "capsvc.sources.afpacket",
    "capsvc.sources.capfile",
    "capsvc.sinks",
    "capsvc.filter",
    "capsvc.decode",
    "capsvc.service",
)


def _modules() -> list[str]:
    found = pkgutil.walk_packages(capsvc.__path__, "capsvc.")
    return sorted(m.name for m in found if not m.name.endswith(".__main__"))  # runs the CLI


def _import_alone(module: str) -> tuple[str, int, str]:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return module, done.returncode, done.stderr.strip().splitlines()[-1:][0] if done.stderr else ""


def test_every_module_imports_alone() -> None:
    """Each module of capsvc imports in a fresh interpreter (no cycle needs another first)."""
    modules = _modules()
    assert len(modules) > 40  # the walk found the package, not an empty path
    with ThreadPoolExecutor(4) as pool:
        failed = [(m, err) for m, rc, err in pool.map(_import_alone, modules) if rc != 0]
    assert failed == []


def _imports(path: Path, module: str) -> set[str]:
    """The capsvc modules ``module`` imports at module level, type-only imports included
    (imports inside functions are deferred on purpose and left out)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    todo = list(ast.parse(path.read_text()).body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If | ast.Try | ast.With):
            todo += node.body + getattr(node, "orelse", []) + getattr(node, "finalbody", [])
            for handler in getattr(node, "handlers", []):
                todo += handler.body
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("capsvc")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("capsvc"):
                # The names are modules of the package, or names its __init__ defines.
                found |= {target} | {f"{target}.{a.name}" for a in node.names}
    return found


def test_no_import_cycle() -> None:
    """No module reaches itself through module-level imports, type-only ones included: the
    dependency graph is acyclic (a package's own ``__init__`` importing its modules aside)."""
    paths = {}
    for path in (ROOT / "capsvc").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        deps = set()
        for dep in _imports(path, module):
            # Importing a.b.c runs a.b first, except for a module inside a.b (already running).
            while dep and dep != module and not module.startswith(dep + "."):
                if dep in paths:
                    deps.add(dep)
                dep = dep.rpartition(".")[0]
        graph[module] = deps
    assert len(graph) > 40
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == [], cycles


def _collect_alone(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    """``pytest --collect-only`` on each of ``paths`` alone (tests/_alone.py forks per file)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "tests" / "_alone.py"), *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_every_test_module_collects_alone() -> None:
    """``pytest FILE`` works for each test module on its own: no module relies on another
    having been imported first (a helper found only through a sibling's ``sys.path`` entry, an
    import cycle of capsvc that the suite's collection order hides).

    Regression guarded: ``pytest tests/sources/pfring/test_pfring_source.py`` alone failed at
    collection with a circular ImportError while the whole suite passed."""
    modules = sorted((ROOT / "tests").rglob("test_*.py"))
    assert len(modules) > 40
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(_collect_alone, [modules[0::2], modules[1::2]]))
    assert [d.stdout + d.stderr for d in done] == ["", ""]
    assert [d.returncode for d in done] == [0, 0]


def test_collecting_alone_finds_a_module_that_needs_another(tmp_path: Path) -> None:
    """The check above can fail: a module importing a helper it cannot see is reported."""
    broken = tmp_path / "test_needs_a_sibling.py"
    broken.write_text("from _tsharkrun import T0\n\n\ndef test_x() -> None:\n    assert T0\n")
    done = _collect_alone([broken])
    assert done.returncode == 1 and "exit 2" in done.stdout and "_tsharkrun" in done.stdout


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_public_names_resolve(package: str) -> None:
    """Every name in a public package's ``__all__`` is there, and ``dir()`` lists it."""
    module = importlib.import_module(package)
    names = list(module.__all__)
    assert names, package
    missing = [n for n in names if not hasattr(module, n)]
    assert missing == []
    assert set(names) <= set(dir(module))


def test_import_capsvc_loads_no_backend() -> None:
    """``import capsvc`` stays cheap: no ctypes binding, aiohttp or filter compiler loaded."""
    code = (
        "import sys, capsvc; capsvc.Session; "
        "bad = [m for m in ('aiohttp', 'ctypes', 'capsvc.filter', 'capsvc.sources.libpcap') "
        "if m in sys.modules]; print(bad)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_one_bpf_instruction_type_and_opcode_table() -> None:
    """The filter's compiler, the libpcap binding and the AF_PACKET source share one
    instruction type; the compiler keeps no opcode table of its own."""
    from capsvc import _bpf
    from capsvc.filter import BpfInstruction
    from capsvc.sources.libpcap import BPFInstruction

    assert BpfInstruction is _bpf.BpfInstruction
    assert BPFInstruction is _bpf.BpfInstruction
    for name in ("_bpf.py", "_bpfgraph.py"):
        text = (ROOT / "capsvc" / "filter" / name).read_text()
        assert "class BpfInstruction" not in text
        assert "0x00, 0x01, 0x02" not in text  # the instruction classes spelled out again


def test_compiled_filter_is_not_named_like_the_matcher_protocol() -> None:
    """``capsvc.Matcher`` is the protocol; the filter package's class is ``CompiledFilter``
    (its former name ``capsvc.filter.Matcher`` still imports, as an alias)."""
    import capsvc.filter

    compiled = capsvc.filter.parse_filter("tcp")
    assert type(compiled) is capsvc.filter.CompiledFilter
    assert "Matcher" not in capsvc.filter.__all__
    assert capsvc.filter.Matcher is capsvc.filter.CompiledFilter
