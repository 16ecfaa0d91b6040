"""Set12 ``scratches`` enlarged 4x: the detector on a high-resolution scan, with and without ``--mask-scales``.

The mask U-Net learned defects 1-4 px wide on 180 px crops; on a scan made at a higher
resolution the same scratch is several times wider. This section damages Set12 with the
``scratches`` preset (seed 0), then enlarges clean and damaged images 4x (bicubic: a scan's
own softness) and the true mask with them (bilinear, >= 1/4: every pixel a defect pixel's
interpolation reached), and runs ``hybrid`` (one detector view) with its default coarse levels
(by image size: one for the 1024 px images, two for the 2048 px ones) and at ``--mask-scales``
0, 1 and 2, plus the same inpainting given the true mask. Only ``hybrid``: the point is the
detector, and the network methods take minutes on 1024-2048 px images on a CPU.
"""

from __future__ import annotations

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
    source = degrade_set(ctx, "scratches-for-x4", clean_subset(ctx), "scratches")
    data = enlarge(ctx, source)
    table = Table(f"Set12 `scratches` enlarged {FACTOR}x ({len(data.images())} images, a high-resolution scan)",
                  columns=COLUMNS)
    damaged = score(data.degraded, data.clean)
    table.add(method="damaged input", PSNR=damaged["PSNR"], SSIM=damaged["SSIM"])
    if "hybrid" not in method_names(ctx):
        return [table]
    runs = ctx.out / "runs" / data.name
    for scales in SCALES:
        label = "hybrid" if scales is None else f"hybrid, --mask-scales {scales}"
        ctx.log(f"scan_scale: {label}")
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
    table.notes.append(f"Data: `restore degrade SET12 --preset scratches --seed 0 --gray`, then every image enlarged "
                       f"{FACTOR}x by PIL (bicubic; masks bilinear, kept where >= 64 of 255). Mask scores: mean over "
                       "images; pooled F1 counts all pixels at once.")
    return [table]


def enlarge(ctx: Context, source: DataSet) -> DataSet:
    """OUT/data/scratches-x4: ``source`` enlarged FACTOR x (clean and degraded bicubic, masks as described above)."""
    root = ctx.path("data", f"scratches-x{FACTOR}", fresh=True)
    data = DataSet(root.name, root / "clean", root / "degraded", root / "masks")
    for folder, kind in ((source.clean, data.clean), (source.degraded, data.degraded), (source.masks, data.masks)):
        kind.mkdir(parents=True, exist_ok=True)
        for path in sorted(folder.glob("*.png")):
            image = Image.open(path)
            size = (image.width * FACTOR, image.height * FACTOR)
            if kind is data.masks:
                big = np.asarray(image.convert("L").resize(size, Image.BILINEAR)) >= 64
                Image.fromarray((big * 255).astype(np.uint8)).save(kind / path.name)
            else:
                image.resize(size, Image.BICUBIC).save(kind / path.name)
    return data
