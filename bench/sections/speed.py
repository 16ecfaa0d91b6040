"""Throughput and cost: images/s per method, compilations on mixed sizes, a big scan, mask inference, training.

* images/s: ``restore restore --json`` over a folder of 512x512 photos (Set12's five
  512x512 images plus its 256x256 ones upscaled, Lanczos). The runner's per-image times
  exclude interpreter start-up; "steady" also leaves out the first image, which pays for
  compilation. "wall" is the whole command as a user waits for it.
* compilations: the runner's ``compile_count`` after a folder of four different sizes (noisy,
  so that every network runs). With fixed-shape tiling every model compiles at most twice
  (two tile sizes), whatever the sizes.
* clean and noisy: the restoration network of ``vae``/``auto`` runs only where the scan has
  noise (the noise gate), so those are timed on the 512x512 folder with and without noise.
* big scan: ``bench/restore_big.py`` (seconds and peak RSS for a 6000x4000 scan; 2000x1500
  in quick mode) for the default method, classical, and hybrid inpainting with the true mask;
  for the first two also their mask's F1 against the drawn one (``--mask-f1``).
* mask inference: ``MaskDetector.predict`` on a 1024x1024 image with the tiles ``restore
  restore`` uses by default, median of 3 calls after a first (compiling) call, in this process.
* training: read from each checkpoint's header (wall time covers evaluation and compile too).
* training batches: how many batches of online damage (the mask trainer's mixture, 16 x 96 px
  crops of Train400) the prefetcher delivers per second with one thread and with worker
  processes: the ceiling on training steps/s wherever the step itself is faster (a GPU).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.report import Table, unavailable
from bench.sections.common import Context
from bench.sections.runs import default_method, method_names, method_unavailable, run_method

NAME = "speed"
BIG = (6000, 4000)
BIG_QUICK = (2000, 1500)
MIXED_SIZES = ((256, 256), (512, 512), (300, 200), (700, 500))


#: Methods whose cost depends on the noise in the scan (the restoration network runs only where the
#: noise gate is open: see restore_cli.restoration.vae_method), timed on a noisy copy of the folder too.
NOISE_DEPENDENT = ("vae", "auto")
NOISY_SIGMA = 15


def run(ctx: Context) -> list[Table]:
    folder, mixed = make_folders(ctx)
    noisy = add_noise(folder, ctx.path("data", "speed-512-noisy", fresh=True))
    add_noise(mixed, mixed)  # so that every network runs: the compile count covers them all
    tables = [throughput(ctx, folder, mixed, noisy), big_scan(ctx), mask_inference(ctx), training(ctx),
              training_batches(ctx)]
    return [t for t in tables if t is not None]


def make_folders(ctx: Context) -> tuple[Path, Path]:
    """OUT/data/speed-512 (512x512 copies) and OUT/data/speed-mixed (one image per size in MIXED_SIZES)."""
    sources = ctx.set12()
    n = 4 if ctx.quick else len(sources)
    square = ctx.path("data", "speed-512", fresh=True)
    mixed = ctx.path("data", "speed-mixed", fresh=True)
    for i in range(n):
        path = sources[i % len(sources)]
        with Image.open(path) as im:
            im.convert("L").resize((512, 512), Image.Resampling.LANCZOS).save(square / f"{i:02d}.png")
    for i, size in enumerate(MIXED_SIZES):
        with Image.open(sources[i % len(sources)]) as im:
            im.convert("L").resize(size, Image.Resampling.LANCZOS).save(mixed / f"{size[0]}x{size[1]}.png")
    return square, mixed


def add_noise(folder: Path, out: Path) -> Path:
    """``folder``'s grey images with Gaussian noise of NOISY_SIGMA levels (seed 0), written to ``out``."""
    rng = np.random.default_rng(0)
    for path in sorted(folder.iterdir()):
        with Image.open(path) as im:
            pixels = np.asarray(im.convert("L"), np.float64)
        pixels = np.clip(np.round(pixels + rng.normal(0.0, NOISY_SIGMA, pixels.shape)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(out / path.name)
    return out


def gate_closed(path: Path) -> bool:
    """Whether the auto/vae noise gate is fully closed for this image (the network is then not run)."""
    from restore_cli.restoration.vae_method import noise_gate

    with Image.open(path) as im:
        return noise_gate(np.asarray(im.convert("L"), np.float32) / 255.0) == 0.0


def throughput(ctx: Context, folder: Path, mixed: Path, noisy: Path) -> Table:
    n = len(list(folder.iterdir()))
    table = Table(f"`restore restore` throughput ({n} images of 512x512; mixed folder: 4 sizes)",
                  columns=["method", "input", "images_per_s", "steady_images_per_s", "wall_s", "compiles_mixed",
                           "note"])
    for method in method_names(ctx):
        ctx.log(f"speed: restore --method {method} on 512x512 and mixed folders")
        inputs = [("clean", folder)] + ([(f"noise σ={NOISY_SIGMA}", noisy)] if method in NOISE_DEPENDENT else [])
        try:
            mixed_run = run_method(ctx, method, mixed, ctx.out / "runs" / "speed-mixed" / method)
            results = [(label, run_method(ctx, method, path, ctx.out / "runs" / path.name / method))
                       for label, path in inputs]
        except Exception as exc:  # noqa: BLE001 - reported as the row's note
            table.add(method=method, note=method_unavailable(exc))
            continue
        for label, result in results:
            secs = result.image_seconds
            table.add(method=method, input=label, images_per_s=len(secs) / sum(secs) if secs else None,
                      steady_images_per_s=(len(secs) - 1) / sum(secs[1:]) if len(secs) > 1 else None,
                      wall_s=result.wall_s, compiles_mixed=mixed_run.compile_count)
    table.notes.append("images/s from the runner's per-image times; steady leaves out the first (compiling) image; "
                       "wall: the whole command incl. Python start-up, imports and compilation.")
    closed = sum(gate_closed(path) for path in sorted(folder.iterdir()))
    table.notes.append(f"clean: upscaled Set12, noise-free: {' and '.join(NOISE_DEPENDENT)} skip the restoration "
                       f"network where the noise gate is closed ({closed} of the {n} images); noise σ={NOISY_SIGMA}: "
                       "the same images with Gaussian noise (seed 0): the network runs on every image.")
    return table


def big_scan(ctx: Context) -> Table:
    """``bench/restore_big.py`` for the default method, classical, and hybrid inpainting with the drawn mask.

    A 24 MP scan takes minutes per method on 2 cores, so not every method gets one.
    """
    width, height = ctx.big_size or (BIG_QUICK if ctx.quick else BIG)
    table = Table(f"Big scan ({width}x{height} RGB, synthetic scratches and dust)",
                  columns=["method", "seconds", "peak_rss_mb", "mask_f1", "mask_precision", "mask_recall", "note"])
    script = ctx.repo / "bench" / "restore_big.py"
    if not script.is_file():
        table.add(method="bench/restore_big.py", note=unavailable("bench/restore_big.py is not in this checkout"))
        return table
    runs = [(m, ["--mask-f1"]) for m in dict.fromkeys([default_method(), "classical"]) if m in method_names(ctx)]
    if "hybrid" in method_names(ctx):
        runs.append(("hybrid", ["--true-mask"]))
    for method, extra in runs:
        label = method + (" + true mask" if "--true-mask" in extra else "")
        cmd = [sys.executable, "-m", "bench.restore_big", "--method", method, "--width", str(width),
               "--height", str(height), *map(str, ctx.checkpoint_args()), *extra]
        ctx.log(f"speed: big scan, {label}: " + " ".join(cmd[2:]))
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=ctx.repo)
        lines = [line for line in proc.stdout.splitlines() if line.strip().startswith("{")]
        if proc.returncode != 0 or not lines:
            tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
            table.add(method=label, note=f"failed: exit {proc.returncode}: {tail}")
            continue
        rec = json.loads(lines[-1])
        if rec.get("exit_status"):
            table.add(method=label, note=method_unavailable(RuntimeError(" ".join(rec.get("stderr", [])))))
            continue
        table.add(method=label, seconds=rec.get("seconds"), peak_rss_mb=rec.get("peak_rss_mb"), raw=rec,
                  **{k: rec.get(k) for k in ("mask_f1", "mask_precision", "mask_recall")})
    table.notes.append("Whole `restore restore` command on one image (start-up included); peak RSS of that process. "
                       f"Run for the default method ({default_method()}), classical, and hybrid's inpainting alone "
                       "with the drawn mask; other methods are left out to keep `make bench` under 30 min. Mask "
                       "scores: the predicted mask against the drawn one (scratches 2-8 px wide, dust 4-16 px).")
    return table


def mask_inference(ctx: Context) -> Table:
    table = Table("Mask prediction, 1024x1024, after compilation",
                  columns=["checkpoint", "seconds", "first_call_s", "compiles", "note"])
    from restore_cli.restoration.methods import MASK_CHECKPOINT

    path = ctx.checkpoints / MASK_CHECKPOINT
    if not path.is_file():
        table.add(checkpoint=MASK_CHECKPOINT, note=unavailable(f"checkpoints/{MASK_CHECKPOINT} not found"))
        return table
    from restore_cli.restoration.mask_detector import MaskDetector
    from restore_cli.restoration.methods import MethodSettings
    from restore_cli.restoration.tiling import cheapest_tile, large_tile

    with Image.open(ctx.set12()[-1]) as im:
        luma = np.asarray(im.convert("L").resize((1024, 1024), Image.Resampling.LANCZOS), np.float32) / 255.0
    defaults = MethodSettings()  # the tiles `restore restore` uses unless told otherwise
    detector = MaskDetector.load(path, tile=defaults.tile, large=defaults.large_tiles)
    start = time.perf_counter()
    detector.predict(luma)
    first = time.perf_counter() - start
    times = []
    for _ in range(3):
        start = time.perf_counter()
        detector.predict(luma)
        times.append(time.perf_counter() - start)
    table.add(checkpoint=MASK_CHECKPOINT, seconds=statistics.median(times), first_call_s=first,
              compiles=detector.compile_count)
    offered = (detector.tile, large_tile(detector.tile, detector.overlap)) if detector.large else (detector.tile,)
    used = cheapest_tile(1024, 1024, offered, detector.overlap, detector.config.multiple)
    table.notes.append(f"Tiles as `restore restore` uses them by default: {used} px here (offered: "
                       f"{', '.join(map(str, offered))}), {detector.overlap} px overlap.")
    return table


def _stages(training: dict) -> list[dict]:
    """The training record and the ``init`` chain behind it (``training.init``, written by --init), first stage first."""
    chain, node = [], training
    while node:
        chain.append(node)
        node = node.get("init")
    return chain[::-1]


def _device(machine: dict | None) -> str:
    """What trained a stage: the accelerator's name where the header has it, else its JAX device ('cuda:0')."""
    machine = machine or {}
    kind = machine.get("device_kind")
    if kind and kind != "cpu":
        return kind
    devices = machine.get("jax_devices") or ""
    if devices and not devices.startswith("cpu"):
        return f"GPU ({devices})" if devices.startswith("cuda") else devices
    return f"{machine.get('processor') or machine.get('platform') or '?'} CPU"


def _trained_on(stages: list[dict]) -> str:
    """Every device the stages ran on, in order, each once: 'x86_64 CPU + GPU (cuda:0)'."""
    return " + ".join(dict.fromkeys(_device(s.get("machine")) for s in stages))


def _stages_note(stages: list[dict]) -> str:
    several = len({_device(s.get("machine")) for s in stages}) > 1
    parts = [f"{s.get('step')} steps, {(s.get('wall_s') or 0) / 60:.0f} min"
             + (f" on {_device(s.get('machine'))}" if several else "") for s in stages]
    return (f"{len(stages)} stages ({'; '.join(parts)}): steps and wall are totals, samples/s the last stage's")


#: The quality bar whose first crossing the training table reports, per checkpoint kind (issues #4, #5).
QUALITY_BARS = {"mask-unet": ("val_f1", 0.8), "vae": ("val_psnr", 29.0)}


def time_to_quality(metrics_jsonl: Path, kind: str | None, stages: list[dict] | None = None) -> str | None:
    """'step S, M min' for the first validation row at or above the kind's bar, or 'not reached (best B)'.

    ``stages`` (first stage first, from :func:`_stages`) makes the answer count the whole run.
    Only the last stage's curve (``metrics_jsonl``) is kept, so when an earlier stage already
    ended above the bar the answer is an upper bound: the end of the first such stage.
    """
    if kind not in QUALITY_BARS:
        return None
    key, bar = QUALITY_BARS[kind]
    earlier = (stages or [{}])[:-1]
    steps_before = wall_before = 0.0
    for number, stage in enumerate(earlier, start=1):
        steps_before += stage.get("step") or 0
        wall_before += stage.get("wall_s") or 0.0
        if ((stage.get("metrics") or {}).get(key) or float("-inf")) >= bar:
            return (f"{key} {bar:g} by the end of stage {number} of {len(earlier) + 1} (step {steps_before:.0f}, "
                    f"{wall_before / 60:.1f} min; its curve is not kept)")
    if not metrics_jsonl.is_file():
        return None
    rows = [json.loads(line) for line in metrics_jsonl.read_text().splitlines() if line.strip()]
    walls = {r["step"]: r["wall_s"] for r in rows if "wall_s" in r}
    scores = [(r["step"], r[key]) for r in rows if key in r]
    if not scores:
        return None
    for step, value in scores:
        if value >= bar:
            wall = walls.get(step) or next((w for s, w in sorted(walls.items()) if s >= step), None)
            return (f"{key} {bar:g} at step {step + steps_before:.0f}"
                    + (f", {(wall + wall_before) / 60:.1f} min" if wall else ""))
    return f"{key} {bar:g} not reached (best {max(v for _, v in scores):.4g})"


def training(ctx: Context) -> Table:
    """One row per checkpoint file: what its header says about how it was trained (nothing re-measured)."""
    table = Table("Training (from the checkpoint headers; not re-measured)",
                  columns=["checkpoint", "kind", "steps", "batch", "wall_min", "samples_per_s", "Mpx_per_s",
                           "time_to_quality", "trained_on", "metrics", "note"])
    files = sorted(ctx.checkpoints.glob("*.safetensors")) if ctx.checkpoints.is_dir() else []
    if not files:
        table.add(checkpoint="checkpoints/*.safetensors",
                  note=unavailable("no checkpoint files yet (make checkpoints)"))
    from restore_cli.models.checkpoint import read_header

    for path in files:
        try:
            header = read_header(path)
        except Exception as exc:  # noqa: BLE001
            table.add(checkpoint=path.name, note=f"failed: {exc}")
            continue
        train = header.get("training", {}) or {}
        config = train.get("config", {}) or {}
        steps, wall, batch = train.get("step"), train.get("wall_s"), config.get("batch")
        samples_per_s = steps * batch / wall if steps and batch and wall else None  # this stage's own rate
        stages = _stages(train)
        if len(stages) > 1:  # fine-tuned: the table shows the whole cost, every stage added up
            steps = sum(s.get("step") or 0 for s in stages)
            wall = sum(s.get("wall_s") or 0.0 for s in stages)
        metrics = header.get("metrics", {}) or {}
        shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in list(metrics.items())[:5])
        crop = config.get("crop")
        table.add(checkpoint=path.name, kind=header.get("kind"), steps=steps, batch=batch,
                  wall_min=wall / 60 if wall else None, samples_per_s=samples_per_s,
                  Mpx_per_s=samples_per_s * crop**2 / 1e6 if samples_per_s and crop else None,
                  time_to_quality=time_to_quality(path.with_name(path.stem + ".metrics.jsonl"), header.get("kind"), stages),
                  trained_on=_trained_on(stages), metrics=shown or None,
                  note=_stages_note(stages) if len(stages) > 1 else None)
    table.notes.append("samples/s = steps x batch / wall time (wall includes evaluation and compilation); Mpx/s = "
                       "samples/s x crop side squared. time to quality: the first validation at or above the "
                       "issue's bar (mask val F1 0.8 on the training validation crops; VAE Set12 sigma-25 PSNR 29 dB).")
    return table


