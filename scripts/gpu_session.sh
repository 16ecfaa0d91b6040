#!/usr/bin/env bash
# One lent GPU session: fine-tune the shipped mask detector and restoration model on the GPU,
# side by side, within a time budget, and leave the results in $OUT for the caller to bring back.
#
# Why a script: a lent machine gives 15 minutes of device time in all (start-up included) and at
# most 10 minutes per command, starts bare and cannot download anything. So everything it needs
# travels with the working tree, and the whole job is one command that cannot overrun.
#
#   here:        make gpu-kit          # .gpu/ (git-ignored): the datasets and the pinned flax/optax wheels
#   device tool: run  command="bash scripts/gpu_session.sh"  carry=[".gpu"]  timeout_s=590
#   here again:  cp <files_at>/*.safetensors checkpoints/  &&  make bench
#   (or, to compare candidates first: a folder per candidate holding it as mask_unet.safetensors
#   beside a copy of checkpoints/vae.safetensors (or the other way round), then for each
#   `scripts/compare_auto.sh DIR` (Set12, 2 min), `.venv/bin/python scripts/whole_image_check.py
#   --checkpoints DIR` (scikit-image's photographs, 5 min) and `scripts/auto_threshold_sweep.py
#   ../shared/datasets/train400 --checkpoints DIR` (held-out Train400, 1 min): ship only what the
#   last two do not contradict; `bench.run --checkpoints DIR --only ...` has the full sections)
#
# The machine's own Python (3.12) has JAX with CUDA, numpy, scikit-image, typer, rich, ...;
# flax, optax and pypng are installed from the carried wheels so the NNX API is the pinned one
# (falling back to the machine's own flax/optax if the pinned ones do not import with its JAX).
# Each trainer first runs CALIBRATE steps to measure its steps/s on this card, then trains the
# number of steps that should fit what is left of BUDGET_S (the cosine schedule spans exactly
# those), with --time-limit as the clean stop if the estimate was optimistic.
# The jobs share the GPU (0.9 of its memory, split evenly) and the CPU cores (batch workers, --data-workers).
#
# Environment: OUT (required, where results go), BUDGET_S (seconds for both trainers, default
# 400), DATA (default .gpu/datasets), PYTHON (default python3), CALIBRATE (default 40 steps),
# INIT_DIR (default checkpoints: the models to fine-tune), MASK_ARGS / VAE_ARGS (extra flags; a
# repeated flag's last value wins), MASK_FROM_SCRATCH=1 (train a new detector instead, e.g. with
# MASK_ARGS="--widths 32,64,128,192,256 --lr 2e-3": is capacity what limits its F1?), JOBS (which
# trainers share the card, default "mask vae"; "vae_small" trains a smaller restorer from scratch
# (VAE_SMALL_ARGS, see below); "mask mask_b" trains a second detector beside the
# first, from scratch with MASK_B_ARGS, for an A/B test at equal time, e.g. MASK_FROM_SCRATCH=1
# MASK_ARGS="--lr 2e-3" MASK_B_ARGS="--widths 16,32,64,96,128,160 --lr 2e-3": does a sixth level's
# context (receptive field x2, ~2 % more FLOPs) tell masts and ropes from scratches?), or
# MASK_B_ARGS="--lr 2e-3 --zoom 4" (is a detector trained on scans enlarged 1-4x as good at Set12's
# own scale? A CPU fine-tune of the shipped one with --zoom 4 was not: docs/experiments.md). Every
# detector here trains with --free-share 0.25 (a quarter of the crops defect-free, as the shipped
# one's last stage did: it flags less of defect-free photos); "--free-share 0" in the ARGS undoes it.
# MASK_ARGS="--distill-views 4" fine-tunes the shipped detector toward its own four-view mean (can
# one pass do what `auto`'s four do? Not in 2000 CPU steps nor 10k GPU ones, but the GPU run made a
# better detector at both view counts and is shipped: restore_cli/train/mask.py); judge it with
# scripts/detector_val_scales.py --views 1,4 --own-scale, then compare_auto.sh with EXTRA="--mask-views 1".
#
# Lessons from the lent sessions (2026-11-27): the machine is handed back 30 s after a command
# ends, so a follow-up must be sent at once (prepared before the first returns) or it starts on a
# fresh machine without the first command's /tmp; more fine-tuning of the shipped pair had stopped
# paying by the second session. In the third, three jobs shared the card (JOBS="mask mask_b
# vae_small", 28-35 steps/s each: the online damage on the 16 cores sets the pace, and the step
# estimate left ~35 % of BUDGET_S unused); its vae_small, continued once, is the shipped
# restoration model. Its two detectors (five and six levels, 5 min from scratch) tied on val F1
# (0.617) and beat the shipped detector on Set12 but lost to it on scikit-image's photographs
# (scripts/whole_image_check.py, `scratches` -1.5 dB): not shipped (docs/experiments.md). Judge a
# detector there and on held-out Train400 (scripts/auto_threshold_sweep.py), not on Set12 alone.
# The fourth (JOBS="mask mask_b" BUDGET_S=460 MASK_ARGS='--distill-views 4' MASK_B_ARGS='--init
# checkpoints/mask_unet.safetensors --distill-views 4 --distill-share 1', 483 s of a 590 s call,
# ~28 steps/s each, ~9 min of device time with the start): its `mask` is the shipped detector's
# last stage; one pass still falls short of four views (restore_cli/train/mask.py).
set -uo pipefail
: "${OUT:?set OUT to the folder the results go to}"
data=${DATA:-.gpu/datasets}
py=${PYTHON:-python3}
budget=${BUDGET_S:-400}
calibrate=${CALIBRATE:-40}
init=${INIT_DIR:-checkpoints}
work=$(mktemp -d)
log="$OUT/log.txt"
mkdir -p "$OUT"
exec > >(tee -a "$log") 2>&1

