"""A Slicer for tests: the module's real widget code, bound by Slicer's own Python code.

What is real: Slicer's ``parameterNodeWrapper``, ``ScriptedLoadableModule`` and ``packaging``
(from ``../shared/slicer-python``, unmodified), ``slicer.util`` and the MRML scene (PyPI's
``slicer-core``), the module's ``.ui`` file, Qt's widgets (PySide6, offscreen). What stands
in: PythonQt's conventions (:mod:`.pythonqt`), the CTK/qMRML widgets the ``.ui`` names
(:mod:`.widgets`), and the few application services a module reaches (:mod:`.application`).

    harness = slicer_harness.install()          # once per process; skips when unavailable
    module = harness.load_module(MODULE_FILE)   # as Slicer loads it
    widget = module.build_widget()              # setup() + enter(), as when a user opens it
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import types
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
SLICER_PYTHON = REPO_ROOT.parent / "shared" / "slicer-python"
# Modules whose code Slicer runs under PythonQt: Qt properties read as attributes there.
PYTHONQT_CODE = ("slicer.", "MRISuperResolution", "SampleData")


def unavailable_reason() -> str | None:
    """Why the harness cannot run here (None when it can)."""
    if not (SLICER_PYTHON / "slicer" / "parameterNodeWrapper").is_dir():
        return f"Slicer's Python code is not at {SLICER_PYTHON} (developer and CI machines only)"
    if importlib.util.find_spec("PySide6") is None:
        return "PySide6 is not installed (pip install -e '.[test]')"
    try:
        import slicer
    except ImportError:
        return "slicer-core is not installed"
    if not hasattr(slicer, "vtkMRMLScene"):
        return "the 'slicer' package here is not Kitware's slicer-core"
    return None


class _PythonQtImportHook(importlib.abc.MetaPathFinder):
    """Switches PythonQt's attribute access on for Slicer-side modules as they are imported."""

    def find_spec(self, name, path=None, target=None):
        if not name.startswith(PYTHONQT_CODE):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            loader = spec.loader
            original = loader.exec_module

            def exec_module(module, original=original):
                from .pythonqt import enable_property_access

                enable_property_access(module)
                original(module)

            loader.exec_module = exec_module
        return spec


class Harness:
    """The installed harness: the application, a fresh scene per test, recorded dialogs."""

    def __init__(self, qapplication) -> None:
        import slicer
        from PySide6 import QtCore

        from .application import Application, new_scene
        from .widgets import ctkMessageBox

        self.qapplication = qapplication
        self.app = slicer.app = Application(qapplication)
        self.new_scene = new_scene
        self.dialogs = ctkMessageBox.shown
        self.answers = ctkMessageBox.answers
        self.qt_messages: list[str] = []  # Qt's own warnings, e.g. a .ui connection that failed
        QtCore.qInstallMessageHandler(lambda kind, context, message: self.qt_messages.append(message))

    def reset(self):
        """A new, empty scene as ``slicer.mrmlScene`` and no recorded dialogs."""
        import slicer

        slicer.mrmlScene = self.new_scene()
        self.dialogs.clear()
        self.answers.clear()
        self.qt_messages.clear()
        self.app.testing = False
        return slicer.mrmlScene

    def load_module(self, module_file: Path):
        from .application import ModuleHarness

        folder = str(module_file.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        for name in [n for n in sys.modules if n.startswith(module_file.stem)]:
            del sys.modules[name]  # each test loads the module afresh, as a Slicer restart would
        return ModuleHarness(module_file)


def _uninspectable_modules() -> list[str]:
    """Loaded modules that ``inspect`` cannot unwrap (torch.classes answers every attribute, then
    raises): PySide6's one-time scan of all modules' sources would stop on them."""
    import inspect

    names = []
    for name, module in list(sys.modules.items()):
        try:
            inspect.unwrap(module)
        except Exception:  # noqa: BLE001 - exactly the modules to set aside
            names.append(name)
    return names


class _hidden:
    """Set some ``sys.modules`` entries aside for the duration of a block."""

    def __init__(self, names: list[str]) -> None:
        self.names, self.modules = names, {}

    def __enter__(self) -> None:
        self.modules = {name: sys.modules.pop(name) for name in self.names}

    def __exit__(self, *exc: object) -> None:
        sys.modules.update(self.modules)


_installed: Harness | None = None


def install() -> Harness:
    """Install the stand-ins (once per process) and return the harness."""
    global _installed
    if _installed is not None:
        return _installed
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtWidgets

    qapplication = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["slicer-harness"])
    qapplication.setOrganizationName("MRISuperResolution-test-harness")
    from . import pythonqt

    sys.meta_path.insert(0, _PythonQtImportHook())
    with _hidden(_uninspectable_modules()):
        pythonqt.install({})  # PySide6 reads every loaded module's source the first time a feature is enabled
    from . import widgets

    pythonqt.UiLoader.custom_widgets.update({cls.__name__: cls for cls in widgets.CTK + widgets.QMRML})
    sys.modules["ctk"] = types.ModuleType("ctk", "CTK stand-ins")
    for cls in widgets.CTK:
        setattr(sys.modules["ctk"], cls.__name__, cls)
    import slicer
    import slicer.util

    slicer.__path__.append(str(SLICER_PYTHON / "slicer"))  # Slicer's own parameterNodeWrapper, ...
    pythonqt.enable_property_access(slicer.util)
    for cls in widgets.QMRML:
        setattr(slicer, cls.__name__, cls)
    slicer.modules = types.SimpleNamespace()
    from . import sample_data

    sys.modules["SampleData"] = sample_data
    _installed = Harness(qapplication)
    return _installed
