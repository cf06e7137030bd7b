"""Slicer's translation functions for the module's texts (``from ... import tr as _``), or the
text as it is where Slicer's application code is absent (a bare MRML scene, e.g. slicer-core)."""
from __future__ import annotations

try:
    from slicer.i18n import tr, translate
except ImportError:  # no Slicer application: no translations to look up

    def tr(text: str) -> str:
        return text

    def translate(context: str, text: str) -> str:
        return text


__all__ = ["tr", "translate"]
