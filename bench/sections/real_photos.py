"""Real scanned old photos: no ground truth, so the evidence is a picture a reader can judge.

The default method (what ``restore restore`` does when given no ``--method``) runs on
``DATA/old_photos`` with ``--save-masks``. The section writes:

* ``OUT/overlays/<name>.png``: each photo with its predicted defect mask in red, full size;
* ``OUT/contact_sheet.png``: one row per photo, input | mask overlay | result, scaled to
  fit ~1600 px wide, so over- and under-detection are visible at a glance;
* a table of the masked fraction per photo (a detector that marks 30 % of a photo is
  repainting it, not repairing it).

If the default method cannot run (its checkpoint is missing), the classical method is
used instead and the table says so; nothing is shown under a name it did not earn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench.report import Table
from bench.sections.common import BenchError, Context
from bench.sections.runs import default_method, method_unavailable, run_method

NAME = "real_photos"
SHEET_WIDTH = 1600
GAP = 6
RED = np.array([255, 0, 0], np.float32)


def run(ctx: Context) -> list[Table]:
    folder = ctx.data / "old_photos"
    if not folder.is_dir():
        raise BenchError(f"{folder} not found")
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff"))
    if ctx.quick:
        photos = photos[:3]
    inputs = ctx.path("data", "old_photos", fresh=True)
    for path in photos:
        (inputs / path.name).symlink_to(path.resolve())
    method, note = default_method(), None
    if ctx.methods is not None and method not in ctx.methods:  # a test limited the methods
        method = ctx.methods[0]
    try:
        result = run_method(ctx, None if method == default_method() else method, inputs,
                            ctx.out / "runs" / "real_photos")
    except Exception as exc:  # noqa: BLE001 - fall back, and say so under the table
        note = f"default method {method!r} {method_unavailable(exc)}; shown: classical"
        method = "classical"
        result = run_method(ctx, "classical", inputs, ctx.out / "runs" / "real_photos")
    ctx.log(f"real_photos: {method} on {len(photos)} photos; writing overlays and the contact sheet")
    table = Table(f"Real old photos ({len(photos)}), method `{method}`",
                  columns=["photo", "size", "masked_percent", "s_per_image", "note"])
    overlays = ctx.path("overlays", fresh=True)
    seconds = {Path(r["input"]).name: r.get("seconds") for r in result.records}
    rows = []
    for path in photos:
        original = _rgb(path)
        mask = np.asarray(Image.open(result.masks / f"{path.stem}.png").convert("L")) >= 128
        restored = _rgb(next(result.output.glob(f"{path.stem}.*")))
        overlay = _overlay(original, mask)
        Image.fromarray(overlay).save(overlays / f"{path.stem}.png")
        rows.append((path.stem, original, overlay, restored))
        table.add(photo=path.name, size=f"{original.shape[1]}x{original.shape[0]}",
                  masked_percent=100.0 * mask.mean(), s_per_image=seconds.get(path.name))
    sheet = contact_sheet(rows)
    sheet.save(ctx.out / "contact_sheet.png")
    if note:
        table.notes.append(note)
    table.notes.append("Contact sheet: `contact_sheet.png` (input | predicted mask in red | result); "
                       "full-size overlays in `overlays/`. s/image: the runner's time, start-up excluded.")
    return [table]


def _rgb(path: Path) -> np.ndarray:
    """Display pixels: RGB uint8, any alpha composited over white (as a viewer shows it)."""
    with Image.open(path) as im:
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, im).convert("RGB"))


def _overlay(rgb: np.ndarray, mask: np.ndarray, alpha: float = 0.65) -> np.ndarray:
    out = rgb.astype(np.float32)
    out[mask] = (1 - alpha) * out[mask] + alpha * RED
    return out.astype(np.uint8)


def contact_sheet(rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], width: int = SHEET_WIDTH) -> Image.Image:
    """Rows of three equally wide cells with the photo name over the first; white gaps between."""
    cell_w = (width - 4 * GAP) // 3
    label_h = 18
    cells = []
    for name, *images in rows:
        h, w = images[0].shape[:2]
        cell_h = max(1, round(h * cell_w / w))
        cells.append((name, [Image.fromarray(a).resize((cell_w, cell_h), Image.Resampling.LANCZOS) for a in images]))
    height = GAP + sum(label_h + c[1][0].height + GAP for c in cells)
    sheet = Image.new("RGB", (width, max(height, 1)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    y = GAP
    for name, images in cells:
        for i, label in enumerate((name, "predicted mask", "restored")):
            draw.text((GAP + i * (cell_w + GAP), y + 2), label, fill="black", font=font)
        y += label_h
        for i, im in enumerate(images):
            sheet.paste(im, (GAP + i * (cell_w + GAP), y))
        y += images[0].height + GAP
    return sheet
