#!/usr/bin/env bash
# Every committed benchmark result, in the order they were produced (2-core CPU, nothing else running).
set -euo pipefail
cd "$(dirname "$0")/.."
MRISR=".venv/bin/python -m inference_backend"
# Res-SRDiff's one-sample estimate chosen on the training scan's slabs: the posterior mean (auto) vs the 4-step chain
# (made before the adaptation to the scan existed: adapt_steps=0 reproduces it)
$MRISR benchmark --suite tuning --cases chris_t1 --out benchmarks/results/tuning/res-srdiff-sampler --progress none \
  --methods "interpolation:kind=bspline res-srdiff:sampler=deterministic,adapt_steps=0 res-srdiff:sampler=mean,adapt_steps=0"
# ... and its self-supervised adaptation to the scan, chosen on chris_t1 and spm152 (seen by no model)
$MRISR benchmark --suite tuning --cases through-plane --out benchmarks/results/tuning/res-srdiff-adaptation --progress none \
  --methods "interpolation:kind=bspline res-srdiff:adapt_steps=0 res-srdiff:adapt_steps=100 res-srdiff res-srdiff:adapt_steps=500"
.venv/bin/python benchmarks/axis_spectrum.py
$MRISR benchmark --suite dev --progress none \
  --methods "interpolation:kind=linear interpolation:kind=bspline interpolation:kind=lanczos interpolation:kind=zero-fill res-srdiff res-srdiff:adapt_steps=0 res-srdiff:sampler=deterministic"
$MRISR benchmark --suite dev --cases seg3D_MR_through-plane --samples 8 --out benchmarks/results/dev/uncertainty --progress none \
  --methods "interpolation:kind=bspline res-srdiff"
# ... when the slice profile is known (Gaussian, as in the dev suite) and named as the acquisition model
$MRISR benchmark --suite dev --cases seg3D_MR_through-plane --out benchmarks/results/dev/consistency --progress none \
  --methods "interpolation:kind=bspline res-srdiff res-srdiff:consistency=gaussian-slices"
# ... and whether the two slice orientations could be fused better, or the result's spectrum corrected
.venv/bin/python benchmarks/orientation_fusion.py
# ... and whether 2.5D context (neighbouring LR slices as inputs, 75 min of fine-tuning) helps
benchmarks/res_srdiff_2p5d.sh
.venv/bin/python benchmarks/speed.py --device cpu
.venv/bin/python benchmarks/data_engine.py
# SRMRI: the paper's Table 4 on the held-out slab (k, fusion, noise scales), and one model at x2, x3, x4.
# The ablation and the first through-plane tuning run date from when fusion was on for thick slices by
# default (their tables label rows without `fusion=true`); the explicit option reproduces them.
# All SRMRI runs on thick slices above the "Fewer InverseSR steps" line were made before k,
# corrector_steps, dps_gradient and rho became auto: add `k=2` (where no k is given), `corrector_steps=1`,
# `dps_gradient=network` and `rho=8` (where no rho is given) to their thick-slice entries to reproduce them.
$MRISR benchmark --suite slab --cases through-plane-x4 --out benchmarks/results/slab/srmri-ablation --progress none --methods \
  "interpolation:kind=bspline srmri:k=1 srmri:k=2,fusion=true srmri:k=3,fusion=true srmri:k=5,fusion=true srmri:k=2,fusion=false srmri:steps=10,fusion=true srmri:steps=40,fusion=true"
# SRMRI options are chosen on a training scan's slabs (suite `tuning`), never on the held-out scan
$MRISR benchmark --suite tuning --cases in-plane --out benchmarks/results/tuning/srmri/in-plane --progress none --methods \
  "interpolation:kind=bspline interpolation:kind=zero-fill srmri srmri:consistency=none srmri:consistency=none,rho=2 srmri:consistency=none,rho=0"
$MRISR benchmark --suite tuning --cases through-plane-x4 --out benchmarks/results/tuning/srmri/through-plane --progress none --methods \
  "interpolation:kind=bspline srmri:fusion=true srmri:fusion=true,rho=2 srmri:fusion=true,rho=0"
