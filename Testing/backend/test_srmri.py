"""SRMRI machinery: DSM loss, wavelet fusion, the sampler's data consistency, the method end to end."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import pywt
import torch

from conftest import make_volume
from inference_backend.errors import InputError
from inference_backend.imaging.target import target_grid
from inference_backend.job import JobOptions
from inference_backend.methods.slicing import SliceBatch, SlicePlan, run_slices
from inference_backend.methods.srmri.method import ScoreNet
from inference_backend.methods.srmri.sampler import SRMRISampler, WaveletFusion
from inference_backend.operators.degradation import downsampling_operator
from inference_backend.pipeline import process
from inference_backend.progress import Progress
from inference_backend.registry import get_method
from inference_backend.schedulers.score_sde import VESchedule, dsm_loss
from inference_backend.training.common import export_model

SCHEDULE = VESchedule(sigma_min=0.01, sigma_max=20.0)


def gaussian_score(mean: float, variance: float):
    """Exact score of N(mean, variance) data smoothed by sigma: -(x - mean) / (variance + sigma^2)."""

    def score(x, sigma):
        return -(x - mean) / (variance + sigma.view(-1, *([1] * (x.ndim - 1))) ** 2)

    return score


def test_dsm_loss_is_minimal_at_the_true_score():
    generator = torch.Generator().manual_seed(0)
    x0 = 0.3 + 0.5 * torch.randn(4096, 1, 2, 2, generator=generator)
    sigma = SCHEDULE.sample_sigma(4096, generator)
    noise = torch.randn(x0.shape, generator=generator)
    exact = dsm_loss(gaussian_score(0.3, 0.25), x0, sigma, noise)
    wrong = dsm_loss(gaussian_score(0.0, 0.25), x0, sigma, noise)
    assert float(exact) < float(wrong)


def test_wavelet_fusion_takes_the_approximation_of_y_and_details_of_x():
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(2, 1, 64, 64, generator=generator, dtype=torch.float64), torch.randn(2, 1, 64, 64, generator=generator, dtype=torch.float64)
    fused = WaveletFusion()(x, y).numpy()
    bands = pywt.wavedec2(fused, "bior4.4", mode="periodization", level=2, axes=(-2, -1))
    np.testing.assert_allclose(bands[0], pywt.wavedec2(y.numpy(), "bior4.4", mode="periodization", level=2, axes=(-2, -1))[0], atol=1e-8)
    np.testing.assert_allclose(bands[1][0], pywt.wavedec2(x.numpy(), "bior4.4", mode="periodization", level=2, axes=(-2, -1))[1][0], atol=1e-8)
    torch.testing.assert_close(WaveletFusion()(x, x), x)


@pytest.mark.parametrize("k, fusion, jacobian_free", [(1, True, False), (2, True, False), (3, True, False), (2, False, False), (1, True, True), (2, False, True)])
def test_sampler_pulls_towards_the_measurement(k, fusion, jacobian_free):
    """With a flat Gaussian prior, the sample must agree with the LR data far better than the prior mean does;
    the Jacobian-free DPS step never asks the network for a gradient."""
    generator = torch.Generator().manual_seed(2)
    truth = torch.sin(torch.linspace(0, 6, 32))[None, None, None, :].repeat(2, 1, 32, 1).to(torch.float64)
    operator = downsampling_operator("box", (32, 32), (32, 8))
    measurement = operator(truth)
    upsampled = torch.nn.functional.interpolate(measurement, size=(32, 32), mode="nearest")
    sampler = SRMRISampler(SCHEDULE, steps=30, k=k, rho=8.0, fusion=fusion, start_sigma=1.0, jacobian_free=jacobian_free)
    prior = gaussian_score(0.0, 1.0)

    def score(x, sigma):
        assert not (jacobian_free and x.requires_grad), "a backward pass through the network"
        return prior(x, sigma)

    out = sampler.sample(score, upsampled, measurement, operator, generator)
    assert out.shape == truth.shape and torch.isfinite(out).all()
    consistency = torch.linalg.vector_norm(operator(out) - measurement) / torch.linalg.vector_norm(measurement)
    assert float(consistency) < 0.5


@pytest.mark.parametrize("name", next(o for o in get_method("srmri").options if o.name == "operator").choices)
def test_every_data_consistency_operator_keeps_constants_and_sizes(name):
    operator = downsampling_operator(name, (24, 30), (24, 10))
    out = operator(torch.full((1, 1, 24, 30), 3.0, dtype=torch.float64))
    assert out.shape == (1, 1, 24, 10)
    torch.testing.assert_close(out[..., 2:-2], torch.full_like(out[..., 2:-2], 3.0))


def test_run_slices_hands_matching_lr_slices_to_the_model():
    hr = np.random.default_rng(0).normal(size=(5, 6, 12)).astype(np.float32)
    lr = hr.reshape(5, 6, 3, 4).mean(axis=3)
    plan = SlicePlan((2,), (0, 1), (1.0, 1.0, 4.0))
    seen = []

    def model(batch: SliceBatch) -> torch.Tensor:
        seen.append((tuple(batch.measured.shape[-2:]), batch.size))
        np.testing.assert_allclose(batch.measured.numpy(), batch.images[..., : batch.size[0], : batch.size[1]].reshape(*batch.measured.shape[:3], 3, 4).mean(-1).numpy(), atol=1e-6)
        return batch.images

    run_slices(hr, plan, model, batch_size=4, progress=Progress(), measurement=lr)
    assert set(seen) == {((6, 3), (6, 12)), ((5, 3), (5, 12))}


def test_method_runs_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("MRISR_MODELS_DIR", str(tmp_path))
    torch.manual_seed(0)
    net = ScoreNet(SCHEDULE, {"in_channels": 1, "channels": (8, 16)})
    export_model("tiny-srmri", net.checkpoint(), {"method": "srmri"}, tmp_path)
    volume = make_volume(shape=(12, 10, 6), spacing=(1.0, 1.0, 3.0))
    options = JobOptions(method="srmri", method_options={"model": "tiny-srmri", "steps": 4}, scale=(1, 1, 3), samples=2, device="cpu")
    outputs = process(volume, options)
    assert outputs.sr.grid.matches(target_grid(volume.grid, scale=(1, 1, 3)), tolerance_mm=1e-9)
    assert np.isfinite(outputs.sr.array).all() and outputs.variance is not None
    assert outputs.report["resolved_options"]["fusion"] is False  # thick slices: no fusion by default
    in_plane = JobOptions(method="srmri", method_options={"model": "tiny-srmri", "steps": 4}, scale=(2, 2, 1), samples=1, device="cpu")
    assert process(make_volume(shape=(6, 6, 4)), in_plane).report["resolved_options"]["fusion"] is True
    forced = JobOptions(method="srmri", method_options={"model": "tiny-srmri", "steps": 4, "fusion": "true"}, scale=(1, 1, 3), device="cpu")
    assert process(volume, forced).report["resolved_options"]["fusion"] is True


def test_full_schedule_on_gpu_keeps_the_total_data_consistency_pull():
    from inference_backend.methods.srmri.method import PAPER_NOISE_SCALES, make_sampler

    options = get_method("srmri").parse_options({"rho": "8", "steps": "40"})
    cpu = make_sampler(options, SCHEDULE, "cpu", fusion=True, thick_slice_dps=False)
    gpu = make_sampler(options, SCHEDULE, "cuda:0", fusion=True, thick_slice_dps=False)
    assert (cpu.steps, cpu.start_sigma) == (40, options.start_sigma)
    assert (gpu.steps, gpu.start_sigma) == (PAPER_NOISE_SCALES, None)
    assert gpu.rho * gpu.steps == pytest.approx(cpu.rho * cpu.steps)
    assert make_sampler(replace(options, schedule="full"), SCHEDULE, "cpu", fusion=True, thick_slice_dps=False).steps == PAPER_NOISE_SCALES


@pytest.mark.parametrize("corrector_steps", [0, 1, 2])
def test_corrector_steps_set_the_network_calls_per_noise_scale(corrector_steps):
    """The option reaches the sampler: one predictor call per scale, M corrector calls, and one
    last denoising call (what a whole head's time is made of)."""
    from inference_backend.methods.srmri.method import make_sampler

    options = get_method("srmri").parse_options({"steps": "6", "corrector_steps": str(corrector_steps)})
    sampler = make_sampler(options, SCHEDULE, "cpu", fusion=False, thick_slice_dps=True)
    calls = []
    score = gaussian_score(0.0, 1.0)
    counted = lambda x, sigma: calls.append(1) or score(x, sigma)  # noqa: E731
    upsampled = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    identity = lambda x: x  # noqa: E731
    sampler.sample(counted, upsampled, upsampled, identity, torch.Generator().manual_seed(0), projection=identity)
    assert len(calls) == 6 * (1 + corrector_steps) + 1


def test_auto_schedule_is_cheaper_only_for_thick_slices_with_dps_steps():
    from inference_backend.methods.srmri.method import make_sampler

    auto = get_method("srmri").parse_options({})
    cheap = make_sampler(auto, SCHEDULE, "cpu", fusion=False, thick_slice_dps=True)
    usual = make_sampler(auto, SCHEDULE, "cpu", fusion=True, thick_slice_dps=False)
    assert (cheap.k, cheap.corrector_steps, cheap.jacobian_free, cheap.rho) == (1, 0, True, 2.0)
    assert (usual.k, usual.corrector_steps, usual.jacobian_free, usual.rho) == (2, 1, False, 8.0)
    full = make_sampler(auto, SCHEDULE, "cuda:0", fusion=False, thick_slice_dps=True)
    assert (full.k, full.corrector_steps, full.jacobian_free) == (2, 1, False)  # the full schedule keeps the preset it was made with
    given = {"k": "3", "corrector_steps": "2", "rho": "5", "dps_gradient": "network"}
    chosen = make_sampler(get_method("srmri").parse_options(given), SCHEDULE, "cpu", False, True)
    assert (chosen.k, chosen.corrector_steps, chosen.rho, chosen.jacobian_free) == (3, 2, 5.0, False)  # what the user gives is kept
    with pytest.raises(InputError, match="option k"):
        get_method("srmri").parse_options({"k": "0"})
    for bad in ("-1", "fast"):
        with pytest.raises(InputError, match="option rho"):
            get_method("srmri").parse_options({"rho": bad})


def test_projection_step_replaces_dps_and_meets_the_data():
    """With an exact acquisition model the consistency steps project onto the data: the sample
    agrees with the LR slices far more closely than DPS gets it to, and the padding is untouched."""
    from inference_backend.operators.consistency import slice_projection

    generator = torch.Generator().manual_seed(3)
    truth = torch.randn(2, 1, 24, 24, generator=generator, dtype=torch.float64)
    operator = downsampling_operator("kspace", (24, 24), (12, 12))
    measurement = operator(truth)
    upsampled = torch.nn.functional.pad(torch.nn.functional.interpolate(measurement, size=(24, 24), mode="bilinear"), (0, 8, 0, 8))
    project = slice_projection("kspace", (24, 24), measurement)
    np.testing.assert_allclose(operator(project(upsampled)[..., :24, :24]).numpy(), measurement.numpy(), atol=1e-10)
    assert torch.equal(project(upsampled)[..., 24:, :], upsampled[..., 24:, :])
    sampler = SRMRISampler(SCHEDULE, steps=10, k=1, snr=0.0, start_sigma=0.5)
    crop = lambda x: operator(x[..., :24, :24])  # noqa: E731
    error = {}
    for name, projection in (("dps", None), ("projection", project)):
        out = sampler.sample(gaussian_score(0.0, 1.0), upsampled, measurement, crop, torch.Generator().manual_seed(4), projection)
        error[name] = float(torch.linalg.vector_norm(crop(out) - measurement) / torch.linalg.vector_norm(measurement))
    assert error["projection"] < 0.05 < error["dps"]
