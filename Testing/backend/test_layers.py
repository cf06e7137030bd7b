"""The package's layers, read from its own imports (every ``import``, also inside functions):
no import runs up a layer, no two modules import each other (directly or round a circle), and
what inference runs never imports training, training data or evaluation."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "inference_backend"
# bottom to top; a module may import its own layer and those below
LAYERS = (
    ("errors", "protocol", "progress", "assets", "devices", "time_estimates", "inference_backend"),
    ("imaging",),
    ("operators",),
    ("networks", "schedulers"),
    ("methods",),
    ("registry",),
    ("bids", "job", "plan", "outputs", "pipeline"),
    ("data",),
    ("evaluation", "training"),
    ("batch", "cli", "__main__"),
)
INFERENCE_TOP = "pipeline"  # everything at or below this layer is what a job runs


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.split(".")[0] == "inference_backend"}


def layer_of(module: str) -> int:
    key = module.split(".")[1] if "." in module else module
    for index, members in enumerate(LAYERS):
        if key in members:
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def test_no_import_runs_up_a_layer():
    upward = [
        f"{module} ({layer_of(module)}) -> {target} ({layer_of(target)})"
        for module, targets in graph().items()
        for target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, "\n".join(upward)


def test_inference_never_imports_training_data_or_evaluation():
    top = next(i for i, members in enumerate(LAYERS) if INFERENCE_TOP in members)
    forbidden = ("inference_backend.data", "inference_backend.training", "inference_backend.evaluation")
    found = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        if layer_of(module) <= top
        for target in targets
        if target.startswith(forbidden)
    ]
    assert not found, "\n".join(found)


def test_no_import_circle():
    edges = graph()
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                raise AssertionError("import circle: " + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