# ... which chose fusion off for thick slices (fusion=auto):
$MRISR benchmark --suite tuning --cases through-plane-x4 --out benchmarks/results/tuning/srmri/through-plane-fusion --progress none \
  --methods "srmri:fusion=false srmri:k=1"
$MRISR benchmark --suite slab --out benchmarks/results/slab/srmri-scales --progress none --methods "interpolation:kind=bspline srmri"
$MRISR benchmark --suite dev --cases seg3D_MR --out benchmarks/results/dev/srmri --progress none \
  --methods "interpolation:kind=bspline interpolation:kind=zero-fill srmri"
# MSP-SR: stages, ablation and calibration (trains the ablation's models unless --evaluate-only)
benchmarks/msp_sr_stages.sh --evaluate-only
# InverseSR: slice imputation (1 of 4 and 1 of 8 slices), lesion fills, CPU cost on a whole volume
# The latent anchor (1) chosen on the training scan's slab, then the held-out slab. These runs date from
# before the misfit option (their tables label rows without `misfit=none`); the explicit option reproduces them.
$MRISR benchmark --suite imputation-tuning --out benchmarks/results/tuning/imputation --progress none \
  --methods "interpolation:kind=bspline inverse-sr:anchor=0,misfit=none inverse-sr:anchor=1,misfit=none"
$MRISR benchmark --suite imputation-tuning --out benchmarks/results/tuning/imputation/anchor-3 --progress none --methods "inverse-sr:anchor=3,misfit=none"
$MRISR benchmark --suite imputation-tuning --out benchmarks/results/tuning/imputation/anchor-10 --progress none --methods "inverse-sr:anchor=10,misfit=none"
# The decoder's misfit at the acquired slices carried to the slices between them (misfit=linear) and the
# anchor again with it (these ran with anchor 1 as the default: 10 is named where it was chosen afterwards)
$MRISR benchmark --suite imputation-tuning --out benchmarks/results/tuning/imputation/misfit --progress none --methods \
  "interpolation:kind=linear interpolation:kind=bspline inverse-sr:anchor=1,misfit=none inverse-sr:anchor=1 inverse-sr:anchor=1,misfit=bspline inverse-sr:anchor=0 inverse-sr:anchor=3"
$MRISR benchmark --suite imputation-tuning --out benchmarks/results/tuning/imputation/misfit-anchor-10 --progress none --methods "inverse-sr:anchor=10"
# ... which chose misfit=linear, anchor=10 (the defaults); then the held-out slab
$MRISR benchmark --suite imputation --out benchmarks/results/imputation --progress none --methods \
  "interpolation:kind=linear interpolation:kind=bspline inverse-sr inverse-sr:anchor=1 inverse-sr:anchor=1,misfit=none inverse-sr:anchor=0,misfit=none inverse-sr:keep_acquired=false"
# ... and the control: one Adam step instead of 40 (what the prior's encode-decode of the B-spline start gives)
$MRISR benchmark --suite imputation --out benchmarks/results/imputation/steps-1 --progress none --methods "inverse-sr:steps=1"
.venv/bin/python benchmarks/lesion_fill.py
# ... and whether InverseSR's prior adds anything inside a lesion beyond the neighbourhood fill
.venv/bin/python benchmarks/lesion_fill_detail.py
.venv/bin/python benchmarks/stroke_case.py
.venv/bin/python benchmarks/inverse_sr_cost.py --steps 5  # per tile; the default 40 costs about 8x the inversion time
.venv/bin/python benchmarks/soak.py  # 200 runs interrupted at random into one output root: nothing lost, nothing left
# MSP-SR's one-sample estimate chosen on the tuning slab: the deterministic path from the prior's mean vs one draw
$MRISR benchmark --suite tuning --cases chris_t1-slab_through-plane-x4 --out benchmarks/results/tuning/msp-sr-sampler --progress none \
  --methods "interpolation:kind=bspline msp-sr msp-sr:sampler=stochastic"
