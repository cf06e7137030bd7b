"""``mrisr`` (also ``python -m inference_backend``): the backend's command line.

Subcommands: ``run`` (one volume), ``methods`` (what is available), ``demo`` (the main job on
the embedded MNI152 template), ``benchmark`` (scored comparisons) and ``finetune`` (adapt
MSP-SR to a site's own HR scans). User errors, usage errors included, print one
line on stderr (and a JSON line on stdout with ``--progress jsonl``) and exit non-zero (2 input,
3 weights, 4 resources, 130 cancelled; see docs/errors.md); ``--debug`` shows the traceback.
A closed stdout (``mrisr methods | head -1``) ends the command quietly with 141, as SIGPIPE would.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn

from inference_backend.errors import Cancelled, InputError, MRISRError, ResourceError
from inference_backend.progress import Progress, TqdmSink, jsonl_sink
from inference_backend.protocol import BATCH_FAILURES_STATUS, BROKEN_PIPE_STATUS, ErrorLine, ScanLine

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Parser(argparse.ArgumentParser):
    """Usage errors raise InputError, to be reported like every other user error."""

    def error(self, message: str) -> NoReturn:
        raise InputError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    from inference_backend.job import add_job_arguments

    parser = Parser(prog="mrisr", description="MRI super-resolution (MRISuperResolution backend)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="super-resolve one volume")
    run.add_argument("input", help="input volume (.nii, .nii.gz, .nrrd, .nhdr) or a folder holding one DICOM series")
    add_job_arguments(run)
    run.add_argument("--out", required=True, help="output folder (created if needed)")
    run.add_argument("--lesion-mask", help="lesion mask on the input's grid (> 0 = lesion): writes a lesion-filled volume")
    run.add_argument("--output-dtype", default="float32", choices=["float32", "input"], help="voxel type of the outputs")
    run.add_argument("--output-format", default="nii.gz", choices=["nii.gz", "nrrd"], help="file format of the outputs")
    run.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in --out (all of them)")
    add_progress_argument(run)

    batch = commands.add_parser("batch", help="super-resolve every scan of a folder, a BIDS dataset or a manifest; resumable")
    batch.add_argument("source", help="a folder of volumes, a BIDS dataset (it has dataset_description.json), or a .csv/.tsv manifest")
    add_job_arguments(batch, target_required=False)
    batch.add_argument("--out", required=True, help="output root: one folder per scan at its place in the source layout, and the summary")
    batch.add_argument("--pattern", help="folders: which files, as a glob below the source (default: every NIfTI/NRRD file)")
    batch.add_argument("--suffix", default="", help="BIDS: the scan suffixes to take, e.g. T2w,FLAIR (default: T1w,T2w,FLAIR)")
    batch.add_argument("--entity", action="append", default=[], metavar="KEY=VALUE", help="BIDS: only scans with this entity, e.g. acq=axial (repeatable)")
    batch.add_argument("--workers", type=int, default=1, help="scans at a time (worker processes or Ray actors), each with its share of the CPU threads")
    batch.add_argument("--engine", choices=["local", "ray"], default="local", help="local worker processes, or Ray actors (pip install 'mrisr[cluster]')")
    batch.add_argument("--address", help="Ray: the cluster to join (e.g. auto, or ray://head:10001); default: a Ray instance on this machine")
    batch.add_argument("--gpus-per-worker", type=float, default=0.0, help="Ray: GPUs each actor reserves (1 with --device cuda: one worker per GPU)")
    batch.add_argument("--retry-failed", action="store_true", help="run only the scans the last batch recorded as failed")
    batch.add_argument("--overwrite", action="store_true", help="run every scan again, replacing its earlier results")
    batch.add_argument("--output-format", default="nii.gz", choices=["nii.gz", "nrrd"], help="file format of the outputs")
    add_progress_argument(batch)

    methods = commands.add_parser("methods", help="list methods, their options, whether their weights are present and how long they take")
    methods.add_argument("--json", action="store_true", help="machine-readable output")
    methods.add_argument("--input", help="a scan: give the expected time of each method on it (with --scale or --spacing)")
    estimate_target = methods.add_mutually_exclusive_group()
    estimate_target.add_argument("--scale", help="per-axis up-sampling factor of the scan, e.g. 1,1,4")
    estimate_target.add_argument("--spacing", help="target voxel spacing in mm, e.g. 1")
    methods.add_argument("--samples", type=int, default=1, help="samples of the stochastic methods (default 1)")
    methods.add_argument("--device", default="cpu", help="the device to estimate for: cpu or cuda (default cpu)")

    devices = commands.add_parser("devices", help="the devices this Python's PyTorch can compute on (CPU, CUDA GPUs, Apple's GPU)")
    devices.add_argument("--json", action="store_true", help="machine-readable output")

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

    from inference_backend.evaluation.arguments import add_benchmark_arguments

    benchmark = commands.add_parser("benchmark", help="score methods on a suite of degraded cases")
    add_benchmark_arguments(benchmark)
    add_progress_argument(benchmark)
    return parser


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        default="auto",
        choices=["auto", "bar", "jsonl", "none"],
        help="progress display: a bar on a terminal (auto), JSON lines on stdout (jsonl) for programs, or none",
    )


class StopSignal(KeyboardInterrupt):
    """A KeyboardInterrupt, but not exactly one: CPython ends a program as killed by SIGINT
    (status -2, not 130) once a plain KeyboardInterrupt went through code that an extension
    module runs, even if main caught it; a subclass leaves no such mark."""


class StopSignals:
    """SIGINT and SIGTERM for one command, handled from the first line of main.

    Before a job they stop the command at once (StopSignal, reported as "cancelled": nothing
    is written yet), except inside an import, where an exception can abort the interpreter
    (torch's): then the stop waits for the next :meth:`checkpoint`. During a job they cancel it
    at its next progress report, and it cleans up. Once the job is over, or the command is
    stopping, they are ignored: a finished run's outputs are complete, and a second Ctrl-C must
    not interrupt the report of the first."""

    def __init__(self) -> None:
        self.requested = False
        self.job: Progress | None = None
        self.over = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.over:
            return
        self.requested = True
        if self.job is not None:
            self.job.cancel()
        elif not importing(frame):
            self.over = True
            raise StopSignal

    def checkpoint(self) -> None:
        """Stop now if a signal came while stopping was not safe."""
        if self.requested and not self.over and self.job is None:
            self.over = True
            raise StopSignal

    def install(self) -> dict:
        """Handle SIGINT and SIGTERM from now on; returns the handlers replaced."""
        return {sig: signal.signal(sig, self) for sig in STOP_SIGNALS}


def importing(frame: FrameType | None) -> bool:
    """Whether the interrupted code runs inside an import."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


stop_signals = StopSignals()


@contextmanager
def job_progress(mode: str) -> Iterator[Progress]:
    """A Progress wired to the chosen display, and cancelled by SIGINT/SIGTERM (see StopSignals)."""
    sinks: list[Callable[[float, str, str], None]] = []
    bar = None
    if mode == "jsonl":
        sinks.append(jsonl_sink())
    elif mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
        bar = TqdmSink()
        sinks.append(bar)
    progress = Progress(sinks)
    stop_signals.job = progress
    if stop_signals.requested:  # during the imports before the job: it stops at its first report
        progress.cancel()
    try:
        yield progress
    finally:
        stop_signals.job, stop_signals.over = None, True
        if bar is not None:
            bar.close()


def command_run(args: argparse.Namespace) -> int:
    from inference_backend.job import JobOptions
    from inference_backend.pipeline import run_job

    options = JobOptions.from_arguments(args)
    with job_progress(args.progress) as progress:
        written = run_job(
            args.input, args.out, options, args.lesion_mask, args.output_dtype, progress, args.output_format, args.overwrite
        )
    report = json.loads(written["report"].read_text())
    for warning in report.get("input_warnings", []):
        print(f"mrisr: warning: {one_line(warning)}", file=sys.stderr)
    if "quality_note" in report:
        print(f"mrisr: warning: {report['method']} is {report['quality_note']}", file=sys.stderr)
    if report.get("spacing_kept"):
        print(f"mrisr: note: {report['spacing_kept']}", file=sys.stderr)
    if (report.get("consistency") or {}).get("warning"):
        print(f"mrisr: warning: {report['method']}: {report['consistency']['warning']}", file=sys.stderr)
    if args.progress != "jsonl":
        for path in written.values():
            print(path)
    return 0


def command_batch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from inference_backend.batch.discovery import check_unique, discover
    from inference_backend.batch.engines import (
        BatchControl,
        LocalEngine,
        RayEngine,
        threads_per_worker,
    )
    from inference_backend.batch.runner import BatchSettings, check_batch_outputs, run_batch
    from inference_backend.job import JobOptions
    from inference_backend.registry import parse_method_options

    if args.workers < 1:
        raise InputError(f"--workers must be at least 1; got {args.workers}")
    if not (args.scale or args.spacing):
        raise InputError("give --scale or --spacing: the target of every scan (a manifest row may set its own)")
    source, out_root = Path(args.source), Path(args.out)
    suffixes = tuple(s for s in args.suffix.split(",") if s)
    scans, is_bids = discover(source, args.pattern, suffixes, parse_method_options(args.entity), exclude=out_root)
    check_unique(scans)
    check_batch_outputs(out_root, source, scans, source if is_bids else None)
    settings = BatchSettings(out_root, JobOptions.from_arguments(args), args.overwrite, args.retry_failed, args.output_format,
                             source if is_bids else None)  # fmt: skip
    if args.engine == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise InputError("--engine ray needs Ray: pip install 'mrisr[cluster]'") from None
        engine = RayEngine(args.workers, args.address, threads_per_worker(args.workers), args.gpus_per_worker)
    else:
        engine = LocalEngine(args.workers)
    control = BatchControl()
    stop_signals.job = control
    with batch_display(args.progress) as on_event:
        summary = run_batch(scans, settings, engine, control, on_event)
    stop_signals.job, stop_signals.over = None, True
    counts = summary.counts()
    if args.progress != "jsonl":
        print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + f"; summary in {out_root / 'summary.md'}")
    if control.stopped.is_set():
        raise Cancelled(f"batch stopped; finished scans are kept and the same command resumes ({out_root / 'summary.md'})")
    return BATCH_FAILURES_STATUS if counts.get("failed") else 0


