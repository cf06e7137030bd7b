"""Model catalogue: listing cards, importing a user model with its checksum."""
from __future__ import annotations

import json

import pytest
import torch

from inference_backend.assets import import_model, list_models, verified_model
from inference_backend.errors import AssetError
from inference_backend.training.common import export_model


def test_import_verifies_and_lists_a_user_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MRISR_MODELS_DIR", str(tmp_path / "user"))
    export_model("my-model", {"weights": torch.zeros(3)}, {"method": "res-srdiff"}, tmp_path / "elsewhere")
    assert import_model(tmp_path / "elsewhere" / "my-model.pt") == "my-model"
    listed = {m["name"]: m for m in list_models()}
    assert listed["my-model"]["source"] == "user"
    weights, card = verified_model("my-model")
    assert weights.parent == tmp_path / "user" and card["method"] == "res-srdiff"


def test_import_refuses_tampered_or_cardless_models(tmp_path, monkeypatch):
    monkeypatch.setenv("MRISR_MODELS_DIR", str(tmp_path / "user"))
    export_model("bad", {"weights": torch.zeros(3)}, {}, tmp_path)
    (tmp_path / "bad.pt").write_bytes(b"not the exported weights")
    with pytest.raises(AssetError, match="SHA-256"):
        import_model(tmp_path / "bad.pt")
    (tmp_path / "lonely.pt").write_bytes(b"x")
    with pytest.raises(AssetError, match="card"):
        import_model(tmp_path / "lonely.pt")
    card = json.loads((tmp_path / "bad.json").read_text())
    assert len(card["sha256"]) == 64
