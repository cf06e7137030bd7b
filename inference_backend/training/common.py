"""What every training script shares: EMA weights, a time budget, resumable checkpoints,
JSON-lines logs, and the export of the bundled weights with their model card."""
from __future__ import annotations

import copy
import datetime
import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inference_backend.assets import BUNDLED_DIR


class ExponentialMovingAverage:
    """EMA of a model's parameters (the weights that are evaluated and shipped)."""

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))  # warm-up: early weights are not averaged in
        for ema, current in zip(self.model.state_dict().values(), model.state_dict().values()):
            if ema.dtype.is_floating_point:
                ema.mul_(decay).add_(current.detach(), alpha=1 - decay)
            else:
                ema.copy_(current)


class TrainingRun:
    """A run directory: ``checkpoint.pt`` (resume), ``log.jsonl`` (loss and validation)."""

    def __init__(self, directory: Path, budget_minutes: float) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.deadline = time.monotonic() + budget_minutes * 60
        self.started = time.monotonic()
        self.previous_seconds = 0.0

    @property
    def checkpoint_path(self) -> Path:
        return self.directory / "checkpoint.pt"

    def out_of_time(self) -> bool:
        return time.monotonic() >= self.deadline

    def wall_seconds(self) -> float:
        """Training time over all resumed sessions of this run."""
        return self.previous_seconds + time.monotonic() - self.started

    def log(self, record: dict[str, Any]) -> None:
        with open(self.directory / "log.jsonl", "a") as stream:
            stream.write(json.dumps({**record, "wall_s": round(self.wall_seconds(), 1)}) + "\n")

    def save(self, state: dict[str, Any]) -> None:
        temporary = self.checkpoint_path.with_suffix(".tmp")
        torch.save({**state, "wall_seconds": self.wall_seconds()}, temporary)
        os.replace(temporary, self.checkpoint_path)

    def load(self) -> dict[str, Any] | None:
        if not self.checkpoint_path.exists():
            return None
        state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        self.previous_seconds = state.get("wall_seconds", 0.0)
        return state


def hardware_description() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def export_model(name: str, checkpoint: dict[str, Any], card: dict[str, Any], directory: Path = BUNDLED_DIR) -> Path:
    """Write ``NAME.pt`` and its card ``NAME.json`` (with the SHA-256 of the weights)."""
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"{name}.pt"
    torch.save(checkpoint, weights)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    card = {
        "name": name,
        **card,
        "sha256": digest,
        "size_mb": round(weights.stat().st_size / 2**20, 2),
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    (directory / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    return weights
