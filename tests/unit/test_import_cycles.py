"""No import cycles among jobplane's modules, hidden or not.

A cycle that fails at import time is easy to see; the ones worth a test are
the cycles kept alive by moving one import into a function, which work until
someone moves it back. So the graph here counts every import of a jobplane
module that runs at some point: at module level, in class bodies and inside
functions. Imports under ``if TYPE_CHECKING:`` are left out (they never run),
and so are imports of a module's own packages (``from . import x`` in
``jobplane/cli/jobs.py`` imports ``jobplane.cli.x``; ``jobplane.cli`` itself is
always imported before its submodules).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import jobplane

ROOT = Path(jobplane.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_statements(body: Iterable[ast.stmt]) -> Iterable[ast.stmt]:
    """Every statement that may run, at any depth, skipping ``if TYPE_CHECKING:`` bodies."""
    for node in body:
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _runtime_statements(node.orelse)
            continue
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                yield from _runtime_statements([child])
            elif isinstance(child, ast.ExceptHandler | ast.match_case):
                yield from _runtime_statements(child.body)


def imports_of(name: str) -> set[str]:
    """The jobplane modules that module ``name`` imports (not its own packages)."""
    path = MODULES[name]
    source = path.read_text(encoding="utf-8")
    return imports_in(source, name, path.name == "__init__.py", set(MODULES))


def imports_in(source: str, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """The ``modules`` that the code of module ``name`` imports when it runs."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_statements(ast.parse(source).body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    # importing a.b.c runs a and a.b first; the importer's own packages have run already
    found |= {ancestor for module in found for ancestor in _packages_of(module)}
    return {module for module in found if module in modules} - _packages_of(name) - {name}


def _packages_of(name: str) -> set[str]:
    """``{"a", "a.b"}`` for ``a.b.c``."""
    return {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each group of modules that import one another, directly or not (Tarjan's SCCs)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_the_cycle_finder_sees_a_cycle_through_three_modules() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_imports_in_functions_count_and_those_for_type_checking_do_not() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import common\n"
        "from ..errors import JobplaneError\n"
        "if TYPE_CHECKING:\n"
        "    from ..queue import JobQueue\n"
        "class Thing:\n"
        "    import p.stores\n"
        "def late() -> None:\n"
        "    try:\n"
        "        from ..explain import explain\n"
        "    except ImportError:\n"
        "        pass\n"
    )
    modules = {"p", "p.cli", "p.cli.common", "p.errors", "p.queue", "p.explain", "p.stores"}
    modules |= {"p.stores.sql", "p.stores.sql.load"}
    assert imports_in(source, "p.cli.jobs", False, modules) == {
        "p.cli.common",
        "p.errors",
        "p.stores",
        "p.explain",
    }
    # a module's packages are imported before it
    assert imports_in("import p.stores.sql.load\n", "p.cli.jobs", False, modules) == {
        "p.stores",
        "p.stores.sql",
        "p.stores.sql.load",
    }


def test_no_jobplane_module_imports_itself_through_others() -> None:
    graph = {name: imports_of(name) for name in MODULES}
    assert import_cycles(graph) == []


def test_every_module_imports_on_its_own() -> None:
    """Each module, imported first (no other jobplane module loaded), imports cleanly."""
    code = (
        "import importlib, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m.partition('.')[0] == 'jobplane']:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {exc!r}')\n"
        "print('\\n'.join(failed))\n"
    )
    names = [name for name in MODULES if name != "jobplane.__main__"]
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, *names],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip() == ""
