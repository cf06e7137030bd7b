#!/usr/bin/env bash
# Res-SRDiff beyond T1: SynthSR's contrast randomisation. The bundled model saw T1 mostly (real
# T1 scans and T1-prior synthetic brains; a quarter of the synthetic brains of uniformly random
# contrast). This fine-tunes it with more synthetic brains (70%) and most of them (70%) of
# random contrast, and, as the control, for the same minutes on the bundled data mix, so that
# a gain is the contrast randomisation's and not the extra training's. Both: 1 thread each,
# side by side on the 2-core CPU. Then both are scored beside the bundled model on the non-T1
# clinical cases (T2/FLAIR of scans no model trained on) and on the T1 cases (no loss allowed).
#
#   benchmarks/res_srdiff_contrast.sh                  # train both, export to runs/rsd-contrast-models, evaluate
#   benchmarks/res_srdiff_contrast.sh --evaluate-only  # evaluate existing exports
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
MINUTES=${MINUTES:-50}
export MRISR_MODELS_DIR=runs/rsd-contrast-models
OUT=benchmarks/results/studies/res-srdiff-contrast
TRAIN="$PY -m inference_backend.training.res_srdiff --init-from res-srdiff --threads 1 --lr 4e-5 --batch 8 --patch 96
  --in-plane-share 0.4 --minutes $MINUTES --val-every 1000 --models-dir $MRISR_MODELS_DIR --export"
if [[ "${1:-}" != "--evaluate-only" ]]; then
  $TRAIN --synthetic-share 0.7 --random-contrast-share 0.7 --run-dir runs/rsd-contrast --export-name res-srdiff-contrast &
  $TRAIN --run-dir runs/rsd-control --export-name res-srdiff-control &
  wait
  mkdir -p "$OUT"
  cp "$MRISR_MODELS_DIR/res-srdiff-contrast.json" "$OUT/model-card-contrast.json"
  cp "$MRISR_MODELS_DIR/res-srdiff-control.json" "$OUT/model-card-control.json"
fi
METHODS="interpolation:kind=bspline res-srdiff res-srdiff:model=res-srdiff-control res-srdiff:model=res-srdiff-contrast"
$PY -m inference_backend benchmark --suite clinical --out "$OUT/clinical" --progress none --methods "$METHODS"
$PY -m inference_backend benchmark --suite dev --cases through-plane --out "$OUT/dev" --progress none --methods "$METHODS"
