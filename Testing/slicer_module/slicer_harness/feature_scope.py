"""Code that must run with PySide6's ``true_property`` feature on (it is switched per module)."""
from __feature__ import true_property  # noqa: F401
from PySide6 import QtCore  # noqa: F401 - the feature needs PySide6 imported first


def set_class_attribute(cls: type, name: str, value: object) -> None:
    """Set ``cls.name`` as seen by code with the feature on."""
    setattr(cls, name, value)
