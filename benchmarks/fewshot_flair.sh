#!/usr/bin/env bash
# Few-shot to a new contrast (MSP-SR's third stage where HR data are scarce): the in-domain
# model saw T1 only (stroke_T1, synthetic T1-like brains). One FLAIR HR volume (stroke_FLAIR)
# fine-tunes it; another patient's FLAIR (ms_p07, never trained on) evaluates it at the
# clinical thick-slice protocols. The control gets the same minutes of in-domain training with
# the same protocol (factors 4-5, thick slices only), so that a gain is the FLAIR scan's and
# not the extra training's. Each pair: 12 wall-clock minutes, 1 thread each, side by side;
# two pairs with different seeds (how much a rerun moves the margin).
#
#   benchmarks/fewshot_flair.sh            train both seeds, then evaluate
#   benchmarks/fewshot_flair.sh --evaluate-only
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
MODELS=runs/fewshot-flair
MINUTES=12
TRAIN="$PY -m inference_backend.training.msp_sr --start-from msp-sr --factors 4,5 --in-plane-share 0 --minutes $MINUTES --threads 1 --export --models-dir $MODELS"
mkdir -p "$MODELS"
if [[ "${1:-}" != "--evaluate-only" ]]; then
  # seed 0: the fine-tune as a user runs it, and its control
  MRISR_MODELS_DIR="$MODELS" $PY -m inference_backend finetune msp-sr --hr ../shared/data/real/stroke_FLAIR.nii.gz \
    --out msp-sr-flair --minutes $MINUTES --threads 1 --factors 4,5 --in-plane-share 0 &
  $TRAIN --stage in-domain --export-name msp-sr-indomain-45 --run-dir runs/ft-indomain-45 &
  wait
  # seed 1: the same two runs again (the training command: `mrisr finetune` has no --seed)
  $TRAIN --stage target --hr ../shared/data/real/stroke_FLAIR.nii.gz --seed 1 --export-name msp-sr-flair-s1 --run-dir runs/ft-flair-s1 &
  $TRAIN --stage in-domain --seed 1 --export-name msp-sr-indomain-45-s1 --run-dir runs/ft-indomain-45-s1 &
  wait
fi
MRISR_MODELS_DIR="$MODELS" $PY -m inference_backend benchmark --suite clinical --cases ms_p07_FLAIR \
  --out benchmarks/results/studies/fewshot-flair --progress none --methods "interpolation:kind=bspline msp-sr \
  msp-sr:model=msp-sr-flair msp-sr:model=msp-sr-indomain-45 msp-sr:model=msp-sr-flair-s1 msp-sr:model=msp-sr-indomain-45-s1"
