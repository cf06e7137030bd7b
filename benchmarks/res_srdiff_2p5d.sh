#!/usr/bin/env bash
# Res-SRDiff with 2.5D context: the up-sampled LR slices 2 either side as extra inputs (their
# first-layer weights start at zero, so the network starts as the bundled 2D one), fine-tuned
# 75 min on the 2-core CPU with the context given (80% of pairs) or not (20%: scan adaptation
# trains without neighbours), then scored beside the bundled model on the tuning slabs and the
# development suite's through-plane cases. Not bundled: it did not help (README, Res-SRDiff).
#
#   benchmarks/res_srdiff_2p5d.sh                  # train, export to runs/models-2p5d, evaluate
#   benchmarks/res_srdiff_2p5d.sh --evaluate-only  # evaluate an existing export
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export MRISR_MODELS_DIR=runs/models-2p5d
OUT=benchmarks/results/studies/res-srdiff-2p5d
if [[ "${1:-}" != "--evaluate-only" ]]; then
  $PY -m inference_backend.training.res_srdiff --threads 2 --lr 1e-4 --batch 8 --patch 96 --in-plane-share 0.4 \
    --last-step-share 0.5 --context 2 --context-dropout 0.2 --minutes 75 --val-every 1000 --init-from res-srdiff \
    --run-dir runs/res-srdiff-2p5d --models-dir "$MRISR_MODELS_DIR" --export-name res-srdiff-2p5d --export
  cp "$MRISR_MODELS_DIR/res-srdiff-2p5d.json" "$OUT/model-card.json"
fi
$PY -m inference_backend benchmark --suite tuning --cases through-plane-x4 --out "$OUT/tuning" --progress none \
  --methods "res-srdiff res-srdiff:model=res-srdiff-2p5d res-srdiff:adapt_steps=0,model=res-srdiff-2p5d"
$PY -m inference_backend benchmark --suite dev --cases through-plane --out "$OUT/dev" --progress none \
  --methods "interpolation:kind=bspline res-srdiff:model=res-srdiff-2p5d res-srdiff:adapt_steps=0,model=res-srdiff-2p5d"
