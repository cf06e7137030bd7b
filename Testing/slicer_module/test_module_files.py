"""Static checks of the Slicer module: the .ui binds every parameter, nothing heavy is imported
at module import time, the CMake lists name every file, the catalogue entry is valid, the
Slicer-side requirements admit the versions the backend is tested with."""
from __future__ import annotations

import ast
import json
import re
import xml.etree.ElementTree as ElementTree

from conftest import REPO_ROOT

MODULE_DIR = REPO_ROOT / "MRISuperResolution"
MODULE_FILE = MODULE_DIR / "MRISuperResolution.py"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "MRISuperResolution.ui"
HEAVY = ("torch", "monai", "scipy", "SimpleITK")
UNBOUND = {"model", "device"}  # their lists depend on the installed models and the job's Python


def parameter_names() -> set[str]:
    tree = ast.parse(MODULE_FILE.read_text())
    wrapper = next(
        node for node in tree.body
        if isinstance(node, ast.ClassDef) and any(getattr(d, "id", None) == "parameterNodeWrapper" for d in node.decorator_list)
    )
    return {item.target.id for item in wrapper.body if isinstance(item, ast.AnnAssign)}


def bound_names() -> dict[str, str]:
    """Widget name -> parameter name, for every widget with a SlicerParameterName property."""
    bound = {}
    for widget in ElementTree.parse(UI_FILE).getroot().iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[widget.get("name")] = prop.find("string").text
    return bound


def test_ui_is_well_formed_and_binds_every_parameter():
    bound = bound_names()
    assert sorted(bound.values()) == sorted(set(bound.values())), "a parameter is bound twice"
    assert set(bound.values()) == parameter_names() - UNBOUND


def test_widgets_used_by_the_module_exist_in_the_ui():
    names = {w.get("name") for w in ElementTree.parse(UI_FILE).getroot().iter("widget")}
    used = set(re.findall(r"self\.ui\.(\w+)", MODULE_FILE.read_text()))
    assert used <= names, used - names


def test_no_heavy_import_at_module_import_time():
    """Slicer imports every module at start-up: no torch there (the harness checks the module
    file at run time too); the Lib only reaches the backend inside functions."""
    for path in [MODULE_FILE, *sorted((MODULE_DIR / "MRISuperResolutionLib").glob("*.py"))]:
        tree = ast.parse(path.read_text())
        for node in tree.body:  # only top-level statements run at import time
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            allowed = {"inference_backend.registry"} if path == MODULE_FILE else set()  # plain Python
            heavy = [n for n in names if n.split(".")[0] in HEAVY or (n.startswith("inference_backend") and n not in allowed)]
            assert not heavy, f"{path.name} imports {heavy} at import time"


def test_cmake_lists_every_module_file():
    cmake = (MODULE_DIR / "CMakeLists.txt").read_text()
    for path in (MODULE_DIR / "MRISuperResolutionLib").glob("*.py"):
        assert f"${{MODULE_NAME}}Lib/{path.name}" in cmake
    assert "WITH_GENERIC_TESTS" in cmake and "slicer_add_python_unittest" in cmake
    top = (REPO_ROOT / "CMakeLists.txt").read_text()
    for field in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS"):
        assert f"set(EXTENSION_{field} " in top
    assert "add_subdirectory(MRISuperResolution)" in top


def test_extension_catalogue_entry():
    entry = json.loads((REPO_ROOT / "Resources" / "ExtensionsIndex" / "MRISuperResolution.json").read_text())
    assert {"scm_url", "scm_revision", "category", "build_dependencies"} <= set(entry)


def test_slicer_requirements_admit_the_tested_versions():
    """Resources/requirements.txt (ranges, for Slicer's shared Python) accepts every version the
    backend is pinned to and tested with (pyproject.toml)."""
    import tomllib
    from packaging.requirements import Requirement

    pins = {Requirement(pin).name.lower(): next(iter(Requirement(pin).specifier)).version
            for pin in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    lines = (MODULE_DIR / "Resources" / "requirements.txt").read_text().splitlines()
    requirements = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    assert requirements
    for requirement in requirements:
        assert requirement.specifier.contains(pins[requirement.name.lower()]), requirement
    assert {"torch", "numpy", "simpleitk", "vtk"}.isdisjoint(r.name.lower() for r in requirements)
