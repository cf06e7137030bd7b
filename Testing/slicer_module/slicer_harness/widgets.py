"""Minimal stand-ins for the CTK and qMRML widgets a module's ``.ui`` names.

Slicer's C++ widgets have no PyPI build. Each stand-in extends the Qt widget the real one is
built from and offers the Qt properties and signals Slicer documents for it, nothing more:
what the module under test uses must exist on the real widget too. Classes the parameter-node
connectors only compare types against are plain subclasses.
"""
from __future__ import annotations

import qt  # the PythonQt-style module built by .pythonqt
import vtk
from __feature__ import true_property  # noqa: F401 - PythonQt's property access, as in Slicer
from PySide6 import QtCore, QtWidgets


class ctkCollapsibleButton(qt.QGroupBox):  # noqa: N801 - CTK's class name
    """A titled section whose contents hide when ``collapsed`` (drawn as a group box)."""

    contentsCollapsed = QtCore.Signal(bool)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._collapsed = False

    def _get_text(self) -> str:
        return self.title

    def _set_text(self, text: str) -> None:
        self.title = text

    def _get_collapsed(self) -> bool:
        return self._collapsed

    def _set_collapsed(self, collapsed: bool) -> None:
        if collapsed == self._collapsed:
            return
        self._collapsed = collapsed
        for child in self.findChildren(qt.QWidget, options=QtCore.Qt.FindChildOption.FindDirectChildrenOnly):
            child.visible = not collapsed
        self.contentsCollapsed.emit(collapsed)

    def childEvent(self, event) -> None:  # noqa: N802 - Qt's override: contents added later hide too
        super().childEvent(event)
        if event.added() and self._collapsed and isinstance(event.child(), QtWidgets.QWidget):
            event.child().hide()

    text = QtCore.Property(str, _get_text, _set_text)
    collapsed = QtCore.Property(bool, _get_collapsed, _set_collapsed)


class ctkDoubleSpinBox(qt.QDoubleSpinBox):  # noqa: N801
    """CTK's spin box: a QDoubleSpinBox with the same properties and ``valueChanged(double)``."""


class ctkPathLineEdit(qt.QWidget):  # noqa: N801
    """A path field with a browse button: ``currentPath``, ``currentPathChanged(QString)``."""

    currentPathChanged = QtCore.Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = qt.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._edit = qt.QLineEdit(self)
        self._browse = qt.QToolButton(self)
        self._browse.text = "..."
        layout.addWidget(self._edit)
        layout.addWidget(self._browse)
        self._filters = 0
        self._edit.textChanged.connect(self.currentPathChanged.emit)

    def _get_path(self) -> str:
        return self._edit.text

    def _set_path(self, path: str) -> None:
        self._edit.text = path

    def setCurrentPath(self, path: str) -> None:  # noqa: N802 - CTK's API
        self._set_path(path)

    def _get_filters(self) -> int:
        return self._filters

    def _set_filters(self, filters: int) -> None:
        self._filters = filters

    currentPath = QtCore.Property(str, _get_path, _set_path)
    filters = QtCore.Property(int, _get_filters, _set_filters)  # CTK's flags; the .ui's names are not resolved here


class ctkMessageBox(qt.QMessageBox):  # noqa: N801
    """A message box that is recorded instead of shown: ``exec_()`` returns the harness's
    scripted answer (OK unless a test queued another)."""

    shown: list[dict[str, str]] = []
    answers: list[int] = []

    def exec_(self):  # noqa: D102 - Qt's API
        ctkMessageBox.shown.append(
            {"title": self.windowTitle, "text": self.text, "detailedText": self.detailedText, "icon": str(self.icon)}
        )
        return ctkMessageBox.answers.pop(0) if ctkMessageBox.answers else qt.QMessageBox.Ok

    exec = exec_


class qMRMLWidget(qt.QWidget):  # noqa: N801
    """A widget that hands its MRML scene to its children through ``mrmlSceneChanged``."""

    mrmlSceneChanged = QtCore.Signal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._scene = None

    def setMRMLScene(self, scene) -> None:  # noqa: N802 - Slicer's API
        self._scene = scene
        self.mrmlSceneChanged.emit(scene)

    def mrmlScene(self):  # noqa: N802
        return self._scene


def _plain_property(kind, attribute: str):
    """A Qt property stored in ``attribute`` (settings the stand-in keeps but does not act on)."""
    return QtCore.Property(kind, lambda self: getattr(self, attribute), lambda self, value: setattr(self, attribute, value))


def _listing_property(kind, attribute: str):
    """A Qt property stored in ``attribute`` whose change lists the scene's nodes again."""

    def set_and_refresh(self, value) -> None:
        setattr(self, attribute, list(value) if isinstance(value, list) else value)
        self._refresh()

    return QtCore.Property(kind, lambda self: getattr(self, attribute), set_and_refresh)


