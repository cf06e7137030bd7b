"""Res-SRDiff: the schedule and posterior against closed forms, the sampler, the method end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import make_volume
from inference_backend.errors import AssetError
from inference_backend.imaging.target import target_grid
from inference_backend.job import JobOptions
from inference_backend.methods.res_srdiff.options import ResSRDiffOptions
from inference_backend.methods.sample_statistics import SampleStatistics
from inference_backend.pipeline import process
from inference_backend.schedulers.residual_shift import ResidualShiftSchedule

SCHEDULE = ResidualShiftSchedule()


def test_schedule_matches_the_reference_values():
    """kappa 2, p 0.3, m 0.2, T 4: sqrt(eta) = 0.1 * 9.9^(((t-1)/3)^0.3)."""
    expected = [0.1 * 9.9 ** (((t - 1) / 3) ** 0.3) for t in range(1, 5)]
    np.testing.assert_allclose(SCHEDULE.sqrt_eta, expected, rtol=1e-12)
    np.testing.assert_allclose(SCHEDULE.sqrt_eta, [0.100, 0.520, 0.761, 0.990], atol=1e-3)
    assert SCHEDULE.kappa * SCHEDULE.sqrt_eta[0] == pytest.approx(0.2)
    np.testing.assert_allclose(np.cumsum(SCHEDULE.alpha), SCHEDULE.eta)


def test_forward_marginal_moments():
    x0, y = torch.full((20000, 1), 0.3, dtype=torch.float64), torch.full((20000, 1), -0.5, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    for step in range(4):
        index = torch.full((20000,), step)
        x_t = SCHEDULE.q_sample(x0, y, index, torch.randn(x0.shape, generator=generator, dtype=torch.float64))
        eta = SCHEDULE.eta[step]
        assert float(x_t.mean()) == pytest.approx(0.3 + eta * (-0.8), abs=0.03)
        assert float(x_t.std()) == pytest.approx(2.0 * np.sqrt(eta), rel=0.03)


def test_posterior_is_the_gaussian_conditional_of_the_forward_chain():
    """Closed form: q(x_{t-1}|x_t,x0) from q(x_t|x_{t-1}) = N(x_{t-1} + alpha_t (y - x0), kappa^2 alpha_t)
    and q(x_{t-1}|x0); compare mean and variance with Bayes' rule for Gaussians."""
    x0, y, x_t = torch.tensor([[0.2]]), torch.tensor([[0.9]]), torch.tensor([[0.4]])
    for step in range(1, 4):
        index = torch.tensor([step])
        eta_prev, alpha, kappa = SCHEDULE.eta[step - 1], SCHEDULE.alpha[step], SCHEDULE.kappa
        shift = float(y - x0)
        prior_mean, prior_var = 0.2 + eta_prev * shift, kappa**2 * eta_prev
        likelihood_var = kappa**2 * alpha
        observed = 0.4 - alpha * shift  # x_t minus the drift of the transition
        var = 1 / (1 / prior_var + 1 / likelihood_var)
        mean = var * (prior_mean / prior_var + observed / likelihood_var)
        got_mean, got_var = SCHEDULE.posterior(x_t, x0, index)
        assert float(got_mean) == pytest.approx(mean, rel=1e-6)
        assert float(got_var) == pytest.approx(var, rel=1e-6)
    mean, var = SCHEDULE.posterior(x_t, x0, torch.tensor([0]))
    assert float(mean) == pytest.approx(0.2) and float(var) == 0.0  # last step returns x0


def test_sampler_with_a_perfect_predictor_returns_x0_and_calls_it_four_times():
    x0 = torch.randn(3, 1, 8, 8)
    calls = []

    def oracle(x_t, y, index):
        calls.append(int(index[0]))
        return x0

    out = SCHEDULE.sample(oracle, torch.zeros_like(x0), torch.Generator().manual_seed(1))
    assert calls == [3, 2, 1, 0]
    torch.testing.assert_close(out, x0)


def test_the_posterior_mean_is_one_prediction_at_the_last_step_from_y():
    y = torch.randn(2, 1, 8, 8)
    calls = []

    def predictor(x_t, y_in, index):
        calls.append((x_t.clone(), int(index[0])))
        return 0.5 * x_t + 0.1

    torch.testing.assert_close(SCHEDULE.posterior_mean(predictor, y), 0.5 * y + 0.1)
    assert len(calls) == 1 and calls[0][1] == SCHEDULE.steps - 1
    torch.testing.assert_close(calls[0][0], y)  # x_T's mean under the prior N(y, kappa^2 eta_T)


def test_sample_statistics_match_numpy():
    samples = np.random.default_rng(0).normal(size=(5, 3, 4, 2))
    statistics = SampleStatistics(keep_samples=True)
    for sample in samples:
        statistics.add(sample)
    np.testing.assert_allclose(statistics.mean, samples.mean(0), rtol=1e-5)
    np.testing.assert_allclose(statistics.variance, samples.var(0, ddof=1), rtol=1e-4)
    assert statistics.samples.shape == samples.shape


