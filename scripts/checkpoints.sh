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
start=$(date +%s)
# The scratch/dust detector: online damage drawn afresh for every batch from Train400, a mixture
# of clean scans, Gaussian noise (sigma 0..50) and full old-photo ageing over every defect kind.
$bin/restore train-mask --online "$data/train400" -o checkpoints/mask_unet.safetensors --steps 3000 --seed 0
echo "checkpoints: mask model took $(( $(date +%s) - start )) s" >&2
# The restoration model: triplet-domain latent translation (VAE for Y u Z, VAE for X, mapping),
# mask-conditioned, half-resolution latents, residual output, blind to noise (sigma 0..50),
# trained end to end and validated on Set12 at sigma 25.
start=$(date +%s)
$bin/restore train-vae --clean "$data/train400" --real "$data/old_photos" --val "$data/set12" \
  -o checkpoints/vae.safetensors --steps 2500 --checkpoint-every 250 --seed 0
echo "checkpoints: restoration model took $(( $(date +%s) - start )) s" >&2
rm -f checkpoints/*.last.safetensors  # resumable state: large, and not needed to use the models
