"""What a radiologist sees of a result in Slicer's own slice views (slicer-core's slice logic and
displayable managers, rendered offscreen): the result in every view, the uncertainty overlay
tinting only the head voxels whose uncertainty is notable, with a legend in every view that
names its unit, and the consistency overlay on request."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the 'slicer' package here is not Kitware's slicer-core", allow_module_level=True)

from slice_views import VIEWS, SliceViews  # noqa: E402

from inference_backend.imaging.uncertainty import notable_level  # noqa: E402
from inference_backend.imaging.volume import Grid, Volume  # noqa: E402
from MRISuperResolutionLib.conversion import update_node_from_volume  # noqa: E402
from MRISuperResolutionLib.logic import SuperResolutionLogic  # noqa: E402
from MRISuperResolutionLib.runners import JobResult  # noqa: E402

SHAPE = (48, 56, 44)


def phantom() -> tuple[Volume, np.ndarray]:
    """A head (an ellipsoid of tissue with a bright rim and a dark core) in air, and its mask."""
    grid = np.ogrid[tuple(slice(0, n) for n in SHAPE)]
    radius = sum(((g - (n - 1) / 2) / (0.42 * n)) ** 2 for g, n in zip(grid, SHAPE))
    head = radius < 1
    image = np.where(head, 400 + 200 * (radius > 0.7) - 150 * (radius < 0.2), 5.0).astype(np.float32)
    return Volume(image, Grid(SHAPE, (1.0, 1.0, 1.0), (-24.0, -28.0, -22.0), np.eye(3))), head


def result_of(sr: Volume, head: np.ndarray, faint: float = 0.01, notable: float = 0.12) -> JobResult:
    """A stochastic result whose spread is like a diffusion model's: a little everywhere, the air
    included (``faint`` to twice that, of the head's median), and large (``notable``) at the
    head's edge."""
    rng = np.random.default_rng(0)
    edges = head & ~ndimage.binary_erosion(head, iterations=2)  # the head's outer shell
    reference = float(np.median(sr.array[head]))
    sd = np.full(SHAPE, faint * reference) * (1 + rng.random(SHAPE))  # the faint majority
    sd[edges & head] = notable * reference
    consistency = np.zeros(SHAPE, np.float32)
    consistency[20:28, 24:32, 18:26] = -8.0  # an erased lesion: the result darker than the scan
    return JobResult(sr, sr.with_array((sd**2).astype(np.float32)), None, {"method": "test", "resolved_options": {}},
                     sr.with_array(consistency + rng.normal(0, 1, SHAPE).astype(np.float32)))  # fmt: skip


def show(faint: float = 0.01, notable: float = 0.12):
    scene = slicer.vtkMRMLScene()
    scene.RegisterNodeClass(slicer.vtkMRMLColorLegendDisplayNode())  # the Colors module does this in Slicer
    views = SliceViews(scene)
    sr, head = phantom()
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "scan")
    update_node_from_volume(node, sr)
    logic = SuperResolutionLogic(scene)
    nodes = logic.apply_result(node, result_of(sr, head, faint, notable))
    views.fit()
    return scene, views, logic, nodes


@pytest.fixture
def shown():
    return show()


def test_the_result_fills_every_view_with_the_uncertainty_over_it(shown):
    _, views, _, nodes = shown
    for name in VIEWS:
        composite = views.composite(name)
        assert composite.GetBackgroundVolumeID() == nodes["sr"].GetID()
        assert composite.GetForegroundVolumeID() == nodes["uncertainty"].GetID()
    assert nodes["variance"].GetDisplayNode() is not None  # the data, kept for analysis, not shown


def test_the_uncertainty_legend_is_shown_in_every_view_with_its_unit_and_labels_that_differ(shown):
    _, views, _, nodes = shown
    for name in VIEWS:
        assert views.legend_visible(name, nodes["uncertainty"]), name
        assert "1 SD" in views.legend_title(name, nodes["uncertainty"]) and "%" in views.legend_title(name, nodes["uncertainty"])
        labels = views.legend_labels(name, nodes["uncertainty"])
        assert len(set(labels)) == len(labels) > 1, labels


@pytest.mark.parametrize("faint, notable", [(0.01, 0.12), (0.08, 0.35)], ids=["faint-everywhere", "several-percent-everywhere"])
def test_the_overlay_tints_only_notable_uncertainty_inside_the_head(faint, notable):
    """A result unsure by a few % across the whole head (as a diffusion model is) is tinted only
    where it is notably more unsure, never as one wash over the brain."""
    _, views, _, nodes = show(faint, notable)
    tinted_total = head_total = outside_total = 0
    for name in VIEWS:
        tinted, head = views.tinted(name)
        tinted_total, head_total, outside_total = tinted_total + tinted.sum(), head_total + head.sum(), outside_total + (tinted & ~head).sum()
    assert tinted_total > 0
    assert tinted_total <= head_total / 3  # at most a third of the head
    assert outside_total <= 0.05 * tinted_total  # at most 5% of what is tinted outside the head
    display = nodes["uncertainty"].GetDisplayNode()
    assert display.GetApplyThreshold() and display.GetLowerThreshold() == notable_level(slicer.util.arrayFromVolume(nodes["uncertainty"]))


def test_the_consistency_overlay_shows_where_the_result_contradicts_the_scan(shown):
    _, views, logic, nodes = shown
    logic.showConsistency(nodes, True)
    for name in VIEWS:
        assert views.composite(name).GetForegroundVolumeID() == nodes["consistency"].GetID()
        assert views.legend_visible(name, nodes["consistency"]), name
    tinted, _ = views.tinted("Red")
    assert 0 < tinted.sum() < 0.1 * tinted.size  # the erased lesion, not the noise within +-3 SD
    logic.showConsistency(nodes, False)
    assert views.composite("Red").GetForegroundVolumeID() == nodes["uncertainty"].GetID()
