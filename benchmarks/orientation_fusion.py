"""Is anything left in how Res-SRDiff combines its two slice orientations, or in its spectrum?

    .venv/bin/python benchmarks/orientation_fusion.py

Thick axial slices (x4 through-plane) are restored twice, on sagittal and on coronal slices;
the slice engine averages the two. Each orientation sees one in-plane axis at full resolution,
so a fusion that trusts each where it sees best (a weight per Fourier wedge: angle between kx
and ky, and a kz band) might beat the plain mean. The weights are fitted (least squares on the
brain-masked error spectra) on the tuning scans (chris_t1, spm152) and applied unchanged to the
evaluation volumes (seg3D_MR, MNI152). A second check: the best linear gain per kz band, fitted
on each volume against its own reference (an oracle, the upper bound of any spectral
sharpening or smoothing of the result). Brain-mask PSNR throughout, default options, one sample.
Writes benchmarks/results/studies/orientation_fusion/results.{json,md} and weights.png.
"""
from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np

import inference_backend.methods.slicing as slicing
from inference_backend.data.datasets import (
    SOURCE_CHECKOUT,
    load_mni152,
    load_mni152_brain_mask,
    shared_data_dir,
)
from inference_backend.evaluation.atlas import atlas_brain_mask
from inference_backend.evaluation.cases import through_plane_case
from inference_backend.evaluation.metrics import psnr
from inference_backend.evaluation.report import write_results
from inference_backend.imaging.io import read_volume
from inference_backend.imaging.normalization import IntensityNormalizer
from inference_backend.job import JobOptions
from inference_backend.pipeline import process

TUNING = ("chris_t1", "spm152")
EVALUATION = ("seg3D_MR", "mni152")
ANGLE_BINS, KZ_BINS, GAIN_BINS = 12, 4, 16


def restore_both_orientations(name: str) -> dict[str, np.ndarray]:
    """Reference, brain mask, and Res-SRDiff's sagittal and coronal results (scan intensities)."""
    if name == "mni152":
        volume, brain = load_mni152(), load_mni152_brain_mask()
    else:
        volume = read_volume(shared_data_dir() / "real" / f"{name}.nii.gz")
        volume = volume.with_array(volume.array.astype(np.float32))
        brain = atlas_brain_mask(volume)
    case = through_plane_case(name, volume, factor=4, axis=2)
    orientations: list[np.ndarray] = []

    def recording(*args: object) -> np.ndarray:
        orientations.append(original(*args))
        return orientations[-1]

    original = slicing.from_slices
    with mock.patch.object(slicing, "from_slices", recording):
        outputs = process(case.degraded, JobOptions(method="res-srdiff", scale=tuple(float(f) for f in case.factors), device="cpu"))
    normalizer = IntensityNormalizer.fit(case.degraded.array)  # what the method fitted on its input
    sagittal, coronal = (normalizer.inverse(o) for o in orientations)
    assert np.allclose((sagittal + coronal) / 2, outputs.sr.array, atol=1e-3 * float(np.ptp(outputs.sr.array)))
    reference = case.reference.array
    return {"sagittal": sagittal, "coronal": coronal, "reference": reference, "brain": brain[tuple(slice(0, n) for n in reference.shape)]}


def wedge_bins(shape: tuple[int, ...]) -> np.ndarray:
    """Per 3D frequency: its bin of angle atan(|ky| / |kx|) and of |kz|."""
    kx, ky, kz = np.meshgrid(*(np.abs(np.fft.fftfreq(n)) for n in shape), indexing="ij")
    angle = np.minimum((np.arctan2(ky, kx) / (np.pi / 2) * ANGLE_BINS).astype(int), ANGLE_BINS - 1)
    band = np.minimum((kz / 0.5 * KZ_BINS).astype(int), KZ_BINS - 1)
    return angle * KZ_BINS + band


