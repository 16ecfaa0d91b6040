#!/usr/bin/env bash
# make checkpoints: retrain the shipped models from the standard sets with fixed seeds.
# Each checkpoint's header records its wall time and machine; `make bench` prints them.
set -euo pipefail
data=${1:-../shared/datasets}
bin=.venv/bin
for need in train400 set12 old_photos; do
  [ -d "$data/$need" ] || { echo "checkpoints: $data/$need not found (set DATA=...; see datasets/README.md)" >&2; exit 1; }
done
mkdir -p checkpoints
# The detector's last GPU stages and the whole restoration model ran on a lent GPU (an NVIDIA
# H200, scripts/gpu_session.sh): too many pixels for a CPU (~17 h here for the detector's two
# stages, ~80 h for the restoration model). They run where JAX sees an accelerator
# (GPU_STAGES=auto), or always/never with GPU_STAGES=yes/no; without them the detector is its CPU
# stages' result and the restoration model the earlier 64-wide one's CPU stages. `--stop-at` replays
# the step at which a GPU stage hit its time limit, and `--checkpoint-every` its validation steps.
gpu=${GPU_STAGES:-auto}
if [ "$gpu" = auto ]; then
  gpu=$($bin/python -c 'import jax; print("no" if jax.default_backend() == "cpu" else "yes")')
fi
# promote STAGE NAME: the stage's model (and its curves) becomes the shipped one
promote() { for f in "checkpoints/$1/$2".{safetensors,metrics.jsonl,curves.png}; do cp "$f" checkpoints/; done; }
start=$(date +%s)
mkdir -p checkpoints/stage1 checkpoints/stage2 checkpoints/stage3 checkpoints/stage4 checkpoints/stage5 checkpoints/stage6 checkpoints/stage7
# The scratch/dust detector: online damage drawn afresh for every batch from Train400, a mixture
# of clean scans, Gaussian noise (sigma 0..50) and full old-photo ageing over every defect kind.
# Four stages (each a resumable run): 3000 steps of 16 x 96 px crops; 3000 more of 12 x 128 px
# crops (more context per crop) from those weights with a fresh, lower learning-rate schedule;
# 1500 more of 8 x 160 px crops at half that rate; 4000 more of 6 x 192 px at 3e-4 (71 min: val F1
# 0.576 -> 0.587 and repair PSNR 32.59 -> 32.74 dB on the same 192 px validation crops; hybrid on
# Set12 `scratches` 34.23 -> 34.82 dB). Then, on the GPU, 32 x 160 px crops: 9542 steps of a
# 10911-step schedule at 3e-4 (6 min; best val F1 0.623 at step 8178), and from that best model
# 5251 steps of a 6000-step schedule at 1.5e-4, seed 1 (4 min; val F1 0.637, on images the
# earlier stages trained on: the split then followed --seed). Two more GPU runs (2026-11-27, H200,
# seeds 2 and 3, 13836 + 4096 steps) moved Set12 mask F1 by -0.006 / -0.015 on `scratches` and
# +0.016 on `old-photo` and flagged more of noise-only images: saturated, not used. (The shipped file's
# `init` chain names the paths its stages had when they ran, on this machine and the GPU's.)
# Then, on the CPU (stage 7): 2400 steps of 8 x 160 px at 1.5e-4, seed 6, with a quarter of the crops
# drawn without any defect (--free-share 0.25; every mixture member puts defects in every crop,
# so the detector had never seen a photo without one): 42 min, val F1 0.636 (best at the last
# step); it flags 8-45 % fewer pixels of defect-free images (docs/experiments.md says what that gave).
$bin/restore train-mask --online "$data/train400" -o checkpoints/stage1/mask_unet.safetensors --steps 3000 --seed 0
$bin/restore train-mask --online "$data/train400" -o checkpoints/stage2/mask_unet.safetensors \
  --init checkpoints/stage1/mask_unet.safetensors --crop 128 --batch 12 --steps 3000 --lr 1e-3 --seed 0
$bin/restore train-mask --online "$data/train400" -o checkpoints/stage3/mask_unet.safetensors \
  --init checkpoints/stage2/mask_unet.safetensors --crop 160 --batch 8 --steps 1500 --lr 5e-4 --seed 0
$bin/restore train-mask --online "$data/train400" -o checkpoints/stage4/mask_unet.safetensors \
  --init checkpoints/stage3/mask_unet.safetensors --crop 192 --batch 6 --steps 4000 --lr 3e-4 --seed 0 \
  --checkpoint-every 500
if [ "$gpu" = yes ]; then
  $bin/restore train-mask --online "$data/train400" -o checkpoints/stage5/mask_unet.safetensors \
    --init checkpoints/stage4/mask_unet.safetensors --crop 160 --batch 32 --steps 10911 --stop-at 9542 \
    --lr 3e-4 --seed 0 --checkpoint-every 1363
  $bin/restore train-mask --online "$data/train400" -o checkpoints/stage6/mask_unet.safetensors \
    --init checkpoints/stage5/mask_unet.safetensors --crop 160 --batch 32 --steps 6000 --stop-at 5251 \
    --lr 1.5e-4 --seed 1 --split-seed 1 --checkpoint-every 750  # it ran before --init passed on the split
  last=stage6
