"""Training commands: they run, resume where they stopped, and export verified weights with a card."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import smooth_phantom
from inference_backend.assets import sha256_of
from inference_backend.data import training_data
from inference_backend.data.synth import augment_real
from inference_backend.training import res_srdiff, srmri


def toy_sources(data_dir, *_, **__):
    """A phantom head instead of the development data: the same code path, seconds instead of minutes."""
    volume = smooth_phantom((36, 36, 36)) / 100 - 1
    return [(lambda rng: augment_real(volume, rng), 1.0)]


@pytest.mark.parametrize("module", [res_srdiff, srmri], ids=["res-srdiff", "srmri"])
def test_training_runs_resumes_and_exports(tmp_path, monkeypatch, module):
    monkeypatch.setattr(training_data, "default_sources", toy_sources)
    monkeypatch.setattr(module, "default_sources", toy_sources)
    common = ["--data", str(tmp_path), "--run-dir", str(tmp_path / "run"), "--channels", "8,16", "--batch", "2",
              "--patch", "32", "--val-every", "3", "--minutes", "0.01"]  # fmt: skip
    assert module.main(common) == 0
    first = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert module.main([*common, "--export", "--models-dir", str(tmp_path / "models")]) == 0
    second = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert second["step"] > first["step"] and len(second["history"]) == 2
    name = module.MODEL_NAME
    card = json.loads((tmp_path / "models" / f"{name}.json").read_text())
    assert card["sha256"] == sha256_of(tmp_path / "models" / f"{name}.pt")
    assert card["training"]["steps"] == second["step"] and card["network"]["channels"] == [8, 16]
    assert {"data", "loss", "validation", "schedule"} <= set(card)
    assert all(np.isfinite(v) for k, v in card["validation"].items() if k != "note")


def test_a_device_that_is_not_there_stops_training_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(training_data, "default_sources", toy_sources)
    monkeypatch.setattr(res_srdiff, "default_sources", toy_sources)
    with pytest.raises(SystemExit, match="cuda:99"):
        res_srdiff.main(["--data", str(tmp_path), "--run-dir", str(tmp_path / "run"), "--channels", "8,16", "--minutes", "0.01", "--device", "cuda:99"])
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: PyTorch sees none here")
def test_training_on_a_gpu_resumes_on_either_device_and_exports_weights_a_cpu_loads(tmp_path, monkeypatch):
    monkeypatch.setattr(training_data, "default_sources", toy_sources)
    monkeypatch.setattr(res_srdiff, "default_sources", toy_sources)
    common = ["--data", str(tmp_path), "--run-dir", str(tmp_path / "run"), "--channels", "8,16", "--batch", "2", "--patch", "32",
              "--val-every", "3", "--minutes", "0.01"]  # fmt: skip
    assert res_srdiff.main([*common, "--device", "cuda", "--export", "--models-dir", str(tmp_path / "models")]) == 0
    steps = [torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"]]
    for device in ("cuda", "cpu"):  # resumed on the GPU, then on the CPU
        assert res_srdiff.main([*common, "--device", device]) == 0
        state = torch.load(tmp_path / "run" / "checkpoint.pt", map_location="cpu", weights_only=True)
        steps.append(state["step"])
    assert steps[0] < steps[1] < steps[2] and len(state["history"]) == 3
    weights = torch.load(tmp_path / "models" / "res-srdiff.pt", weights_only=True)
    assert all(value.device.type == "cpu" for value in weights["state_dict"].values())
    assert "CUDA" in json.loads((tmp_path / "models" / "res-srdiff.json").read_text())["training"]["hardware"]


def test_a_new_run_can_start_from_an_exported_model(tmp_path, monkeypatch):
    monkeypatch.setattr(training_data, "default_sources", toy_sources)
    monkeypatch.setattr(res_srdiff, "default_sources", toy_sources)
    monkeypatch.setenv("MRISR_MODELS_DIR", str(tmp_path / "models"))
    common = ["--data", str(tmp_path), "--channels", "8,16", "--batch", "2", "--patch", "32", "--val-every", "3", "--minutes", "0.01"]
    assert res_srdiff.main([*common, "--run-dir", str(tmp_path / "a"), "--export", "--models-dir", str(tmp_path / "models")]) == 0
    exported = json.loads((tmp_path / "models" / "res-srdiff.json").read_text())
    assert res_srdiff.main([*common, "--run-dir", str(tmp_path / "b"), "--init-from", "res-srdiff"]) == 0
    state = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert state["step"] > exported["training"]["steps"] and len(state["history"]) == 2
    assert res_srdiff.main([*common, "--run-dir", str(tmp_path / "c"), "--init-from", "res-srdiff", "--context", "1"]) == 0
    widened = torch.load(tmp_path / "c" / "checkpoint.pt", weights_only=True)
    assert widened["model"]["unet.stem.1.weight"].shape[1] == 4 * (2 + 2)  # x_t, y and one slice either side
    assert np.isfinite(widened["metrics"]["val_psnr_mean"])


def test_a_widened_network_starts_exactly_as_the_one_it_comes_from():
    """A 2.5D Res-SRDiff initialised from a 2D one: the new (neighbour) inputs start at zero weight."""
    from inference_backend.methods.res_srdiff.method import ResSRDiffNet
    from inference_backend.schedulers.residual_shift import ResidualShiftSchedule
    from inference_backend.training.common import widen_inputs

    torch.manual_seed(0)
    flat = ResSRDiffNet(ResidualShiftSchedule(), {"channels": (8, 16)})
    with torch.no_grad():
        flat.unet.head[2].weight.normal_(0, 0.1)
    wide = ResSRDiffNet(ResidualShiftSchedule(), {"in_channels": 6, "channels": (8, 16)})
    wide.load_state_dict(widen_inputs(flat.state_dict(), wide.state_dict()))
    x, y, index = torch.randn(2, 1, 16, 16), torch.randn(2, 1, 16, 16), torch.tensor([0, 3])
    assert wide.context == 2 and flat.context == 0
    torch.testing.assert_close(wide(x, y, index, torch.randn(2, 4, 16, 16)), flat(x, y, index))
    with torch.no_grad():
        wide.unet.stem[1].weight[:, 8:].normal_(0, 0.1)
    assert not torch.allclose(wide(x, y, index, torch.randn(2, 4, 16, 16)), wide(x, y, index))  # neighbours now count
    torch.testing.assert_close(wide(x, y, index), wide(x, y, index, y.repeat(1, 4, 1, 1)))  # none given: y repeated


def loss_cases() -> dict:
    """(tiny network, its loss, a batch) of every method's training."""
    from inference_backend.methods.msp_sr.method import MSPSRNet
    from inference_backend.methods.res_srdiff.method import ResSRDiffNet, residual_shift_loss
    from inference_backend.methods.srmri.method import ScoreNet
    from inference_backend.networks.autoencoder import PriorAutoencoder
    from inference_backend.schedulers.residual_shift import ResidualShiftSchedule
    from inference_backend.schedulers.score_sde import VESchedule
    from inference_backend.schedulers.sr3 import SR3Schedule
    from inference_backend.training.inverse_sr import autoencoder_loss
    from inference_backend.training.msp_sr import msp_sr_loss
    from inference_backend.training.srmri import score_matching_loss

    unet = {"out_channels": 1, "channels": (8, 16), "blocks_per_level": 1}
    pair = {"hr": torch.rand(2, 1, 32, 32), "conditioning": torch.rand(2, 1, 32, 32)}
    operators = {"operator_rows": torch.eye(32).repeat(2, 1, 1), "operator_columns": torch.eye(32).repeat(2, 1, 1)}
    return {
        "res-srdiff": (ResSRDiffNet(ResidualShiftSchedule(), {**unet, "in_channels": 2}), residual_shift_loss, pair),
        "msp-sr": (MSPSRNet(SR3Schedule(), {**unet, "in_channels": 2}, control=True), msp_sr_loss, pair | operators),
        "srmri": (ScoreNet(VESchedule(), {**unet, "in_channels": 1}), score_matching_loss, {"hr": pair["hr"]}),
        "inverse-sr": (PriorAutoencoder({"channels": [8, 8], "latent_channels": 2}), autoencoder_loss, {"hr": torch.rand(1, 1, 16, 16, 16)}),
    }


@pytest.mark.parametrize("method", ["res-srdiff", "msp-sr", "srmri", "inverse-sr"])
def test_every_training_loss_is_computed_where_its_batch_is(method):
    """The meta device stands in for a GPU: a tensor the loss made on the CPU would meet the
    batch's and stop it."""
    model, loss, batch = loss_cases()[method]
    value = loss(model.to("meta"), {key: tensor.to("meta") for key, tensor in batch.items()})
    assert value.device.type == "meta" and value.ndim == 0
