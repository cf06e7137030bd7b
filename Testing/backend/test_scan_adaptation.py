"""Self-supervised adaptation to the input scan: its pairs, its training, its use by Res-SRDiff."""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from conftest import make_volume
from inference_backend.imaging.target import Refinement, target_grid
from inference_backend.job import JobOptions
from inference_backend.methods.base import MethodRequest
from inference_backend.methods.res_srdiff import method
from inference_backend.methods.res_srdiff.method import (
    ResSRDiffNet,
    adaptation_pairs,
    residual_shift_loss,
)
from inference_backend.methods.res_srdiff.options import ResSRDiffOptions
from inference_backend.methods.scan_adaptation import (
    AdaptationSettings,
    ScanPairs,
    adapt_to_scan,
    clone_state,
    held_out_split,
    in_slice_images,
)
from inference_backend.pipeline import process
from inference_backend.progress import Progress
from inference_backend.schedulers.residual_shift import ResidualShiftSchedule


def test_the_images_are_the_acquired_slices_that_hold_tissue():
    volume = np.full((6, 5, 4), -1.0, dtype=np.float32)
    volume[1:5, 1:4, 1:3] = 0.5  # slices 1 and 2 along the coarse axis hold tissue
    images = in_slice_images(volume, coarse_axis=2)
    assert len(images) == 2 and all(image.shape == (6, 5) for image in images)
    np.testing.assert_array_equal(images[0], volume[:, :, 1])
    assert len(in_slice_images(volume, coarse_axis=0)) == 4  # slices 1-4 along the first axis


def test_a_pair_degrades_the_last_axis_of_its_patch_and_only_that_one():
    """Stripes that vary along one axis of the image only: where the patch's last (coarse) axis runs
    along the stripes, nothing is lost; where it runs across them, the thick-slice profile erases them."""
    stripes = np.where(np.arange(200) % 2 == 0, 0.8, -0.2).astype(np.float32)
    image = np.tile(stripes[:, None], (1, 200))
    pairs = ScanPairs([image], factor=4.0, patch=32, rng=np.random.default_rng(0))
    kept = erased = 0
    for _ in range(20):
        hr, conditioning = pairs.pair()
        assert hr.shape == conditioning.shape == (32, 32)
        if np.ptp(hr, axis=1).max() == 0:  # constant along the coarse axis
            np.testing.assert_allclose(conditioning, hr, atol=1e-4)
            kept += 1
        else:
            assert conditioning.std() < 0.05 * hr.std()
            erased += 1
    assert kept and erased  # both in-slice axes play the coarse one


def test_pairs_meet_the_network_at_the_targets_pixel_size():
    """A scan with pixels half the target's slice spacing: whichever in-slice axis plays the coarse
    one is brought to the target's spacing (a ramp twice as steep per pixel), the other to the
    target's in-plane spacing (here the scan's own: as steep as acquired)."""
    steps = (0.001, 0.003)  # per acquired pixel, along the image's two axes
    image = np.add.outer(np.arange(160) * steps[0], np.arange(160) * steps[1]).astype(np.float32)
    pairs = ScanPairs([image], 4.0, 32, np.random.default_rng(0), zooms=((0.5, 1.0), (1.0, 0.5)))
    seen = set()
    for _ in range(20):
        hr, _ = pairs.pair()
        coarse = float(np.abs(np.diff(hr, axis=1)).mean())
        kept = float(np.abs(np.diff(hr, axis=0)).mean())
        if abs(coarse - 2 * steps[1]) < 2e-4:
            assert abs(kept - steps[0]) < 2e-4  # axis 1 plays the coarse axis
            seen.add(1)
        else:
            assert abs(coarse - 2 * steps[0]) < 2e-4 and abs(kept - steps[1]) < 2e-4  # axis 0 does
            seen.add(0)
    assert seen == {0, 1}


def tiny_net() -> ResSRDiffNet:
    torch.manual_seed(0)
    return ResSRDiffNet(ResidualShiftSchedule(), {"channels": (8, 16), "blocks_per_level": 1})


def test_adaptation_fits_the_scan_and_leaves_the_global_random_state_alone():
    image = np.kron(np.random.default_rng(0).uniform(-1, 1, (16, 16)), np.ones((4, 4))).astype(np.float32)  # sharp edges
    held_out = ScanPairs([image], 4.0, 32, np.random.default_rng(1)).batch(16, "cpu")
    net = tiny_net()

    def loss_on_held_out() -> float:
        torch.manual_seed(5)
        with torch.no_grad():
            return float(residual_shift_loss(net, held_out, last_step_share=1.0))

    before = loss_on_held_out()
    state = torch.get_rng_state()
    settings = AdaptationSettings(steps=100, learning_rate=2e-3, batch_size=4, patch=32)
    steps = adapt_to_scan(net, residual_shift_loss, ScanPairs([image], 4.0, 32, np.random.default_rng(0)), settings, Progress(), "cpu")
    assert steps == 100 and not net.training
    assert torch.equal(torch.get_rng_state(), state)
    assert loss_on_held_out() < 0.9 * before  # 0.76 here; no training at all stays at 1


def test_every_fifth_slice_is_held_out_where_at_least_two_would_be():
    images = [np.full((4, 4), i, dtype=np.float32) for i in range(12)]
    training, held_out = held_out_split(images)
    assert [int(im[0, 0]) for im in held_out] == [2, 7] and len(training) == 10
    assert held_out_split(images[:6]) == (images[:6], [])  # one held-out slice would judge nothing


