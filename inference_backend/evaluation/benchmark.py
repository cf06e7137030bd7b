"""``mrisr benchmark``: every method on every case of a suite, scored on the HR grid.

Writes ``results.json``, ``results.md`` and one PNG panel per case (LR input, each method,
reference; absolute error and, for stochastic methods, the variance below) under
``benchmarks/results/<suite>/``. Method wall time and peak resident memory (sampled) are
recorded beside the scores.
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from inference_backend.data.datasets import (
    load_mni152,
    load_mni152_brain_mask,
    shared_data_dir,
)
from inference_backend.errors import InputError
from inference_backend.evaluation.atlas import atlas_brain_mask
from inference_backend.evaluation.calibration import (
    coverage,
    gaussian_nll,
    reliability,
    reliability_diagram,
)
from inference_backend.evaluation.cases import (
    Case,
    in_plane_case,
    slice_masking_case,
    through_plane_case,
)
from inference_backend.evaluation.lesion_fidelity import erased_labels, lesion_scores
from inference_backend.evaluation.metrics import (
    interval_coverage,
    sample_nll,
    std_error_correlation,
)
from inference_backend.evaluation.panels import Tile, central_slice, save_panel
from inference_backend.evaluation.report import markdown_table
from inference_backend.imaging.io import read_volume
from inference_backend.imaging.uncertainty import sd_percent, tint_range
from inference_backend.imaging.volume import Volume
from inference_backend.job import JobOptions
from inference_backend.pipeline import JobOutputs, library_versions, process
from inference_backend.plan import plan_job
from inference_backend.progress import Progress
from inference_backend.registry import METHODS, parse_method_options

HELD_OUT_SCANS = ("seg3D_MR",)  # never used for training: evaluation only
TUNING_SCANS = ("chris_t1",)  # a training scan: where sampler options are chosen, so the held-out scan stays unseen
UNSEEN_TUNING_SCANS = ("spm152",)  # held out of training and of every evaluation: tuning what depends on an unseen scan
# Non-T1 development scans: a patient no model saw (ms_p07), and T2/FLAIR of the subject whose T1 is a training scan
# (the anatomy seen, the contrast not); ms_p07's T1 is the contrast control: the same patient and protocols in T1.
# Clinical protocols: 3 mm and 5 mm slices, and 5 mm slices every 6 mm
CLINICAL_SCANS = ("ms_p07_FLAIR", "stroke_T2", "stroke_FLAIR", "ms_p07_T1")
CLINICAL_PROTOCOLS = (("3mm", 3, None), ("5mm", 5, None), ("5mm-gap1mm", 6, 5.0))
STROKE_MIN_LESION = 20  # voxels: the stroke FLAIR's hyperintensities taken as lesions


def suite_cases(suite: str) -> list[Case]:
    """The cases of a suite. ``dev``: MNI152 (always) and the held-out real scans (when present)."""
    if suite == "quick":  # a small crop, for tests and smoke runs
        start, stop = (66, 84, 62), (130, 148, 126)
        case = through_plane_case("mni152-crop_through-plane-x4", load_mni152().crop(start, stop), 4)
        return [with_brain_mask(case, load_mni152_brain_mask(), start)]
    if suite == "slab":
        return slab_cases(HELD_OUT_SCANS)
    if suite == "tuning":
        return slab_cases(TUNING_SCANS + UNSEEN_TUNING_SCANS)
    if suite == "imputation":
        return imputation_cases(HELD_OUT_SCANS)
    if suite == "imputation-tuning":
        return imputation_cases(TUNING_SCANS)
    if suite == "clinical":
        return clinical_cases()
    if suite == "lesions":
        return lesion_cases()
    if suite == "headline":  # every acquisition: the dev suite's whole volumes, and imputation on the held-out slab
        return suite_cases("dev") + [case for case in imputation_cases(HELD_OUT_SCANS) if case.name.endswith("1of4")]
    if suite != "dev":
        raise InputError(f"unknown suite {suite!r}; available: headline, dev, clinical, lesions, quick, slab, tuning, imputation, imputation-tuning")
    volumes = {"mni152": load_mni152()}
    brains = {"mni152": load_mni152_brain_mask()}
    data = shared_data_dir()
    if data is not None:
        for scan in HELD_OUT_SCANS:
            volume = read_volume(data / "real" / f"{scan}.nii.gz")
            volumes[scan] = volume.with_array(volume.array.astype(np.float32))
            brains[scan] = atlas_brain_mask(volumes[scan])
    return [
        with_brain_mask(case, brains[name], (0, 0, 0))
        for name, volume in volumes.items()
        for case in (
            through_plane_case(f"{name}_through-plane-x4", volume, factor=4, axis=2),
            in_plane_case(f"{name}_in-plane-x2", volume, factor=2, slice_axis=2),
        )
    ]


def clinical_cases() -> list[Case]:
    """T2 and FLAIR whole volumes at the thick-slice protocols clinics acquire (axial slices), and
    a T1 of the FLAIR's patient at the same protocols (what the contrast alone costs)."""
    data = shared_data_dir()
    if data is None:
        raise InputError("the clinical suite needs the development data (../shared/data)")
    cases = []
    for scan in CLINICAL_SCANS:
        volume = read_volume(data / "real" / f"{scan}.nii.gz")
        volume = volume.with_array(volume.array.astype(np.float32))
        for protocol, factor, thickness in CLINICAL_PROTOCOLS:
            cases.append(through_plane_case(f"{scan}_{protocol}", volume, factor, axis=2, thickness_mm=thickness))
    return cases


