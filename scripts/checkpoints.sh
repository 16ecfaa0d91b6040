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
# The scratch/dust detector: online damage (all defect kinds, bright and dark, with and without
# noise/blur) drawn afresh for every batch from Train400.
$bin/restore train-mask --online "$data/train400" -o checkpoints/mask_unet.safetensors --steps 3000 --seed 0
echo "checkpoints: mask model took $(( $(date +%s) - start )) s" >&2