class qMRMLNodeComboBox(qt.QComboBox):  # noqa: N801
    """The scene's nodes of ``nodeTypes`` (subclasses only with ``showChildNodeTypes``, nodes
    hidden from editors never), optionally a "None" entry; follows nodes added, removed and
    renamed; ``currentNode()``, ``setCurrentNode()``, ``currentNodeChanged(vtkMRMLNode*)``."""

    currentNodeChanged = QtCore.Signal(object)
    currentNodeIDChanged = QtCore.Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._scene = None
        self._observations: list[tuple[object, int]] = []
        self._node_types: list[str] = []
        self._show_child_node_types = True
        self._none_enabled = False
        self._none_display = "None"
        self._add_enabled, self._remove_enabled, self._rename_enabled = True, True, False
        self._current_id = ""
        self.currentIndexChanged.connect(self._on_index_changed)

    # -- properties the .ui and connectors set ------------------------------------------------
    nodeTypes = _listing_property("QStringList", "_node_types")
    showChildNodeTypes = _listing_property(bool, "_show_child_node_types")
    noneEnabled = _listing_property(bool, "_none_enabled")
    noneDisplay = _listing_property(str, "_none_display")
    addEnabled = _plain_property(bool, "_add_enabled")
    removeEnabled = _plain_property(bool, "_remove_enabled")
    renameEnabled = _plain_property(bool, "_rename_enabled")

    # -- the scene ---------------------------------------------------------------------------
    def setMRMLScene(self, scene) -> None:  # noqa: N802 - Slicer's API
        for observed, tag in self._observations:
            observed.RemoveObserver(tag)
        self._observations = []
        self._scene = scene
        if scene is not None:
            for event in (scene.NodeAddedEvent, scene.NodeRemovedEvent, scene.EndCloseEvent):
                self._observations.append((scene, scene.AddObserver(event, self._on_scene_changed)))
        self._refresh()

    def mrmlScene(self):  # noqa: N802
        return self._scene

    def _on_scene_changed(self, caller, event) -> None:
        self._refresh()

    def _on_node_modified(self, caller, event) -> None:
        index = self.findData(caller.GetID())
        if index >= 0 and self.itemText(index) != caller.GetName():
            self.setItemText(index, caller.GetName())

    def nodes(self) -> list:
        """The nodes listed, in scene order."""
        if self._scene is None:
            return []
        listed = []
        for index in range(self._scene.GetNumberOfNodes()):
            node = self._scene.GetNthNode(index)
            if node.GetHideFromEditors() or not any(node.IsA(t) for t in self._node_types):
                continue
            if not self._show_child_node_types and node.GetClassName() not in self._node_types:
                continue
            listed.append(node)
        return listed

    def _refresh(self) -> None:
        for observed, tag in [o for o in self._observations if o[0] is not self._scene]:
            observed.RemoveObserver(tag)
        self._observations = [o for o in self._observations if o[0] is self._scene]
        previous = self._current_id
        blocked = self.blockSignals(True)
        self.clear()
        if self._none_enabled:
            self.addItem(self._none_display, "")
        for node in self.nodes():
            self.addItem(node.GetName(), node.GetID())
            self._observations.append((node, node.AddObserver(vtk.vtkCommand.ModifiedEvent, self._on_node_modified)))
        index = self.findData(previous) if previous else -1
        if index < 0:
            index = 0 if self.count else -1  # as Qt does: the first entry of a filled list
        self.currentIndex = index
        self.blockSignals(blocked)
        self._on_index_changed(index)

    def _on_index_changed(self, index: int) -> None:
        node_id = self.itemData(index) if index >= 0 else ""
        node_id = node_id or ""
        if node_id == self._current_id:
            return
        self._current_id = node_id
        self.currentNodeIDChanged.emit(node_id)
        self.currentNodeChanged.emit(self.currentNode())

    def currentNode(self):  # noqa: N802 - Slicer's API
        if not self._current_id or self._scene is None:
            return None
        return self._scene.GetNodeByID(self._current_id)

    def currentNodeID(self) -> str:  # noqa: N802
        return self._current_id

    def setCurrentNode(self, node) -> None:  # noqa: N802
        node_id = "" if node is None else node.GetID()
        index = self.findData(node_id) if node_id else (0 if self._none_enabled else -1)
        if node_id and index < 0:
            return  # not a node of this selector: Slicer ignores it too
        self.currentIndex = index


class qSlicerScriptedLoadableModuleWidget(qt.QWidget):  # noqa: N801
    """The panel Slicer gives a scripted module: a layout, ``isEntered``, and ``self()``, the
    module's Python widget object."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setLayout(qt.QVBoxLayout())
        self.isEntered = False
        self._python_widget = None

    def self(self):  # noqa: D102 - Slicer's API
        return self._python_widget


def _plain(name: str, base) -> type:
    return type(name, (base,), {"__doc__": f"{name}: only its type is compared by Slicer's connectors."})


ctkComboBox = _plain("ctkComboBox", qt.QComboBox)
ctkCheckBox = _plain("ctkCheckBox", qt.QCheckBox)
ctkCheckablePushButton = _plain("ctkCheckablePushButton", qt.QPushButton)
ctkSliderWidget = _plain("ctkSliderWidget", qt.QWidget)
ctkDoubleSlider = _plain("ctkDoubleSlider", qt.QSlider)
ctkRangeWidget = _plain("ctkRangeWidget", qt.QWidget)
ctkDoubleRangeSlider = _plain("ctkDoubleRangeSlider", qt.QWidget)
ctkDirectoryButton = _plain("ctkDirectoryButton", qt.QPushButton)
ctkColorPickerButton = _plain("ctkColorPickerButton", qt.QPushButton)
qMRMLSliderWidget = _plain("qMRMLSliderWidget", qt.QWidget)
qMRMLSpinBox = _plain("qMRMLSpinBox", qt.QDoubleSpinBox)
qMRMLRangeWidget = _plain("qMRMLRangeWidget", qt.QWidget)

CTK = [
    ctkCollapsibleButton, ctkDoubleSpinBox, ctkPathLineEdit, ctkMessageBox, ctkComboBox, ctkCheckBox,
    ctkCheckablePushButton, ctkSliderWidget, ctkDoubleSlider, ctkRangeWidget, ctkDoubleRangeSlider,
    ctkDirectoryButton, ctkColorPickerButton,
]
QMRML = [qMRMLWidget, qMRMLNodeComboBox, qSlicerScriptedLoadableModuleWidget, qMRMLSliderWidget, qMRMLSpinBox, qMRMLRangeWidget]
