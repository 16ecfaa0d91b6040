"""Set12 ``scratches`` on a 4x scan: where the detector's coarse levels (``--mask-scales``) help, where they cost.

The mask U-Net learned defects 1-4 px wide on 180 px crops; on a scan made at a higher
resolution the same scratch is several times wider. Two tables, because an image's size
cannot tell which of two kinds of scan it is:

* **wide defects**: Set12 damaged with the ``scratches`` preset (seed 0), then clean and damaged
  images enlarged 4x (bicubic: a scan's own softness) and the true mask with them (bilinear,
  >= 1/4: every pixel a defect pixel's interpolation reached): the defects are 4-16 px wide;
* **thin defects**: Set12 enlarged 4x first, then damaged the same way: defects as thin as at
  Set12's own scale, on a high-resolution image.

Each runs ``hybrid`` (one detector view) with its default coarse levels (by image size: one for
the 1024 px images, two for the 2048 px ones) and at ``--mask-scales`` 0, 1 and 2, plus the same
inpainting given the true mask. Only ``hybrid``: the point is the detector, and the network
methods take minutes on 1024-2048 px images on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bench.report import Table
from bench.sections.common import Context, DataSet, clean_subset, degrade_set, score
from bench.sections.runs import method_names, method_unavailable, run_method, true_mask_row

NAME = "scan_scale"
FACTOR = 4
SCALES = (None, 0, 1, 2)  # None: the default, by image size
COLUMNS = ["method", "PSNR", "SSIM", "iou", "f1", "precision", "recall", "pooled_f1", "s_per_image", "note"]


def run(ctx: Context) -> list[Table]:
    clean = clean_subset(ctx)
    wide = enlarge(ctx, degrade_set(ctx, "scratches-for-x4", clean, "scratches"))
    thin = degrade_set(ctx, f"scratches-thin-x{FACTOR}", enlarge_clean(ctx, clean), "scratches")
    return [
        scales_table(ctx, wide, f"Set12 `scratches` enlarged {FACTOR}x ({len(wide.images())} images, a "
                     "high-resolution scan: wide defects)",
                     f"Data: `restore degrade SET12 --preset scratches --seed 0 --gray`, then every image enlarged "
                     f"{FACTOR}x by PIL (bicubic; masks bilinear, kept where >= 64 of 255)."),
        scales_table(ctx, thin, f"Set12 enlarged {FACTOR}x, then `scratches` ({len(thin.images())} images, a "
                     "high-resolution scan: thin defects)",
                     f"Data: every Set12 image enlarged {FACTOR}x by PIL (bicubic), then `restore degrade --preset "
                     "scratches --seed 0 --gray`: the defects are as thin as at Set12's own scale."),
    ]


def scales_table(ctx: Context, data: DataSet, title: str, note: str) -> Table:
    """``hybrid`` on ``data`` at its default coarse levels and at each of SCALES, plus the true mask."""
    table = Table(title, columns=COLUMNS)
    damaged = score(data.degraded, data.clean)
    table.add(method="damaged input", PSNR=damaged["PSNR"], SSIM=damaged["SSIM"])
    if "hybrid" not in method_names(ctx):
        return table
    runs = ctx.out / "runs" / data.name
    for scales in SCALES:
        label = "hybrid" if scales is None else f"hybrid, --mask-scales {scales}"
        ctx.log(f"scan_scale: {data.name}: {label}")
        try:
            result = run_method(ctx, "hybrid", data.degraded, runs / f"hybrid-scales-{'auto' if scales is None else scales}",
                                extra=[] if scales is None else ["--mask-scales", str(scales)])
            scores = score(result.output, data.clean, masks=result.masks, true_masks=data.masks)
        except Exception as exc:  # noqa: BLE001 - a row saying why
            table.add(method=label, note=method_unavailable(exc))
            continue
        table.add(method=label, s_per_image=result.s_per_image,
                  **{k: scores.get(k) for k in ("PSNR", "SSIM", "iou", "f1", "precision", "recall", "pooled_f1")})
    table.add(**true_mask_row(ctx, "hybrid inpainting + true mask (reference)", "hybrid", data, runs / "true-mask"))
    table.notes.append(note + " Mask scores: mean over images; pooled F1 counts all pixels at once.")
    return table


def _enlarge_png(source: Path, target: Path, *, mask: bool = False) -> None:
    image = Image.open(source)
    size = (image.width * FACTOR, image.height * FACTOR)
    if mask:
        big = np.asarray(image.convert("L").resize(size, Image.BILINEAR)) >= 64
        Image.fromarray((big * 255).astype(np.uint8)).save(target)
    else:
        image.resize(size, Image.BICUBIC).save(target)


def enlarge(ctx: Context, source: DataSet) -> DataSet:
    """OUT/data/scratches-x4: ``source`` enlarged FACTOR x (clean and degraded bicubic, masks as described above)."""
    root = ctx.path("data", f"scratches-x{FACTOR}", fresh=True)
    data = DataSet(root.name, root / "clean", root / "degraded", root / "masks")
    for folder, kind in ((source.clean, data.clean), (source.degraded, data.degraded), (source.masks, data.masks)):
        kind.mkdir(parents=True, exist_ok=True)
        for path in sorted(folder.glob("*.png")):
            _enlarge_png(path, kind / path.name, mask=kind is data.masks)
    return data


def enlarge_clean(ctx: Context, clean: Path) -> Path:
    """OUT/data/set12-x4: the clean images enlarged FACTOR x (bicubic), to be damaged afterwards."""
    folder = ctx.path("data", f"set12-x{FACTOR}", fresh=True)
    for path in sorted(clean.glob("*.png")):
        _enlarge_png(path, folder / path.name)
    return folder
