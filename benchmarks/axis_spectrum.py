"""How sharp each axis of a scan is: the share of its spectrum's power in the upper half of the
frequencies, per axis, on a central 64^3 cube. Self-supervised adaptation (Res-SRDiff's
``adapt_steps``) learns from the in-slice axes and restores the slice axis: it helps as far as
the axes look alike.

    .venv/bin/python benchmarks/axis_spectrum.py

Writes benchmarks/results/studies/axis_spectrum/results.{json,md}.
"""
from __future__ import annotations

import json

import numpy as np

from inference_backend.data.datasets import SOURCE_CHECKOUT, load_mni152, shared_data_dir
from inference_backend.imaging.io import read_volume

HALF_SIDE = 32


def upper_half_power_share(array: np.ndarray) -> list[float]:
    """Per axis: power at the upper half of the frequencies over all power but the mean's."""
    centre = [n // 2 for n in array.shape]
    cube = array[tuple(slice(c - HALF_SIDE, c + HALF_SIDE) for c in centre)].astype(np.float64)
    shares = []
    for axis in range(3):
        power = np.abs(np.fft.rfft(cube, axis=axis)) ** 2
        profile = np.moveaxis(power, axis, 0).reshape(power.shape[axis], -1).mean(1)
        shares.append(round(float(profile[len(profile) // 2 :].sum() / profile[1:].sum()), 4))
    return shares


def main() -> None:
    volumes = {"mni152": load_mni152()}
    data = shared_data_dir()
    if data is not None:
        volumes |= {name: read_volume(data / "real" / f"{name}.nii.gz") for name in ("seg3D_MR", "chris_t1", "spm152")}
    rows = [{"volume": name, "spacing_mm": [round(s, 4) for s in v.grid.spacing], "upper_half_power_share": upper_half_power_share(v.array)} for name, v in volumes.items()]
    out = SOURCE_CHECKOUT / "benchmarks" / "results" / "studies" / "axis_spectrum"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["# Sharpness per axis (share of spectral power in the upper half of the frequencies, central 64^3 cube)", "", "| volume | spacing (mm) | x | y | z |", "|---|---|---|---|---|"]
    lines += [f"| {r['volume']} | {' x '.join(map(str, r['spacing_mm']))} | " + " | ".join(map(str, r["upper_half_power_share"])) + " |" for r in rows]
    lines += ["", "The dev suite's thick slices are along z. Reproduce: `.venv/bin/python benchmarks/axis_spectrum.py`."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
