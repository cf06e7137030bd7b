"""Bad input, one table: every case exits with its documented status and one line on stderr
(docs/errors.md), writes nothing, and leaves the inputs and any earlier results as they were.
A second table holds odd inputs that are valid (oblique, sheared, DICOM series): they run, and
their geometry comes out exactly as it went in."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from conftest import make_volume
from inference_backend.cli import main
from inference_backend.imaging.io import read_volume, write_volume
from inference_backend.imaging.target import target_grid
from inference_backend.imaging.volume import Grid, Volume
from inference_backend.methods.base import MethodResult
from inference_backend.outputs import LOCK_NAME, Owner


def shear(amount: float = 0.3) -> np.ndarray:
    """A direction matrix with unit, non-orthogonal columns (as a sheared NRRD header has)."""
    matrix = np.array([[1.0, amount, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return matrix / np.linalg.norm(matrix, axis=0)


@dataclass
class Case:
    """What a case builds its command from: the good input (``input/scan.nii.gz``, beside which
    every bad input is written), the output folder, and pytest's monkeypatch."""

    tmp: Path
    good: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    def run(self, source: Path | str, *extra: str, scale: str | None = "1,1,2") -> list[str]:
        target = ["--scale", scale] if scale else []
        return ["run", str(source), "--method", "interpolation", *target, "--out", str(self.out), "--progress", "none", *extra]

    def volume(self, name: str, volume: Volume | None = None, **kwargs) -> Path:
        path = self.good.parent / name
        write_volume(volume if volume is not None else make_volume(**kwargs), path)
        return path

    def image(self, name: str, image: sitk.Image) -> Path:
        path = self.good.parent / name
        sitk.WriteImage(image, str(path))
        return path

    def nhdr(self, name: str, directions: str) -> Path:
        """A NRRD whose header's space directions are replaced by ``directions``."""
        path = self.volume(name, make_volume(spacing=(1, 1, 1), direction=np.eye(3)))
        header = re.sub(r"space directions: .*", f"space directions: {directions}", path.read_text())
        path.write_text(header)
        return path

    def mask(self, name: str, lesion: tuple[slice, ...] = (slice(8, 10),) * 3, grid: Grid | None = None) -> Path:
        """A lesion mask, 1 inside ``lesion``, on the good input's grid unless ``grid`` is given."""
        source = read_volume(self.good)
        array = np.zeros(source.grid.size, np.uint8)
        array[lesion] = 1
        return self.volume(name, Volume(array, grid or source.grid))


CASES: dict[str, tuple[Callable[[Case], list[str]], int, str]] = {}


def case(name: str, code: int, message: str):
    def register(build: Callable[[Case], list[str]]) -> Callable[[Case], list[str]]:
        CASES[name] = (build, code, message)
        return build

    return register


# --- files that are not one scalar 3D volume ------------------------------------------------------


@case("missing", 2, "not found")
def _(c: Case) -> list[str]:
    return c.run(c.good.parent / "nope.nii.gz")


@case("corrupt", 2, "cannot be read")
def _(c: Case) -> list[str]:
    path = c.good.parent / "corrupt.nii.gz"
    path.write_bytes(np.random.default_rng(0).bytes(2000))
    return c.run(path)


