"""The layering docs/architecture.md describes, checked on the code: every import (inside functions too) points down.

Each module of src/overfit belongs to one layer; a module imports only from its own layer
and the layers below it, and no import cycle exists, counting imports inside functions
(a lazy import is for start-up time, never to hide a cycle). A new module must be placed
in LAYERS (and in docs/architecture.md's table).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import overfit

ROOT = Path(overfit.__file__).parent
# Lowest first; a folder (encodings, export, report, reproduce, sweep, cli, web) counts as one module.
LAYERS = {
    "foundations": "errors limits files safefiles images fonts glsl memory endings metricinfo captions video plots",
    "kernels": "coords losses sampling metrics spectrum probes stackops",
    "description": "activations encodings modes config configio fields presets",
    "numerics": "devices targets models budget diagnostics",
    "training": "training stacked showing",
    "run on disk": "runs recorder diskspace tensorboard session",
    "outputs": "loading netview render inference export report reproduce sweep",
    "front ends": "cli web notebook",
}
LEVEL = {name: i for i, names in enumerate(LAYERS.values()) for name in names.split()}


def unit(module: str) -> str:
    """'overfit.web.app' -> 'web', 'overfit.budget' -> 'budget'."""
    return module.split(".")[1]


def imports() -> dict[str, set[str]]:
    """Every module of the package -> the package's modules it imports, anywhere in its code (TYPE_CHECKING excluded)."""
    mods = {".".join(p.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__"): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        skip = {id(x) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                for x in ast.walk(node)}
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        out: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else [])) if node.level else (node.module or "")
                candidates = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            out |= {c for c in candidates if c in mods and c != name and not name.startswith(c + ".") and not c.startswith(name + ".")}
        graph[name] = out
    return graph


def test_every_module_has_a_layer():
    units = {unit(m) for m in imports() if m != "overfit"}
    assert units - set(LEVEL) == set(), "place these modules in a layer (here and in docs/architecture.md)"


def test_every_import_points_down_or_within_its_layer():
    upward = [f"{m} -> {d}" for m, deps in imports().items() if m != "overfit" for d in deps
              if LEVEL[unit(d)] > LEVEL[unit(m)]]
    assert upward == []


def test_no_import_cycle_counting_imports_inside_functions():
    graph = imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(path[path.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_description_layers_cost_no_torch_import():
    # `overfit --help`, `overfit presets` and the lab's form metadata read only these.
    code = ("import sys, overfit.config, overfit.presets, overfit.fields, overfit.metricinfo, overfit.endings; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