def wedge_normal_equations(run: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Numerator and denominator of the least-squares weight w of the sagittal result per wedge:
    the fused spectrum is C + w (S - C), the error E_C + w (E_S - E_C)."""
    window = run["brain"].astype(np.float64)
    error_s = np.fft.fftn((run["sagittal"] - run["reference"]) * window)
    error_c = np.fft.fftn((run["coronal"] - run["reference"]) * window)
    difference = error_s - error_c
    bins = wedge_bins(window.shape).ravel()
    numerator = np.bincount(bins, -(np.conj(difference) * error_c).real.ravel(), ANGLE_BINS * KZ_BINS)
    denominator = np.bincount(bins, (np.abs(difference) ** 2).ravel(), ANGLE_BINS * KZ_BINS)
    return numerator, denominator


def wedge_fused(run: dict[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
    sagittal, coronal = np.fft.fftn(run["sagittal"]), np.fft.fftn(run["coronal"])
    return np.fft.ifftn(coronal + weights[wedge_bins(run["reference"].shape)] * (sagittal - coronal)).real


def oracle_kz_gains(estimate: np.ndarray, run: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The least-squares gain per kz band of ``estimate`` against the reference (brain window),
    and the estimate with those gains applied."""
    window = run["brain"].astype(np.float64)
    spectrum, target = np.fft.fft(estimate * window, axis=2), np.fft.fft(run["reference"] * window, axis=2)
    band = np.minimum((np.abs(np.fft.fftfreq(estimate.shape[2])) / 0.5 * GAIN_BINS).astype(int), GAIN_BINS - 1)
    gains = np.array([
        (np.conj(spectrum[..., band == b]) * target[..., band == b]).real.sum() / (np.abs(spectrum[..., band == b]) ** 2).sum()
        for b in range(GAIN_BINS)
    ])
    return gains, np.fft.ifft(np.fft.fft(estimate, axis=2) * gains[band], axis=2).real


def main() -> None:
    if shared_data_dir() is None:
        raise SystemExit("needs the development data (../shared/data): the tuning scans")
    runs = {name: restore_both_orientations(name) for name in TUNING + EVALUATION}
    numerator, denominator = (sum(parts) for parts in zip(*(wedge_normal_equations(runs[name]) for name in TUNING)))
    weights = np.clip(numerator / np.maximum(denominator, 1e-12), 0.0, 1.0)
    rows, gains_per_volume = [], {}
    for name, run in runs.items():
        mean = (run["sagittal"] + run["coronal"]) / 2
        gains, sharpened = oracle_kz_gains(mean, run)
        gains_per_volume[name] = gains
        score = lambda estimate, run=run: round(psnr(run["reference"], estimate, run["brain"]), 3)  # noqa: E731
        rows.append({
            "volume": name,
            "role": "tuning" if name in TUNING else "evaluation",
            "sagittal": score(run["sagittal"]),
            "coronal": score(run["coronal"]),
            "mean (default)": score(mean),
            "wedge fusion": score(wedge_fused(run, weights)),
            "oracle kz gains": score(sharpened),
        })
    out = SOURCE_CHECKOUT / "benchmarks" / "results" / "studies" / "orientation_fusion"
    extra = {
        "wedge_weights_sagittal": np.round(weights.reshape(ANGLE_BINS, KZ_BINS), 3).tolist(),
        "oracle_kz_gains": {name: np.round(g, 3).tolist() for name, g in gains_per_volume.items()},
    }
    markdown = write_results(
        out,
        "Res-SRDiff: fusing the two slice orientations, and spectral gains (through-plane x4)",
        "Brain-mask PSNR (dB), default options, one sample. Wedge weights fitted on the tuning scans only; "
        "the oracle kz gains are fitted on each volume against its own reference (an upper bound).",
        rows,
        extra,
        ["![weights](weights.png)", "", "Reproduce: `.venv/bin/python benchmarks/orientation_fusion.py`."],
    )
    save_weights_figure(out / "weights.png", weights, gains_per_volume)
    print(markdown)


def save_weights_figure(path: Path, weights: np.ndarray, gains: dict[str, np.ndarray]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    shown = left.imshow(weights.reshape(ANGLE_BINS, KZ_BINS), vmin=0, vmax=1, cmap="coolwarm", aspect="auto", origin="lower")
    left.set(title="weight of the sagittal result", xlabel="|kz| band (low to high)", ylabel="angle bin (kx to ky)")
    figure.colorbar(shown, ax=left)
    centres = (np.arange(GAIN_BINS) + 0.5) / GAIN_BINS * 0.5
    for name, values in gains.items():
        right.plot(centres, values, marker="o", label=name)
    right.axhline(1.0, color="gray", lw=0.8)
    right.set(title="oracle gain per kz band", xlabel="|kz| (cycles / voxel)", ylabel="gain")
    right.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    main()
