"""``mrisr`` (also ``python -m inference_backend``): the backend's command line.

Subcommands: ``run`` (one volume), ``methods`` (what is available), ``demo`` (the main job on
the embedded MNI152 template), ``benchmark`` (scored comparisons) and ``finetune`` (adapt
MSP-SR to a site's own HR scans). User errors print one
line on stderr and exit non-zero (2 input, 3 weights, 4 resources, 130 cancelled); ``--debug``
shows the traceback.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from inference_backend.errors import MRISRError, ResourceError
from inference_backend.progress import Progress, TqdmSink, jsonl_sink


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mrisr", description="MRI super-resolution (MRISuperResolution backend)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="super-resolve one volume")
    run.add_argument("input", help="input volume (.nii, .nii.gz, .nrrd, .nhdr)")
    run.add_argument("--method", default="interpolation", help="method name (see `mrisr methods`)")
    target = run.add_mutually_exclusive_group(required=True)
    target.add_argument("--scale", help="per-axis up-sampling factor, e.g. 1,1,4 (or one value for all axes)")
    target.add_argument("--spacing", help="target voxel spacing in mm, e.g. 1,1,1 (or one value)")
    run.add_argument("--out", required=True, help="output folder (created if needed)")
    run.add_argument("--samples", type=int, default=1, help="samples of a stochastic method (mean + variance)")
    run.add_argument("--lesion-mask", help="lesion mask on the input's grid (> 0 = lesion): writes a lesion-filled volume")
    run.add_argument("--lesion-fill", default="neighbourhood", help="neighbourhood (biharmonic), nawm-mean, or inverse-sr (the 3D prior; slower, and behind neighbourhood on synthetic lesions)")
    run.add_argument("--dilate-mask", type=float, default=0.0, metavar="MM", help="grow the lesion mask by this many mm")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    run.add_argument("--seed", type=int, default=0, help="random seed of stochastic methods")
    run.add_argument("--opt", action="append", default=[], metavar="NAME=VALUE", help="method option (repeatable)")
    run.add_argument("--output-dtype", default="float32", choices=["float32", "input"], help="voxel type of the outputs")
    run.add_argument("--output-format", default="nii.gz", choices=["nii.gz", "nrrd"], help="file format of the outputs")
    run.add_argument("--max-voxels", type=int, help="refuse outputs larger than this (default 2^28, env MRISR_MAX_VOXELS)")
    add_progress_argument(run)

    methods = commands.add_parser("methods", help="list methods, their options and whether their weights are present")
    methods.add_argument("--json", action="store_true", help="machine-readable output")

    demo = commands.add_parser("demo", help="the main job on the embedded MNI152 template, scored against it")
    demo.add_argument("--out", default="mrisr-demo", help="output folder (default: ./mrisr-demo)")
    demo.add_argument("--method", help="method to demonstrate (default: the best one whose weights are present)")
    demo.add_argument("--device", default="auto")
    add_progress_argument(demo)

    finetune = commands.add_parser("finetune", help="adapt a method to your own HR scans (MSP-SR's third stage)")
    finetune.add_argument("method", choices=["msp-sr"], help="the method to adapt")
    finetune.add_argument("--hr", nargs="+", required=True, metavar="SCAN", help="your high-resolution scans")
    finetune.add_argument("--out", required=True, metavar="NAME", help="name of the new model (then: mrisr run --opt model=NAME)")
    finetune.add_argument("--minutes", type=float, default=15.0, help="time budget (default 15)")
    finetune.add_argument("--from", dest="start_from", default="msp-sr", help="the model to adapt (default: msp-sr)")
    finetune.add_argument("--threads", type=int, default=2)
    finetune.add_argument("--factors", help="the up-sampling factors you will use, e.g. 4 (default: 2-6, as in training)")
    finetune.add_argument("--in-plane-share", help="fraction of in-plane pairs: 0 for thick-slice scans only (default: as in training)")

    from inference_backend.benchmark import add_benchmark_arguments

    add_benchmark_arguments(commands.add_parser("benchmark", help="score methods on a suite of degraded cases"))
    return parser


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        default="auto",
        choices=["auto", "bar", "jsonl", "none"],
        help="progress display: a bar on a terminal (auto), JSON lines on stdout (jsonl) for programs, or none",
    )


@contextmanager
def job_progress(mode: str) -> Iterator[Progress]:
    """A Progress wired to the chosen display and to SIGINT/SIGTERM (which cancel the job)."""
    sinks: list[Callable[[float, str, str], None]] = []
    bar = None
    if mode == "jsonl":
        sinks.append(jsonl_sink())
    elif mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
        bar = TqdmSink()
        sinks.append(bar)
    progress = Progress(sinks)
    previous = {sig: signal.signal(sig, lambda *_: progress.cancel()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield progress
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if bar is not None:
            bar.close()


def command_run(args: argparse.Namespace) -> int:
    from inference_backend.pipeline import JobOptions, run_job
    from inference_backend.registry import parse_method_options
    from inference_backend.target import parse_triplet

    options = JobOptions(
        method=args.method,
        method_options=parse_method_options(args.opt),
        scale=parse_triplet(args.scale, "--scale") if args.scale else None,
        spacing=parse_triplet(args.spacing, "--spacing") if args.spacing else None,
        samples=args.samples,
        seed=args.seed,
        device=args.device,
        max_voxels=args.max_voxels,
        lesion_fill=args.lesion_fill,
        dilate_mask_mm=args.dilate_mask,
    )
    with job_progress(args.progress) as progress:
        written = run_job(args.input, args.out, options, args.lesion_mask, args.output_dtype, progress, args.output_format)
    if args.progress != "jsonl":
        for path in written.values():
            print(path)
    return 0


def command_methods(args: argparse.Namespace) -> int:
    from inference_backend.registry import METHODS

    listing = [
        {
            "name": spec.name,
            "summary": spec.summary,
            "stochastic": spec.stochastic,
            "weights": list(spec.weights),
            "weights_present": spec.assets_present(),
            "needs_lesion_mask": spec.needs_lesion_mask,
            "expected_time": spec.expected_time,
            "paper": spec.paper,
            "options": [
                {"name": o.name, "default": o.default, "choices": o.choices, "help": o.help} for o in spec.options
            ],
        }
        for spec in METHODS.values()
    ]
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    for entry in listing:
        status = "ready" if entry["weights_present"] else "WEIGHTS MISSING"
        print(f"{entry['name']}  [{status}{', stochastic' if entry['stochastic'] else ''}]  {entry['summary']}")
        if entry["expected_time"]:
            print(f"    time: {entry['expected_time']}")
        for option in entry["options"]:
            choices = f" (one of {', '.join(map(str, option['choices']))})" if option["choices"] else ""
            print(f"    --opt {option['name']}={option['default']}{choices}  {option['help']}")
    return 0


def command_demo(args: argparse.Namespace) -> int:
    from inference_backend.demo import run_demo

    with job_progress(args.progress) as progress:
        run_demo(args.out, method=args.method, device=args.device, progress=progress)
    return 0


def command_benchmark(args: argparse.Namespace) -> int:
    from inference_backend.benchmark import run_benchmark_command

    with job_progress(args.progress) as progress:
        run_benchmark_command(args, progress)
    return 0


def command_finetune(args: argparse.Namespace) -> int:
    import re

    from inference_backend.assets import user_models_dir, verified_model
    from inference_backend.errors import Cancelled, InputError
    from inference_backend.io import read_volume

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.out) or args.out.endswith(".pt"):
        raise InputError(f"--out {args.out!r}: a model name is letters, digits, '.', '_' and '-' (no path, no .pt)")
    verified_model(args.start_from)  # missing or tampered weights: one clear message before any work
    for scan in args.hr:
        if read_volume(scan).array.size < 32**3:
            raise InputError(f"{scan}: too small to fine-tune on (fewer than 32^3 voxels)")
    from inference_backend.training import msp_sr
    from inference_backend.training.common import parse_factors, parse_share

    protocol = []  # the degradations to adapt to, where the user narrows them (checked as training checks them)
    for flag, value, check in (("--factors", args.factors, parse_factors), ("--in-plane-share", args.in_plane_share, parse_share)):
        if value is not None:
            try:
                check(value)
            except argparse.ArgumentTypeError as error:
                raise InputError(f"{flag} {error}") from None
            protocol += [flag, value]

    runs = user_models_dir().parent / "finetune-runs" / args.out
    arguments = ["--stage", "target", "--hr", *args.hr, "--start-from", args.start_from, "--export", "--export-name", args.out,
                 "--models-dir", str(user_models_dir()), "--run-dir", str(runs), "--minutes", str(args.minutes),
                 "--threads", str(args.threads), *protocol]  # fmt: skip
    try:
        return msp_sr.main(arguments)
    except KeyboardInterrupt:
        raise Cancelled(f"fine-tuning stopped; the same command resumes from the last checkpoint in {runs}") from None


COMMANDS = {
    "run": command_run,
    "methods": command_methods,
    "demo": command_demo,
    "benchmark": command_benchmark,
    "finetune": command_finetune,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    jsonl = getattr(args, "progress", None) == "jsonl"
    try:
        return COMMANDS[args.command](args)
    except MRISRError as error:
        return report_error(error, error.exit_code, jsonl, args.debug)
    except MemoryError as error:
        resource_error = ResourceError("out of memory: try a smaller target resolution, fewer samples or the CPU")
        return report_error(resource_error, resource_error.exit_code, jsonl, args.debug, error)
    except Exception as error:  # noqa: BLE001 - last resort: one line, not a traceback
        wrapped = MRISRError(f"internal error ({type(error).__name__}: {error}); rerun with --debug for details")
        return report_error(wrapped, 1, jsonl, args.debug, error)


def report_error(
    error: Exception, exit_code: int, jsonl: bool, debug: bool, cause: BaseException | None = None
) -> int:
    if debug:
        traceback.print_exception(cause or error)
    if jsonl:
        print(json.dumps({"error": str(error), "exit_code": exit_code}), flush=True)
    print(f"mrisr: error: {error}", file=sys.stderr, flush=True)
    return exit_code