else
  echo "checkpoints: no accelerator: the detector's GPU stages skipped (GPU_STAGES=yes forces them)" >&2
  last=stage4
fi
$bin/restore train-mask --online "$data/train400" -o checkpoints/stage7/mask_unet.safetensors \
  --init "checkpoints/$last/mask_unet.safetensors" --crop 160 --batch 8 --steps 2400 --lr 1.5e-4 --seed 6 \
  --free-share 0.25 --checkpoint-every 300
# Last, on the GPU again (2026-11-27, H200, scripts/gpu_session.sh with MASK_ARGS='--distill-views 4',
# 398 s beside another job): 10,422 steps of 32 x 160 px crops at 3e-4, half the loss pulling one
# pass toward the stage-7 model's own mean over four flips/rotations (--distill-views 4), a quarter
# of the crops defect-free; best at step 10,416. Validation F1 0.636 -> 0.645 (one view) and
# 0.647 -> 0.653 (four), repair PSNR 31.70 -> 31.81 / 32.08 -> 32.15 dB; one pass still falls
# short of four (docs/experiments.md has what it gave on whole images).
if [ "$gpu" = yes ]; then
  $bin/restore train-mask --online "$data/train400" -o checkpoints/mask_unet.safetensors \
    --init checkpoints/stage7/mask_unet.safetensors --crop 160 --batch 32 --steps 10422 --lr 3e-4 --seed 0 \
    --free-share 0.25 --distill-views 4 --data-workers 7 --checkpoint-every 1302
else
  promote stage7 mask_unet
fi
echo "checkpoints: mask model took $(( $(date +%s) - start )) s" >&2
# The restoration model: triplet-domain latent translation (VAE for Y u Z, VAE for X, mapping),
# mask-conditioned in training, half-resolution latents, residual output, blind to noise
# (sigma 0..50), trained end to end and validated on Set12 at sigma 25. (`restore restore` runs it
# with an empty mask channel and inpaints the detector's mask afterwards: restore_cli/restoration/
# vae_method.py says why. A second stage on `--degrade defects+old-photo --no-mask-input` was
# tried and lost 0.3-1.1 dB on every Set12 row but old-photo, where it gained 0.2 dB: not used.)
start=$(date +%s)
if [ "$gpu" = yes ]; then
  # 40 wide with 2 mapping blocks (125 instead of the earlier 64-wide model's 357 kFLOP per pixel:
  # issue 5's 0.5 s per image), from scratch on the H200 (2026-11-27, scripts/gpu_session.sh
  # JOBS=vae_small, twice): 11107 steps of 16 x 128 px at peak 1e-3 (5 min, val 29.72 dB), then
  # 9667 more from it at peak 3e-4 with another seed (5 min): 29.81 dB, as good as the 64-wide
  # model's 29.83 after its 3.4 CPU hours and 8 GPU minutes (docs/experiments.md).
  $bin/restore train-vae --clean "$data/train400" --real "$data/old_photos" --val "$data/set12" \
    -o checkpoints/stage1/vae.safetensors --width 40 --map-blocks 2 --crop 128 --batch 16 \
    --lr 1e-3 --steps 11107 --checkpoint-every 1388 --seed 0
  $bin/restore train-vae --clean "$data/train400" --real "$data/old_photos" --val "$data/set12" \
    -o checkpoints/vae.safetensors --init checkpoints/stage1/vae.safetensors --crop 128 --batch 16 \
    --lr 3e-4 --steps 9667 --checkpoint-every 1208 --seed 1
else
  echo "checkpoints: no accelerator: training the earlier 64-wide restoration model on the CPU instead (GPU_STAGES=yes forces the GPU recipe)" >&2
  # Three stages (3.4 h here): 2500 steps of 16 x 64 px crops (val 29.25 dB); 1500 of 8 x 96 px
  # from it at a lower peak rate with another seed (29.40 at step 1250; auto +0.10-0.11 dB at sigma
  # 15/25/50); 1500 of 4 x 128 px at peak 1e-4, seed 2 (44 min, 29.43 at step 1000). It shipped
  # until 2026-11-27 with two more stages on the H200 (5636 + 7677 steps of 16 x 128 px at peak
  # 1e-4, seeds 3 and 4, 4 + 4 min: 29.69 and 29.83 dB).
  $bin/restore train-vae --clean "$data/train400" --real "$data/old_photos" --val "$data/set12" \
    -o checkpoints/stage1/vae.safetensors --steps 2500 --checkpoint-every 250 --seed 0
  $bin/restore train-vae --clean "$data/train400" --real "$data/old_photos" --val "$data/set12" \
    -o checkpoints/stage2/vae.safetensors --init checkpoints/stage1/vae.safetensors --crop 96 --batch 8 \
    --lr 3e-4 --steps 1500 --checkpoint-every 250 --seed 1
  $bin/restore train-vae --clean "$data/train400" --real "$data/old_photos" --val "$data/set12" \
    -o checkpoints/stage3/vae.safetensors --init checkpoints/stage2/vae.safetensors --crop 128 --batch 4 \
    --lr 1e-4 --steps 1500 --checkpoint-every 250 --seed 2
  promote stage3 vae
fi
echo "checkpoints: restoration model took $(( $(date +%s) - start )) s" >&2
rm -rf checkpoints/stage[1-6] checkpoints/*.last.safetensors  # intermediate and resumable state: not needed to use the models
