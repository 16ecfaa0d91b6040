#!/usr/bin/env bash
# Quick A/B of candidate checkpoints: `restore restore --method auto` on the Set12 sets that the
# last `make bench` degraded (bench-results/data), scored by `restore evaluate`; one line per
# candidate and set (mean PSNR/SSIM; mask F1/precision/recall pooled over all pixels at the
# repair threshold, and the false-alarm pixel count, which is all a noise-only set has).
#
#   scripts/compare_auto.sh checkpoints /tmp/cand/new     # each DIR: mask_unet + vae .safetensors
#
# ~2 min per candidate on 2 cores (`bench.run --checkpoints DIR` takes ~10 per section set).
# EXTRA="--mask-threshold 0.9" passes flags to `restore restore`; SETS picks the sets.
set -euo pipefail
bin=${BIN:-.venv/bin}
data=${BENCH_DATA:-bench-results/data}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0
for dir in "$@"; do
  n=$((n + 1))  # a folder per candidate, even where two share a base name
  for set in ${SETS:-gaussian15 gaussian25 gaussian50 scratches old-photo}; do
    [ -d "$data/$set/degraded" ] || { echo "compare_auto: $data/$set not found (run make bench first)" >&2; exit 1; }
    out="$work/$n-$set"
    # shellcheck disable=SC2086  # EXTRA is a list of flags
    "$bin/restore" restore "$data/$set/degraded" -o "$out/img" --save-masks "$out/masks" \
      --checkpoints "$dir" ${EXTRA:-} -q >/dev/null
    "$bin/restore" evaluate "$out/img" --reference "$data/$set/clean" --masks "$out/masks" \
      --true-masks "$data/$set/masks" --json -q 2>/dev/null | tail -n 1 | "$bin/python" -c '
import json, sys
r = json.load(sys.stdin); m = r["methods"][0]; p = r["masks"]["pooled"]
psnr, ssim, f1, prec, rec, fp = m["psnr_mean"], m["ssim_mean"], p["f1"], p["precision"], p["recall"], p["fp"]
print(f"{sys.argv[1]:<24} {sys.argv[2]:<11} PSNR {psnr:.3f} SSIM {ssim:.4f} | F1 {f1:.3f} P {prec:.3f} R {rec:.3f} false alarms {fp}")
' "$dir" "$set"
  done
done