# The headline: every method's default on every acquisition, against its classical floor (the README table, auto's choices)
$MRISR benchmark --suite headline --out benchmarks/results/headline --progress none \
  --methods "interpolation:kind=linear interpolation:kind=bspline interpolation:kind=zero-fill res-srdiff srmri msp-sr inverse-sr"
.venv/bin/python benchmarks/headline_table.py
# Batches: throughput of the engines, and a simulated cluster losing a node
.venv/bin/python benchmarks/batch_throughput.py
.venv/bin/python benchmarks/batch_scale_out.py
# Speed (#26): the profile before the work, the cheaper Res-SRDiff adaptation and fewer MSP-SR steps chosen on the tuning
# slabs and checked on the development cases, then the speed table (and the rates the panel quotes), and the profile after
.venv/bin/python benchmarks/profile_methods.py --methods interpolation,res-srdiff --size head --tag before
# (the adaptation-cost run while res-srdiff's default was 200 steps of 96 x 96 at 5e-5: its rows named "res-srdiff" are that)
$MRISR benchmark --suite tuning --cases through-plane --out benchmarks/results/tuning/res-srdiff-adaptation-cost --progress none --methods \
  "interpolation:kind=bspline res-srdiff res-srdiff:adapt_patch=64 res-srdiff:adapt_patch=64,adapt_steps=100,adapt_lr=0.0001 res-srdiff:adapt_patch=64,adapt_steps=100 res-srdiff:adapt_patch=64,adapt_steps=50,adapt_lr=0.0002"
# (run while msp-sr's default was 10 DDIM steps: its rows named "msp-sr" are steps=10)
$MRISR benchmark --suite tuning --cases x4 --out benchmarks/results/tuning/msp-sr-steps --progress none --methods "interpolation:kind=bspline msp-sr msp-sr:steps=5 msp-sr:steps=4"
$MRISR benchmark --suite headline --cases through-plane --out benchmarks/results/dev/speed-quality --progress none --methods \
  "interpolation:kind=bspline res-srdiff res-srdiff:adapt_steps=200,adapt_patch=96,adapt_lr=5e-5 res-srdiff:adapt_steps=200,adapt_patch=64,adapt_lr=5e-5 msp-sr msp-sr:steps=5 msp-sr:steps=3"
.venv/bin/python benchmarks/speed.py --device cpu
.venv/bin/python benchmarks/profile_methods.py --methods interpolation,res-srdiff,msp-sr --size head --tag after
.venv/bin/python benchmarks/profile_methods.py --methods srmri --size half --tag after-srmri-half
# Variance calibration (#27): fitted on a training scan's slab, written into the model cards; measured on the held-out T1
.venv/bin/python benchmarks/calibrate_variance.py --methods res-srdiff,msp-sr --samples 8
$MRISR benchmark --suite headline --cases seg3D_MR_through-plane --samples 8 --out benchmarks/results/studies/variance-calibration/seg3D_MR --progress none --methods "res-srdiff msp-sr"
# Lesion fills on the MS patient's expert mask
.venv/bin/python benchmarks/lesion_fill_ms.py
# The headline again, with the new defaults
$MRISR benchmark --suite headline --out benchmarks/results/headline --progress none \
  --methods "interpolation:kind=linear interpolation:kind=bspline interpolation:kind=zero-fill res-srdiff srmri msp-sr inverse-sr"
.venv/bin/python benchmarks/headline_table.py
# Fewer InverseSR steps (#26), chosen on the training scan's slabs; SRMRI's cost against its quality on the tuning slabs
# (SRMRI's thick-slice runs were made when k=2, corrector_steps=1, the network's DPS gradient and rho=8 were fixed
# defaults: spelled out here, the results' labels name only what differed from them)
$MRISR benchmark --suite imputation-tuning --out benchmarks/results/tuning/imputation/steps --progress none \
  --methods "interpolation:kind=linear inverse-sr:steps=40 inverse-sr:steps=20 inverse-sr:steps=10 inverse-sr:steps=5"
