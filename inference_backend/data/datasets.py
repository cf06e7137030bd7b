"""Where the data lives: the MNI152 template inside the nilearn wheel (always there) and the
development data in ``../shared/data`` (only on developer and CI machines)."""
from __future__ import annotations

import importlib.util
import os
from functools import cache
from pathlib import Path

import numpy as np

from inference_backend.errors import InputError
from inference_backend.imaging.io import read_volume
from inference_backend.imaging.volume import Volume

SOURCE_CHECKOUT = Path(__file__).resolve().parents[2]  # read only: ../shared sits beside a developer's checkout
MNI152_FILE = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"


def package_data_file(package: str, relative: str) -> Path:
    """A data file shipped inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise InputError(f"the {package} package is not installed; run the README's setup command")
    return Path(spec.origin).parent / relative


def mni152_path() -> Path:
    """The MNI ICBM152 2009a T1 template, 1 mm, 197x233x189, as bundled by nilearn."""
    return package_data_file("nilearn", f"datasets/data/{MNI152_FILE}")


def load_mni152() -> Volume:
    volume = read_volume(mni152_path())
    return volume.with_array(volume.array.astype(np.float32))


@cache
def load_mni152_brain_mask() -> np.ndarray:
    """The template's brain: grey + white matter probability above 0.2 (nilearn's maps),
    closed and hole-filled so the ventricles and deep CSF are inside; on the T1's grid.
    Computed once per process (the benchmark and the atlas both need it), so read-only."""
    from scipy import ndimage

    tissue = sum(read_volume(package_data_file("nilearn", f"datasets/data/{MNI152_FILE.replace('_t1_', f'_{t}_')}")).array for t in ("gm", "wm"))
    brain = ndimage.binary_fill_holes(ndimage.binary_closing(tissue > 0.2, iterations=2))
    brain.setflags(write=False)
    return brain


def shared_data_dir() -> Path | None:
    """``$MRISR_SHARED_DATA``, or ``../shared/data`` beside the source checkout, if present."""
    candidate = Path(os.environ.get("MRISR_SHARED_DATA", SOURCE_CHECKOUT.parent / "shared" / "data"))
    return candidate if candidate.is_dir() else None
