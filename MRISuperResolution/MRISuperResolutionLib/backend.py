"""Locating the bundled ``inference_backend`` package and making it importable.

An installed extension keeps the backend in a folder of its own, ``MRISuperResolutionBackend``
beside the module, which is on no other extension's import path; in developer mode it is the
repository root. A different ``inference_backend`` already imported (another extension's) is
refused with a clear message instead of being used by mistake.
"""
from __future__ import annotations

import sys
from pathlib import Path

MODULE_DIR = Path(__file__).resolve().parent.parent
BACKEND_FOLDER = "MRISuperResolutionBackend"


def backend_root() -> Path:
    """The folder that contains our ``inference_backend``."""
    for candidate in (MODULE_DIR / BACKEND_FOLDER, MODULE_DIR.parent):
        if (candidate / "inference_backend" / "__init__.py").is_file():
            return candidate
    raise RuntimeError(f"the inference_backend package was not found next to {MODULE_DIR}; reinstall the extension")


def ensure_importable() -> Path:
    root = backend_root()
    loaded = sys.modules.get("inference_backend")
    if loaded is not None and Path(loaded.__file__).resolve().parent.parent != root.resolve():
        raise RuntimeError(
            f"another package named inference_backend is already loaded ({loaded.__file__}); "
            "restart Slicer, or disable the extension that provides it"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root
