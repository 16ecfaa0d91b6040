#!/usr/bin/env bash
# make cr6: train the original project's VAE family with its own values (--preset cr6), one run
# per arch, into checkpoints/cr6/ARCH/vae.safetensors (git-ignored: 1.2 GB each, not shipped).
# Every run is resumable: interrupt it at will and rerun `make cr6` to continue from its last
# state, written every 20 steps. `make bench` scores whatever is there on Set12 sigma 25, with
# the number of steps trained so far. On a 2-core CPU one step takes tens of seconds
# (README); on a GPU the whole set takes minutes. ARCHS="simple unet" picks a subset; TIME_LIMIT=MIN
# stops each run cleanly after that many minutes (rerun to continue).
set -euo pipefail
data=${1:-../shared/datasets}
archs=${ARCHS:-simple unet resblock}
bin=.venv/bin
for need in train400 set12 old_photos; do
  [ -d "$data/$need" ] || { echo "cr6: $data/$need not found (set DATA=...; see datasets/README.md)" >&2; exit 1; }
done
for arch in $archs; do
  mkdir -p "checkpoints/cr6/$arch"
  resume=()
  [ -f "checkpoints/cr6/$arch/vae.last.safetensors" ] && resume=(--resume)  # continue an interrupted run
  start=$(date +%s)
  $bin/restore train-vae --clean "$data/train400" --real "$data/old_photos" --val "$data/set12" \
    --arch "$arch" --preset cr6 --seed 0 --checkpoint-every 20 "${resume[@]}" ${TIME_LIMIT:+--time-limit "$TIME_LIMIT"} -o "checkpoints/cr6/$arch/vae.safetensors"
  echo "cr6: $arch took $(( $(date +%s) - start )) s this time" >&2
done
