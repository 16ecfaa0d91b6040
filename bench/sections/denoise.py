"""Set12 Gaussian denoising at sigma 15/25/50: every `restore` method against the classical baselines.

The noisy images come from ``restore degrade --preset gaussian --sigma S --seed 0`` (8-bit
PNGs, so noise is clipped to [0, 255] and rounded, as in any saved file: the noisy input
scores ~0.15 dB above the unclipped figure). The published DnCNN and BM3D averages are
quoted beside the measured ones, labelled as quoted: they come from float-valued noisy
images and the papers' own code, so they are context, not a like-for-like number.

Every method in ``METHODS`` is run (new ones appear by themselves); those whose checkpoint
is missing get a "not available" row. Seconds per image: for baselines the in-process
call, for methods the runner's own per-image time (start-up and compilation excluded; the
speed section reports those).
"""

from __future__ import annotations

import json

from bench.report import Table
from bench.sections import baselines
from bench.sections.common import Context, DataSet, clean_subset, degrade_set, score
from bench.sections.runs import method_names, method_unavailable, run_method, true_mask_row, variant_rows

NAME = "denoise"
#: ``vae`` given the (empty) true masks of pure-noise images: its gap to the ``vae`` row is what
#: the detector's false alarms (inpainted edges and texture) cost on a photo with no defects.
NETWORK_ALONE = "vae + true (empty) mask"
SIGMAS = (15, 25, 50)
#: The original family (``make cr6``) is scored at this sigma only: each image takes seconds.
CR6_SIGMA = 25
CR6_ARCHS = ("simple", "unet", "resblock")
#: Average PSNR on Set12 from Zhang et al., "Beyond a Gaussian Denoiser" (TIP 2017), Table III.
PUBLISHED = {
    "DnCNN-S": {15: 32.86, 25: 30.44, 50: 27.18},
    "BM3D": {15: 32.37, 25: 29.97, 50: 26.72},
}


def sigmas(ctx: Context) -> tuple[int, ...]:
    if ctx.sigmas is not None:
        return ctx.sigmas
    return (25,) if ctx.quick else SIGMAS


def run(ctx: Context) -> list[Table]:
    clean = clean_subset(ctx)
    names = sorted(p.name for p in clean.iterdir())
    tables = []
    for sigma in sigmas(ctx):
        data = degrade_set(ctx, f"gaussian{sigma}", clean, "gaussian", ["--sigma", str(sigma)])
        tables.append(sigma_table(ctx, data, sigma, len(names)))
    ignored = ctx.ignored_set12()
    tables[-1].notes.append(
        f"Set12 images used: {', '.join(names)}"
        + (f"; other files in set12/ ignored: {', '.join(ignored)}" if ignored else "")
        + ". Noise: `restore degrade --preset gaussian --sigma S --seed 0` (8-bit, clipped)."
    )
    tables[-1].notes.append(
        "Baseline settings were tuned once on 8 Train400 images (never on Set12): "
        "NL-means h=0.6σ (0.5σ at σ=50), TV weight 0.04/0.07/0.16; see bench/sections/baselines.py."
    )
    return tables