def training_batches(ctx: Context) -> Table:
    """Batches/s from :class:`Prefetcher` with 0 (one thread), 1 and 2 worker processes (and all cores if more)."""
    import os

    table = Table("Training batches of online damage per second (16 x 96 px crops, the mask trainer's mixture)",
                  columns=["producer", "batches_per_s", "samples_per_s", "speed-up"])
    folder = ctx.data / "train400"
    if not folder.is_dir():
        table.add(producer="-", note=unavailable(f"{folder} not found"))
        return table
    from restore_cli.train.data import Batches, OnlineSource, Prefetcher
    from restore_cli.train.mask import online_degrade_config

    batches = Batches(OnlineSource.from_folder(folder, online_degrade_config()), 16, 96, seed=0)
    for step in range(3):
        batches(step)  # decode and cache the images the timed batches use first
    count, base = (10 if ctx.quick else 60), None
    for workers in sorted({0, 1, 2, os.cpu_count() or 1}):
        start = time.perf_counter()
        with Prefetcher(batches, 1000, 1000 + count, workers=workers) as prefetch:
            for _ in prefetch:
                pass
        rate = count / (time.perf_counter() - start)
        base = base or rate
        table.add(producer="1 thread" if workers == 0 else f"{workers} worker process{'es' if workers > 1 else ''}",
                  batches_per_s=rate, samples_per_s=rate * 16, **{"speed-up": rate / base})
    table.notes.append(f"{count} batches per row, worker start-up included; the batches are the same bytes whatever the "
                       "producer. `train-mask`/`train-vae --data-workers N` choose it (default: the thread on a CPU, "
                       "where XLA already uses every core for the step; up to 8 processes next to a GPU).")
    return table
