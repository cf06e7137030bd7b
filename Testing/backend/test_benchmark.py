"""`mrisr benchmark` end to end on the quick suite (a crop of the MNI152 template)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from inference_backend.cli import main
from inference_backend.evaluation.benchmark import Entry
from inference_backend.evaluation.metrics import (
    interval_coverage,
    psnr,
    sample_nll,
    ssim,
    std_error_correlation,
)
from inference_backend.imaging.head import head_mask


def test_quick_suite_writes_json_markdown_and_panels(tmp_path):
    out = tmp_path / "quick"
    assert main(["benchmark", "--suite", "quick", "--methods", "interpolation:kind=linear interpolation:kind=bspline", "--out", str(out), "--progress", "none"]) == 0
    results = json.loads((out / "results.json").read_text())
    rows = {row["method"]: row for row in results["cases"]["mni152-crop_through-plane-x4"]["rows"]}
    assert set(rows) == {"linear", "bspline"}
    assert rows["bspline"]["psnr"] > rows["linear"]["psnr"] and rows["bspline"]["ssim"] > rows["linear"]["ssim"]
    assert rows["bspline"]["psnr_brain"] > rows["linear"]["psnr_brain"]  # also scored inside the template's brain mask
    assert all(row["wall_time_s"] >= 0 and row["peak_rss_mb"] > 0 for row in rows.values())
    markdown = (out / "results.md").read_text()
    assert "| bspline |" in markdown and "mni152-crop_through-plane-x4.png" in markdown
    assert (out / "mni152-crop_through-plane-x4.png").stat().st_size > 10_000


def test_update_replaces_the_cases_it_runs_and_keeps_the_others(tmp_path):
    out = tmp_path / "quick"
    command = ["benchmark", "--suite", "quick", "--out", str(out), "--progress", "none"]
    assert main([*command, "--methods", "interpolation:kind=linear"]) == 0
    results = json.loads((out / "results.json").read_text())
    results["cases"]["an-earlier-case"] = {**results["cases"]["mni152-crop_through-plane-x4"], "description": "kept"}
    (out / "results.json").write_text(json.dumps(results))
    assert main([*command, "--methods", "interpolation:kind=bspline", "--update"]) == 0
    cases = json.loads((out / "results.json").read_text())["cases"]
    assert list(cases) == ["mni152-crop_through-plane-x4", "an-earlier-case"]
    assert [row["method"] for row in cases["mni152-crop_through-plane-x4"]["rows"]] == ["bspline"]  # the re-run case whole
    assert "## an-earlier-case" in (out / "results.md").read_text()
    assert main([*command, "--methods", "interpolation:kind=bspline", "--update", "--samples", "2"]) == 2  # not the same run's kind
    assert main([*command, "--methods", "interpolation:kind=bspline"]) == 0
    assert list(json.loads((out / "results.json").read_text())["cases"]) == ["mni152-crop_through-plane-x4"]


def test_brain_mask_is_the_template_brain():
    """Grey + white matter, closed and filled: the skull-stripped template's own foreground,
    all of it and little more (Dice > 0.93; a wrong threshold or a missing fill breaks it), with
    the dark ventricles inside."""
    from inference_backend.data.datasets import load_mni152, load_mni152_brain_mask

    template, brain = load_mni152(), load_mni152_brain_mask()
    assert brain.shape == template.grid.size
    head = head_mask(template.array)
    assert (brain & head).sum() / head.sum() > 0.99
    assert 2 * (brain & head).sum() / (brain.sum() + head.sum()) > 0.93
    ventricle = (98, 116, 90)
    assert brain[ventricle] and template.array[ventricle] < 0.6 * np.median(template.array[brain])


def test_entry_parsing():
    entry = Entry.parse("interpolation:kind=lanczos")
    assert entry.method == "interpolation" and entry.options == {"kind": "lanczos"} and entry.label == "lanczos"


def test_metrics_on_known_cases():
    rng = np.random.default_rng(0)
    reference = np.zeros((20, 20, 20))
    reference[4:16, 4:16, 4:16] = 100 + rng.normal(0, 5, (12, 12, 12))
    mask = head_mask(reference)
    assert mask[10, 10, 10] and not mask[0, 0, 0]
    noisy = reference + rng.normal(0, 10, reference.shape)
    assert psnr(reference, reference, mask) == float("inf") and ssim(reference, reference, mask) == 1.0
    span = reference[mask].max() - reference[mask].min()
    assert abs(psnr(reference, noisy, mask) - 10 * np.log10(span**2 / 100)) < 0.3
    # samples whose spread tracks the error: good coverage, positive correlation, finite NLL
    error_scale = np.where(np.arange(20) < 10, 1.0, 8.0)[None, :, None] * np.ones((20, 20, 20))
    samples = reference[None] + rng.normal(0, 1, (32, 20, 20, 20)) * error_scale[None]
    mean, variance = samples.mean(0), samples.var(0)
    assert interval_coverage(reference, samples, mask) > 0.85
    assert std_error_correlation(reference, mean, variance, mask) > 0.2
    overconfident = reference[None] + 0.01 * rng.normal(0, 1, (32, 20, 20, 20)) + 3.0
    assert interval_coverage(reference, overconfident, mask) < 0.05
    assert sample_nll(reference, samples, mask) < sample_nll(reference, overconfident, mask)


@pytest.mark.parametrize(
    "tuning_suite, evaluation_suite, scans", [("tuning", "slab", ("chris_t1", "spm152")), ("imputation-tuning", "imputation", ("chris_t1",))]
)
def test_tuning_suite_keeps_the_held_out_scan_unseen(tuning_suite, evaluation_suite, scans):
    """Options are tuned on the slabs of a training scan (and of spm152, which no model saw); the
    held-out scan's slabs are the same cases, never mixed in."""
    from inference_backend.data.datasets import shared_data_dir
    from inference_backend.evaluation.benchmark import HELD_OUT_SCANS, suite_cases

    if shared_data_dir() is None:
        pytest.skip("needs the development data (../shared/data)")
    tuning, held_out = suite_cases(tuning_suite), suite_cases(evaluation_suite)
    assert sorted({c.name.split("-slab_")[0] for c in tuning}) == list(scans)
    assert not any(scan in case.name for case in tuning for scan in HELD_OUT_SCANS)
    for scan in scans:
        own = [c for c in tuning if c.name.startswith(f"{scan}-slab_")]
        assert [c.name.split("-slab_")[1] for c in own] == [c.name.split("-slab_")[1] for c in held_out]
        assert not any(np.array_equal(t.reference.array, h.reference.array) for t, h in zip(own, held_out))