def test_method_runs_end_to_end_with_samples_and_variance(tiny_model):
    volume = make_volume(shape=(12, 10, 6), spacing=(1.0, 1.0, 3.0))
    options = JobOptions(method="res-srdiff", method_options={"model": "tiny-res-srdiff"}, scale=(1, 1, 3), samples=3, seed=4, device="cpu", keep_samples=True)
    outputs = process(volume, options)
    assert outputs.sr.grid.matches(target_grid(volume.grid, scale=(1, 1, 3)), tolerance_mm=1e-9)
    assert outputs.variance is not None and outputs.variance.array.min() >= 0 and outputs.variance.array.max() > 0
    assert outputs.samples.shape == (3, 12, 10, 18)
    assert outputs.report["model"]["name"] == "tiny-res-srdiff" and len(outputs.report["model"]["sha256"]) == 64
    again = process(volume, options)
    np.testing.assert_array_equal(outputs.sr.array, again.sr.array)  # seeded


def test_tampered_weights_are_refused(tiny_model):
    weights = tiny_model / "tiny-res-srdiff.pt"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    volume = make_volume(shape=(12, 10, 6), spacing=(1.0, 1.0, 3.0))
    with pytest.raises(AssetError, match="integrity"):
        process(volume, JobOptions(method="res-srdiff", method_options={"model": "tiny-res-srdiff"}, scale=(1, 1, 3), device="cpu"))


def test_missing_weights_are_reported(tiny_model):
    volume = make_volume(shape=(12, 10, 6), spacing=(1.0, 1.0, 3.0))
    with pytest.raises(AssetError, match="not installed"):
        process(volume, JobOptions(method="res-srdiff", method_options={"model": "absent"}, scale=(1, 1, 3), device="cpu"))
    card = json.loads((tiny_model / "tiny-res-srdiff.json").read_text())
    assert card["sha256"] and card["size_mb"] > 0


def test_zero_temperature_is_the_deterministic_chain_of_posterior_means():
    y = torch.randn(2, 1, 8, 8)

    def predictor(x_t, y, index):
        return 0.5 * (x_t + y) + 0.1 * index.view(-1, 1, 1, 1)

    first = SCHEDULE.sample(predictor, y, torch.Generator().manual_seed(1), temperature=0.0)
    second = SCHEDULE.sample(predictor, y, torch.Generator().manual_seed(2), temperature=0.0)
    torch.testing.assert_close(first, second)
    x = y.clone()
    for step in reversed(range(4)):
        index = torch.full((2,), step)
        x, _ = SCHEDULE.posterior(x, predictor(x, y, index), index)
    torch.testing.assert_close(first, x)
    noisy = SCHEDULE.sample(predictor, y, torch.Generator().manual_seed(1))
    assert not torch.allclose(noisy, first)


def test_one_sample_is_the_posterior_mean_by_default_and_a_chain_on_request(tiny_model):
    volume = make_volume(shape=(12, 10, 6), spacing=(1.0, 1.0, 3.0))

    def run(seed, **method_options):
        options = JobOptions(method="res-srdiff", method_options={"model": "tiny-res-srdiff", **method_options}, scale=(1, 1, 3), seed=seed, device="cpu")
        return process(volume, options)

    resolved = run(0).report["resolved_options"]
    assert (resolved["consistency"], resolved["sampler"], resolved["adapt_steps"]) == ("none", "mean", ResSRDiffOptions.adapt_steps)
    bundled = {"adapt_steps": 0}  # the samplers compared on the same weights, without the adaptation's time
    mean = run(0, **bundled)
    np.testing.assert_array_equal(mean.sr.array, run(5, **bundled).sr.array)  # no noise drawn: the seed is irrelevant
    chain = run(0, sampler="deterministic", **bundled)
    assert not np.allclose(chain.sr.array, mean.sr.array)  # three more network calls change the estimate
    stochastic = run(0, sampler="stochastic", **bundled)
    assert stochastic.report["resolved_options"]["sampler"] == "stochastic"
    assert not np.array_equal(stochastic.sr.array, run(5, sampler="stochastic", **bundled).sr.array)


def test_the_last_step_share_draws_the_last_step_for_that_fraction_of_the_batch():
    from inference_backend.methods.res_srdiff.method import residual_shift_loss

    class Recorder(torch.nn.Module):
        schedule = SCHEDULE

        def forward(self, x_t, y, index, context=None):
            self.index = index
            return x_t

    model, batch = Recorder(), {"hr": torch.zeros(4000, 1, 2, 2), "conditioning": torch.ones(4000, 1, 2, 2)}
    torch.manual_seed(0)
    residual_shift_loss(model, batch, last_step_share=1.0)
    assert (model.index == SCHEDULE.steps - 1).all()
    residual_shift_loss(model, batch)
    assert abs(float((model.index == SCHEDULE.steps - 1).float().mean()) - 0.25) < 0.03  # uniform over 4 steps
    residual_shift_loss(model, batch, last_step_share=0.5)
    assert abs(float((model.index == SCHEDULE.steps - 1).float().mean()) - 0.625) < 0.03
