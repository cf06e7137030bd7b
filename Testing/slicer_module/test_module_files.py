"""Static checks of the Slicer module: the .ui binds every parameter, nothing heavy is imported
at module import time, the CMake lists name every file, the catalogue entry is valid."""
from __future__ import annotations

import ast
import json
import re
import xml.etree.ElementTree as ElementTree

from conftest import REPO_ROOT

MODULE_DIR = REPO_ROOT / "MRISuperResolution"
MODULE_FILE = MODULE_DIR / "MRISuperResolution.py"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "MRISuperResolution.ui"
HEAVY = ("torch", "monai", "inference_backend", "numpy", "SimpleITK")


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
    assert set(bound.values()) == parameter_names()


def test_widgets_used_by_the_module_exist_in_the_ui():
    names = {w.get("name") for w in ElementTree.parse(UI_FILE).getroot().iter("widget")}
    used = set(re.findall(r"self\.ui\.(\w+)", MODULE_FILE.read_text()))
    assert used <= names, used - names


def test_no_heavy_import_at_module_import_time():
    for path in [MODULE_FILE, *sorted((MODULE_DIR / "MRISuperResolutionLib").glob("*.py"))]:
        tree = ast.parse(path.read_text())
        for node in tree.body:  # only top-level statements run at import time
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            allowed = path.name == "conversion.py" or path.name == "runners.py"  # numpy is light and present in Slicer
            heavy = [n for n in names if n.split(".")[0] in HEAVY and not (allowed and n == "numpy")]
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


def test_dependency_check_and_protected_constraints():
    import numpy
    import SimpleITK

    from MRISuperResolutionLib import dependencies

    assert dependencies.missing_packages() == []  # the test environment has everything
    constraints = dependencies.protected_constraints().split()
    assert f"numpy=={numpy.__version__}" in constraints
    assert f"SimpleITK=={SimpleITK.Version_VersionString()}" in constraints
    assert any(line.startswith("vtk==") for line in constraints)
