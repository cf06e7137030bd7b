#!/usr/bin/env bash
# Res-SRDiff on real non-T1 thick slices (#38): fine-tune the bundled model with half of its
# patches from the acquired in-plane slices (0.5-0.9 mm) of the real clinical FLAIR, T2 and T1
# scans of the training patients (inference_backend/data/clinical.py; p03 and p12 held out),
# degraded along one of their axes like every other patch (the idea behind SMORE/ECLARE). Then
# score it beside the bundled model: on the held-out patients' slice-drop (real truth) and on the
# degraded non-T1 clinical cases (ms_p07 FLAIR, stroke FLAIR/T2), whose bundled-model rows are in
# benchmarks/results/clinical.
#
#   benchmarks/res_srdiff_clinical.sh                  # train (140 min, 1 thread), export to runs/rsd-clinical, evaluate
#   benchmarks/res_srdiff_clinical.sh --evaluate-only  # evaluate an existing export
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export MRISR_MODELS_DIR=runs/rsd-clinical
OUT=benchmarks/results/studies/res-srdiff-clinical
if [[ "${1:-}" != "--evaluate-only" ]]; then
  $PY -m inference_backend.training.res_srdiff --threads 1 --lr 4e-5 --batch 8 --patch 96 --in-plane-share 0.4 --clinical-share 0.5 \
    --minutes 140 --init-from res-srdiff --run-dir runs/res-srdiff-clinical --models-dir "$MRISR_MODELS_DIR" --export-name res-srdiff-clinical --export
  mkdir -p "$OUT"
  cp "$MRISR_MODELS_DIR/res-srdiff-clinical.json" "$OUT/model-card.json"
fi
for contrast in FLAIR T2; do
  $PY -m inference_backend benchmark --suite clinical --cases $contrast --update --out "$OUT/clinical" --progress none \
    --methods "interpolation:kind=bspline res-srdiff:model=res-srdiff-clinical"
done
# the bundled model's rows on the same scans and protocol: benchmarks/results/clinical-real
$PY benchmarks/clinical_real.py --scans p03,p12 --contrasts FLAIR,T2W --slice-drop-only --out "$OUT/slice-drop" \
  --methods "interpolation:kind=bspline res-srdiff:model=res-srdiff-clinical"