if [ -d .gpu/whl ] && ls .gpu/whl/*.whl >/dev/null 2>&1; then
  $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$work/site" .gpu/whl/*.whl || exit 1
  export PYTHONPATH="$work/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
for need in train400 set12 old_photos; do
  [ -d "$data/$need" ] || { echo "gpu_session: $data/$need not found (run make gpu-kit first)"; exit 1; }
done
cli=("$py" -c 'from restore_cli.cli import main; main()')  # the `restore` command, without installing it
versions() {
  $py - <<'EOF'
import jax, flax, optax, png
import restore_cli.models.unet  # noqa: F401  (the NNX API the project is written for)
print("jax", jax.__version__, "flax", flax.__version__, "optax", optax.__version__, "devices", jax.devices())
EOF
}
# The pinned flax/optax may not import with the machine's JAX: then fall back to the machine's own.
if ! versions && [ -d "$work/site" ]; then
  echo "gpu_session: the pinned flax/optax do not import here; using the machine's own"
  rm -rf "$work/site"/flax* "$work/site"/optax*
  versions || exit 1
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
# The trainers share the card's memory and the CPU cores (the online damage is drawn there, and
# it, not the card, set the pace of the 2026-11-27 runs: ~24 steps/s with 7 workers each).
jobs=(${JOBS:-mask vae})
cores=$(nproc)
workers=$(( cores / ${#jobs[@]} - 1 )); [ "$workers" -ge 1 ] || workers=1
export XLA_PYTHON_CLIENT_MEM_FRACTION=$(awk "BEGIN {print 0.9 / ${#jobs[@]}}")
start=$(date +%s)

# steps_for NAME: steps/s of the calibration run (its metrics JSONL) x the seconds left, less a margin
steps_for() {
  $py - "$1" "$2" <<'EOF'
import json, sys
rows = [json.loads(x) for x in open(sys.argv[1]) if x.strip()]
rates = [r["steps_per_s"] for r in rows if r.get("steps_per_s")]
seconds = float(sys.argv[2])
print(max(50, int(max(rates[1:] or rates) * seconds * 0.7)) if rates else 50)  # 0.7: evaluation, compile, checkpoints
EOF
}

# fine_tune NAME COMMAND ARGS...: calibrate, then train into $work/NAME/NAME.safetensors within the budget
fine_tune() {
  local name=$1 command=$2; shift 2
  "${cli[@]}" "$command" "$@" -o "$work/cal_$name/$name.safetensors" --steps "$calibrate" --checkpoint-every "$calibrate" -q >/dev/null || return 1
  local left=$(( budget - ($(date +%s) - start) ))
  [ "$left" -ge 30 ] || left=30  # a calibration slower than the budget still trains a little
  local steps; steps=$(steps_for "$work/cal_$name/$name.metrics.jsonl" "$left")
  echo "$name: $steps steps in about $left s"
  timeout $(( left + 120 )) "${cli[@]}" "$command" "$@" \
    --time-limit "$(awk "BEGIN {print $left / 60}")" \
    -o "$work/$name/$name.safetensors" --steps "$steps" --checkpoint-every $(( steps / 8 > 50 ? steps / 8 : 50 ))
}

# detector NAME EXTRA_FLAGS [INIT_FLAGS...]: the detector's online mixture, with bigger batches than a CPU allows.
detector() {
  local name=$1 extra=$2; shift 2
  fine_tune "$name" train-mask --online "$data/train400" "$@" --batch 32 --crop 160 \
    --lr 3e-4 --free-share 0.25 --data-workers "$workers" --seed 0 $extra
}
# The shipped detector, fine-tuned (or a new one with MASK_FROM_SCRATCH=1).
mask() {
  if [ "${MASK_FROM_SCRATCH:-0}" = 1 ]; then detector mask_unet "${MASK_ARGS:-}"
  else detector mask_unet "${MASK_ARGS:-}" --init "$init/mask_unet.safetensors"; fi
}
# A second detector from scratch, for an A/B test beside `mask` (see JOBS above).
mask_b() { detector mask_b "${MASK_B_ARGS:-}"; }

# The shipped restoration model, fine-tuned further (at a low rate, another seed).
vae() {
  fine_tune vae train-vae --clean "$data/train400" --real "$data/old_photos" --val "$data/set12" \
    --init "$init/vae.safetensors" --crop 128 --batch 16 --lr 1e-4 --data-workers "$workers" --seed 3 ${VAE_ARGS:-}
}

# A restoration model from scratch, the shipped one's first stage (issue 5: 0.5 s per noisy
# 512x512 image): VAE_SMALL_ARGS (default: 40 wide, 2 mapping blocks: 125 instead of the earlier
# 64-wide model's 357 kFLOP per pixel; "--init FILE --lr 3e-4 --seed 1" continues a result, as
# the shipped one's second stage did). To try one, copy vae_small.safetensors as vae.safetensors
# into a folder beside the shipped mask_unet.safetensors and run
# `python -m bench.run --checkpoints DIR --only denoise,old_photo,speed`.
vae_small() {
  fine_tune vae_small train-vae --clean "$data/train400" --real "$data/old_photos" --val "$data/set12" \
    --crop 128 --batch 16 --lr 1e-3 --data-workers "$workers" --seed 0 ${VAE_SMALL_ARGS:---width 40 --map-blocks 2}
}

declare -A pids
for job in "${jobs[@]}"; do
  case $job in
    mask|vae|mask_b|vae_small) "$job" > "$work/$job.log" 2>&1 & pids[$job]=$! ;;
    *) echo "gpu_session: unknown job $job (mask, vae, mask_b, vae_small)"; exit 2 ;;
  esac
done
status=0
for job in "${!pids[@]}"; do
  wait "${pids[$job]}"; rc=$?
  [ "$rc" -eq 0 ] || status=1
  tail -n 20 "$work/$job.log"
  name=$job; [ "$job" = mask ] && name=mask_unet
  for ext in safetensors metrics.jsonl; do
    [ -f "$work/$name/$name.$ext" ] && cp "$work/$name/$name.$ext" "$OUT/"
  done
  echo "gpu_session: $job rc $rc"
done
# The curves travel as one file: the device tool brings back at most 8 (3 jobs: 3 x 2 + log + this).
curves=$(cd "$work" && ls */*.curves.png 2>/dev/null | grep -v '^cal_')
[ -z "$curves" ] || tar -C "$work" -cf "$OUT/curves.tar" $curves
echo "gpu_session: $(( $(date +%s) - start )) s; results in $OUT"
exit $status
