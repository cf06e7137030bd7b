"""PySide6 dressed as PythonQt's ``qt`` module, the way Slicer's Python code sees Qt.

PythonQt (Slicer's binding) differs from PySide6 in three ways that Slicer's code relies on:

- Qt properties are attributes (``button.enabled = False``, ``spinBox.value``) while their
  setters stay callable (``spinBox.setMinimum(0)``). PySide6's ``true_property`` feature gives
  the attributes but removes the setters; :func:`restore_setters` puts them back, and
  :func:`enable_property_access` switches the feature on for the modules that run Slicer code.
- ``widget.connect("clicked(bool)", slot)``: signals named by their C++ signature. Native PySide6
  objects refuse a Python ``connect`` on their class, so every QObject class of the ``qt`` module
  is a thin Python subclass that accepts both forms, and the ``.ui`` loader creates those.
- ``objectName`` is also readable as ``name``.
"""
from __future__ import annotations

import sys
import types
import xml.etree.ElementTree as ElementTree

from PySide6 import QtCore, QtGui, QtUiTools, QtWidgets

SOURCES = (QtCore, QtGui, QtWidgets, QtUiTools)
# A PythonQt-only signal type: Qt's meta-object cannot carry a VTK object, PythonQt can.
SCENE_CONNECTION = ("mrmlSceneChanged(vtkMRMLScene*)", "setMRMLScene(vtkMRMLScene*)")


def _signal(sender: QtCore.QObject, signature: str):
    name = signature.partition("(")[0].strip()
    signal = getattr(sender, name, None)
    if signal is None or not hasattr(signal, "connect"):
        raise AttributeError(f"{type(sender).__name__} has no signal {signature!r}")
    return signal


def _connect(self, *args):
    if len(args) == 2 and isinstance(args[0], str):
        return _signal(self, args[0]).connect(args[1])
    return QtCore.QObject.connect(self, *args)


def _disconnect(self, *args):
    if len(args) == 2 and isinstance(args[0], str):
        return _signal(self, args[0]).disconnect(args[1])
    return QtCore.QObject.disconnect(self, *args)


# PythonQt's additions to every QObject. They must sit in each class's own namespace (PySide6
# ignores a ``connect`` a class inherits from Python code), so subclasses get them too.
PYTHONQT_MEMBERS = {
    "connect": _connect,
    "disconnect": _disconnect,
    "name": property(lambda self: self.objectName(), lambda self, value: self.setObjectName(value)),
}


def _adopt_pythonqt_members(cls) -> None:
    for member, value in PYTHONQT_MEMBERS.items():
        if member not in cls.__dict__:
            setattr(cls, member, value)


_SUBCLASSES: dict[type, type] = {}


def pythonqt_class(native: type) -> type:
    """The ``qt`` class standing for a native PySide6 QObject class (made once)."""
    if native not in _SUBCLASSES:
        _SUBCLASSES[native] = type(
            native.__name__, (native,), {"__module__": "qt", "__init_subclass__": _adopt_pythonqt_members, **PYTHONQT_MEMBERS}
        )
    return _SUBCLASSES[native]


def restore_setters(classes: list[type]) -> None:
    """Give back, under ``true_property``, the ``setX`` methods of Qt properties it hides.

    The setters are read here (outside the feature) and written in :mod:`.feature_scope`."""
    from . import feature_scope

    for cls in classes:
        meta = getattr(cls, "staticMetaObject", None)
        if meta is None:
            continue
        for index in range(meta.propertyOffset(), meta.propertyCount()):
            name = meta.property(index).name()
            setter_name = "set" + name[:1].upper() + name[1:]
            setter = cls.__dict__.get(setter_name)
            if setter is not None:
                feature_scope.set_class_attribute(cls, setter_name, setter)


def enable_property_access(module: types.ModuleType) -> None:
    """Switch PythonQt's attribute access to Qt properties on for code in ``module``."""
    exec("from __feature__ import true_property", module.__dict__)  # noqa: S102 - PySide6's per-module switch


class UiLoader(QtUiTools.QUiLoader):
    """``qt.QUiLoader``: builds ``.ui`` widgets from the ``qt`` classes and the registered
    stand-ins, and makes the ``.ui``'s scene connections as PythonQt would."""

    custom_widgets: dict[str, type] = {}

    def createWidget(self, class_name: str, parent=None, name: str = ""):  # noqa: N802 - Qt's override
        cls = self.custom_widgets.get(class_name)
        if cls is None and hasattr(QtWidgets, class_name):
            cls = pythonqt_class(getattr(QtWidgets, class_name))
        if cls is None:
            raise RuntimeError(f"the .ui names a widget class the harness does not know: {class_name}")
        widget = cls(parent)
        widget.setObjectName(name)
        return widget

    def load(self, device, parent=None):  # noqa: D102 - Qt's API
        if not device.isOpen():
            device.open(QtCore.QIODevice.OpenModeFlag.ReadOnly)
        text = bytes(device.readAll()).decode()
        scene_connections, text = _take_scene_connections(text)
        buffer = QtCore.QBuffer()
        buffer.setData(text.encode())
        buffer.open(QtCore.QIODevice.OpenModeFlag.ReadOnly)
        root = super().load(buffer, parent)
        for sender_name, receiver_name in scene_connections:
            sender = root if root.objectName() == sender_name else root.findChild(QtCore.QObject, sender_name)
            receiver = root.findChild(QtCore.QObject, receiver_name)
            sender.mrmlSceneChanged.connect(receiver.setMRMLScene)
        return root


def _take_scene_connections(text: str) -> tuple[list[tuple[str, str]], str]:
    """The ``mrmlSceneChanged -> setMRMLScene`` connections of a ``.ui``, and the ``.ui``
    without them (Qt alone cannot make them; everything else stays for Qt)."""
    root = ElementTree.fromstring(text)
    connections = root.find("connections")
    found = []
    for connection in list(connections) if connections is not None else []:
        if (connection.findtext("signal"), connection.findtext("slot")) == SCENE_CONNECTION:
            found.append((connection.findtext("sender"), connection.findtext("receiver")))
            connections.remove(connection)
    return found, ElementTree.tostring(root, encoding="unicode")


def build_qt_module() -> types.ModuleType:
    """The ``qt`` module: every public PySide6 name, QObject classes as PythonQt classes."""
    qt = types.ModuleType("qt", __doc__)
    natives: list[type] = []
    for source in SOURCES:
        for name in dir(source):
            if name.startswith("_"):
                continue
            value = getattr(source, name)
            if isinstance(value, type) and issubclass(value, QtCore.QObject):
                natives.append(value)
                value = pythonqt_class(value)
            qt.__dict__[name] = value
    qt.QUiLoader = UiLoader
    restore_setters(natives)
    return qt


def install(custom_widgets: dict[str, type]) -> types.ModuleType:
    """Register ``qt`` in ``sys.modules`` (once) with the given ``.ui`` stand-ins."""
    UiLoader.custom_widgets.update(custom_widgets)
    if "qt" not in sys.modules:
        sys.modules["qt"] = build_qt_module()
    return sys.modules["qt"]