$MRISR benchmark --suite tuning --cases through-plane-x4 --out benchmarks/results/tuning/srmri/speed --progress none --methods \
  "interpolation:kind=bspline srmri:k=2,corrector_steps=1,dps_gradient=network,rho=8 srmri:k=2,corrector_steps=0,dps_gradient=network,rho=8 srmri:k=4,corrector_steps=1,dps_gradient=network,rho=8 srmri:k=2,corrector_steps=1,steps=10,dps_gradient=network,rho=8 srmri:consistency=gaussian-slices srmri:consistency=box-slices"
$MRISR benchmark --suite tuning --cases in-plane --out benchmarks/results/tuning/srmri/speed-in-plane --progress none --methods \
  "interpolation:kind=bspline srmri srmri:corrector_steps=0 srmri:corrector_steps=0,k=4"
$MRISR benchmark --suite tuning --cases through-plane-x4 --out benchmarks/results/tuning/srmri/speed-combined --progress none --methods \
  "srmri:k=2,corrector_steps=0,steps=10,dps_gradient=network,rho=8 srmri:k=2,corrector_steps=0,steps=14,dps_gradient=network,rho=8 srmri:corrector_steps=0,k=4,dps_gradient=network,rho=8"
# ... fewer noise scales on top of k=4 without the corrector (then the auto schedule for thick slices)
$MRISR benchmark --suite tuning --cases through-plane-x4 --out benchmarks/results/tuning/srmri/speed-steps --progress none --methods \
  "srmri:k=4,corrector_steps=0,dps_gradient=network,rho=8 srmri:k=4,corrector_steps=0,dps_gradient=network,rho=8,steps=16 srmri:k=4,corrector_steps=0,dps_gradient=network,rho=8,steps=14 srmri:k=4,corrector_steps=0,dps_gradient=network,rho=8,steps=12"
# SRMRI's DPS gradient without the backward pass through the network (now auto for thick slices: k=1, rho=2, no corrector)
$MRISR benchmark --suite tuning --cases through-plane-x4 --out benchmarks/results/tuning/srmri/jacobian-free --progress none --methods \
  "srmri:k=4,corrector_steps=0,dps_gradient=network,rho=8 srmri:k=4,corrector_steps=0,dps_gradient=jacobian-free,rho=8 srmri:k=4,corrector_steps=0,dps_gradient=jacobian-free,rho=4 srmri:k=2,corrector_steps=0,dps_gradient=jacobian-free,rho=8 srmri:k=2,corrector_steps=0,dps_gradient=jacobian-free,rho=4 srmri:k=1,corrector_steps=0,dps_gradient=jacobian-free,rho=2"
# The changed defaults measured: speed rows, and the headline cases they run on
.venv/bin/python benchmarks/speed.py --device cpu --methods srmri,inverse-sr
$MRISR benchmark --suite headline --update --cases through-plane --out benchmarks/results/headline --progress none \
  --methods "interpolation:kind=linear interpolation:kind=bspline interpolation:kind=zero-fill res-srdiff srmri msp-sr inverse-sr"
$MRISR benchmark --suite headline --update --cases 1of4 --out benchmarks/results/headline --progress none \
  --methods "interpolation:kind=linear interpolation:kind=bspline interpolation:kind=zero-fill res-srdiff srmri msp-sr inverse-sr"
.venv/bin/python benchmarks/headline_table.py
# Few-shot to a new contrast (#27): one FLAIR fine-tunes MSP-SR, another patient's FLAIR measures it, beside the same minutes in-domain
benchmarks/fewshot_flair.sh
# Variance calibration on a non-T1 scan no model saw
$MRISR benchmark --suite clinical --cases ms_p07_FLAIR_5mm --samples 8 --out benchmarks/results/studies/variance-calibration/ms_p07_FLAIR --progress none --methods "res-srdiff msp-sr"
# The CPU inference engine against eager PyTorch, in one run
$MRISR benchmark --suite headline --cases mni152_through-plane --out benchmarks/results/studies/engine-ab --progress none \
  --methods "res-srdiff:engine=onnxruntime res-srdiff:engine=pytorch msp-sr:engine=onnxruntime msp-sr:engine=pytorch"
