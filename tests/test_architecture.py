"""The package's shape: imports go one way (no cycle), ``ops`` is pure, modules stay small.

The imports are read from the source (``ast``), counting those inside functions, so a
lazy import cannot hide a cycle. Each module belongs to a level; a module imports only
from its own level or below:

====  ==================================================================================
0     ``ops``: NumPy and SciPy only (and ``_typing``, the shared type aliases)
1     registry, validation, initializers, activations, schedule, parallel, data, _version
2     components: layers, losses, optimizers, metrics, schedules
3     graph
4     measure, io, callbacks, plotting
5     training
6     model
7     gradcheck, demo, testing, diagnostics, interop
8     the package's ``__init__`` and the command line (``__main__``)
====  ==================================================================================
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlstm"

LEVELS = [
    (0, ("mlstm.ops", "mlstm._typing")),
    (1, ("mlstm.registry", "mlstm.validation", "mlstm.initializers", "mlstm.activations",
         "mlstm.schedule", "mlstm.parallel", "mlstm.data", "mlstm._version")),
    (2, ("mlstm.layers", "mlstm.losses", "mlstm.optimizers", "mlstm.metrics",
         "mlstm.schedules")),
    (3, ("mlstm.graph", "mlstm.graph_config")),
    (4, ("mlstm.measure", "mlstm.io", "mlstm.callbacks", "mlstm.plotting")),
    (5, ("mlstm.training",)),
    (6, ("mlstm.model",)),
    (7, ("mlstm.gradcheck", "mlstm.demo", "mlstm.testing", "mlstm.diagnostics",
         "mlstm.interop")),
    (8, ("mlstm.__main__", "mlstm")),
]
#: Levels 0-6: never keras, tensorflow, torch, nor the diagnosis.
CORE_LEVEL = 6
FRAMEWORKS = ("keras", "tensorflow", "torch")
MAX_LINES = 500


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules():
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module, is_package, level, target):
    """Absolute name of ``from <level dots><target> import ...`` inside ``module``."""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _imports(modules):
    """``{module: {imported module names (mlstm's and others' top-level names)}}``."""
    out = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                target = (_resolve(name, is_package, node.level, node.module) if node.level
                          else node.module)
                for alias in node.names:          # "from . import losses": a submodule
                    candidate = f"{target}.{alias.name}"
                    found.add(candidate if candidate in modules else target)
        out[name] = {m for m in found if m != name}
    return out


def _level(module):
    best = None
    for level, prefixes in LEVELS:
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > len(best[1]):
                    best = (level, prefix)
    return None if best is None else best[0]


MODULES = _modules()
IMPORTS = _imports(MODULES)


def _internal(imported):
    return sorted(m for m in imported if m == "mlstm" or m.startswith("mlstm."))


def test_every_module_has_a_level():
    assert [m for m in MODULES if _level(m) is None] == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_only(module):
    upward = [f"{m} (level {_level(m)})" for m in _internal(IMPORTS[module])
              if m in MODULES and _level(m) > _level(module)]
    assert upward == [], f"{module} (level {_level(module)}) imports upward: {upward}"


def test_no_import_cycle():
    graph = {m: [i for i in _internal(IMPORTS[m]) if i in MODULES] for m in MODULES}
    index, low, on_stack, stack, cycles, counter = {}, {}, set(), [], [], [0]

    def strongconnect(root):           # Tarjan's algorithm, iterative
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
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
                    cycles.append(sorted(component))

    for module in graph:
        if module not in index:
            strongconnect(module)
    assert cycles == []


def test_ops_imports_only_numpy_scipy_and_ops():
    for module in MODULES:
        if _level(module) == 0:
            allowed = [m for m in IMPORTS[module]
                       if m.split(".")[0] in ("numpy", "scipy", "__future__")
                       or m.startswith("mlstm.ops") or m == "mlstm._typing"]
            foreign = sorted(IMPORTS[module] - set(allowed) - _STDLIB_USED)
            assert foreign == [], f"{module} imports {foreign}"


_STDLIB_USED = {"math", "sys", "weakref", "threading", "functools", "itertools", "collections",
                "dataclasses", "typing", "contextlib", "warnings"}


def test_core_never_imports_frameworks_or_the_diagnosis():
    for module in MODULES:
        if _level(module) <= CORE_LEVEL:
            bad = sorted(m for m in IMPORTS[module]
                         if m.split(".")[0] in FRAMEWORKS or m.startswith("mlstm.diagnostics"))
            assert bad == [], f"{module} imports {bad}"


def test_no_module_over_the_line_limit():
    long = {m: n for m, p in MODULES.items()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_reader_sees_what_a_cycle_looks_like():
    """The checks above would fail on a cycle and on an upward import (self-test)."""
    assert {"mlstm.graph_config", "mlstm.parallel"} <= IMPORTS["mlstm.graph"]
    assert "mlstm" not in IMPORTS["mlstm.graph"]       # "from . import parallel": a submodule
    assert _resolve("mlstm.layers.lstm", False, 2, "ops") == "mlstm.ops"
    assert _resolve("mlstm.layers", True, 1, "base") == "mlstm.layers.base"
    assert _level("mlstm.ops.lstm") == 0 and _level("mlstm.model") == 6