def lesion_cases() -> list[Case]:
    """Thick slices of scans with lesions whose truth is known at 1 mm: ms_p07's FLAIR with its
    raters' consensus mask at the clinical protocols; the stroke FLAIR and T2 at 5 mm with the
    FLAIR's hyperintensities (the segmentation rule of lesion_fidelity on the 1 mm FLAIR, its
    components of 20 voxels or more: a mask of the same patient, not of an expert); and synthetic lesions of 3 to 8 mm in diameter
    placed in white matter: dark in the held-out T1 (seg3D_MR, at 45% of white matter, as T1
    black holes), bright in ms_p07's FLAIR (at 150% of its white matter)."""
    from scipy import ndimage

    from inference_backend.evaluation.lesion_fidelity import CONNECTIVITY, LesionTruth, segment
    from inference_backend.evaluation.synthetic_lesions import otsu_tissues, place_lesions

    data = shared_data_dir()
    if data is None:
        raise InputError("the lesions suite needs the development data (../shared/data)")

    def scan(name: str) -> Volume:
        volume = read_volume(data / "real" / f"{name}.nii.gz")
        return volume.with_array(volume.array.astype(np.float32))

    def cropped(case: Case, mask: np.ndarray, polarity: int, region: np.ndarray) -> Case:
        box = tuple(slice(0, n) for n in case.reference.grid.size)  # crop_to_multiple keeps the first voxels
        case.lesions = LesionTruth(mask[box], polarity, region[box])
        return case

    cases = []
    flair, consensus = scan("ms_p07_FLAIR"), scan("ms_p07_lesions").array > 0
    brain = ndimage.binary_fill_holes(flair.array > 0)
    for protocol, factor, thickness in CLINICAL_PROTOCOLS:
        cases.append(cropped(through_plane_case(f"ms_p07_FLAIR_{protocol}", flair, factor, thickness_mm=thickness), consensus, 1, brain))
    stroke_flair = scan("stroke_FLAIR")
    stroke_brain = ndimage.binary_fill_holes(stroke_flair.array > 0)
    bright = segment(stroke_flair.array, LesionTruth(np.zeros(stroke_brain.shape, bool), 1, ndimage.binary_erosion(stroke_brain, iterations=3)))
    labels, count = ndimage.label(bright, structure=CONNECTIVITY)
    sizes = ndimage.sum(bright, labels, index=np.arange(1, count + 1))
    hyperintense = np.isin(labels, np.flatnonzero(sizes >= STROKE_MIN_LESION) + 1)  # lesions, not vessels or noise
    for name in ("stroke_FLAIR", "stroke_T2"):
        cases.append(cropped(through_plane_case(f"{name}_5mm", scan(name), 5), hyperintense, 1, stroke_brain))
    rng = np.random.default_rng(0)
    t1 = scan("seg3D_MR")
    white = otsu_tissues(t1.array)["white matter"]
    placed = [m for radius in (1.5, 2.5, 4.0) for m in place_lesions(white, t1.grid.spacing, radius, rng, 0.9, count=8)]
    dark, t1_mask = inserted(t1.array, placed, white, 0.45)
    cases.append(cropped(through_plane_case("seg3D_MR-synthetic_through-plane-x4", t1.with_array(dark), 4), t1_mask, -1, white | t1_mask))
    nawm = ndimage.binary_erosion(brain & ~ndimage.binary_dilation(consensus, iterations=3) & (flair.array > np.percentile(flair.array[brain], 40)), iterations=2)
    placed = [m for radius in (1.5, 2.5) for m in place_lesions(nawm, flair.grid.spacing, radius, rng, 0.9, count=8)]
    bright, flair_mask = inserted(flair.array, placed, nawm, 1.5)
    cases.append(cropped(through_plane_case("ms_p07_FLAIR-synthetic_5mm", flair.with_array(bright), 5), flair_mask | consensus, 1, brain))
    return cases