# Non-T1 quality (#27): SynthSR's contrast randomisation against the same minutes on the bundled mix; ms_p07's T1 as the
# contrast control in the clinical suite
benchmarks/res_srdiff_contrast.sh
$MRISR benchmark --suite clinical --update --cases ms_p07_T1 --out benchmarks/results/clinical --progress none --methods "interpolation:kind=bspline res-srdiff"
# Variance calibration per sample count (2, 4, 8) and for SRMRI; MSP-SR's sampler against its variance map's ranking;
# measured with 8 samples on the held-out T1 and the unseen FLAIR, and with 2 on the held-out T1
.venv/bin/python benchmarks/calibrate_variance.py --methods res-srdiff,msp-sr,srmri --samples 8
$MRISR benchmark --suite tuning --cases chris_t1-slab_through-plane-x4 --samples 8 --out benchmarks/results/tuning/msp-sr-variance --progress none \
  --methods "msp-sr msp-sr:eta=1 msp-sr:eta=1,steps=10"
$MRISR benchmark --suite headline --cases seg3D_MR_through-plane --samples 8 --out benchmarks/results/studies/variance-calibration/seg3D_MR --progress none --methods "res-srdiff msp-sr srmri"
$MRISR benchmark --suite headline --cases seg3D_MR_through-plane --samples 2 --out benchmarks/results/studies/variance-calibration/seg3D_MR-2samples --progress none --methods "res-srdiff msp-sr srmri"
$MRISR benchmark --suite clinical --cases ms_p07_FLAIR_5mm --samples 8 --out benchmarks/results/studies/variance-calibration/ms_p07_FLAIR --progress none --methods "res-srdiff msp-sr srmri"
# Trust (#34) and real clinical thick slices (#38): the lesion suite, the real clinical scans (the held-out patients p03
# and p12 are scored, never trained or tuned on), Res-SRDiff's variance calibrated on two training scans, the trust study
$MRISR benchmark --suite lesions --out benchmarks/results/lesions --progress none --methods "interpolation:kind=bspline res-srdiff msp-sr"
.venv/bin/python benchmarks/clinical_real.py --methods "interpolation:kind=bspline res-srdiff" --panels
.venv/bin/python benchmarks/calibrate_variance.py --methods res-srdiff --samples 8
.venv/bin/python benchmarks/trust_maps.py --methods res-srdiff --samples 4
.venv/bin/python scripts/slice_view_pictures.py
# Res-SRDiff's adaptation stopped by the scan's own held-out slices: decided on the training patients and the tuning
# slabs, then measured on the held-out patients and the degraded clinical cases (an option, not yet the default)
.venv/bin/python benchmarks/clinical_real.py --methods "res-srdiff:adapt_steps=1000,adapt_check=true" --scans p01,p04 --slice-drop-only \
  --out benchmarks/results/studies/adaptation-check/training-patients
$MRISR benchmark --suite tuning --cases through-plane --out benchmarks/results/studies/adaptation-check/tuning --progress none \
  --methods "res-srdiff:adapt_steps=1000,adapt_check=true"
.venv/bin/python benchmarks/clinical_real.py --methods "res-srdiff:adapt_steps=1000,adapt_check=true" --scans p03,p12 --slice-drop-only \
  --out benchmarks/results/studies/adaptation-check/held-out-patients
$MRISR benchmark --suite clinical --out benchmarks/results/studies/adaptation-check/clinical --progress none \
  --methods "interpolation:kind=bspline res-srdiff:adapt_steps=1000,adapt_check=true"
# How far the scan adaptation's seed moves Res-SRDiff's result, and what averaging adaptations gives
.venv/bin/python benchmarks/adaptation_seeds.py
# Every method on a CUDA GPU against the CPU (not run yet: needs a GPU machine for the middle step)
# .venv/bin/python benchmarks/gpu_check.py record; python benchmarks/gpu_check.py replay --device cuda --out DIR; .venv/bin/python benchmarks/gpu_check.py compare DIR