@contextmanager
def batch_display(mode: str) -> Iterator[Callable]:
    """Per-scan events: a bar of scans done with the time left, or one JSON line per scan."""
    bar = None

    def on_event(result, ended: int, total: int) -> None:
        if mode == "jsonl":
            print(ScanLine(ended, total, result.as_row()).encode(), flush=True)
        elif bar is not None:
            bar.total = total
            bar.update(ended - bar.n)
            bar.set_postfix_str(f"{result.scan_id}: {result.status}")

    if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
        from tqdm import tqdm

        bar = tqdm(total=0, unit="scan", desc="batch")
    try:
        yield on_event
    finally:
        if bar is not None:
            bar.close()


def command_methods(args: argparse.Namespace) -> int:
    from inference_backend.registry import METHODS

    estimates = expected_times(args)
    listing = [
        {
            "name": spec.name,
            "summary": spec.summary,
            "stochastic": spec.stochastic,
            "weights": list(spec.weights),
            "weights_present": spec.assets_present(),
            "acquisitions": list(spec.acquisitions),
            "experimental": dict(spec.below_floor),
            "expected_time": estimates[spec.name],
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
        print(f"    time: {entry['expected_time']}")
        if entry["name"] != "auto":
            print(f"    made for: {', '.join(entry['acquisitions'])}")
        for acquisition, measured in entry["experimental"].items():
            print(f"    EXPERIMENTAL for {acquisition}: {measured}")
        for option in entry["options"]:
            choices = f" (one of {', '.join(map(str, option['choices']))})" if option["choices"] else ""
            print(f"    --opt {option['name']}={option['default']}{choices}  {option['help']}")
    return 0


def expected_times(args: argparse.Namespace) -> dict[str, str]:
    """Each method's expected time on ``args.input`` brought to ``--scale``/``--spacing`` (from
    its plan there; ``auto``: that of the method it picks), or on a whole head at 1 mm without
    an input."""
    from inference_backend.imaging.target import parse_triplet
    from inference_backend.job import JobOptions
    from inference_backend.registry import METHODS
    from inference_backend.time_estimates import REFERENCE_OUTPUT, expected_time

    if args.samples < 1:
        raise InputError(f"--samples must be at least 1; got {args.samples}")
    if args.input is None:
        if args.scale or args.spacing:
            raise InputError("--scale and --spacing need --input (the scan to estimate for)")
        where = f"per {'x'.join(map(str, REFERENCE_OUTPUT))} output"
        estimates = {"auto": "that of the method it picks for the input (give --input)"}
        for name, spec in METHODS.items():
            if name != "auto":
                samples = args.samples if spec.stochastic else 1
                estimates[name] = f"{expected_time(name, math.prod(REFERENCE_OUTPUT), samples, args.device)} {where}, {plural(samples)}"
        return estimates
    if not (args.scale or args.spacing):
        raise InputError("--input needs --scale or --spacing (the output grid to estimate for)")
    from inference_backend.imaging.io import read_volume
    from inference_backend.plan import plan_job

    volume = read_volume(args.input)
    scale = parse_triplet(args.scale, "--scale") if args.scale else None
    spacing = parse_triplet(args.spacing, "--spacing") if args.spacing else None
    estimates = {}
    for name in METHODS:
        plan = plan_job(volume.grid, JobOptions(method=name, scale=scale, spacing=spacing, samples=args.samples), volume.slice_thickness)
        where = f"for this input ({'x'.join(map(str, plan.target.size))} output)"
        chosen = f" ({plan.method})" if plan.method != name else ""
        estimates[name] = f"{plan.expected_time(args.device)} {where}, {plural(plan.samples)}{chosen}"
    return estimates


def plural(samples: int) -> str:
    return f"{samples} sample{'s' if samples > 1 else ''}"


def command_demo(args: argparse.Namespace) -> int:
    from inference_backend.evaluation.demo import run_demo

    with job_progress(args.progress) as progress:
        run_demo(args.out, method=args.method, device=args.device, progress=progress)
    return 0


def command_benchmark(args: argparse.Namespace) -> int:
    from inference_backend.evaluation.benchmark import run_benchmark_command

    with job_progress(args.progress) as progress:
        run_benchmark_command(args, progress)
    return 0


def command_finetune(args: argparse.Namespace) -> int:
    import re

    from inference_backend.assets import user_models_dir, verified_model
    from inference_backend.imaging.io import read_volume

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.out) or args.out.endswith(".pt"):
        raise InputError(f"--out {args.out!r}: a model name is letters, digits, '.', '_' and '-' (no path, no .pt)")
    verified_model(args.start_from)  # missing or tampered weights: one clear message before any work
    for scan in args.hr:
        if read_volume(scan).array.size < 32**3:
            raise InputError(f"{scan}: too small to fine-tune on (fewer than 32^3 voxels)")
    from inference_backend.training.common import parse_factors, parse_share
    from inference_backend.training.msp_sr import finetune

    stop_signals.checkpoint()
    try:  # the degradations to adapt to, where the user narrows them (checked as training checks them)
        factors = None if args.factors is None else parse_factors(args.factors)
        share = None if args.in_plane_share is None else parse_share(args.in_plane_share)
    except argparse.ArgumentTypeError as error:
        raise InputError(f"--factors / --in-plane-share: {error}") from None
    runs = user_models_dir().parent / "finetune-runs" / args.out
    try:
        finetune(args.hr, args.out, args.minutes, args.start_from, args.threads, factors, share)
    except KeyboardInterrupt:
        raise Cancelled(f"fine-tuning stopped; the same command resumes from the last checkpoint in {runs}") from None
    return 0


def command_devices(args: argparse.Namespace) -> int:
    from inference_backend.devices import list_devices

    devices = list_devices()
    if args.json:
        print(json.dumps([device.as_dict() for device in devices], indent=2))
        return 0
    for device in devices:
        memory = f", {device.free_memory_gb:.1f} of {device.total_memory_gb:.1f} GB free" if device.total_memory_gb else ""
        print(f"{device.id}: {device.name}{memory}")
    return 0


COMMANDS = {
    "run": command_run,
    "batch": command_batch,
    "methods": command_methods,
    "devices": command_devices,
    "demo": command_demo,
    "benchmark": command_benchmark,
    "finetune": command_finetune,
}


def main(argv: list[str] | None = None) -> int:
    """The command line. Called as the program (no ``argv``), SIGINT and SIGTERM stay ignored to
    the end: one arriving while the interpreter exits must not turn a finished run into a killed one."""
    global stop_signals
    stop_signals = StopSignals()
    previous = stop_signals.install()  # first of all: a signal while the imports load is a clean stop too
    arguments = sys.argv[1:] if argv is None else list(argv)
    jsonl, debug = progress_flag(arguments) == "jsonl", "--debug" in arguments  # for errors before argparse is done
    try:
        parser = build_parser()
        stop_signals.checkpoint()
        args = parser.parse_args(arguments)
        jsonl, debug = getattr(args, "progress", None) == "jsonl", args.debug
        status = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed stdout is found here, not in the interpreter's exit
        return status
    except BrokenPipeError:
        stop_signals.over = True
        silence_stdout()
        return BROKEN_PIPE_STATUS
    except (Exception, KeyboardInterrupt) as raised:  # noqa: BLE001 - last resort: one line, not a traceback
        stop_signals.over = True  # a Ctrl-C now must not interrupt the report
        error = user_error(raised)
        return report_error(error, jsonl, debug, raised)
    finally:
        for sig, handler in previous.items():  # SIG_IGN: Python drops its own handlers while it exits
            signal.signal(sig, handler if argv is not None else signal.SIG_IGN)


def progress_flag(argv: list[str]) -> str | None:
    """The ``--progress`` value as written in full, read before argparse runs: its own errors
    and an early Ctrl-C are reported as JSON in jsonl mode too."""
    for flag, value in zip(argv, argv[1:] + [""]):
        if flag == "--progress":
            return value
        if flag.startswith("--progress="):
            return flag.partition("=")[2]
    return None


def user_error(raised: BaseException) -> MRISRError:
    """What the user is told: our errors as they are; Ctrl-C, memory and anything else in one line."""
    if isinstance(raised, MRISRError):
        return raised
    if isinstance(raised, KeyboardInterrupt):
        return Cancelled()
    if isinstance(raised, MemoryError):
        return ResourceError("out of memory: try a smaller target resolution, fewer samples or the CPU")
    return MRISRError(f"internal error ({type(raised).__name__}: {raised}); rerun with --debug for details")


def silence_stdout() -> None:
    """The reader of stdout is gone: what is still buffered goes to the null device, so the
    interpreter's final flush is quiet."""
    try:
        descriptor = os.open(os.devnull, os.O_WRONLY)
        os.dup2(descriptor, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (a captured stdout): nothing to flush there
        pass


def report_error(error: MRISRError, jsonl: bool, debug: bool, cause: BaseException | None = None) -> int:
    if debug:
        traceback.print_exception(cause or error)
    if jsonl:
        try:
            print(ErrorLine(one_line(str(error)), error.exit_code).encode(), flush=True)
        except BrokenPipeError:  # the program reading the lines is gone; stderr still says it
            silence_stdout()
    print(f"mrisr: error: {one_line(str(error))}", file=sys.stderr, flush=True)
    return error.exit_code


def one_line(message: str) -> str:
    """A message on one line, whatever it quotes: line breaks (a path holding one, a library's
    multi-line text) shown as ``\\n``."""
    return message.strip().replace("\r", "\\r").replace("\n", "\\n")
