#!/usr/bin/env python3
"""Create the project environment in ``.venv`` and run one job in it.

Usage (from the repository root, with nothing but Python 3.10+ installed)::

    python3 scripts/bootstrap.py demo        # set up, then `mrisr demo`
    python3 scripts/bootstrap.py test        # set up, then the test suite
    python3 scripts/bootstrap.py mrisr ARGS  # set up, then any mrisr command

torch is installed first and pinned (the CPU wheel, 2.13.0) so that no other package can
pull a CUDA build of several gigabytes. The install is skipped when ``pyproject.toml`` has
not changed since the last successful one.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
TORCH_PIN = "torch==2.13.0"
STAMP = VENV / ".mrisr-install-stamp"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(*args: str | os.PathLike) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True)


def install_fingerprint() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_environment() -> Path:
    python = venv_python()
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == install_fingerprint():
        return python
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    run(*pip, "install", "-q", "--upgrade", "pip")
    run(*pip, "install", "-q", TORCH_PIN)
    run(*pip, "install", "-q", "-e", f"{ROOT}[test]")
    STAMP.write_text(install_fingerprint())
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "mrisr", "setup"}:
        print(__doc__)
        return 2
    python = ensure_environment()
    job, rest = argv[0], argv[1:]
    if job == "setup":
        return 0
    if job == "test":
        command = [python, "-m", "pytest", *rest]
    elif job == "demo":
        command = [python, "-m", "inference_backend", "demo", *rest]
    else:
        command = [python, "-m", "inference_backend", *rest]
    return subprocess.call([str(c) for c in command], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
