"""Every benchmark script still imports: the package they measure moves under them."""
from __future__ import annotations

import importlib.util
import sys

import pytest

from conftest import REPO_ROOT

SCRIPTS = sorted((REPO_ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_the_script_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(script.parent))  # as when run: benchmarks/ first on the path
    spec = importlib.util.spec_from_file_location(f"benchmark_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    assert callable(getattr(module, "main", None)), f"{script.name} has no main()"


def test_no_script_imports_another():
    """Scripts share code through the package, never by importing one another."""
    import ast

    names = {script.stem for script in SCRIPTS}
    found = [
        f"{script.name} imports {module}"
        for script in SCRIPTS
        for node in ast.walk(ast.parse(script.read_text()))
        for module in ([alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if module.split(".")[0] in names
    ]
    assert not found, found


def test_the_results_list_each_command_behind_them_once(monkeypatch):
    from inference_backend.evaluation.report import commands_so_far, reproduce_line

    earlier = {"commands": [".venv/bin/python benchmarks/x.py --scans p03", ".venv/bin/python benchmarks/x.py --scans p12 --update"]}
    monkeypatch.setattr(sys, "argv", ["benchmarks/x.py", "--scans", "p03"])  # run again: its rows replace the first run's
    assert commands_so_far("benchmarks/x.py", earlier) == [".venv/bin/python benchmarks/x.py --scans p12 --update", ".venv/bin/python benchmarks/x.py --scans p03"]
    monkeypatch.setattr(sys, "argv", ["benchmarks/x.py", "--methods", "a b"])
    assert reproduce_line(commands_so_far("benchmarks/x.py", {})) == "Reproduce: `.venv/bin/python benchmarks/x.py --methods 'a b'`."