def inserted(array: np.ndarray, lesions: list[np.ndarray], tissue: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """``array`` with each lesion at ``factor`` times the tissue's median intensity, its edge
    softened over a voxel (a partial volume at 1 mm); and the lesions' union."""
    from scipy import ndimage

    mask = np.zeros(array.shape, bool)
    for lesion in lesions:
        mask |= lesion
    level = factor * float(np.median(array[tissue]))
    weight = np.clip(ndimage.gaussian_filter(mask.astype(np.float32), 0.5) * 1.5, 0, 1)
    return (array * (1 - weight) + level * weight).astype(np.float32), mask


def with_brain_mask(case: Case, brain: np.ndarray, start: tuple[int, int, int]) -> Case:
    """Attach a brain mask to a case cut from its volume at ``start`` (crop_to_multiple keeps
    the first voxels of each axis)."""
    case.brain_mask = brain[tuple(slice(a, a + n) for a, n in zip(start, case.reference.grid.size))]
    return case


SLAB_SIDE = 64


def real_scans(scans: tuple[str, ...]) -> dict[str, Volume]:
    """The development scans, as float32 volumes by name."""
    data = shared_data_dir()
    if data is None:
        raise InputError("the slab, tuning, calibration and imputation suites need the development data (../shared/data)")
    volumes = {}
    for scan in scans:
        volume = read_volume(data / "real" / f"{scan}.nii.gz")
        volumes[scan] = volume.with_array(volume.array.astype(np.float32))
    return volumes


def central_slabs(scans: tuple[str, ...]) -> dict[str, Volume]:
    """A central 64 x 64 column of each scan through all its slices (a tenth of a volume's CPU time)."""
    slabs = {}
    for scan, volume in real_scans(scans).items():
        centre = np.argwhere(volume.array > np.percentile(volume.array, 75)).mean(axis=0).round().astype(int)
        start = [int(c) - SLAB_SIDE // 2 for c in centre[:2]] + [0]
        slabs[f"{scan}-slab"] = volume.crop(tuple(start), (start[0] + SLAB_SIDE, start[1] + SLAB_SIDE, volume.grid.size[2]))
    return slabs


def acquisition_cases(volumes: dict[str, Volume]) -> list[Case]:
    """Through-plane x2, x3, x4 and in-plane x2 of each volume: the acquisitions a job meets."""
    cases = []
    for name, volume in volumes.items():
        for factor in (2, 3, 4):
            cases.append(through_plane_case(f"{name}_through-plane-x{factor}", volume, factor, axis=2))
        cases.append(in_plane_case(f"{name}_in-plane-x2", volume, factor=2, slice_axis=2))
    return cases


def slab_cases(scans: tuple[str, ...]) -> list[Case]:
    """The acquisitions on the scans' central slabs: the suite of ablations (held-out scans) and
    of option tuning (training scans)."""
    return acquisition_cases(central_slabs(scans))


def imputation_cases(scans: tuple[str, ...]) -> list[Case]:
    """Slice imputation, 1 of 4 and 1 of 8 slices acquired (InverseSR's 4 mm and 8 mm cases), on
    the scans' central slabs (held-out scans: evaluation; training scans: option tuning)."""
    return [
        slice_masking_case(f"{name}_imputation-1of{keep}", slab, keep_every=keep, axis=2)
        for name, slab in central_slabs(scans).items()
        for keep in (4, 8)
    ]


@dataclass
class Entry:
    """A method with fixed options, as named on the command line: ``NAME[:key=value,...]``."""

    method: str
    options: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> Entry:
        method, _, rest = text.partition(":")
        return cls(method, parse_method_options([p for p in rest.split(",") if p]))

    @property
    def label(self) -> str:
        if self.method == "interpolation":
            return self.options.get("kind", "bspline")
        return self.method + "".join(f" {k}={v}" for k, v in self.options.items())


class PeakMemory:
    """Samples this process's resident memory in a thread; ``peak_mb`` after the block."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s, self.peak_mb = interval_s, 0.0
        self._stop = threading.Event()

    @staticmethod
    def rss_mb() -> float:
        with open("/proc/self/statm") as stream:
            return int(stream.read().split()[1]) * 4096 / 2**20

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self.rss_mb())
            time.sleep(self.interval_s)

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self.rss_mb())


def run_case(
    case: Case, method: str, method_options: dict, samples: int, device: str, seed: int = 0, keep_samples: bool = False
) -> tuple[JobOutputs, float, float]:
    """(outputs, wall seconds, peak resident MB) of ``method`` on the case's acquisition, brought
    onto its reference grid as ``mrisr run`` would; ``keep_samples``: every sample kept where
    the plan runs several (calibration scores)."""
    options = JobOptions(
        method=method,
        method_options=method_options,
        scale=None if case.explicit_target else tuple(float(f) for f in case.factors),
        target=case.reference.grid if case.explicit_target else None,
        samples=samples,
        slice_thickness=case.slice_thickness,
        seed=seed,
        device=device,
    )
    plan = plan_job(case.degraded.grid, options)
    plan = replace(plan, request=replace(options, keep_samples=keep_samples and plan.samples > 1))
    with PeakMemory() as memory:
        started = time.perf_counter()
        outputs = process(case.degraded, plan)
        wall = time.perf_counter() - started
    return outputs, wall, memory.peak_mb


def run_entry(case: Case, entry: Entry, samples: int, device: str, seed: int) -> tuple[dict, np.ndarray, np.ndarray | None]:
    outputs, wall, peak_mb = run_case(case, entry.method, entry.options, samples, device, seed, keep_samples=True)
    estimate = outputs.sr.array
    row = {"method": entry.label, **case.score(estimate), "wall_time_s": round(wall, 2), "peak_rss_mb": round(peak_mb)}
    row["s_per_slice"] = round(wall / slice_count(case), 4)
    if case.lesions is not None:
        row |= lesion_scores(case.reference.array, estimate, case.lesions, case.mask)
    row["device"] = outputs.report["device"]
    variance = None if outputs.variance is None else outputs.variance.array
    if variance is not None:
        row["std_error_spearman"] = round(std_error_correlation(case.reference.array, estimate, variance, case.mask), 4)
        row |= variance_scores(case, estimate, variance, outputs.report["resolved_options"].get("variance", {}))
    if outputs.samples is not None:
        row["nll_256"] = round(sample_nll(case.reference.array, outputs.samples, case.mask), 4)
        row["coverage_90"] = round(interval_coverage(case.reference.array, outputs.samples, case.mask), 4)
    return row, estimate, variance


def variance_scores(case: Case, estimate: np.ndarray, variance: np.ndarray, how: dict) -> dict[str, float]:
    """Coverage of the Gaussian 90% interval (mean +- 1.645 sigma) and the Gaussian NLL of the
    variance map; for a calibrated map also of the (pooled) spread before its factor."""
    reference, mask = case.reference.array, case.mask
    scores = {"coverage_90_sigma": round(coverage(reference, estimate, variance, mask), 4), "nll_gaussian": round(gaussian_nll(reference, estimate, variance, mask), 4)}
    if how.get("calibrated"):
        raw = variance / how["scale_on_std"] ** 2
        scores |= {"coverage_90_sigma_raw": round(coverage(reference, estimate, raw, mask), 4), "nll_gaussian_raw": round(gaussian_nll(reference, estimate, raw, mask), 4)}
    return scores


def slice_count(case: Case) -> int:
    """2D slices the slice engine restores for a case: along every fine axis when one axis is
    coarse (both orientations), along the fine axis when two are (the unit of 'time per slice')."""
    size = case.reference.grid.size
    return sum(size[a] for a in range(3) if a not in case.coarse_axes)


def case_panel(path: Path, case: Case, estimates: dict[str, np.ndarray], variances: dict[str, np.ndarray]) -> None:
    """Top row: LR input, each method, reference. Bottom row: |error| (and variance) per method."""
    axis = 1 if 1 not in case.coarse_axes else 2
    index = case.reference.grid.size[axis] // 2
    reference = central_slice(case.reference.array, axis, index)
    low, high = np.percentile(reference, [0.5, 99.5])
    lr_index = index // case.factors[axis]
    lr_spacing = np.delete(np.asarray(case.degraded.grid.spacing), axis)
    lr_tile = Tile("LR input", central_slice(case.degraded.array, axis, lr_index), vmin=low, vmax=high, aspect=lr_spacing[1] / lr_spacing[0])
    top: list[Tile | None] = [lr_tile]
    bottom: list[Tile | None] = [None]
    for label, estimate in estimates.items():
        image = central_slice(estimate, axis, index)
        top.append(Tile(label, image, vmin=low, vmax=high))
        bottom.append(Tile(f"|error| {label}", np.abs(image - reference), cmap="magma", vmin=0, vmax=(high - low) * 0.25))
    top.append(Tile("reference", reference, vmin=low, vmax=high))
    rows = [top, bottom]
    if variances:  # the uncertainty as the Slicer overlay shows it: 1 SD in % of the head's median, where notable
        percents = {k: sd_percent(v, estimates[k]) for k, v in variances.items()}
        rows.append([None] + [
            Tile(f"{k}: uncertainty", central_slice(estimates[k], axis, index), vmin=low, vmax=high,
                 overlay=central_slice(percent, axis, index), overlay_range=tint_range(percent),
                 overlay_label="1 SD, % of median head intensity")
            for k, percent in percents.items()
        ])  # fmt: skip
    save_panel(path, rows, suptitle=f"{case.name}: {case.description}")


def compare_erased(case: Case, rows: list[dict], estimates: dict[str, np.ndarray]) -> None:
    """Each row's count of lesions it erases that B-spline keeps."""
    if "bspline" not in estimates:
        return
    erased_by_bspline = erased_labels(case.reference.array, estimates["bspline"], case.lesions)
    for row in rows:
        row["erased_where_bspline_keeps"] = len(erased_labels(case.reference.array, estimates[row["method"]], case.lesions) - erased_by_bspline)


def lesion_panel(path: Path, case: Case, estimates: dict[str, np.ndarray], count: int = 3) -> None:
    """Zoomed views of the lesions the methods keep least (the lowest contrast kept by any
    method): the truth, the LR input (each slice repeated over its extent) and each method with
    the contrast it keeps, in a plane that holds the refined axis, the lesion mask outlined."""
    from scipy import ndimage

    from inference_backend.evaluation.lesion_fidelity import CONNECTIVITY, lesion_contrasts

    reference = case.reference.array
    labels, number = ndimage.label(case.lesions.mask, structure=CONNECTIVITY)
    kept = {name: {label: k for label, _, k in lesion_contrasts(reference, estimate, case.lesions)} for name, estimate in estimates.items()}
    worst = {label: min(by_label[label] for by_label in kept.values()) for label in next(iter(kept.values()), {})}
    if not worst:
        return
    centres = ndimage.center_of_mass(case.lesions.mask, labels, range(1, number + 1))
    axis = case.coarse_axes[0]
    along = 1 if axis != 1 else 0  # the plane cut along this axis holds the refined one
    low, high = np.percentile(reference[case.mask], [1, 99.5])
    lr = np.repeat(case.degraded.array, case.factors[axis], axis=axis)[tuple(slice(0, n) for n in reference.shape)]
    rows = []
    for label in sorted(worst, key=worst.get)[:count]:
        centre = np.round(centres[label - 1]).astype(int)
        crop = [slice(max(0, c - 20), c + 20) for c in centre]
        crop[along] = slice(int(centre[along]), int(centre[along]) + 1)

        def cut(volume: np.ndarray) -> np.ndarray:
            return np.rot90(np.squeeze(volume[tuple(crop)], axis=along))  # noqa: B023 - used at once, in this turn

        outline = cut(labels == label)
        rows.append([Tile(f"truth (lesion {label})", cut(reference), vmin=low, vmax=high, contour=outline), Tile("LR input", cut(lr), vmin=low, vmax=high)]
                    + [Tile(f"{name}: kept {kept[name][label]:.2f}", cut(estimate), vmin=low, vmax=high, contour=outline)
                       for name, estimate in estimates.items()])  # fmt: skip
    save_panel(path, rows, suptitle=f"{case.name}: the lesions kept least, zoomed (outline: the lesion mask; kept: contrast over the truth's)")


def write_results_files(out_dir: Path, suite: str, results: dict) -> None:
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(out_dir / "results.md", suite, results)


def write_markdown(path: Path, suite: str, results: dict) -> None:
    lines = [f"# Benchmark suite `{suite}`", "", "Scores inside the head mask on the HR grid (PSNR in dB; GMSD lower is better); `_brain` columns: inside the brain mask (MNI152's grey + white matter maps; on real scans carried over by an affine fit of the template, `inference_backend/evaluation/atlas.py`).", ""]
    for case_name, case in results["cases"].items():
        extra = sorted({k for row in case["rows"] for k in row} - {"method", "psnr", "ssim", "gmsd", "wall_time_s", "peak_rss_mb", "device"})
        rows = [
            {"method": row["method"], "PSNR": f"{row['psnr']:.2f}", "SSIM": f"{row['ssim']:.4f}", "GMSD": f"{row['gmsd']:.4f}",
             "time (s)": f"{row['wall_time_s']:.2f}", "peak RSS (MB)": row["peak_rss_mb"], "device": row["device"],
             **{k: row.get(k, "") for k in extra}}  # fmt: skip
            for row in case["rows"]
        ]
        skipped = [f"Not run: {label} ({reason})." for label, reason in case.get("not_applicable", {}).items()]
        diagram = [f"![{case_name} reliability]({case_name}_reliability.png)", ""] if any("coverage_90_sigma" in row for row in case["rows"]) else []
        lines += [f"## {case_name}", "", case["description"], "", *markdown_table(rows), "", *skipped, f"![{case_name}]({case_name}.png)", "", *diagram]
    lines += ["Environment: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()), ""]
    path.write_text("\n".join(lines))


def run_benchmark(
    suite: str,
    entries: list[Entry],
    out_dir: Path,
    samples: int = 1,
    device: str = "cpu",
    seed: int = 0,
    progress: Progress | None = None,
    case_filter: str = "",
    update: bool = False,
) -> dict:
    """Every entry on every case of the suite (``case_filter``: those whose name contains it);
    ``update``: the cases of an earlier run of the same suite in ``out_dir`` that this run does
    not measure are kept (a re-run case is replaced whole, so its panel shows every method)."""
    progress = progress or Progress()
    for entry in entries:
        if entry.method not in METHODS:
            raise InputError(f"unknown method {entry.method!r} in --methods")
    out_dir.mkdir(parents=True, exist_ok=True)
    with progress.stage("cases", 0.0, 0.05):
        cases = [case for case in suite_cases(suite) if case_filter in case.name]
    if not cases:
        raise InputError(f"no case of suite {suite!r} matches --cases {case_filter!r}")
    results = {"suite": suite, "samples": samples, "seed": seed, "cases": earlier_cases(out_dir, suite, samples, seed) if update else {},
               "versions": library_versions()}  # fmt: skip
    total = len(cases) * len(entries)
    with progress.stage("methods", 0.05, 1.0):
        for case_index, case in enumerate(cases):
            rows, estimates, variances, not_applicable = [], {}, {}, {}
            for entry_index, entry in enumerate(entries):
                if case.acquisition not in METHODS[entry.method].acquisitions:
                    continue  # each method on the cases it is made for
                progress.report((case_index * len(entries) + entry_index) / total, f"{case.name}: {entry.label}")
                try:
                    row, estimates[entry.label], variance = run_entry(case, entry, samples, device, seed)
                except InputError as error:  # e.g. zero-filling onto an explicit grid: says why, the suite goes on
                    not_applicable[entry.label] = str(error)
                    continue
                rows.append(row)
                if variance is not None:
                    variances[entry.label] = variance
            case_panel(out_dir / f"{case.name}.png", case, estimates, variances)
            if case.lesions is not None:
                compare_erased(case, rows, estimates)
                lesion_panel(out_dir / f"{case.name}_lesions.png", case, estimates)
            if variances:
                curves = {label: reliability(case.reference.array, estimates[label], v, case.mask) for label, v in variances.items()}
                reliability_diagram(out_dir / f"{case.name}_reliability.png", curves, case.name)
            results["cases"][case.name] = {"description": case.description, "acquisition": case.acquisition, "rows": rows}
            if not_applicable:
                results["cases"][case.name]["not_applicable"] = not_applicable
            write_results_files(out_dir, suite, results)  # after every case: an interrupted suite keeps what it did
    progress.finish(f"results in {out_dir}")
    return results


def earlier_cases(out_dir: Path, suite: str, samples: int, seed: int) -> dict:
    """The cases of the results in ``out_dir``, if they were made by the same suite, samples and seed."""
    try:
        earlier = json.loads((out_dir / "results.json").read_text())
    except (OSError, ValueError):
        return {}
    if (earlier.get("suite"), earlier.get("samples"), earlier.get("seed")) != (suite, samples, seed):
        raise InputError(f"--update: {out_dir} holds results of another suite, sample count or seed; choose another --out")
    return earlier.get("cases", {})


def run_benchmark_command(args: argparse.Namespace, progress: Progress) -> None:
    from inference_backend.devices import resolve_device

    entries = [Entry.parse(text) for text in args.methods.replace(";", " ").split()]
    out = Path(args.out) if args.out else Path("benchmarks") / "results" / args.suite  # below the working folder
    results = run_benchmark(args.suite, entries, out, args.samples, resolve_device(args.device), args.seed, progress, args.cases, args.update)
    for case_name, case in results["cases"].items():
        print(case_name)
        for row in case["rows"]:
            print(f"  {row['method']:<24} PSNR {row['psnr']:.2f}  SSIM {row['ssim']:.4f}  {row['wall_time_s']:.1f} s")
    print(f"results in {out}")
