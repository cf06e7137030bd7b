"""Python packages the in-process runner needs inside Slicer, and their installation.

Slicer's own numpy, SimpleITK and vtk are never replaced: every install is constrained to
the versions already loaded. PyTorch comes through the PyTorch extension's utilities when
that extension is installed (it picks the CUDA build matching the driver), else pinned from
PyPI. Nothing is installed without the user's confirmation.
"""
from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

TORCH_REQUIREMENT = "torch==2.13.0"
# import name -> pinned requirement (the same pins as the backend's pyproject.toml)
REQUIREMENTS = {
    "monai": "monai==1.6.1",
    "einops": "einops==0.8.2",
    "pywt": "PyWavelets==1.9.0",
    "skimage": "scikit-image==0.26.0",
    "nibabel": "nibabel==5.4.2",
    "scipy": "scipy==1.17.1",
    "tqdm": "tqdm==4.70.1",
}
PROTECTED = ("numpy", "SimpleITK", "vtk")  # Slicer's own: never upgraded or replaced


def missing_packages() -> list[str]:
    """Requirements (pip names) whose import name is not importable, torch first."""
    missing = [] if importlib.util.find_spec("torch") else [TORCH_REQUIREMENT]
    return missing + [requirement for name, requirement in REQUIREMENTS.items() if importlib.util.find_spec(name) is None]


def protected_constraints() -> str:
    """pip constraints pinning the protected packages to the versions Slicer has loaded."""
    lines = []
    for name in PROTECTED:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        version = getattr(module, "__version__", None) or getattr(module, "Version_VersionString", lambda: None)()
        if version:
            lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"


def install(packages: list[str]) -> bool:
    """Install ``packages`` into Slicer's Python; True when Slicer must restart to use them."""
    import slicer

    restart = "torch" in sys.modules  # a half-imported torch cannot be replaced in a running process
    rest = [p for p in packages if not p.startswith("torch")]
    if len(rest) < len(packages):
        try:
            import PyTorchUtils  # the PyTorch extension

            PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False, torchVersionRequirement=">=2.0")
        except ImportError:
            slicer.util.pip_install(TORCH_REQUIREMENT)
    if rest:
        with tempfile.TemporaryDirectory() as folder:
            constraints = Path(folder) / "constraints.txt"
            constraints.write_text(protected_constraints())
            slicer.util.pip_install(rest + ["-c", str(constraints)])
    importlib.invalidate_caches()
    return restart
