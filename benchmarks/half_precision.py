"""Bundled weights in half precision: do the scores move?

    .venv/bin/python benchmarks/half_precision.py              # measure
    .venv/bin/python benchmarks/half_precision.py --convert    # then convert, citing that measurement

Every bundled model is stored as float16 (half the bytes) and loaded into the float32 network as
before. This runs each method on the held-out slab cases twice, with its float32 weights and
with their float16 rounding (a user model beside them), and compares the outputs and their
scores. ``--convert`` then writes the float16 weights in place of the bundled float32 ones and
updates their cards (SHA-256, size, the precision and the measurement it read).
Writes benchmarks/results/studies/half-precision/results.{json,md}.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from inference_backend.assets import BUNDLED_DIR, sha256_of
from inference_backend.data.datasets import SOURCE_CHECKOUT, shared_data_dir
from inference_backend.evaluation.benchmark import run_case, suite_cases
from inference_backend.evaluation.report import markdown_table, write_document
from inference_backend.training.common import half_precision

OUT = SOURCE_CHECKOUT / "benchmarks" / "results" / "studies" / "half-precision"
METHODS = {"res-srdiff": "through-plane-x4", "msp-sr": "through-plane-x4", "srmri": "through-plane-x4", "inverse-sr": "imputation-1of4"}


def half_model(name: str, folder: Path) -> str:
    """``<name>-fp16`` in ``folder``: the bundled model's weights in float16, with a card."""
    checkpoint = torch.load(BUNDLED_DIR / f"{name}.pt", map_location="cpu", weights_only=True)
    weights = folder / f"{name}-fp16.pt"
    torch.save(half_precision(checkpoint), weights)
    card = json.loads((BUNDLED_DIR / f"{name}.json").read_text())
    (folder / f"{name}-fp16.json").write_text(json.dumps({**card, "name": f"{name}-fp16", "sha256": sha256_of(weights)}))
    return f"{name}-fp16"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convert", action="store_true", help="write the float16 weights in place of the bundled ones, as measured")
    args = parser.parse_args()
    if args.convert:
        rows = json.loads((OUT / "results.json").read_text())["rows"]
        for method in METHODS:
            convert(method, next(row for row in rows if row["method"] == method))
        return
    if shared_data_dir() is None:
        raise SystemExit("needs the development data (../shared/data): the held-out slabs")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        os.environ["MRISR_MODELS_DIR"] = folder
        for method, kind in METHODS.items():
            name = half_model(method, Path(folder))
            suite = "imputation" if kind.startswith("imputation") else "slab"
            case = next(c for c in suite_cases(suite) if c.name.endswith(kind))
            full = run_case(case, method, {}, 1, "cpu")[0].sr.array
            half = run_case(case, method, {"model": name}, 1, "cpu")[0].sr.array
            span = float(np.ptp(case.reference.array[case.mask]))
            before, after = case.score(full), case.score(half)
            rows.append({"method": method, "case": case.name, "psnr_fp32": round(float(before["psnr"]), 3), "psnr_fp16": round(float(after["psnr"]), 3),
                         "ssim_fp32": round(before["ssim"], 5), "ssim_fp16": round(after["ssim"], 5),
                         "max_abs_difference_pct_of_range": round(100 * float(np.abs(full - half).max()) / span, 4)})  # fmt: skip
            print(rows[-1], flush=True)
    print(write_document(OUT, {"rows": rows}, document(rows)))


def document(rows: list[dict]) -> list[str]:
    return ["# Bundled weights in half precision", "", " ".join(__doc__.split("\n\n")[2].split()), "", *markdown_table(rows), "",
            "Reproduce: `.venv/bin/python benchmarks/half_precision.py`; `--convert` then rewrites the bundled weights."]  # fmt: skip


def convert(name: str, measured: dict) -> None:
    weights, card_path = BUNDLED_DIR / f"{name}.pt", BUNDLED_DIR / f"{name}.json"
    checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
    torch.save(half_precision(checkpoint), weights)
    card = json.loads(card_path.read_text())
    card.update({
        "sha256": sha256_of(weights), "size_mb": round(weights.stat().st_size / 2**20, 2), "precision": "float16 (loaded into float32)",
        "precision_check": f"{measured['case']}: PSNR {measured['psnr_fp32']} dB with the float32 weights, {measured['psnr_fp16']} dB with these "
                           f"(benchmarks/results/studies/half-precision, {datetime.date.today().isoformat()})",
    })  # fmt: skip
    card_path.write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    main()
