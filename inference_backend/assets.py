"""Bundled model weights: each ``NAME.pt`` comes with a card ``NAME.json`` holding its SHA-256.

Weights are verified before they are loaded, so a truncated or tampered file is refused with
a clear message instead of producing silent garbage. Nothing is ever downloaded. Extra
models (fine-tuned or imported by a user) live in ``$MRISR_MODELS_DIR`` (default
``~/.mrisr/models``) with the same layout.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from inference_backend.errors import AssetError

BUNDLED_DIR = Path(__file__).resolve().parent / "models"
T = TypeVar("T")


def user_models_dir() -> Path:
    return Path(os.environ.get("MRISR_MODELS_DIR", Path.home() / ".mrisr" / "models"))


def model_dirs() -> list[Path]:
    return [user_models_dir(), BUNDLED_DIR]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_model(name: str) -> tuple[Path, Path] | None:
    """(weights, card) of the first directory holding both, user models first. Half a model in
    the user folder (weights without their card, or the reverse) is refused: the user meant it,
    and the bundled model must not silently run in its place."""
    user = user_models_dir()
    present = [path for path in (user / f"{name}.pt", user / f"{name}.json") if path.is_file()]
    if len(present) == 1:
        missing = present[0].with_suffix(".json" if present[0].suffix == ".pt" else ".pt")
        raise AssetError(
            f"model {name!r}: {present[0]} has no {missing.name} beside it (the card holds the weights' SHA-256); "
            f"add it, or remove {present[0].name} to use the bundled model"
        )
    for directory in model_dirs():
        weights, card = directory / f"{name}.pt", directory / f"{name}.json"
        if weights.is_file() and card.is_file():
            return weights, card
    return None


def model_available(name: str) -> bool:
    """Whether the model can be used (half a model in the user folder cannot: running says why)."""
    try:
        return find_model(name) is not None
    except AssetError:
        return False


def read_card(card_path: Path) -> dict[str, Any]:
    try:
        card = json.loads(card_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise AssetError(f"model card {card_path} is unreadable: {error}") from error
    if not isinstance(card, dict) or "sha256" not in card:
        raise AssetError(f"model card {card_path} has no sha256 field")
    return card


def verified_model(name: str) -> tuple[Path, dict[str, Any]]:
    """Path of the weights and their card, after checking the SHA-256 of the weights."""
    found = find_model(name)
    if found is None:
        searched = ", ".join(str(d) for d in model_dirs())
        raise AssetError(
            f"model {name!r} is not installed (looked for {name}.pt and {name}.json in {searched}); "
            "reinstall the extension or train it with the command in its model card"
        )
    weights, card_path = found
    card = read_card(card_path)
    actual = sha256_of(weights)
    if actual != card["sha256"]:
        raise AssetError(
            f"model {name!r} failed its integrity check: {weights} has SHA-256 {actual[:12]}..., "
            f"its card expects {str(card['sha256'])[:12]}...; the file is damaged or was replaced"
        )
    return weights, card


_loaded: dict[tuple, tuple[dict[str, Any], dict[str, Any]]] = {}


def load_checkpoint(name: str, device: str = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
    """(checkpoint, card) of a verified model; tensors only (``weights_only``: no code runs).

    Kept for the life of the process while the file is unchanged (same path, size and
    modification time), so a process that runs many jobs (a batch worker) reads and verifies
    each model once. Callers build their networks from it and never change its tensors."""
    found = find_model(name)
    key = None
    if found is not None:
        key = (name, device, *((str(path), path.stat().st_size, path.stat().st_mtime_ns) for path in found))
        if key in _loaded:
            return _loaded[key]
    import torch

    weights, card = verified_model(name)
    try:
        checkpoint = torch.load(weights, map_location=device, weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means a bad file
        raise AssetError(f"model {name!r} ({weights}) could not be loaded as plain tensors: {first_line(error)}") from error
    if key is not None:
        _loaded[key] = (checkpoint, card)
    return checkpoint, card


def build_network(name: str, build: Callable[[dict[str, Any]], T]) -> tuple[T, dict[str, Any]]:
    """(the network ``build`` makes from the verified checkpoint of model ``name``, its card).
    Weights of another network (a card whose SHA-256 is right for the wrong file) are refused
    as an asset error, not left to fail inside the method."""
    checkpoint, card = load_checkpoint(name, "cpu")
    try:
        return build(checkpoint), card
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise AssetError(
            f"model {name!r} does not fit the method's network ({type(error).__name__}: {first_line(error)}); "
            "is it a model of another method?"
        ) from error


def first_line(error: BaseException) -> str:
    """An exception's first line (a library's messages can run over many)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def list_models() -> list[dict[str, Any]]:
    """Cards of every installed model (user models first), each with ``weights`` and ``source``."""
    models, seen = [], set()
    for directory, source in ((user_models_dir(), "user"), (BUNDLED_DIR, "bundled")):
        for card_path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
            name = card_path.stem
            weights = directory / f"{name}.pt"
            if name in seen or not weights.is_file():
                continue
            try:
                card = read_card(card_path)
            except AssetError:
                continue
            seen.add(name)
            models.append({**card, "name": name, "weights": str(weights), "source": source})
    return models


def import_model(weights: str | os.PathLike) -> str:
    """Copy a model (``NAME.pt`` with its card ``NAME.json`` beside it) into the user models
    folder after checking its SHA-256; returns its name."""
    import shutil

    weights = Path(weights)
    card_path = weights.with_suffix(".json")
    if weights.suffix != ".pt" or not weights.is_file():
        raise AssetError(f"{weights}: a model is a .pt file")
    if not card_path.is_file():
        raise AssetError(f"{weights}: its model card {card_path.name} is missing (it holds the SHA-256)")
    card = read_card(card_path)
    if sha256_of(weights) != card["sha256"]:
        raise AssetError(f"{weights}: the SHA-256 does not match its card; the file is damaged or was replaced")
    target = user_models_dir()
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, target / weights.name)
    shutil.copyfile(card_path, target / card_path.name)
    return weights.stem