def sigma_table(ctx: Context, data: DataSet, sigma: int, count: int) -> Table:
    table = Table(f"Set12 Gaussian noise σ={sigma} ({count} images)")
    inputs = data.images()
    noisy = score(data.degraded, data.clean)
    table.add(method="noisy input", kind="-", PSNR=noisy["PSNR"], SSIM=noisy["SSIM"], s_per_image=None)
    for name, (_, settings) in baselines.BASELINES.items():
        ctx.log(f"denoise σ={sigma}: {name} on {len(inputs)} images")
        out = ctx.path("runs", f"gaussian{sigma}", _slug(name), fresh=True)
        seconds = baselines.run_baseline(name, inputs, out, sigma)
        scores = score(out, data.clean)
        table.add(method=name, kind=f"baseline ({settings(sigma)})", PSNR=scores["PSNR"], SSIM=scores["SSIM"],
                  s_per_image=seconds)
    for method in method_names(ctx):
        ctx.log(f"denoise σ={sigma}: restore --method {method}")
        try:
            result = run_method(ctx, method, data.degraded, ctx.out / "runs" / f"gaussian{sigma}" / method)
            scores = score(result.output, data.clean)
        except Exception as exc:  # noqa: BLE001 - one method's failure is a row, not the end of the bench
            table.add(method=method, kind="restore --method", note=method_unavailable(exc))
            continue
        table.add(method=method, kind="restore --method", PSNR=scores["PSNR"], SSIM=scores["SSIM"],
                  s_per_image=result.s_per_image)
    for row in variant_rows(ctx, data.degraded, ctx.out / "runs" / f"gaussian{sigma}",
                            lambda result: {k: v for k, v in score(result.output, data.clean).items() if k in ("PSNR", "SSIM")}):
        table.add(**row)
    if "vae" in method_names(ctx):  # pure noise: the true mask is empty, nothing is inpainted
        table.add(**true_mask_row(ctx, NETWORK_ALONE, "vae", data, ctx.out / "runs" / f"gaussian{sigma}" / "vae-empty-mask"),
                  kind="reference: the network alone")
    if sigma == CR6_SIGMA and "vae" in method_names(ctx):
        for arch in CR6_ARCHS:
            table.add(**cr6_row(ctx, data, arch))
    for name, values in PUBLISHED.items():
        if sigma in values:
            table.add(method=f"{name} (published, not measured here)", kind="Zhang et al. 2017, Table III",
                      PSNR=values[sigma], SSIM=None, s_per_image=None)
    table.columns = ["method", "kind", "PSNR", "SSIM", "s_per_image", "note"]
    return table


def cr6_row(ctx: Context, data: DataSet, arch: str) -> dict:
    """The original project's ``arch`` trained with its own values (``make cr6``), if that has run.

    Its checkpoint (1.2 GB, git-ignored) is scored as ``restore --method vae --checkpoints
    checkpoints/cr6/ARCH``, with the steps trained so far out of the preset's total: a run
    interrupted on a slow machine is reported as what it is.
    """
    folder = ctx.checkpoints / "cr6" / arch
    row = {"method": f"cr6 {arch}", "kind": "original family, --preset cr6"}
    try:
        from restore_cli.models.checkpoint import read_header

        header = read_header(folder / "vae.safetensors")
        training = header.get("training", {})
        result = run_method(ctx, "vae", data.degraded, ctx.out / "runs" / f"gaussian{CR6_SIGMA}" / f"cr6-{arch}",
                            extra=["--checkpoints", folder])
        scores = score(result.output, data.clean)
    except Exception as exc:  # noqa: BLE001 - a missing or broken run is a row that says so
        earlier = None if (folder / "vae.safetensors").exists() else earlier_cr6_row(ctx, row["method"])
        note = method_unavailable(exc).replace("(make checkpoints)", "(make cr6)")
        return earlier or {**row, "note": note}
    done, total = training.get("step"), training.get("config", {}).get("steps")
    machine = training.get("machine", {}) or {}
    where = machine.get("jax_devices") or machine.get("processor") or "?"
    note = f"best checkpoint at step {done} of {total}, {training.get('wall_s', 0) / 3600:.1f} h of training on {where}"
    return {**row, "PSNR": scores["PSNR"], "SSIM": scores["SSIM"], "s_per_image": result.s_per_image, "note": note}


def earlier_cr6_row(ctx: Context, method: str) -> dict | None:
    """``method``'s row in the results this run replaces (OUT/results.json), when it was scored there.

    The cr6 checkpoints are 1.2 GB and git-ignored and ``make cr6`` takes hours, so a fresh
    checkout has none: without this, each make bench there erased the last measured figure from
    the committed results. The row is carried with a note that says it was not re-measured, and
    when and on what it was (a row carried again keeps its first note). Only for the shipped
    models' full run (not --quick, not --checkpoints).
    """
    if ctx.quick or ctx.models is not None:
        return None
    try:
        previous = json.loads((ctx.out / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    machine = previous.get("machine") or {}
    tables = [table for section in previous.get("sections") or [] if section.get("name") == NAME
              for table in section.get("tables") or []]
    for table in tables:
        for old in table.get("rows") or []:
            if old.get("method") == method and old.get("PSNR") is not None and f"={CR6_SIGMA} " in table["title"]:
                note = old.get("note") or ""
                if not note.startswith(CARRIED):
                    note = (f"{CARRIED} from make bench of {machine.get('date', '?')} on {machine.get('cpu', '?')}, "
                            f"{machine.get('cores', '?')} cores: {note}")
                return {**old, "note": note}
    return None


#: How a row copied from the previous results begins its note.
CARRIED = "not re-measured (checkpoint not here):"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")
