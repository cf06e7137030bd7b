"""Pictures of a result as Slicer shows it, for docs/slicer.md: the three slice views with the
uncertainty overlay and its legend, then with the consistency overlay.

    .venv/bin/python scripts/slice_view_pictures.py [--out docs/images] [--samples 4]

Rendered by Slicer's own slice logic and displayable managers (PyPI's slicer-core, offscreen;
Testing/slicer_module/slice_views.py) after the module's Logic ran the job and added its nodes,
as Apply does. The scan: the held-out ms_p07 FLAIR made into 5 mm slices when the development
data is here (../shared/data), else the MNI152 template at 4 mm (the demo's input).
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "Testing" / "slicer_module"), str(ROOT / "MRISuperResolution")]

VIEW_ORDER = ("Red", "Yellow", "Green")


def thick_scan():
    """(name, the thick-slice volume): held-out FLAIR at 5 mm, or the demo's MNI152 at 4 mm."""
    from inference_backend.data.datasets import shared_data_dir
    from inference_backend.evaluation.cases import mni_crop, through_plane_case
    from inference_backend.imaging.io import read_volume

    data = shared_data_dir()
    if data is not None:
        volume = read_volume(data / "real" / "ms_p07_FLAIR.nii.gz")
        return "ms_p07 FLAIR, 5 mm slices", through_plane_case("flair", volume.with_array(volume.array.astype(np.float32)), 5).degraded
    return "MNI152, 4 mm slices", through_plane_case("mni", mni_crop((181, 217, 181)), 4).degraded


def row(views, names=VIEW_ORDER) -> np.ndarray:
    return np.concatenate([views.render(name) for name in names], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--samples", type=int, default=4)
    args = parser.parse_args()
    import slicer
    from PIL import Image
    from slice_views import SliceViews

    from inference_backend.evaluation.panels import save_compact
    from MRISuperResolutionLib.conversion import update_node_from_volume
    from MRISuperResolutionLib.logic import SuperResolutionLogic

    title, volume = thick_scan()
    scene = slicer.vtkMRMLScene()
    scene.RegisterNodeClass(slicer.vtkMRMLColorLegendDisplayNode())  # the Colors module does this in Slicer
    views = SliceViews(scene, size=360)
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "scan")
    update_node_from_volume(node, volume)
    logic = SuperResolutionLogic(scene)
    job = logic.process(node, spacing=(1.0, 1.0, 1.0), samples=args.samples)
    if job.error:
        raise SystemExit(job.error)
    views.fit()
    args.out.mkdir(parents=True, exist_ok=True)
    result = job.output_nodes
    pictures = {"slice-views-uncertainty.png": row(views)}
    shares = [views.tinted(name) for name in VIEW_ORDER]
    tinted, head = sum(int(t.sum()) for t, _ in shares), sum(int(h.sum()) for _, h in shares)
    outside = sum(int((t & ~h).sum()) for t, h in shares)
    logic.showConsistency(result, True)
    pictures["slice-views-consistency.png"] = row(views)
    for name, pixels in pictures.items():
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        save_compact(buffer, args.out / name)
        print(args.out / name)
    print(f"{title}: {job.method_summary()}; {job.consistency_summary()}")
    print(f"Uncertainty overlay as rendered (three views): {tinted / max(head, 1):.1%} of the head tinted, {outside / max(tinted, 1):.1%} of the tinted pixels outside it")


if __name__ == "__main__":
    main()
