"""The parts of Slicer's application a scripted module reaches through ``slicer.app``,
``slicer.modules`` and ``slicer.mrmlScene``, and the module lifecycle Slicer drives."""
from __future__ import annotations

import os
import time
import types
from collections.abc import Callable
from pathlib import Path

import qt
import slicer
from __feature__ import true_property  # noqa: F401 - PythonQt's property access, as in Slicer
from PySide6 import QtCore

from .widgets import qSlicerScriptedLoadableModuleWidget

SLICE_VIEWS = ("Red", "Yellow", "Green")


class ModuleManager(qt.QObject):
    """``slicer.app.moduleManager()``: the loaded modules by name."""

    moduleAboutToBeUnloaded = QtCore.Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.modules: dict[str, object] = {}

    def module(self, name: str):  # noqa: D102 - Slicer's API
        return self.modules.get(name)


class Application:
    """``slicer.app``: what Slicer's Python utilities call on the application."""

    applicationName = "Slicer"

    def __init__(self, qapplication) -> None:
        self._qapplication = qapplication
        self._module_manager = ModuleManager()
        self.testing = False  # False: dialogs go through ctkMessageBox, which the harness records
        self.startup_environment: dict[str, str] = dict(os.environ)
        self.main_window = qt.QMainWindow()
        self.main_window.objectName = "qSlicerMainWindow"

    def testingEnabled(self) -> bool:  # noqa: N802 - Slicer's API
        return self.testing

    def moduleManager(self):  # noqa: N802
        return self._module_manager

    def topLevelWidgets(self):  # noqa: N802
        return [self.main_window]

    def processEvents(self, *args) -> None:  # noqa: N802
        self._qapplication.processEvents()

    def setOverrideCursor(self, cursor) -> None:  # noqa: N802
        self._qapplication.setOverrideCursor(cursor)

    def restoreOverrideCursor(self) -> None:  # noqa: N802
        self._qapplication.restoreOverrideCursor()

    def thread(self):
        return self._qapplication.thread()

    def startupEnvironment(self):  # noqa: N802
        environment = qt.QProcessEnvironment()
        for key, value in self.startup_environment.items():
            environment.insert(key, value)
        return environment

    def layoutManager(self):  # noqa: N802 - no views in the harness
        return None

    def translate(self, context: str, text: str) -> str:
        """As Slicer's application: through the translators installed in Qt."""
        return qt.QCoreApplication.translate(context, text)

    def settings(self):
        return qt.QSettings()

    userSettings = settings


def new_scene():
    """A scene as Slicer's application starts it: default colour tables and the colour legend
    (the Colors module's), three slice views."""
    scene = slicer.vtkMRMLScene()
    scene.RegisterNodeClass(slicer.vtkMRMLColorLegendDisplayNode())
    colors = slicer.vtkMRMLColorLogic()
    colors.SetMRMLScene(scene)
    colors.SetMRMLScene(None)
    for view in SLICE_VIEWS:
        composite = scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
        composite.SetLayoutName(view)
        composite.SetSingletonTag(view)
    return scene


class ModuleHarness:
    """Loads a scripted module as Slicer does and drives its widget: enter, exit, events."""

    def __init__(self, module_file: Path) -> None:
        import importlib

        self.module_file = module_file
        self.name = module_file.stem
        self.python_module = importlib.import_module(self.name)
        self.panel: qSlicerScriptedLoadableModuleWidget | None = None
        self.widget = None
        parent = types.SimpleNamespace(path=str(module_file), icon=None)
        self.module = getattr(self.python_module, self.name)(parent)
        self.parent = parent
        entry = types.SimpleNamespace(
            name=self.name, path=str(module_file), widgetRepresentation=lambda: self.panel, logic=lambda: None
        )
        slicer.app.moduleManager().modules[self.name] = entry
        setattr(slicer.modules, self.name.lower(), entry)

    def build_widget(self):
        """The module panel, made as Slicer makes it the first time a user opens the module."""
        self.panel = qSlicerScriptedLoadableModuleWidget()
        self.widget = getattr(self.python_module, self.name + "Widget")(self.panel)
        self.panel._python_widget = self.widget
        self.widget.setup()
        self.panel.resize(460, self.panel.sizeHint.height())
        self.panel.show()  # offscreen: "visible" then means what a user would see
        self.enter()
        return self.widget

    def grab(self, path: Path) -> None:
        """Save the panel as a user sees it now (sized to its contents) as a PNG."""
        slicer.app.processEvents()
        self.panel.resize(self.panel.width, self.panel.sizeHint.height())
        slicer.app.processEvents()
        if not self.panel.grab().save(str(path)):
            raise OSError(f"could not write {path}")

    def enter(self) -> None:
        self.panel.isEntered = True
        self.widget.enter()

    def exit(self) -> None:
        self.widget.exit()
        self.panel.isEntered = False

    def unload(self) -> None:
        slicer.app.moduleManager().moduleAboutToBeUnloaded.emit(self.name)


def process_events_until(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Run the event loop (timers, queued signals) until ``condition()`` or the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        slicer.app.processEvents()
        if condition():
            return True
        time.sleep(0.01)
    slicer.app.processEvents()
    return condition()
