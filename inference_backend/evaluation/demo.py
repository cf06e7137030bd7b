"""``mrisr demo``: the main job on the embedded default input, scored against the truth.

The MNI152 template (inside the nilearn wheel) is degraded to 4 mm thick axial slices
(Gaussian slice profile), super-resolved back to 1 mm with the chosen method through the
same path as ``mrisr run``, and compared with the original inside the head mask, beside the
linear and B-spline baselines. Writes the input, the reference, the outputs, a PNG panel
and ``demo_metrics.json``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from inference_backend.data.datasets import load_mni152
from inference_backend.evaluation.cases import through_plane_case
from inference_backend.evaluation.panels import Tile, central_slice, save_panel
from inference_backend.imaging.io import read_volume, write_volume
from inference_backend.imaging.volume import Volume
from inference_backend.job import JobOptions
from inference_backend.pipeline import process, run_job
from inference_backend.progress import Progress
from inference_backend.registry import METHODS

PREFERRED_METHODS = ("res-srdiff", "msp-sr", "srmri", "interpolation")
BASELINES = ("linear", "bspline")


def default_method() -> str:
    """The first method, in order of preference, whose weights are installed."""
    return next(name for name in PREFERRED_METHODS if name in METHODS and METHODS[name].assets_present())


def run_demo(out_dir: str, method: str | None = None, device: str = "auto", progress: Progress | None = None) -> dict:
    progress = progress or Progress()
    method = method or default_method()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with progress.stage("prepare", 0.0, 0.1):
        case = through_plane_case("mni152", load_mni152(), factor=4, axis=2)
        lr_path, reference_path = out / "mni152_4mm.nii.gz", out / "mni152_reference_1mm.nii.gz"
        write_volume(case.degraded, lr_path)
        write_volume(case.reference, reference_path)
    options = JobOptions(method=method, scale=tuple(float(f) for f in case.factors), device=device)
    with progress.stage(f"super-resolve ({method})", 0.1, 0.7):
        written = run_job(lr_path, out, options, progress=progress, overwrite=True)  # the demo remakes its own folder
    result = read_volume(written["sr"])
    rows = {_label(method, options): case.score(result.array)}
    with progress.stage("baselines", 0.7, 0.9):
        for kind in BASELINES:
            baseline = JobOptions(method="interpolation", method_options={"kind": kind}, scale=options.scale)
            if _label(method, options) != _label("interpolation", baseline):
                estimate = process(case.degraded, baseline).sr.array
                rows[_label("interpolation", baseline)] = case.score(estimate)
            progress.report(1.0, kind)
    with progress.stage("panel", 0.9, 1.0):
        panel = out / "demo_panel.png"
        save_demo_panel(panel, case.degraded, result, case.reference, _label(method, options))
    summary = {"case": case.description, "method": method, "metrics": rows, "outputs": [str(p) for p in written.values()]}
    (out / "demo_metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    progress.finish("demo complete")
    print_table(case.description, rows)
    print(f"outputs in {out.resolve()} (panel: {panel.name})")
    return summary


def _label(method: str, options: JobOptions) -> str:
    if method == "interpolation":
        return f"interpolation ({options.method_options.get('kind', 'bspline')})"
    return method


def save_demo_panel(path: Path, lr: Volume, result: Volume, reference: Volume, label: str) -> None:
    """Coronal slices (where thick axial slices show): input, result, reference, |error|."""
    row = reference.grid.size[1] // 2
    lr_row = int(round(row * reference.grid.spacing[1] / lr.grid.spacing[1]))
    images = [central_slice(v.array, 1, r) for v, r in ((result, row), (reference, row))]
    low, high = np.percentile(images[1], [0.5, 99.5])
    error = np.abs(images[0] - images[1])
    lr_aspect = lr.grid.spacing[2] / lr.grid.spacing[0]
    save_panel(
        path,
        [
            [
                Tile("input (4 mm slices)", central_slice(lr.array, 1, lr_row), vmin=low, vmax=high, aspect=lr_aspect),
                Tile(label, images[0], vmin=low, vmax=high),
                Tile("reference (1 mm)", images[1], vmin=low, vmax=high),
                Tile("|error|", error, cmap="magma", vmin=0, vmax=(high - low) * 0.25),
            ]
        ],
        suptitle="MNI152, 4 mm axial slices -> 1 mm (coronal view)",
    )


def print_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(f"\n{title} (inside the head mask)")
    print(f"{'method':<28} {'PSNR (dB)':>10} {'SSIM':>8} {'GMSD':>8}")
    for name, metrics in rows.items():
        print(f"{name:<28} {metrics['psnr']:>10.2f} {metrics['ssim']:>8.4f} {metrics['gmsd']:>8.4f}")
