"""MSP-SR: the ControlNet branch, the SR3 schedule, the consistency loss's operator, the
staged training and the few-shot fine-tuning command, end to end on tiny shapes."""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from conftest import make_volume
from inference_backend.assets import verified_model
from inference_backend.cli import main as mrisr
from inference_backend.data import training_data
from inference_backend.data.training_data import SlicePairStream, natural_image_sources
from inference_backend.imaging.io import write_volume
from inference_backend.imaging.target import target_grid
from inference_backend.job import JobOptions
from inference_backend.methods.msp_sr.method import MSPSRNet
from inference_backend.pipeline import process
from inference_backend.schedulers.sr3 import SR3Schedule
from inference_backend.training import msp_sr
from inference_backend.training.common import export_model
from inference_backend.training.msp_sr import msp_sr_loss, with_replay

TINY = {"in_channels": 2, "out_channels": 1, "channels": (8, 16), "blocks_per_level": 1}


def randomised(net: MSPSRNet) -> MSPSRNet:
    """Non-zero heads and joins, so that every path changes the output."""
    torch.manual_seed(0)
    for name, parameter in net.named_parameters():
        if "head" in name or "projection" in name:
            torch.nn.init.normal_(parameter, std=0.1)
    return net


def test_control_branch_starts_as_the_base_and_trains_alone():
    net = MSPSRNet(SR3Schedule(), TINY)
    for parameter in net.unet.head.parameters():
        torch.nn.init.normal_(parameter, std=0.1)
    x, y, t = torch.randn(2, 1, 32, 32), torch.randn(2, 1, 32, 32), torch.tensor([5, 1500])
    base_output = net(x, y, t)
    net.add_control()
    torch.testing.assert_close(net(x, y, t), base_output)  # zero-initialised joins
    assert not any(p.requires_grad for p in net.unet.parameters())
    assert all(p.requires_grad for p in net.control.parameters())
    batch = {
        "hr": x, "conditioning": y,
        "operator_rows": torch.eye(32).repeat(2, 1, 1), "operator_columns": torch.eye(32).repeat(2, 1, 1),
    }  # fmt: skip
    msp_sr_loss(net, batch).backward()
    assert all(p.grad is None for p in net.unet.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.control.parameters())


def test_checkpoint_round_trip_keeps_the_control_branch():
    net = randomised(MSPSRNet(SR3Schedule(), TINY, control=True))
    again = MSPSRNet.from_checkpoint(net.checkpoint())
    x, y, t = torch.randn(1, 1, 32, 32), torch.randn(1, 1, 32, 32), torch.tensor([100])
    torch.testing.assert_close(again(x, y, t), net.eval()(x, y, t))


def test_ddim_with_the_true_noise_returns_the_clean_image():
    schedule = SR3Schedule()
    alpha_bar = schedule.alphas_cumprod()
    generator = torch.Generator().manual_seed(3)
    x0 = torch.randn(2, 1, 16, 16, generator=generator).double()
    y = x0 + 0.2 * torch.randn(2, 1, 16, 16, generator=generator).double()  # the residual stays inside the clip range

    def oracle(x_t, conditioning, t):
        a = alpha_bar[t].view(-1, 1, 1, 1).double()
        return (x_t - a.sqrt() * (x0 - conditioning)) / (1 - a).sqrt()

    out = schedule.sample(oracle, y, steps=5, eta=0.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x0, atol=1e-5, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: PyTorch sees none here")
def test_a_stochastic_ddim_sample_on_the_gpu_draws_the_cpu_seeds_noise():
    net = randomised(MSPSRNet(SR3Schedule(), TINY))
    y = torch.randn(2, 1, 32, 32)
    on_cpu = net.schedule.sample(net, y, steps=5, eta=0.5, generator=torch.Generator().manual_seed(3))
    net.to("cuda")
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):  # full float32 convolutions, as on the CPU
        on_gpu = net.schedule.sample(net, y.to("cuda"), steps=5, eta=0.5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=2e-3, rtol=0)


def test_stream_operator_maps_hr_onto_its_conditioning(monkeypatch):
    noiseless = training_data.draw_degradation
    monkeypatch.setattr(training_data, "draw_degradation", lambda *a, **k: dataclasses.replace(noiseless(*a, **k), noise=0.0))
    stream = SlicePairStream(natural_image_sources(), patch_size=64, seed=1, with_operator=True)
    for pair in itertools.islice(iter(stream), 6):
        assert pair["hr"].min() >= -1 and pair["hr"].max() <= 1
        projected = pair["operator_rows"] @ pair["hr"][0] @ pair["operator_columns"].T
        assert float((projected - pair["conditioning"][0])[12:-12, 12:-12].abs().max()) < 0.05


@pytest.fixture
def tiny_models(tmp_path, monkeypatch):
    monkeypatch.setenv("MRISR_MODELS_DIR", str(tmp_path / "models"))
    net = randomised(MSPSRNet(SR3Schedule(), TINY, control=True))
    export_model("tiny-msp", net.checkpoint(), {"method": "msp-sr"}, tmp_path / "models")
    return tmp_path


