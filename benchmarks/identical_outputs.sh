#!/usr/bin/env bash
# Do two commits make the same outputs? The demo (Res-SRDiff, one sample) and three runs with two
# samples (MSP-SR, SRMRI, Res-SRDiff's stochastic sampler) on a 64x64 column of the demo's
# 4 mm input, each commit's code in a worktree of its own; then the SHA-256 of every output
# volume compared (report.json lists them).
#   bash benchmarks/identical_outputs.sh BEFORE_COMMIT AFTER_COMMIT
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$PWD/.venv/bin/python
WORK=$(mktemp -d)
trap 'git worktree remove --force "$WORK/before" 2>/dev/null; git worktree remove --force "$WORK/after" 2>/dev/null; rm -rf "$WORK"' EXIT
for side in before after; do
  commit=$([ $side = before ] && echo "$1" || echo "$2")
  git worktree add -f "$WORK/$side" "$commit" > /dev/null 2>&1
  out=$WORK/out-$side
  mkdir -p "$out"
  (cd "$WORK/$side" && export PYTHONPATH=$WORK/$side &&
   $PY -m inference_backend demo --out "$out/demo" --progress none > /dev/null &&
   $PY -c "from inference_backend.imaging.io import read_volume, write_volume; v = read_volume('$out/demo/mni152_4mm.nii.gz'); write_volume(v.crop((60, 70, 0), (124, 134, v.grid.size[2])), '$out/crop.nii.gz')" &&
   for method in msp-sr srmri res-srdiff; do
     $PY -m inference_backend run "$out/crop.nii.gz" --method $method --samples 2 --scale 1,1,4 --out "$out/$method" --progress none > /dev/null
   done)
done
$PY - "$WORK" <<'PYEOF'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
same = True
for run in ("demo", "msp-sr", "srmri", "res-srdiff"):
    before, after = (json.loads((work / f"out-{side}" / run / "report.json").read_text())["outputs"] for side in ("before", "after"))
    for role in before:
        equal = before[role]["sha256"] == after.get(role, {}).get("sha256")
        same &= equal
        print(f"{run} {role}: {'identical' if equal else 'DIFFERENT'} ({before[role]['sha256'][:16]})")
sys.exit(0 if same else 1)
PYEOF