class ScriptedCheck:
    """Held-out errors in a given order; remembers the weights each was taken on."""

    def __init__(self, errors: list[float]) -> None:
        self.errors, self.states = iter(errors), []

    def __call__(self, net: torch.nn.Module) -> float:
        self.states.append(clone_state(net))
        return next(self.errors)


def test_the_held_out_check_keeps_the_best_weights_and_stops_once_they_stop_improving():
    image = np.random.default_rng(0).uniform(-1, 1, (64, 64)).astype(np.float32)
    settings = AdaptationSettings(steps=1000, learning_rate=1e-3, batch_size=2, patch=32, check_every=2, patience=3)
    adapt = lambda net, check: adapt_to_scan(  # noqa: E731
        net, residual_shift_loss, ScanPairs([image], 4.0, 32, np.random.default_rng(0)), settings, Progress(), "cpu", check
    )
    net, check = tiny_net(), ScriptedCheck([1.0, 0.8, 0.5, 0.6, 0.55, 0.7])  # initial, then steps 2, 4, ...
    assert adapt(net, check) == 4  # stopped at step 10, three checks after the best
    assert len(check.states) == 6 and not net.training
    for name, value in net.state_dict().items():
        torch.testing.assert_close(value, check.states[2][name])
    assert not all(torch.equal(value, check.states[-1][name]) for name, value in net.state_dict().items())
    net, check = tiny_net(), ScriptedCheck([0.1, 0.2, 0.3, 0.4])  # no step improves on the bundled weights
    assert adapt(net, check) == 0
    for name, value in net.state_dict().items():
        torch.testing.assert_close(value, check.states[0][name])


def test_res_srdiff_adapts_to_thick_slices_only_and_never_touches_the_weights_file(tiny_model):
    weights = tiny_model / "tiny-res-srdiff.pt"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    volume = make_volume(shape=(12, 10, 6), spacing=(1.0, 1.0, 3.0))

    def run(scale, steps):
        options = JobOptions(method="res-srdiff", method_options={"model": "tiny-res-srdiff", "adapt_steps": steps}, scale=scale, device="cpu")
        return process(volume, options)

    adapted, bundled = run((1, 1, 3), 3), run((1, 1, 3), 0)
    assert adapted.report["resolved_options"]["adapt_steps"] == 3 and bundled.report["resolved_options"]["adapt_steps"] == 0
    assert not np.allclose(adapted.sr.array, bundled.sr.array)
    np.testing.assert_array_equal(adapted.sr.array, run((1, 1, 3), 3).sr.array)  # seeded
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == digest
    in_plane = run((2, 2, 1), 3)  # no slice of this scan is finer than the output along the restored axes
    assert in_plane.report["resolved_options"]["adapt_steps"] == 0


def test_res_srdiff_checks_its_adaptation_on_held_out_slices_and_reports_the_steps_kept(tiny_model, monkeypatch):
    checks, error = [], method.posterior_mean_error

    def counted(model, batch):
        checks.append(batch["hr"].shape)
        return error(model, batch)

    monkeypatch.setattr(method, "posterior_mean_error", counted)
    volume = make_volume(shape=(24, 20, 12), spacing=(1.0, 1.0, 3.0))
    options = JobOptions(
        method="res-srdiff", method_options={"model": "tiny-res-srdiff", "adapt_steps": 100, "adapt_check": True}, scale=(1, 1, 3), device="cpu"
    )
    checked = process(volume, options)
    assert len(checks) == 3 and checks[0][0] == AdaptationSettings.held_out_patches  # before, at 50 and at 100 steps
    assert checked.report["resolved_options"]["adapt_steps"] in (0, 50, 100)
    np.testing.assert_array_equal(checked.sr.array, process(volume, options).sr.array)  # seeded


def test_a_scan_too_thin_to_hold_slices_out_adapts_for_the_steps_chosen_before_the_check(tiny_model):
    volume = make_volume(shape=(12, 10, 6), spacing=(1.0, 1.0, 3.0))  # six slices: one would be held out
    options = JobOptions(method="res-srdiff", method_options={"model": "tiny-res-srdiff", "adapt_steps": 400, "adapt_check": True}, scale=(1, 1, 3), device="cpu")
    assert process(volume, options).report["resolved_options"]["adapt_steps"] == method.UNCHECKED_STEPS


def test_a_scan_finer_in_slice_than_the_target_is_shrunk_to_it_and_never_enlarged():
    """0.5 mm pixels restored onto 1 mm slices: the axis that plays the slice axis is halved;
    1 mm pixels restored at 0.9 mm stay as acquired (enlarging them teaches blur)."""
    def views(spacing, scale):
        volume = make_volume(shape=(40, 36, 8), spacing=spacing)
        request = MethodRequest(volume, Refinement(volume.grid, target_grid(volume.grid, scale=scale)), ResSRDiffOptions(), Progress())
        last_coarse, first_coarse = adaptation_pairs(request)[0].views[0]
        return last_coarse.shape, first_coarse.shape

    assert views((0.5, 0.5, 4.0), (1, 1, 4)) == ((40, 18), (36, 20))  # 36 x 0.5 mm -> 18 x 1 mm; 40 -> 20, transposed
    assert views((1.0, 1.0, 3.6), (1, 1, 4)) == ((40, 36), (36, 40))  # 0.9 mm slices: as acquired
