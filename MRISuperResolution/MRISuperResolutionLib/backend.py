"""Locating the bundled ``inference_backend`` package and making it importable."""
from __future__ import annotations

import sys
from pathlib import Path

MODULE_DIR = Path(__file__).resolve().parent.parent


def backend_root() -> Path:
    """The folder that contains ``inference_backend``: beside the module once installed in
    Slicer, the repository root in developer mode."""
    for candidate in (MODULE_DIR, MODULE_DIR.parent):
        if (candidate / "inference_backend" / "__init__.py").is_file():
            return candidate
    raise RuntimeError(f"the inference_backend package was not found next to {MODULE_DIR}; reinstall the extension")


def ensure_importable() -> Path:
    root = backend_root()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root
