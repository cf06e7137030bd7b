"""Every method's whole job on a CUDA GPU against the same job on the CPU: does the GPU path run,
does it give the CPU's quality, and how much faster is it.

    .venv/bin/python benchmarks/gpu_check.py record [--work runs/gpu-check]     # the CPU machine
    python benchmarks/gpu_check.py replay --device cuda --out DIR [--work ...]  # the GPU machine
    .venv/bin/python benchmarks/gpu_check.py compare DIR [--work ...]           # back on the CPU machine

``record`` runs each job of ``JOBS`` through ``process`` (the call ``mrisr run`` makes) on the
CPU, on a central 96^3 crop of the MNI152 head: 4 mm slices along z for the slice methods, 1
slice in 4 kept for InverseSR. It keeps the inputs, the CPU outputs, every ITK resampling the
jobs asked for (inputs digested) and the timings of two runs: the first with ITK, the second
served from the record as the GPU's runs are. ``replay`` runs the same jobs on the GPU
with ITK's answers served from that record, so a GPU machine needs neither SimpleITK nor the
template (it needs torch, numpy, SciPy, scikit-image, tqdm, MONAI and PyWavelets, and this
checkout on PYTHONPATH), and both devices start from the same arrays; a resampling the record
lacks stops the job. ``compare`` scores both against the truth and against each other and writes
benchmarks/results/studies/gpu/results.{json,md}.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import platform
import sys
import time
import types
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from inference_backend.imaging.volume import Volume
    from inference_backend.job import JobOptions

RESULTS = Path(__file__).resolve().parent / "results" / "studies" / "gpu"
DEVICE_COLUMNS = ("gpu_first_s", "gpu_warm_s", "speed_up", "psnr_gpu", "gpu_vs_cpu_psnr", "max_difference_of_range", "gpu_peak_mb")
SIZE = (96, 96, 96)


@dataclasses.dataclass(frozen=True)
class Job:
    name: str
    case: str  # "thick-slices" or "imputation"
    method: str
    options: dict
    samples: int


JOBS = (
    Job("res-srdiff", "thick-slices", "res-srdiff", {}, 1),
    Job("res-srdiff-4", "thick-slices", "res-srdiff", {}, 4),
    Job("msp-sr", "thick-slices", "msp-sr", {}, 1),
    Job("msp-sr-4", "thick-slices", "msp-sr", {}, 4),
    Job("msp-sr-4-eta0.5", "thick-slices", "msp-sr", {"eta": 0.5}, 4),  # MONAI's stochastic DDIM step
    Job("srmri", "thick-slices", "srmri", {}, 1),
    # the default carries the misfit between the acquired slices by an ITK resampling of what the
    # device computed, which no record can hold: the acquired slices are kept, nothing carried
    Job("inverse-sr", "imputation", "inverse-sr", {"misfit": "none"}, 1),
)


def without_simpleitk() -> None:
    """Where SimpleITK is not installed, a stand-in whose every call fails: the package imports,
    and any resampling the record does not serve stops the job."""
    if importlib.util.find_spec("SimpleITK") is None:
        stand_in = types.ModuleType("SimpleITK")
        stand_in.Version_VersionString = lambda: "not installed: resamplings served from the record"
        stand_in.__getattr__ = lambda name: name  # the module's constants; calling one fails
        sys.modules["SimpleITK"] = stand_in


def cases() -> dict[str, tuple[Volume, Volume]]:
    """case name -> (truth, acquisition)."""
    from inference_backend.evaluation.cases import mni_crop, slice_masking_case, through_plane_case

    head = mni_crop(SIZE)
    thick = through_plane_case("gpu", head, factor=4)
    imputation = slice_masking_case("gpu-imputation", head)
    return {"thick-slices": (thick.reference, thick.degraded), "imputation": (imputation.reference, imputation.degraded)}


def run(job: Job, acquisition: Volume, geometry: JobOptions, device: str) -> tuple[np.ndarray, float, dict]:
    from inference_backend.pipeline import process

    options = dataclasses.replace(geometry, method=job.method, method_options=job.options, samples=job.samples, device=device)
    started = time.perf_counter()
    outputs = process(acquisition, options)
    return outputs.sr.array, time.perf_counter() - started, outputs.report


def record(work: Path) -> None:
    from inference_backend.evaluation.recorded_resampling import grid_record, recorded_resampling

    work.mkdir(parents=True, exist_ok=True)
    answers: dict[str, np.ndarray] = {}
    inputs, truths, timings = {}, {}, {}
    for name, (truth, acquisition) in cases().items():
        truths[name], inputs[f"{name}/acquisition"] = truth.array, acquisition.array
        inputs[f"{name}/grids"] = np.array(json.dumps([grid_record(acquisition.grid), grid_record(truth.grid)]))
    built = bundled_cases(inputs)
    for job in JOBS:
        acquisition, geometry = built[job.case]
        with recorded_resampling(answers, record=True):
            sr, first, report = run(job, acquisition, geometry, "cpu")
        with recorded_resampling(answers, record=False):  # timed as the GPU is: ITK's answers served
            _, warm, _ = run(job, acquisition, geometry, "cpu")
        np.save(work / f"cpu-{job.name}.npy", sr)
        timings[job.name] = {"first_s": round(first, 2), "warm_s": round(warm, 2), "threads": report["cpu_threads"]}
        print(f"cpu {job.name}: first {first:.1f} s, warm {warm:.1f} s", flush=True)
    np.savez_compressed(work / "bundle.npz", **inputs, **{f"itk/{key}": answer for key, answer in answers.items()})
    np.savez_compressed(work / "truth.npz", **truths)
    (work / "cpu.json").write_text(json.dumps({"timings": timings, "machine": machine("cpu"), "command": this_command()}, indent=1))


def bundled_cases(bundle: Mapping[str, np.ndarray]) -> dict[str, tuple[Volume, JobOptions]]:
    """case name -> (acquisition, the job's geometry), from the bundle: what both devices run."""
    from inference_backend.evaluation.recorded_resampling import grid_from
    from inference_backend.imaging.volume import Volume
    from inference_backend.job import JobOptions

    built: dict[str, tuple[Volume, JobOptions]] = {}
    for name in ("thick-slices", "imputation"):
        acquisition_grid, truth_grid = (grid_from(g) for g in json.loads(str(bundle[f"{name}/grids"])))
        acquisition = Volume(np.asarray(bundle[f"{name}/acquisition"]), acquisition_grid)
        if name == "imputation":
            geometry = JobOptions(target=truth_grid)
        else:
            geometry = JobOptions(scale=tuple(float(t // a) for t, a in zip(truth_grid.size, acquisition_grid.size)))
        built[name] = (acquisition, geometry)
    return built


def reset_peak_memory(device: str) -> None:
    """So that each job's GPU peak is its own, not the highest of the jobs before it."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)


def this_command() -> str:
    from inference_backend.evaluation.report import commands_so_far

    return commands_so_far("benchmarks/gpu_check.py", {})[-1]


def machine(device: str) -> dict:
    import torch

    from inference_backend.pipeline import library_versions

    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else platform.processor() or platform.machine()
    return {"device": device, "name": name, "torch": torch.__version__, "cuda": torch.version.cuda, "versions": library_versions()}


def replay(work: Path, out: Path, device: str) -> None:
    without_simpleitk()
    from inference_backend.evaluation.recorded_resampling import recorded_resampling

    bundle = np.load(work / "bundle.npz")
    answers = {key.removeprefix("itk/"): bundle[key] for key in bundle.files if key.startswith("itk/")}
    built = bundled_cases(bundle)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    with recorded_resampling(answers, record=False):
        for job in JOBS:
            acquisition, geometry = built[job.case]
            try:
                reset_peak_memory(device)
                sr, first, report = run(job, acquisition, geometry, device)
                _, warm, _ = run(job, acquisition, geometry, device)
            except Exception as error:  # noqa: BLE001 - a job failing on the device is a finding: kept, the others go on
                timings[job.name] = {"error": f"{type(error).__name__}: {error}"}
                print(f"{device} {job.name}: {timings[job.name]['error']}", flush=True)
                continue
            np.save(out / f"{job.name}.npy", sr)
            timings[job.name] = {"first_s": round(first, 2), "warm_s": round(warm, 2), "peak_memory_mb": report["peak_memory_mb"]}
            print(f"{device} {job.name}: first {first:.1f} s, warm {warm:.1f} s", flush=True)
    (out / "device.json").write_text(json.dumps({"timings": timings, "machine": machine(device), "command": this_command()}, indent=1))


def compare(work: Path, device_dir: Path) -> None:
    from inference_backend.evaluation.metrics import image_metrics
    from inference_backend.evaluation.report import commands_so_far, markdown_table, reproduce_line, write_document
    from inference_backend.imaging.head import head_mask

    truths = np.load(work / "truth.npz")
    cpu, gpu = json.loads((work / "cpu.json").read_text()), json.loads((device_dir / "device.json").read_text())
    rows = []
    for job in JOBS:
        truth, on_cpu, timing = truths[job.case], np.load(work / f"cpu-{job.name}.npy"), gpu["timings"][job.name]
        head = head_mask(truth)
        row = {"job": job.name, "cpu_first_s": cpu["timings"][job.name]["first_s"], "cpu_warm_s": cpu["timings"][job.name]["warm_s"],
               "psnr_cpu": round(image_metrics(truth, on_cpu, head)["psnr"], 2)}  # fmt: skip
        if "error" in timing:
            rows.append(row | {"gpu": f"failed: {timing['error']}"} | dict.fromkeys(DEVICE_COLUMNS, "-"))
            continue
        on_gpu = np.load(device_dir / f"{job.name}.npy")
        span = float(truth[head].max() - truth[head].min())
        rows.append(row | {
            "gpu": "ran",
            "gpu_first_s": timing["first_s"],
            "gpu_warm_s": timing["warm_s"],
            "speed_up": round(row["cpu_warm_s"] / timing["warm_s"], 1),
            "psnr_gpu": round(image_metrics(truth, on_gpu, head)["psnr"], 2),
            "gpu_vs_cpu_psnr": round(image_metrics(on_cpu, on_gpu, head)["psnr"], 1),
            "max_difference_of_range": round(float(np.abs(on_gpu - on_cpu)[head].max()) / span, 5),
            "gpu_peak_mb": timing["peak_memory_mb"].get("gpu_allocated"),
        })  # fmt: skip
    commands = [cpu["command"], gpu["command"], *commands_so_far("benchmarks/gpu_check.py", {})]
    lines = [
        "# Every method on a CUDA GPU against the CPU",
        "",
        f"Each job through `process` (what `mrisr run` calls) on a central {SIZE[0]}^3 crop of the MNI152 head: 4 mm",
        "slices along z brought back to 1 mm; InverseSR 1 slice in 4 kept, its misfit not carried between",
        "them (an ITK resampling of what each device computed, which no record holds). CPU:",
        f"{cpu['machine']['name']}, torch {cpu['machine']['torch']}. GPU: {gpu['machine']['name']}, torch",
        f"{gpu['machine']['torch']}, CUDA {gpu['machine']['cuda']} (SimpleITK there: {gpu['machine']['versions'].get('SimpleITK')}).",
        "Seconds of each job's first run (ITK resampling on the CPU; CUDA start-up in the GPU's first job) and",
        "of a second, where both devices are served ITK's answers from the record (the speed-up compares these).",
        "PSNR in the head against the truth; GPU against CPU: the PSNR of one",
        "result against the other and the largest difference as a share of the truth's range in the head.",
        "",
        *markdown_table(rows),
        "",
        reproduce_line(commands),
    ]
    print(write_document(RESULTS, {"size": SIZE, "cpu": cpu["machine"], "gpu": gpu["machine"], "rows": rows, "commands": commands}, lines))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=("record", "replay", "compare"))
    parser.add_argument("device_dir", nargs="?", type=Path, help="compare: the folder replay wrote")
    parser.add_argument("--work", type=Path, default=Path("runs") / "gpu-check")
    parser.add_argument("--out", type=Path, help="replay: where the device's outputs go")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if args.step == "replay" and args.out is None:
        parser.error("replay: --out names the folder for the device's outputs")
    if args.step == "compare" and args.device_dir is None:
        parser.error("compare: name the folder replay wrote")
    if args.step == "record":
        record(args.work)
    elif args.step == "replay":
        replay(args.work, args.out, args.device)
    else:
        compare(args.work, args.device_dir)


if __name__ == "__main__":
    main()
