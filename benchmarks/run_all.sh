#!/usr/bin/env bash
# Every committed benchmark result, in the order they were produced (2-core CPU, nothing else running).
set -euo pipefail
cd "$(dirname "$0")/.."
MRISR=".venv/bin/python -m inference_backend"
$MRISR benchmark --suite dev --progress none \
  --methods "interpolation:kind=linear interpolation:kind=bspline interpolation:kind=lanczos res-srdiff"
$MRISR benchmark --suite dev --cases seg3D_MR_through-plane --samples 8 --out benchmarks/results/dev-uncertainty --progress none \
  --methods "interpolation:kind=bspline res-srdiff"
.venv/bin/python benchmarks/speed.py --device cpu
.venv/bin/python benchmarks/data_engine.py
