"""What every training script shares: EMA weights, a time budget, resumable checkpoints,
JSON-lines logs, and the export of the bundled weights with their model card."""
from __future__ import annotations

import argparse
import copy
import datetime
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from inference_backend.assets import BUNDLED_DIR, first_line
from inference_backend.data import training_data
from inference_backend.data.datasets import shared_data_dir
from inference_backend.devices import resolve_device
from inference_backend.errors import AssetError, MRISRError


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
        trained = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
        for (name, ema), current in zip(self.model.state_dict().items(), model.state_dict().values()):
            if name in trained:
                ema.mul_(decay).add_(current.detach(), alpha=1 - decay)
            else:  # frozen weights and buffers: copied, so a frozen base stays bit-exact
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
        try:  # tensors and plain types only: a planted file's pickle must not run
            state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any unpickling failure: not a checkpoint this run wrote
            raise AssetError(
                f"{self.checkpoint_path}: not a checkpoint of plain tensors ({first_line(error)}); it is not loaded: "
                "delete it to start the run anew"
            ) from None
        self.previous_seconds = state.get("wall_seconds", 0.0)
        return state


def hardware_description(device: str = "cpu") -> str:
    cpu = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}); {cpu}" if device.startswith("cuda") else cpu


def half_precision(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint with every floating-point tensor stored as float16: half the bytes, loaded
    into the float32 network as before (benchmarks/results/studies/half-precision: the scores do
    not move)."""
    return {
        key: half_precision(value) if isinstance(value, dict) else (value.half() if torch.is_tensor(value) and value.is_floating_point() else value)
        for key, value in checkpoint.items()
    }


def export_model(name: str, checkpoint: dict[str, Any], card: dict[str, Any], directory: Path = BUNDLED_DIR) -> Path:
    """Write ``NAME.pt`` (in half precision) and its card ``NAME.json`` (with the SHA-256 of the weights)."""
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"{name}.pt"
    torch.save(half_precision(checkpoint), weights)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    card = {
        "name": name,
        **card,
        "weights_file": weights.name,
        "precision": "float16 (loaded into float32)",
        "sha256": digest,
        "size_mb": round(weights.stat().st_size / 2**20, 2),
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    (directory / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    return weights


def parse_factors(text: str) -> tuple[int, ...]:
    """``"4"`` or ``"2,3,4"`` -> integer factors of at least 2 (an argparse type)."""
    try:
        factors = tuple(int(f) for f in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: factors are whole numbers, e.g. 4 or 2,3,4") from None
    if not factors or min(factors) < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: every factor is at least 2")
    return factors


def parse_share(text: str) -> float:
    """A fraction from 0 to 1 (an argparse type)."""
    try:
        share = float(text)
    except ValueError:
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: a fraction from 0 to 1")
    return share


def training_parser(description: str, name: str, lr: float) -> argparse.ArgumentParser:
    """The arguments every training command shares."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="the development data folder")
    parser.add_argument("--run-dir", type=Path, default=Path("runs") / name)
    parser.add_argument("--minutes", type=float, default=60.0, help="time budget of this session (runs resume)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--channels", default="32,64,128,256")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the training step")
    parser.add_argument("--device", default="cpu", help="where the network trains: cpu, cuda or cuda:N (the data engine runs on the CPU)")
    parser.add_argument("--workers", type=int, default=1, help="data-engine processes, each drawing its own seeded pairs (0: in the training process)")
    parser.add_argument("--in-plane-share", type=parse_share, default=0.3, help="fraction of in-plane (both axes) degradations")
    parser.add_argument(
        "--factors", type=parse_factors, default=training_data.DEFAULT_FACTORS, help="down-sampling factors drawn for the pairs, e.g. 4 or 2,3,4,5,6"
    )
    mix = training_data.DataMix()
    parser.add_argument("--synthetic-share", type=parse_share, default=mix.synthetic_share, help="share of synthetic label-map brains (the rest: real scans)")
    parser.add_argument(
        "--random-contrast-share", type=parse_share, default=mix.random_contrast_share, help="share of synthetic brains of uniformly random contrast"
    )
    parser.add_argument(
        "--clinical-share", type=parse_share, default=mix.clinical_share,
        help="share of acquired in-plane slices of the training patients' real clinical scans (data/clinical.py)",
    )
    parser.add_argument("--val-every", type=int, default=500)
    parser.add_argument("--export", action="store_true", help="export the EMA weights as the bundled model")
    parser.add_argument("--models-dir", type=Path, default=BUNDLED_DIR, help="where --export writes NAME.pt and NAME.json")
    parser.add_argument("--export-name", help="the exported model's name (default: the method's)")
    parser.add_argument(
        "--init-from", help="start a new run from an installed model's weights (e.g. the bundled one), not from scratch"
    )
    return parser


def data_mix(args: argparse.Namespace) -> training_data.DataMix:
    return training_data.DataMix(args.synthetic_share, args.random_contrast_share, args.clinical_share)


def widen_inputs(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` fitted to ``target``'s shapes where a convolution has more input channels there
    (new inputs appended, e.g. a 2.5D network's neighbouring slices): the new weights are zero,
    so the widened network starts exactly as the trained one."""
    widened = dict(state)
    for name, weights in state.items():
        wanted = target[name].shape
        if weights.ndim == 4 and weights.shape != wanted and weights.shape[0] == wanted[0] and weights.shape[2:] == wanted[2:]:
            widened[name] = torch.cat([weights, weights.new_zeros(wanted[0], wanted[1] - weights.shape[1], *wanted[2:])], dim=1)
    return widened


@dataclass
class TrainingRecipe:
    """What differs between models: the network, its loss on a batch, validation, the card."""

    name: str
    model: nn.Module  # has .checkpoint() -> dict
    loss: Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor]
    validate: Callable[[nn.Module], dict[str, float]]
    card: dict[str, Any]
    hr_only: bool = False  # an unconditional prior: the stream skips the degradation
    with_operator: bool = False  # the loss needs each pair's projection A (consistency losses)
    sources: list | None = None  # the training images ((source, weight) pairs); default: the development data
    make_stream: Callable[[list, int], torch.utils.data.IterableDataset] | None = None  # (sources, seed); default: 2D pairs
    stream_options: dict[str, Any] = field(default_factory=dict)  # more options of the default stream (a 2.5D network's context)


@dataclass
class TrainingState:
    """Where a run stands: the model, its EMA and optimizer, the step and the sessions so far."""

    model: nn.Module
    ema: ExponentialMovingAverage
    optimizer: torch.optim.Optimizer
    run: TrainingRun
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def script_command(name: str, argv: list[str] | None) -> str:
    """The command that reproduces a training script's session (for the model card)."""
    return f"python -m inference_backend.training.{name.replace('-', '_')} " + " ".join(sys.argv[1:] if argv is None else argv)


def train(recipe: TrainingRecipe, args: argparse.Namespace, command: str) -> int:
    """Seeded, time-budgeted, resumable training on the data engine; EMA weights validated and,
    with ``--export``, exported with their card. ``command`` reproduces this session."""
    if recipe.sources is None and args.data is None:
        raise SystemExit("no --data folder (../shared/data is absent)")
    if args.workers < 0:
        raise SystemExit("--workers: a number of processes, 0 or more")
    try:
        args.device = resolve_device(args.device)
    except MRISRError as error:
        raise SystemExit(str(error)) from None
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    recipe.model.to(args.device)
    state = resume(recipe, args)
    state.history.append({"from_step": state.step, "lr": args.lr, "minutes": args.minutes, "command": command})
    training_loop(recipe, args, state)
    if args.export:
        print(f"exported {export(recipe, args, state)}")
    return 0


def resume(recipe: TrainingRecipe, args: argparse.Namespace) -> TrainingState:
    """The run's last checkpoint, else an installed model's weights (``--init-from``), else new."""
    model = recipe.model
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.0)
    state = TrainingState(model, ExponentialMovingAverage(model), optimizer, TrainingRun(args.run_dir, args.minutes))
    saved = state.run.load()
    if saved is not None:
        model.load_state_dict(saved["model"])
        state.ema.model.load_state_dict(saved["ema"])
        optimizer.load_state_dict(saved["optimizer"])
        state.step, state.history = saved["step"], saved.get("history", [])
        print(f"resumed at step {state.step} ({state.run.previous_seconds / 60:.1f} min trained)", flush=True)
    elif args.init_from:
        from inference_backend.assets import load_checkpoint

        checkpoint, card = load_checkpoint(args.init_from)
        widened = widen_inputs(checkpoint["state_dict"], model.state_dict())
        model.load_state_dict(widened)
        state.ema.model.load_state_dict(widened)
        state.step = card.get("training", {}).get("steps", 0)
        state.history = card.get("training", {}).get("sessions", [])
        state.run.previous_seconds = 60 * card.get("training", {}).get("wall_time_min", 0.0)
        print(f"initialised from model {args.init_from!r} (step {state.step}; optimizer state starts fresh)", flush=True)
    return state


def pair_loader(recipe: TrainingRecipe, args: argparse.Namespace, step: int) -> torch.utils.data.DataLoader:
    """Batches of the recipe's training pairs, seeded by the step the run resumes at."""
    sources = recipe.sources if recipe.sources is not None else training_data.default_sources(args.data, mix=data_mix(args))
    if recipe.make_stream is not None:
        stream = recipe.make_stream(sources, args.seed * 7919 + step)
    else:
        stream = training_data.SlicePairStream(
            sources,
            patch_size=args.patch,
            seed=args.seed * 7919 + step,
            in_plane_share=args.in_plane_share,
            factors=args.factors,
            hr_only=recipe.hr_only,
            with_operator=recipe.with_operator,
            **recipe.stream_options,
        )
    return torch.utils.data.DataLoader(
        stream,
        batch_size=args.batch,
        num_workers=args.workers,
        worker_init_fn=lambda _: torch.set_num_threads(1),
        persistent_workers=args.workers > 0,
        pin_memory=args.device.startswith("cuda"),
    )


def on_cpu(model: nn.Module) -> nn.Module:
    """``model`` itself on the CPU, else a CPU copy: validation data and exported weights live there."""
    return model if next(model.parameters()).device.type == "cpu" else copy.deepcopy(model).cpu()


def training_loop(recipe: TrainingRecipe, args: argparse.Namespace, state: TrainingState) -> None:
    """Steps until the time budget ends; validated and checkpointed every ``--val-every`` steps and at the end."""
    model, ema, optimizer, run = state.model, state.ema, state.optimizer, state.run
    losses: list[float] = []
    model.train()
    budget = round(args.minutes * 60)
    bar = tqdm(total=budget, unit="s", desc=f"training {args.export_name or recipe.name}", bar_format="{l_bar}{bar}| {n}/{total} s {postfix}")
    session_start = time.monotonic()
    for batch in pair_loader(recipe, args, state.step):
        loss = recipe.loss(model, {key: value.to(args.device, non_blocking=True) for key, value in batch.items()})
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (state.step + 1) / args.warmup)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        ema.update(model, state.step)
        losses.append(loss.item())
        bar.n = min(budget, round(time.monotonic() - session_start))
        bar.set_postfix(step=state.step + 1, loss=f"{losses[-1]:.4f}", refresh=False)
        bar.refresh()
        state.step += 1
        if state.step % 100 == 0:
            run.log({"step": state.step, "loss": round(sum(losses) / len(losses), 6)})
            losses.clear()
        done = run.out_of_time()
        if state.step % args.val_every == 0 or done:
            state.metrics = recipe.validate(on_cpu(ema.model))
            run.log({"step": state.step, **state.metrics})
            bar.write(f"step {state.step}: {state.metrics} ({run.wall_seconds() / 60:.1f} min)")
            saved = {"model": model.state_dict(), "ema": ema.model.state_dict(), "optimizer": optimizer.state_dict()}
            run.save({**saved, "step": state.step, "metrics": state.metrics, "history": state.history})
        if done:
            break
    bar.close()


def export(recipe: TrainingRecipe, args: argparse.Namespace, state: TrainingState) -> Path:
    """The EMA weights and their model card (data, network, training sessions, validation)."""
    ema_model = on_cpu(state.ema.model)
    card = {
        **recipe.card,
        "network": {
            "type": ema_model.network_type,
            **ema_model.config,
            "parameters": sum(p.numel() for p in ema_model.parameters()),
            "trained_parameters": sum(p.numel() for p in state.model.parameters() if p.requires_grad),
        },
        "training": {
            "steps": state.step,
            "batch": args.batch,
            "patch": args.patch,
            "optimizer": f"AdamW, warm-up {args.warmup} steps, grad clip 1.0, EMA 0.999 (lr per session below)",
            "seed": args.seed,
            "wall_time_min": round(state.run.wall_seconds() / 60, 1),
            "hardware": hardware_description(args.device),
            "sessions": state.history,
        },
        "validation": {**state.metrics, **recipe.card.get("validation", {})},
    }
    return export_model(args.export_name or recipe.name, ema_model.checkpoint(), card, args.models_dir)