@case("truncated", 2, "corrupt or truncated")
def _(c: Case) -> list[str]:
    path = c.good.parent / "truncated.nii.gz"
    path.write_bytes(c.good.read_bytes()[: c.good.stat().st_size // 2])
    return c.run(path)


@case("truncated-raw", 2, "truncated")
def _(c: Case) -> list[str]:
    raw = c.image("raw.nii", sitk.ReadImage(str(c.good)))
    path = c.good.parent / "truncated_raw.nii"
    path.write_bytes(raw.read_bytes()[:-100])
    return c.run(path)


@case("extension", 2, "unsupported file type")
def _(c: Case) -> list[str]:
    path = c.good.parent / "notes.txt"
    path.write_text("not an image")
    return c.run(path)


@case("2d", 2, "2D image")
def _(c: Case) -> list[str]:
    return c.run(c.image("flat.nii.gz", sitk.GetImageFromArray(np.ones((10, 12), np.float32))))


@case("4d", 2, "4D")
def _(c: Case) -> list[str]:
    frame = sitk.GetImageFromArray(np.random.default_rng(0).random((5, 6, 7)).astype(np.float32))
    return c.run(c.image("series.nii.gz", sitk.JoinSeries([frame] * 3)))


@case("rgb", 2, "RGB")
def _(c: Case) -> list[str]:
    rgb = np.random.default_rng(0).integers(0, 255, (5, 6, 7, 3), dtype=np.uint8)
    return c.run(c.image("rgb.nrrd", sitk.GetImageFromArray(rgb, isVector=True)))


@case("complex", 2, "complex voxels")
def _(c: Case) -> list[str]:
    array = make_volume().array.transpose(2, 1, 0)
    return c.run(c.image("complex.nrrd", sitk.GetImageFromArray((array + 1j * array).astype(np.complex64))))


# --- geometry -------------------------------------------------------------------------------------


@case("sheared-to-nifti", 2, "--output-format nrrd")
def _(c: Case) -> list[str]:
    return c.run(c.volume("sheared.nrrd", direction=shear()))


@case("pixdim-zero", 2, "pixdim")
def _(c: Case) -> list[str]:
    return c.run(nifti_with_pixdim(c.good.parent / "pixdim0.nii.gz", (1.0, 0.0, 2.0)))


@case("pixdim-negative", 2, "pixdim")
def _(c: Case) -> list[str]:
    return c.run(nifti_with_pixdim(c.good.parent / "pixdim_negative.nii", (1.0, -1.0, 2.0)))


@case("spacing-zero", 2, "spacing (1, 0, 1) mm is zero, negative or not a number along y")
def _(c: Case) -> list[str]:
    return c.run(c.nhdr("zero_spacing.nhdr", "(1,0,0) (0,0,0) (0,0,1)"))


@case("direction-singular", 2, "singular (its i and j axes are parallel)")
def _(c: Case) -> list[str]:
    return c.run(c.nhdr("singular.nhdr", "(1,0,0) (1,0,0) (0,0,1)"))


# --- intensities ----------------------------------------------------------------------------------


@case("all-zero", 2, "empty")
def _(c: Case) -> list[str]:
    return c.run(c.volume("zero.nii.gz", make_volume().with_array(np.zeros((20, 18, 12), np.float32))))


@case("nan", 2, "NaN/Inf")
def _(c: Case) -> list[str]:
    volume = make_volume()
    volume.array[1, 2, 3] = np.nan
    return c.run(c.volume("nan.nii.gz", volume))


@case("float64-beyond-float32", 2, "rescale the image first")
def _(c: Case) -> list[str]:
    volume = make_volume()
    return c.run(c.volume("huge64.nii.gz", volume.with_array(volume.array.astype(np.float64) * 1e300)))


@case("intensities-1e30", 2, "rescale the image first")
def _(c: Case) -> list[str]:
    volume = make_volume()
    return c.run(c.volume("huge32.nii.gz", volume.with_array(volume.array * np.float32(1e28))))


@case("method-output-nan", 1, "NaN/Inf voxels (interpolation failed on this input); nothing was written")
def _(c: Case) -> list[str]:
    import inference_backend.methods.interpolation.method as interpolation

    def garbage(request) -> MethodResult:
        return MethodResult(Volume(np.full(request.target.size, np.nan, np.float32), request.target))

    c.monkeypatch.setattr(interpolation, "run", garbage)
    return c.run(c.good)


# --- the target resolution and the budget ----------------------------------------------------------


@case("scale-zero", 2, "positive")
def _(c: Case) -> list[str]:
    return c.run(c.good, scale="1,0,2")


@case("scale-below-one", 2, "below 1")
def _(c: Case) -> list[str]:
    return c.run(c.good, scale="1,0.5,2")


@case("scale-1e300", 4, "above the budget")
def _(c: Case) -> list[str]:
    return c.run(c.good, scale="1,1,1e300")


@case("spacing-2e-9", 4, "above the budget")
def _(c: Case) -> list[str]:
    """Here the voxel count of the output, as an int64 product, wraps round to a negative number."""
    return c.run(c.good, "--spacing", "2e-9", scale=None)


@case("budget", 4, "budget")
def _(c: Case) -> list[str]:
    return c.run(c.good, "--max-voxels", "1000", scale="4,4,4")


@case("max-voxels-negative", 2, "--max-voxels must be at least 1 voxel; got -5")
def _(c: Case) -> list[str]:
    return c.run(c.good, "--max-voxels", "-5")


@case("usage", 2, "the following arguments are required: --out")
def _(c: Case) -> list[str]:
    return ["run", str(c.good), "--method", "interpolation", "--scale", "2"]


# --- the lesion mask ------------------------------------------------------------------------------


@case("mask-grid", 2, "size (5, 5, 5) vs (20, 18, 12)")
def _(c: Case) -> list[str]:
    other = c.volume("mask_other.nii.gz", Volume(np.ones((5, 5, 5), np.uint8), Grid((5, 5, 5), (1, 1, 1), (0, 0, 0), np.eye(3))))
    return c.run(c.good, "--lesion-mask", str(other))


@case("mask-flipped", 2, "direction")
def _(c: Case) -> list[str]:
    source = read_volume(c.good)
    flipped = Grid(source.grid.size, source.grid.spacing, source.grid.origin, source.grid.direction_matrix @ np.diag([-1, -1, 1]))
    return c.run(c.good, "--lesion-mask", str(c.mask("mask_flipped.nii.gz", grid=flipped)))


@case("mask-whole-volume", 2, "covers the whole volume")
def _(c: Case) -> list[str]:
    return c.run(c.good, "--lesion-mask", str(c.mask("mask_all.nii.gz", (slice(None),) * 3)))


@case("dilate-mask-1000", 2, "grown by 1000 mm covers the whole volume")
def _(c: Case) -> list[str]:
    return c.run(c.good, "--lesion-mask", str(c.mask("mask_small.nii.gz")), "--dilate-mask", "1000")


@case("dilate-mask-nan", 2, "--dilate-mask must be a number of mm >= 0")
def _(c: Case) -> list[str]:
    return c.run(c.good, "--lesion-mask", str(c.mask("mask_small.nii.gz")), "--dilate-mask", "nan")


# --- methods, weights and devices -----------------------------------------------------------------


@case("method", 2, "unknown method")
def _(c: Case) -> list[str]:
    return c.run(c.good, "--method", "magic")


@case("option", 2, "kind")
def _(c: Case) -> list[str]:
    return c.run(c.good, "--opt", "kind=cubicle")


@case("no-gpu", 4, "GPU")
def _(c: Case) -> list[str]:
    return c.run(c.good, "--device", "cuda:7")


@case("tampered-weights", 3, "failed its integrity check")
def _(c: Case) -> list[str]:
    import torch

    from inference_backend.training.common import export_model

    models = c.tmp / "models"
    c.monkeypatch.setenv("MRISR_MODELS_DIR", str(models))
    export_model("mine", {"weights": torch.zeros(3)}, {"method": "srmri"}, models)
    (models / "mine.pt").write_bytes(b"replaced")
    return c.run(c.good, "--method", "srmri", "--opt", "model=mine")


@case("weights-without-card", 3, "srmri.pt has no srmri.json beside it")
def _(c: Case) -> list[str]:
    models = c.tmp / "models"
    models.mkdir()
    (models / "srmri.pt").write_bytes(b"my own weights")
    c.monkeypatch.setenv("MRISR_MODELS_DIR", str(models))
    return c.run(c.good, "--method", "srmri")


# --- DICOM series folders -------------------------------------------------------------------------


@case("dicom-no-series", 2, "without a DICOM series")
def _(c: Case) -> list[str]:
    folder = c.good.parent / "empty_series"
    folder.mkdir()
    (folder / "readme.txt").write_text("no images here")
    return c.run(folder)


@case("dicom-two-series", 2, "holds 2 DICOM series")
def _(c: Case) -> list[str]:
    folder = c.good.parent / "study"
    write_dicom_series(make_volume(dtype=np.int16), folder, "1.2.826.0.1.3680043.2.1125.24.1", "T2 axial")
    write_dicom_series(make_volume(dtype=np.int16, seed=1), folder, "1.2.826.0.1.3680043.2.1125.24.2", "FLAIR")
    return c.run(folder)


@case("dicom-missing-slice", 2, "not evenly spaced")
def _(c: Case) -> list[str]:
    folder = c.good.parent / "gap"
    write_dicom_series(make_volume(dtype=np.int16), folder, "1.2.826.0.1.3680043.2.1125.24.3", "T2 axial")
    (folder / "T2_005.dcm").unlink()
    return c.run(folder)


# --- the output folder ----------------------------------------------------------------------------


@case("out-is-a-file", 2, "exists and is not a folder")
def _(c: Case) -> list[str]:
    c.out.write_text("a file")
    return c.run(c.good)


@case("out-below-a-file", 2, "cannot be written (not a directory)")
def _(c: Case) -> list[str]:
    c.out.write_text("a file")
    return ["run", str(c.good), "--method", "interpolation", "--scale", "2", "--out", str(c.out / "results"), "--progress", "none"]


@case("out-not-writable", 2, "cannot be written (permission denied)")
def _(c: Case) -> list[str]:
    if os.geteuid() == 0:
        pytest.skip("root writes into any folder")
    c.out.mkdir()
    c.out.chmod(0o555)
    return c.run(c.good)


@case("out-disk-full", 4, "could not be written completely")
def _(c: Case) -> list[str]:
    """ITK's NIfTI writer, writing to a full device (/dev/full: ENOSPC), reports success."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    write = sitk.WriteImage

    def onto_full_disk(image, path, *args, **kwargs):
        os.symlink("/dev/full", path)
        write(image, path, *args, **kwargs)

    c.monkeypatch.setattr(sitk, "WriteImage", onto_full_disk)
    return c.run(c.good)


@case("out-holds-results", 2, "already holds results (report.json, scan_consistency.nii.gz, scan_sr.nii.gz); add --overwrite")
def _(c: Case) -> list[str]:
    assert main(c.run(c.good)) == 0
    return c.run(c.good, "--lesion-mask", str(c.mask("mask_small.nii.gz")))


@case("out-in-use", 2, "is in use by another run (pid")
def _(c: Case) -> list[str]:
    c.out.mkdir()
    me = Owner.current()
    (c.out / LOCK_NAME).write_text(json.dumps({"pid": me.pid, "host": me.host}))
    return c.run(c.good)


@case("out-locked-unknown", 2, "of an unknown owner; if no run is writing there, delete that file")
def _(c: Case) -> list[str]:
    c.out.mkdir()
    (c.out / LOCK_NAME).write_text("")
    return c.run(c.good)


# --- what a header or a planted file may make the reader do ----------------------------------------


def detached_nrrd(c: Case, name: str, data_file: str, encoding: str = "raw") -> Path:
    """A detached NRRD header of a 4x4x4 float volume (256 bytes) whose data file is ``data_file``."""
    header = c.good.parent / name
    header.write_text(
        "NRRD0004\ntype: float\ndimension: 3\nspace: left-posterior-superior\nsizes: 4 4 4\n"
        "space directions: (1,0,0) (0,1,0) (0,0,1)\nkinds: domain domain domain\nendian: little\n"
        f"encoding: {encoding}\nspace origin: (0,0,0)\ndata file: {data_file}\n"
    )
    return header


@case("nrrd-data-file-outside", 2, "its data file '../../../secret.raw' lies outside the header's folder")
def _(c: Case) -> list[str]:
    secret = c.tmp.parent / "secret.raw"
    secret.write_bytes(np.arange(64, dtype=np.float32).tobytes())  # exactly the voxels the header asks for
    return c.run(detached_nrrd(c, "escape.nhdr", "../../../secret.raw"))


@case("nrrd-data-file-absolute", 2, "lies outside the header's folder")
def _(c: Case) -> list[str]:
    return c.run(detached_nrrd(c, "absolute.nhdr", "/etc/passwd"))


@case("nrrd-data-file-list", 2, "its data file '../../x.raw' lies outside the header's folder")
def _(c: Case) -> list[str]:
    header = detached_nrrd(c, "listed.nhdr", "LIST 2")
    header.write_text(header.read_text() + "slice0.raw\n../../x.raw\n")
    (c.good.parent / "slice0.raw").write_bytes(bytes(64))
    return c.run(header)


@case("nrrd-data-file-fifo", 2, "is not a regular file (a pipe, device or folder)")
def _(c: Case) -> list[str]:
    os.mkfifo(c.good.parent / "pipe.raw")  # reading it would block for ever
    return c.run(detached_nrrd(c, "pipe.nhdr", "pipe.raw"))


@case("nrrd-origin-nan", 2, "the header's origin '(nan,-30.25,7)' holds entries that are not finite numbers")
def _(c: Case) -> list[str]:
    path = c.volume("origin.nhdr", make_volume(spacing=(1, 1, 1), direction=np.eye(3)))
    path.write_text(path.read_text().replace("space origin: (12.5,-30.25,7)", "space origin: (nan,-30.25,7)"))
    return c.run(path)


@case("nrrd-origin-1e300", 2, "lies beyond 10000 mm; the header gives no usable position")
def _(c: Case) -> list[str]:
    path = c.volume("far.nhdr", make_volume(spacing=(1, 1, 1), direction=np.eye(3)))
    path.write_text(path.read_text().replace("space origin: (12.5,-30.25,7)", "space origin: (1e300,-30.25,7)"))
    return c.run(path)


@case("finetune-planted-checkpoint", 3, "not a checkpoint of plain tensors")
def _(c: Case) -> list[str]:
    """A checkpoint whose pickle runs code, planted where a fine-tuning run resumes from."""
    import pickle

    models = c.tmp / "models"
    c.monkeypatch.setenv("MRISR_MODELS_DIR", str(models))
    runs = models.parent / "finetune-runs" / "site"
    runs.mkdir(parents=True)

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {c.tmp / 'pwned'}",))

    (runs / "checkpoint.pt").write_bytes(pickle.dumps({"model": Payload()}))
    hr = c.volume("hr.nii.gz", make_volume(shape=(40, 40, 40), spacing=(1, 1, 1)))
    return ["finetune", "msp-sr", "--hr", str(hr), "--out", "site", "--minutes", "0.05"]


@case("weights-of-another-network", 3, "does not fit the method's network")
def _(c: Case) -> list[str]:
    """A card whose SHA-256 is right, for weights that are not this method's network."""
    import torch

    from inference_backend.training.common import export_model

    models = c.tmp / "models"
    c.monkeypatch.setenv("MRISR_MODELS_DIR", str(models))
    export_model("wrong", {"weights": torch.zeros(3)}, {"method": "res-srdiff"}, models)
    return c.run(c.good, "--method", "res-srdiff", "--opt", "model=wrong", "--opt", "adapt_steps=0")


@case("weights-that-run-code", 3, "could not be loaded as plain tensors")
def _(c: Case) -> list[str]:
    """A model file whose pickle would run code, with a card of its true SHA-256: refused, in one line."""
    import hashlib
    import pickle

    models = c.tmp / "models"
    models.mkdir()
    c.monkeypatch.setenv("MRISR_MODELS_DIR", str(models))

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {c.tmp / 'pwned'}",))

    weights = models / "evil.pt"
    weights.write_bytes(pickle.dumps(Payload()))
    (models / "evil.json").write_text(json.dumps({"method": "srmri", "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}))
    return c.run(c.good, "--method", "srmri", "--opt", "model=evil")


# --- outputs that would replace an input ------------------------------------------------------------


@case("mask-under-the-results-name", 2, "would replace or land inside the input")
def _(c: Case) -> list[str]:
    c.out.mkdir()
    mask = c.mask("mask.nii.gz")
    placed = c.out / "scan_sr.nii.gz"
    placed.write_bytes(mask.read_bytes())
    return c.run(c.good, "--lesion-mask", str(placed))


@case("out-inside-the-dicom-series", 2, "would replace or land inside the input")
def _(c: Case) -> list[str]:
    folder = dicom_folder(c, "series")
    return ["run", str(folder), "--method", "interpolation", "--scale", "1,1,2", "--out", str(folder / "results"), "--progress", "none"]


# --- names and paths the tools cannot carry ---------------------------------------------------------


@case("path-not-utf8", 2, "holds bytes that are not UTF-8 text")
def _(c: Case) -> list[str]:
    name = os.fsdecode(b"scan_\xff.nii.gz")
    (c.good.parent / name).write_bytes(c.good.read_bytes())
    return c.run(c.good.parent / name)


@case("out-path-not-utf8", 2, "holds bytes that are not UTF-8 text")
def _(c: Case) -> list[str]:
    return ["run", str(c.good), "--method", "interpolation", "--scale", "2", "--out", str(c.out / os.fsdecode(b"r\xe9sultats")),
            "--progress", "none"]  # fmt: skip


@case("name-too-long", 2, "above the 255 a file name may have")
def _(c: Case) -> list[str]:
    long = c.good.parent / ("s" * 247 + ".nii.gz")  # 254 characters: the outputs' names would not fit
    long.write_bytes(c.good.read_bytes())
    return c.run(long)


@case("missing-path-with-a-newline", 2, "nope\\nmore.nii.gz: file not found")
def _(c: Case) -> list[str]:
    return c.run(c.good.parent / "nope\nmore.nii.gz")


# --- DICOM series the reader must not take as they come ----------------------------------------------


@case("dicom-first-slice-counted-missing", 2, "holds 11 slice files, but the series has 12 images")
def _(c: Case) -> list[str]:
    folder = c.good.parent / "first_gone"
    write_dicom_series(make_volume(dtype=np.int16), folder, "1.2.826.0.1.3680043.2.1125.24.5", "T2 axial", {"0020|1002": "12"})
    (folder / "T2_001.dcm").unlink()
    return c.run(folder)


@case("dicom-last-slice-counted-missing", 2, "slices are missing; copy the whole series")
def _(c: Case) -> list[str]:
    folder = c.good.parent / "last_gone"
    write_dicom_series(make_volume(dtype=np.int16), folder, "1.2.826.0.1.3680043.2.1125.24.6", "T2 axial", {"0020|1002": "12"})
    (folder / "T2_012.dcm").unlink()
    return c.run(folder)


@case("dicom-siemens-mosaic", 2, "is a Siemens mosaic")
def _(c: Case) -> list[str]:
    folder = c.good.parent / "mosaic"
    write_dicom_series(make_volume(dtype=np.int16), folder, "1.2.826.0.1.3680043.2.1125.24.7", "EPI mosaic",
                       {"0008|0008": "ORIGINAL\\PRIMARY\\M\\MOSAIC"})  # fmt: skip
    return c.run(folder)


# --- the output folder's lock -------------------------------------------------------------------------


@case("lock-dangling-link", 2, "is not a lock file a run wrote (a link, or a folder)")
def _(c: Case) -> list[str]:
    c.out.mkdir()
    os.symlink(c.tmp / "nowhere", c.out / LOCK_NAME)
    return c.run(c.good)


@case("lock-on-a-full-disk", 4, "no space left on device")
def _(c: Case) -> list[str]:
    """The disk fills up while the lock's record is written: no lock (empty or whole) stays."""
    import errno

    write_text = Path.write_text

    def full(path, *args, **kwargs):
        if path.name.endswith("-lock"):
            path.touch()
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_text(path, *args, **kwargs)

    c.monkeypatch.setattr(Path, "write_text", full)
    return c.run(c.good)


def nifti_with_pixdim(path: Path, pixdim: tuple[float, float, float]) -> Path:
    """A NIfTI whose header's voxel size is ``pixdim`` as written (nibabel would "fix" it)."""
    array = make_volume().array
    header = nib.Nifti1Image(array, np.diag([1.0, 1.0, 2.0, 1.0])).header
    block = bytearray(header.binaryblock)
    block[80:92] = struct.pack("<3f", *pixdim)  # pixdim[1:4]
    data = bytes(block) + bytes(4) + array.tobytes(order="F")
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def write_dicom_series(volume: Volume, folder: Path, series_uid: str, description: str, extra_tags: dict[str, str] | None = None) -> None:
    """One DICOM file per slice along k, with the positions and orientation a scanner writes
    (and ``extra_tags``, e.g. {"0018|0050": "5"}: Slice Thickness)."""
    folder.mkdir(exist_ok=True)
    image = sitk.GetImageFromArray(volume.array.transpose(2, 1, 0))
    image.SetSpacing(volume.grid.spacing)
    image.SetOrigin(volume.grid.origin)
    image.SetDirection(volume.grid.direction)
    direction = volume.grid.direction_matrix
    orientation = "\\".join(f"{v:.10f}" for v in (*direction[:, 0], *direction[:, 1]))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        slice_image = image[:, :, k]
        position = "\\".join(f"{v:.10f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k)))
        tags = {
            "0008|0060": "MR", "0008|0016": "1.2.840.10008.5.1.4.1.1.4", "0008|103e": description,
            "0020|000d": series_uid + ".0", "0020|000e": series_uid, "0008|0018": f"{series_uid}.{k + 1}",
            "0020|0032": position, "0020|0037": orientation, "0020|0013": str(k + 1),
        }  # fmt: skip
        for tag, value in (tags | (extra_tags or {})).items():
            slice_image.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{description.split()[0]}_{k + 1:03d}.dcm"))
        writer.Execute(slice_image)


def tree(folder: Path) -> dict[str, str] | None:
    """Every file under ``folder`` with its SHA-256; None when the folder does not exist."""
    if not folder.exists():
        return None
    if folder.is_file():
        return {"": hashlib.sha256(folder.read_bytes()).hexdigest()}
    files = [path for path in sorted(folder.rglob("*")) if path.is_file()]
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_its_exit_code_and_one_line(tmp_path, volume_file, monkeypatch, capfd, name):
    build, code, message = CASES[name]
    args = build(Case(tmp_path, volume_file, monkeypatch))
    inputs, out, locks = tree(volume_file.parent), tree(tmp_path / "out"), set(tmp_path.rglob(LOCK_NAME))
    capfd.readouterr()
    assert main(args) == code
    stderr = capfd.readouterr().err.strip().splitlines()
    assert len(stderr) == 1 and stderr[0].startswith("mrisr: error:") and message in stderr[0], stderr
    assert tree(volume_file.parent) == inputs  # the inputs as they were
    assert tree(tmp_path / "out") == out  # not created, or earlier results untouched
    assert not list(tmp_path.rglob(".mrisr-partial-*"))
    assert not (tmp_path / "pwned").exists()  # no planted code ran
    assert set(tmp_path.rglob(LOCK_NAME)) == locks  # no lock left behind


# --- odd but valid: runs, geometry kept -----------------------------------------------------------

VALID: dict[str, Callable[[Case], tuple[Path, list[str], Volume]]] = {
    "oblique-nifti": lambda c: (c.good, [], make_volume()),
    "oblique-nrrd": lambda c: (c.volume("oblique.nrrd"), [], make_volume()),
    "sheared-nrrd-to-nrrd": lambda c: (c.volume("sheared.nrrd", direction=shear()), ["--output-format", "nrrd"], make_volume(direction=shear())),
    "uint8-kept": lambda c: (c.volume("u8.nrrd", dtype=np.uint8), ["--output-dtype", "input"], make_volume(dtype=np.uint8)),
    "dicom-series": lambda c: (dicom_folder(c, "T2_axial"), [], make_volume(dtype=np.int16)),
}  # fmt: skip


def dicom_folder(c: Case, name: str) -> Path:
    folder = c.good.parent / name
    write_dicom_series(make_volume(dtype=np.int16), folder, "1.2.826.0.1.3680043.2.1125.24.9", "T2 axial")
    return folder


@pytest.mark.parametrize("name", list(VALID))
def test_odd_but_valid_input_runs_with_its_geometry_kept(tmp_path, volume_file, monkeypatch, capfd, name):
    c = Case(tmp_path, volume_file, monkeypatch)
    source, extra, expected = VALID[name](c)
    read = read_volume(source)
    assert read.grid.matches(expected.grid, tolerance_mm=1e-6) and read.array.dtype == expected.array.dtype
    np.testing.assert_allclose(read.grid.direction_matrix, expected.grid.direction_matrix, atol=1e-9)
    np.testing.assert_array_equal(read.array, expected.array)
    capfd.readouterr()
    assert main(c.run(source, *extra)) == 0
    assert capfd.readouterr().err == ""  # not even an ITK warning
    report = json.loads((c.out / "report.json").read_text())
    result = read_volume(c.out / report["outputs"]["sr"]["file"])
    assert report["outputs"]["sr"]["file"].startswith(source.name.split(".")[0] + "_sr.")
    want = target_grid(expected.grid, scale=(1, 1, 2))
    assert result.grid.matches(want, tolerance_mm=1e-4)
    assert result.array.dtype == (expected.array.dtype if "--output-dtype" in extra else np.float32)
    np.testing.assert_allclose(result.grid.direction_matrix, expected.grid.direction_matrix, atol=1e-6)
    np.testing.assert_allclose(report["output_grid"]["direction_lps"], result.grid.direction_matrix, atol=1e-6)


def test_a_series_whose_numbering_starts_late_runs_and_says_so(tmp_path, volume_file, monkeypatch, capfd):
    """A first slice missing, with nothing that counts the series: one warning line, and the report keeps it."""
    c = Case(tmp_path, volume_file, monkeypatch)
    folder = dicom_folder(c, "numbered")
    (folder / "T2_001.dcm").unlink()
    capfd.readouterr()
    assert main(c.run(folder)) == 0
    stderr = capfd.readouterr().err.strip().splitlines()
    assert len(stderr) == 1 and stderr[0].startswith("mrisr: warning:") and "instance numbers run 2 to 12" in stderr[0], stderr
    report = json.loads((c.out / "report.json").read_text())
    assert "is the first slice missing?" in report["input_warnings"][0]
    assert report["input_geometry_from"].startswith("DICOM image position")


def test_a_two_slice_series_is_a_volume(tmp_path, volume_file, monkeypatch, capfd):
    c = Case(tmp_path, volume_file, monkeypatch)
    folder = c.good.parent / "two"
    volume = make_volume(shape=(20, 18, 2), spacing=(0.9, 1.1, 3.0), dtype=np.int16)
    volume.array[:] = np.arange(20 * 18 * 2, dtype=np.int16).reshape(20, 18, 2)
    write_dicom_series(volume, folder, "1.2.826.0.1.3680043.2.1125.24.8", "T2 axial")
    assert read_volume(folder).grid.matches(volume.grid, tolerance_mm=1e-6)
    assert main(c.run(folder)) == 0, capfd.readouterr().err


def test_no_torch_load_runs_pickled_code():
    """Every torch.load in the package and its scripts loads tensors and plain types only."""
    from conftest import REPO_ROOT

    unsafe = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for folder in ("inference_backend", "MRISuperResolution", "benchmarks", "scripts")
        for path in (REPO_ROOT / folder).rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if "torch.load(" in line and "weights_only=True" not in line
    ]
    assert not unsafe, unsafe
