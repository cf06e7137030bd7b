"""The command line of ``mrisr benchmark``, without the suites it runs: the parser of every
``mrisr`` command is built before anything heavy loads (``mrisr --help`` imports no torch)."""
from __future__ import annotations

import argparse

BASELINE_ENTRIES = ("interpolation:kind=linear", "interpolation:kind=bspline", "interpolation:kind=lanczos")


def add_benchmark_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", default="dev", help="headline (the dev suite plus slice imputation on the held-out slab: every acquisition, the README table), dev (MNI152 + held-out real scans), clinical (T2 and FLAIR at 3 mm, 5 mm and 5 mm slices every 6 mm, and the same protocols on a T1 of the FLAIR's patient), slab (central 64x64 columns of the held-out scans at x2-x4: ablations), tuning (the same on a training scan and on spm152, which no model saw: choosing options), imputation (slice imputation on the slabs), imputation-tuning (the same on a training scan), lesions (thick slices of scans whose lesions are known at 1 mm: real MS and stroke lesions, synthetic lesions of 3-8 mm) or quick (a small crop)")
    parser.add_argument("--methods", default=" ".join(BASELINE_ENTRIES), help="space- or semicolon-separated NAME[:key=value,...]")
    parser.add_argument("--out", help="results folder (default: benchmarks/results/<suite> in the working folder)")
    parser.add_argument("--samples", type=int, default=1, help="samples for stochastic methods")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", default="", help="only the cases whose name contains this text")
    parser.add_argument("--update", action="store_true", help="keep the other cases of an earlier run of the suite in --out (a re-run case is replaced whole)")
