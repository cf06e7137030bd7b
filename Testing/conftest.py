"""Shared fixtures: small synthetic volumes with awkward geometry, and the development data."""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "MRISuperResolution"))  # the Slicer module's helper package
if "MRISR_CACHE_DIR" not in os.environ:  # not the user's cache (subprocesses inherit it), and removed after the tests
    os.environ["MRISR_CACHE_DIR"] = tempfile.mkdtemp(prefix="mrisr-test-cache-")
    atexit.register(shutil.rmtree, os.environ["MRISR_CACHE_DIR"], ignore_errors=True)

from inference_backend.data.datasets import shared_data_dir  # noqa: E402
from inference_backend.imaging.io import write_volume  # noqa: E402
from inference_backend.imaging.volume import Grid, Volume  # noqa: E402


def rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    angle = np.deg2rad(degrees)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


OBLIQUE = rotation([1.0, 2.0, 0.5], 23.0)


def smooth_phantom(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A blobby positive image with structure at several scales (not all-zero, not constant)."""
    rng = np.random.default_rng(seed)
    from scipy import ndimage

    noise = rng.normal(size=shape)
    image = ndimage.gaussian_filter(noise, 2.0) * 40 + ndimage.gaussian_filter(noise, 0.7) * 5
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    head = (sum(g**2 for g in grid) < 0.8).astype(float)
    return (head * (100 + image)).astype(np.float32)


def make_volume(
    shape=(20, 18, 12), spacing=(0.9, 1.1, 3.0), origin=(12.5, -30.25, 7.0), direction=OBLIQUE, dtype=np.float32, seed=0
) -> Volume:
    array = smooth_phantom(shape, seed)
    if np.issubdtype(np.dtype(dtype), np.integer):
        array = np.clip(array, 0, np.iinfo(dtype).max)
    return Volume(array.astype(dtype), Grid(shape, spacing, origin, direction))


@pytest.fixture
def oblique_volume() -> Volume:
    return make_volume()


@pytest.fixture
def volume_file(tmp_path: Path, oblique_volume: Volume) -> Path:
    path = tmp_path / "input" / "scan.nii.gz"
    path.parent.mkdir()
    write_volume(oblique_volume, path)
    return path


@pytest.fixture
def shared_data() -> Path:
    data = shared_data_dir()
    if data is None:
        pytest.skip("../shared/data is not present on this machine")
    return data


@pytest.fixture
def tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An untrained tiny Res-SRDiff (`tiny-res-srdiff`) exported to a user models folder, as a user model would be."""
    import torch

    from inference_backend.methods.res_srdiff.method import ResSRDiffNet
    from inference_backend.schedulers.residual_shift import ResidualShiftSchedule
    from inference_backend.training.common import export_model

    monkeypatch.setenv("MRISR_MODELS_DIR", str(tmp_path / "models"))
    torch.manual_seed(0)
    net = ResSRDiffNet(ResidualShiftSchedule(), {"channels": (8, 16), "blocks_per_level": 1})
    with torch.no_grad():
        net.unet.head[2].weight.normal_(0, 0.01)  # not the zero map, so samples differ
    export_model("tiny-res-srdiff", net.checkpoint(), {"method": "res-srdiff"}, tmp_path / "models")
    return tmp_path / "models"
