#!/usr/bin/env bash
# MSP-SR's staged training and its ablation (the paper's Table 4 and Figure 3-4), reproducible.
#
# Bundled model (inference_backend/models): msp-sr (stage 2, ControlNet on brain MRI); stage 1 (msp-sr-base,
# out-of-domain photographs) is trained again here, not bundled. The ablation's other models go to
# runs/ablation-models (not committed). Target domain: chris_t1 (kept out of the in-domain
# stage); evaluation: the held-out seg3D_MR slab, 10 samples.
#
#   target-only            : SR3 trained from scratch on chris_t1
#   in-domain + target     : SR3 from scratch on brain MRI, then a ControlNet on chris_t1
#   OOD + in-domain + target (MSP-SR): stage 1 -> stage 2 -> ControlNet fine-tuned on chris_t1
#   in-domain (no target)  : msp-sr as shipped, for the few-shot comparison
#
# Budgets are wall-clock minutes on the 2-core CPU (1 thread each, runs in parallel).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
TRAIN="$PY -m inference_backend.training.msp_sr --threads 1"
ABLATION=runs/ablation-models
TARGET=../shared/data/real/chris_t1.nii.gz
mkdir -p "$ABLATION"

if [[ "${1:-}" != "--evaluate-only" ]]; then
  $TRAIN --stage out-of-domain --lr 2e-4 --minutes 20 --export
  $TRAIN --stage in-domain --lr 2e-4 --minutes 20 --export &
  $TRAIN --stage scratch --source brain --lr 2e-4 --minutes 20 --export --models-dir "$ABLATION" --export-name msp-sr-in-domain-scratch &
  wait
  $TRAIN --stage target --hr "$TARGET" --lr 2e-4 --minutes 8 --export --models-dir "$ABLATION" --export-name msp-sr-staged-target &
  MRISR_MODELS_DIR="$ABLATION" $TRAIN --stage target --hr "$TARGET" --start-from msp-sr-in-domain-scratch --lr 2e-4 --minutes 8 \
    --export --models-dir "$ABLATION" --export-name msp-sr-in-domain-target &
  $TRAIN --stage scratch --hr "$TARGET" --lr 2e-4 --minutes 16 --export --models-dir "$ABLATION" --export-name msp-sr-target-only &
  wait
  # The shipped msp-sr: the in-domain stage continued for 85 min from its 20-min export (the
  # ablation above used the 20-min export, sha256 be3a6517...), then evaluated on its own.
  $TRAIN --stage in-domain --start-from msp-sr --run-dir runs/msp-sr-continued --lr 2e-4 --minutes 85 --export
fi

MRISR_MODELS_DIR="$ABLATION" $PY -m inference_backend benchmark --suite slab --cases through-plane-x4 --samples 10 \
  --out benchmarks/results/slab/msp-sr-ablation --progress none --methods \
  "interpolation:kind=bspline msp-sr:model=msp-sr-target-only msp-sr:model=msp-sr-in-domain-target msp-sr:model=msp-sr-staged-target msp-sr:model=msp-sr"
OMP_NUM_THREADS=1 $PY -m inference_backend benchmark --suite dev --cases seg3D_MR_through-plane --samples 10 --out benchmarks/results/dev/msp-sr \
  --progress none --methods "interpolation:kind=bspline msp-sr"
# Few-shot (a user's `mrisr finetune`): 8 min on chris_t1's slices, evaluated on the held-out seg3D_MR slab
MRISR_MODELS_DIR=runs/fewshot-models $PY -m inference_backend finetune msp-sr --hr "$TARGET" --out msp-sr-chris --minutes 8 --threads 1
MRISR_MODELS_DIR=runs/fewshot-models $PY -m inference_backend benchmark --suite slab --cases through-plane-x4 --samples 10 \
  --out benchmarks/results/slab/msp-sr-fewshot --progress none --methods "interpolation:kind=bspline msp-sr msp-sr:model=msp-sr-chris"
# ... with a 5x lower learning rate (is it forgetting?), and in the other direction (seg3D_MR -> chris_t1's slab)
$PY -m inference_backend.training.msp_sr --stage target --hr "$TARGET" --start-from msp-sr --lr 2e-5 --minutes 8 --threads 1 --export \
  --models-dir runs/fewshot-models --export-name msp-sr-chris-lr2e-5 --run-dir runs/ft-lr2e-5
MRISR_MODELS_DIR=runs/fewshot-models $PY -m inference_backend benchmark --suite slab --cases through-plane-x4 --samples 10 \
  --out benchmarks/results/slab/msp-sr-fewshot/lower-lr --progress none --methods "interpolation:kind=bspline msp-sr:model=msp-sr-chris-lr2e-5"
MRISR_MODELS_DIR=runs/fewshot-models $PY -m inference_backend finetune msp-sr --hr ../shared/data/real/seg3D_MR.nii.gz --out msp-sr-seg3d --minutes 8 --threads 1
MRISR_MODELS_DIR=runs/fewshot-models $PY -m inference_backend benchmark --suite tuning --cases through-plane-x4 --samples 10 \
  --out benchmarks/results/slab/msp-sr-fewshot/reverse --progress none --methods "interpolation:kind=bspline msp-sr msp-sr:model=msp-sr-seg3d"
# ... fine-tuned for one protocol only (x4 thick slices, no in-plane pairs), evaluated as above
MRISR_MODELS_DIR=runs/fewshot-models $PY -m inference_backend finetune msp-sr --hr "$TARGET" --out msp-sr-chris-x4 --minutes 8 --threads 1 \
  --factors 4 --in-plane-share 0
MRISR_MODELS_DIR=runs/fewshot-models $PY -m inference_backend benchmark --suite slab --cases through-plane-x4 --samples 10 \
  --out benchmarks/results/slab/msp-sr-fewshot/protocol-x4 --progress none --methods "interpolation:kind=bspline msp-sr msp-sr:model=msp-sr-chris-x4"
# ... with half of the pairs rehearsed from the in-domain data (replay), and the control: the same 8 minutes on the
# in-domain data alone (no target scan), both for the x4 protocol
$PY -m inference_backend.training.msp_sr --stage target --hr "$TARGET" --start-from msp-sr --replay 0.5 --factors 4 --in-plane-share 0 \
  --minutes 8 --threads 1 --export --models-dir runs/fewshot-models --export-name msp-sr-chris-replay --run-dir runs/ft-replay
$PY -m inference_backend.training.msp_sr --stage in-domain --start-from msp-sr --factors 4 --in-plane-share 0 \
  --minutes 8 --threads 1 --export --models-dir runs/fewshot-models --export-name msp-sr-indomain-x4 --run-dir runs/ft-indomain-x4
MRISR_MODELS_DIR=runs/fewshot-models $PY -m inference_backend benchmark --suite slab --cases through-plane-x4 --samples 10 \
  --out benchmarks/results/slab/msp-sr-fewshot/replay --progress none \
  --methods "interpolation:kind=bspline msp-sr msp-sr:model=msp-sr-chris-replay msp-sr:model=msp-sr-indomain-x4"