def test_method_samples_give_mean_and_variance_on_the_target_grid(tiny_models):
    volume = make_volume(shape=(12, 10, 6), spacing=(1.0, 1.0, 3.0))
    options = JobOptions(method="msp-sr", method_options={"model": "tiny-msp", "steps": 3}, scale=(1, 1, 2), samples=2, device="cpu")
    outputs = process(volume, options)
    assert outputs.sr.grid.matches(target_grid(volume.grid, scale=(1, 1, 2)), tolerance_mm=1e-9)
    assert np.isfinite(outputs.sr.array).all() and outputs.variance is not None and outputs.variance.array.max() > 0


def test_finetune_writes_a_verified_model_that_run_can_select(tiny_models, capsys):
    scan = tiny_models / "site_scan.nii.gz"
    write_volume(make_volume(shape=(40, 36, 34), spacing=(1.0, 1.0, 1.0)), scan)
    assert mrisr(["finetune", "msp-sr", "--hr", str(scan), "--out", "../escape", "--from", "tiny-msp"]) == 2
    assert mrisr(["finetune", "msp-sr", "--hr", str(scan), "--out", "site", "--from", "absent-model"]) == 3
    assert mrisr(["finetune", "msp-sr", "--hr", str(scan), "--out", "site", "--from", "tiny-msp", "--factors", "1,4"]) == 2
    assert mrisr(["finetune", "msp-sr", "--hr", str(scan), "--out", "site", "--from", "tiny-msp", "--in-plane-share", "1.5"]) == 2
    assert not (tiny_models / "models" / "site.pt").exists()
    protocol = ["--factors", "4", "--in-plane-share", "0"]  # the site's protocol: x4 thick slices only
    finetune = ["finetune", "msp-sr", "--hr", str(scan), "--out", "site", "--from", "tiny-msp", "--minutes", "0.02", "--threads", "1", *protocol]
    assert mrisr(finetune) == 0
    first_steps = verified_model("site")[1]["training"]["steps"]
    assert mrisr(finetune) == 0  # the same command again resumes the run, on the start model's network
    _, card = verified_model("site")
    assert card["training"]["steps"] > first_steps
    assert "100% thick slices, 0% in-plane; factors 4;" in card["degradations"]
    assert card["stage"] == "target" and card["started_from"] == "tiny-msp" and card["started_from_sha256"] == verified_model("tiny-msp")[1]["sha256"] and card["network"]["channels"] == [8, 16]
    before, _ = torch.load(tiny_models / "models" / "tiny-msp.pt"), None
    after = torch.load(tiny_models / "models" / "site.pt")
    changed = [k for k in after["state_dict"] if not torch.equal(after["state_dict"][k], before["state_dict"][k])]
    assert changed and all(k.startswith("control.") for k in changed)  # only the ControlNet branch was fine-tuned
    out = tiny_models / "out"
    assert mrisr(["run", str(scan), "--method", "msp-sr", "--opt", "model=site", "--opt", "steps=2", "--scale", "1,1,2", "--out", str(out)]) == 0
    assert (out / "site_scan_sr.nii.gz").exists()


def test_replay_mixes_the_in_domain_data_into_the_target_stage(tiny_models, monkeypatch):
    target, rehearsed = [("scan a", 0.5), ("scan b", 0.5)], [("synthetic", 0.5), ("stroke", 0.5)]
    assert with_replay(target, rehearsed, 0.25) == [("scan a", 0.375), ("scan b", 0.375), ("synthetic", 0.125), ("stroke", 0.125)]
    scan = tiny_models / "site_scan.nii.gz"
    write_volume(make_volume(shape=(40, 36, 34), spacing=(1.0, 1.0, 1.0)), scan)
    phantom = make_volume(shape=(40, 36, 34), spacing=(1.0, 1.0, 1.0)).array / 50.0 - 1.0
    asked = []
    monkeypatch.setattr(msp_sr, "default_sources", lambda data, scans, mix: asked.append(scans) or [(lambda rng: phantom, 1.0)])
    common = ["--stage", "target", "--hr", str(scan), "--start-from", "tiny-msp", "--data", str(tiny_models), "--minutes", "0.02",
              "--threads", "1", "--export", "--models-dir", str(tiny_models / "models"), "--export-name", "site-replay", "--run-dir", str(tiny_models / "run")]  # fmt: skip
    with pytest.raises(SystemExit):
        msp_sr.main([*common, "--replay", "1"])
    assert msp_sr.main([*common, "--replay", "0.5"]) == 0
    assert asked == [msp_sr.IN_DOMAIN_SCANS]  # the in-domain stage's own data, chris_t1 still kept out
    _, card = verified_model("site-replay")
    assert card["data"].endswith("Mixed with 50% in-domain pairs (replay).")
