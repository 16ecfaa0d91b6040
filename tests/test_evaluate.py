"""restore evaluate: metric values on known inputs, file pairing, error lines, JSON records, the viewer page."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from restore_cli import io
from restore_cli.cli import app
from restore_cli.evaluate import metrics
from restore_cli.evaluate.compare import evaluate_folders
from restore_cli.report import html as report_html
from restore_cli.report import lossplot

# ------------------------------------------------------------------ helpers


def _img(seed: int, size: tuple[int, int] = (32, 32), channels: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).random((*size, channels)).astype(np.float32)


def _write(path: Path, pixels: np.ndarray, depth: int = 8) -> Path:
    io.write_image(path, io.Image(pixels=pixels, bit_depth=depth))
    return path


def _noisy(pixels: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, pixels.shape)
    return np.clip(pixels + noise, 0, 1).astype(np.float32)


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    """3 clean images, a PNG method and a TIFF method (same stems), degraded inputs and masks."""
    out = {name: tmp_path / name for name in ("clean", "degraded", "unet", "bm3d", "pred", "true")}
    for folder in out.values():
        folder.mkdir()
    for i in range(3):
        clean = _img(i)
        _write(out["clean"] / f"photo{i}.png", clean)
        _write(out["degraded"] / f"photo{i}.png", _noisy(clean, 0.2, 10 + i))
        _write(out["unet"] / f"photo{i}.png", _noisy(clean, 0.03, 20 + i))
        _write(out["bm3d"] / f"photo{i}.tif", _noisy(clean, 0.08, 30 + i))
        true = np.zeros((32, 32), np.uint8)
        true[4:12, 4:12] = 255
        pred = np.zeros((32, 32), np.uint8)
        pred[4:12, 4 : 8 + 2 * i] = 255
        io.write_gray8(out["true"] / f"photo{i}.png", true)
        io.write_gray8(out["pred"] / f"photo{i}.png", pred)
    return out


def _run(*args: object, input: str | None = None):
    return CliRunner().invoke(app, ["evaluate", *map(str, args)], input=input)


def _records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


# ------------------------------------------------------------------ metrics


def test_psnr_of_known_mse() -> None:
    a = np.zeros((8, 8, 3))
    b = np.full((8, 8, 3), 0.1)  # MSE = 0.01 -> 10*log10(1/0.01) = 20 dB
    assert metrics.psnr(a, b) == pytest.approx(20.0)
    assert metrics.psnr(a[:, :, 0], b[:, :, 0]) == pytest.approx(20.0)  # (H, W) accepted
    assert metrics.psnr(a * 255, b * 255, data_range=255) == pytest.approx(20.0)
    assert metrics.psnr(a, a) == math.inf


def test_psnr_uses_the_files_bit_depth_range(tmp_path: Path) -> None:
    clean = np.full((16, 16, 1), 30000, np.uint16)
    off = clean + 100  # 16-bit file: range 65535
    a = _write(tmp_path / "a.png", io.to_float(clean, 16), depth=16)
    b = _write(tmp_path / "b.png", io.to_float(off, 16), depth=16)
    expected = 10 * math.log10(65535**2 / 100**2)
    assert metrics.psnr(io.read_image(a).pixels, io.read_image(b).pixels) == pytest.approx(expected, abs=1e-3)


def test_ssim_identical_and_different() -> None:
    x = _img(1)
    assert metrics.ssim(x, x) == pytest.approx(1.0)
    assert metrics.ssim(x[:, :, :1], x[:, :, :1]) == pytest.approx(1.0)
    assert -1.0 <= metrics.ssim(x, _img(2)) < 0.2
    assert metrics.ssim(x, _noisy(x, 0.02, 3)) > 0.9
    with pytest.raises(ValueError, match="7x7"):
        metrics.ssim(np.zeros((5, 20)), np.zeros((5, 20)))


def test_luminance_uses_bt601_weights() -> None:
    rgb = np.zeros((3, 2, 3))
    for channel in range(3):
        rgb[channel, :, channel] = 1.0  # row 0 pure red, row 1 pure green, row 2 pure blue
    luma = metrics.luminance(rgb)
    assert luma.shape == (3, 2, 1)
    assert luma[:, 0, 0] == pytest.approx([0.299, 0.587, 0.114])
    grey = np.random.default_rng(0).random((2, 2, 1))
    assert np.array_equal(metrics.luminance(grey), grey)  # one channel: unchanged
    as_rgb = np.repeat(np.float32(np.arange(256).reshape(16, 16, 1) / 255), 3, axis=2)
    assert np.array_equal(metrics.luminance(as_rgb), as_rgb[:, :, :1])  # grey saved as RGB: exact (was 327 dB)
    with pytest.raises(ValueError, match="4-channel"):
        metrics.luminance(np.zeros((2, 2, 4)))


def test_mask_scores_hand_made() -> None:
    true = np.array([[1, 1, 0, 0], [1, 1, 0, 0]], bool)  # 4 defect pixels
    pred = np.array([[1, 1, 1, 0], [0, 0, 0, 0]], bool)  # 2 hit, 1 false alarm, 2 missed
    s = metrics.mask_scores(pred, true)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 1, 2)
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(0.5)
    assert s["iou"] == pytest.approx(2 / 5)
    assert s["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))


def test_mask_scores_empty_conventions() -> None:
    empty, some = np.zeros((4, 4), bool), np.eye(4, dtype=bool)
    both = metrics.mask_scores(empty, empty)
    assert all(both[k] == 1.0 for k in ("iou", "f1", "precision", "recall"))
    missed = metrics.mask_scores(empty, some)  # predicted nothing on a damaged image
    assert missed["precision"] == 0.0 and missed["recall"] == 0.0 and missed["iou"] == 0.0 and missed["fn"] == 4
    false_alarm = metrics.mask_scores(some, empty)  # predicted damage on a clean image
    assert false_alarm["precision"] == 0.0 and false_alarm["f1"] == 0.0 and false_alarm["fp"] == 4
    with pytest.raises(ValueError):
        metrics.mask_scores(empty, np.zeros((3, 3), bool))


def test_mask_files_mark_defects_from_128_in_any_channel_or_with_1_in_a_0_1_mask() -> None:
    def read(values, depth: int = 8) -> list:
        array = np.array(values, np.uint16 if depth == 16 else np.uint8)
        return io.defect_mask(io.Image(io.to_float(array, depth), bit_depth=depth)).tolist()

    assert read([[[0], [127], [128], [255]]]) == [[False, False, True, True]]
    assert read([[[0], [32767], [32768], [65535]]], 16) == [[False, False, True, True]]
    assert read([[[255, 0, 0], [0, 0, 0], [100, 100, 100]]]) == [[True, False, False]]  # red strokes count
    # A 0/1 mask (numpy booleans saved as uint8): before, read as empty.
    assert read([[[0], [1], [1], [0]]]) == [[False, True, True, False]]
    assert read([[[0], [1]]], 16) == [[False, True]]
    assert read([[[0], [2], [1]]]) == [[False, False, False]]  # a dark but ordinary mask stays empty


# ------------------------------------------------------------------ library and command


def test_pairs_by_stem_across_formats(folders: dict[str, Path]) -> None:
    report = evaluate_folders([folders["unet"], folders["bm3d"]], reference=folders["clean"])
    assert report.summary.failed == 0
    assert [(r.method, r.file) for r in report.records][-1] == ("bm3d", "photo2.tif")
    unet, bm3d = report.method_means("unet"), report.method_means("bm3d")
    assert unet["images"] == bm3d["images"] == 3
    assert unet["psnr_mean"] > bm3d["psnr_mean"] > 15  # less noise, higher PSNR


def test_json_records_and_summary(folders: dict[str, Path]) -> None:
    result = _run(folders["unet"], folders["bm3d"], "--reference", folders["clean"],
                  "--masks", folders["pred"], "--true-masks", folders["true"], "--json")
    assert result.exit_code == 0, result.stderr
    records = _records(result.stdout)
    assert len(records) == 7 and records[-1]["summary"] is True
    first = records[0]
    assert first["file"] == "photo0.png" and first["method"] == "unet"
    assert 0 < first["ssim"] <= 1 and first["psnr"] > 20
    assert first["tp"] == 32 and first["fn"] == 32 and first["precision"] == 1.0 and first["recall"] == 0.5
    summary = records[-1]
    assert [m["method"] for m in summary["methods"]] == ["unet", "bm3d"]
    pooled = summary["masks"]["pooled"]
    assert (pooled["tp"], pooled["fp"], pooled["fn"]) == (32 + 48 + 64, 0, 32 + 16)
    assert pooled["f1"] == pytest.approx(2 * 144 / (2 * 144 + 48), abs=1e-6)
    assert "means" in result.stderr and "unet" in result.stderr


def test_stdout_empty_without_json(folders: dict[str, Path]) -> None:
    result = _run(folders["unet"], "--reference", folders["clean"])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "PSNR" in result.stderr


def test_a_method_without_some_images_is_named(folders: dict[str, Path], caplog) -> None:
    """Two methods scored on different images are not comparable: say so (before: silence)."""
    (folders["unet"] / "photo1.png").unlink()
    (folders["pred"] / "photo2.png").unlink()
    report = evaluate_folders([folders["unet"], folders["bm3d"]], reference=folders["clean"],
                              masks=folders["pred"], true_masks=folders["true"])
    assert report.method_means("unet")["images"] == 2 and report.summary.failed == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["unet: nothing for 1 of the 3 reference images (photo1.png); its means are over the rest only",
                        f"{folders['pred']}: nothing for 1 of the 3 true masks (photo2.png); "
                        "the mask means are over the rest only"]


def test_missing_reference_fails_that_file_only(folders: dict[str, Path]) -> None:
    _write(folders["unet"] / "stray.png", _img(9))
    result = _run(folders["unet"], "--reference", folders["clean"], "--json")
    assert result.exit_code == 3
    assert re.search(r"stray\.png: no reference image named stray\.\* in .*clean", result.stderr)
    records = _records(result.stdout)
    assert [r["file"] for r in records[:-1]] == ["photo0.png", "photo1.png", "photo2.png"]
    assert records[-1]["failed"] == 1 and "stray.png" in records[-1]["errors"][0]


def test_size_mismatch_names_both_files(folders: dict[str, Path]) -> None:
    _write(folders["unet"] / "photo1.png", _img(5, size=(20, 24)))
    result = _run(folders["unet"], "--reference", folders["clean"])
    assert result.exit_code == 3
    line = next(line for line in result.stderr.splitlines() if "does not match" in line)
    assert "unet/photo1.png" in line and "24x20" in line and "clean/photo1.png" in line and "32x32" in line


def test_grey_result_against_colour_reference_uses_luminance(folders: dict[str, Path], tmp_path: Path) -> None:
    grey = tmp_path / "grey"
    grey.mkdir()
    clean = io.read_image(folders["clean"] / "photo0.png").pixels
    _write(grey / "photo0.png", metrics.luminance(clean).astype(np.float32))
    result = _run(grey, "--reference", folders["clean"], "--json")
    assert result.exit_code == 0, result.stderr
    record = _records(result.stdout)[0]
    assert record["compared_on"] == "luminance" and record["psnr"] > 45
    assert "comparing luminance" in result.stderr


def test_identical_images_give_null_psnr(folders: dict[str, Path]) -> None:
    result = _run(folders["clean"], "--reference", folders["clean"], "--json")
    records = _records(result.stdout)
    assert records[0]["psnr"] is None and records[0]["identical"] is True and records[0]["ssim"] == 1.0
    assert records[-1]["methods"][0]["identical"] == 3 and records[-1]["methods"][0]["psnr_mean"] is None


def test_result_folders_from_stdin(folders: dict[str, Path]) -> None:
    result = _run("--reference", folders["clean"], "--json", input=f"{folders['unet']}\n")
    assert result.exit_code == 0, result.stderr
    assert _records(result.stdout)[0]["method"] == "unet"


def test_single_result_file_against_a_reference_file(tmp_path: Path) -> None:
    """``restore scan.png -o fixed.png`` prints a file, so evaluate takes one: against a single
    reference file it pairs whatever the names (before: "not a folder", status 2)."""
    clean = _img(1)
    reference = _write(tmp_path / "clean.png", clean)
    result_file = _write(tmp_path / "fixed.png", _noisy(clean, 0.05, 2))
    out = _run("--reference", reference, "--json", input=f"{result_file}\n")
    assert out.exit_code == 0, out.stderr
    records = [r for r in _records(out.stdout) if not r.get("summary")]
    assert len(records) == 1 and records[0]["file"] == "fixed.png"
    expected = metrics.psnr(io.read_image(result_file).pixels, io.read_image(reference).pixels)
    assert records[0]["psnr"] == pytest.approx(expected, abs=1e-3)
    other = _write(tmp_path / "other.png", _noisy(clean, 0.1, 3))
    two = _run(result_file, other, "--reference", reference)  # before: "nothing for 1 of the 2 reference images"
    assert two.exit_code == 0 and "WARNING" not in two.stderr, two.stderr
    (tmp_path / "refs").mkdir()
    for name in ("fixed.png", "other.png", "third.png"):
        _write(tmp_path / "refs" / name, clean)
    against_folder = _run(result_file, other, "--reference", tmp_path / "refs")  # each file covers its own image
    assert against_folder.exit_code == 0 and "WARNING" not in against_folder.stderr, against_folder.stderr


def test_recursive_pairs_by_path_below_the_folder(tmp_path: Path) -> None:
    """The tree ``restore -r`` mirrors pairs with its reference tree by relative path, so two
    ``a.png`` in different sub-folders are two images; without -r the error says to add it."""
    for sub, seed in (("roll1", 1), ("roll2", 2)):
        for top in ("clean", "out", "true", "pred"):
            (tmp_path / top / sub).mkdir(parents=True)
        clean = _img(seed)
        _write(tmp_path / "clean" / sub / "a.png", clean)
        _write(tmp_path / "out" / sub / "a.png", _noisy(clean, 0.02 * seed, seed))
        truth = np.zeros((32, 32), np.uint8)
        truth[2:9, 3:20] = 255
        io.write_gray8(tmp_path / "true" / sub / "a.png", truth)
        io.write_gray8(tmp_path / "pred" / sub / "a.png", truth if sub == "roll1" else np.zeros_like(truth))
    flat = _run(tmp_path / "out", "--reference", tmp_path / "clean")
    assert flat.exit_code == 1 and "add -r" in flat.stderr
    flat_refs = _run(tmp_path / "out" / "roll1", "--reference", tmp_path / "clean")  # images only below clean/
    assert flat_refs.exit_code == 3 and "no reference image named a.* in" in flat_refs.stderr
    assert "its images are in sub-folders: add -r" in flat_refs.stderr
    masks_only = _run("--masks", tmp_path / "pred", "--true-masks", tmp_path / "true", input="")
    assert masks_only.exit_code == 1
    assert "no mask images found; its images are in sub-folders: add -r" in masks_only.stderr
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    nothing = _run(tmp_path / "empty", "--reference", tmp_path / "clean")
    assert nothing.exit_code == 1 and "add -r" not in nothing.stderr  # no image anywhere: -r would not help
    _write(tmp_path / "out" / "top.png", _img(3))
    _write(tmp_path / "clean" / "top.png", _img(3))
    mixed = _run(tmp_path / "out", "--reference", tmp_path / "clean")
    assert mixed.exit_code == 0 and "its sub-folders are not read (add -r" in mixed.stderr
    (tmp_path / "out" / "top.png").unlink()
    out = _run(tmp_path / "out", "-r", "--reference", tmp_path / "clean", "--masks", tmp_path / "pred",
               "--true-masks", tmp_path / "true", "--json")
    assert out.exit_code == 0, out.stderr
    records = {r["file"]: r for r in _records(out.stdout) if not r.get("summary")}
    assert set(records) == {"roll1/a.png", "roll2/a.png"}
    assert records["roll1/a.png"]["psnr"] > records["roll2/a.png"]["psnr"]  # sigma 0.02 against 0.04
    assert records["roll1/a.png"]["f1"] == 1.0 and records["roll2/a.png"]["f1"] == 0.0
    (tmp_path / "out" / "roll2" / "a.png").unlink()  # messages name the path below the folder
    missing = _run(tmp_path / "out", "-r", "--reference", tmp_path / "clean")
    assert "nothing for 2 of the 3 reference images (roll2/a.png, top.png)" in missing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--masks", "{pred}"], "--true-masks"),
        (["--curves", "{pred}/photo0.png"], "--html"),
        (["--inputs", "{degraded}"], "--html"),
        (["--reference", "{missing}"], "no such file or folder"),
        (["--reference", "{clean}/photo0.png"], "is a file"),
        (["--html", "{clean}"], "is a folder"),
    ],
)
def test_usage_errors_exit_2(folders: dict[str, Path], args: list[str], message: str) -> None:
    paths = {k: str(v) for k, v in folders.items()} | {"missing": str(folders["clean"] / "nope")}
    result = _run(folders["unet"], *[a.format(**paths) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stdout == ""


def test_an_unwritable_html_page_fails_before_scoring(folders: dict[str, Path]) -> None:
    """--html under a file was found only after every image was scored, as "File exists"."""
    blocker = folders["clean"].parent / "a-file"
    blocker.write_text("x")
    result = _run(folders["unet"], "--reference", folders["clean"], "--json", "--html", blocker / "report.html")
    assert result.exit_code == 1 and result.stdout == ""  # no record: nothing was scored
    assert "a-file/report.html: cannot write in" in result.stderr and "a file is in the way" in result.stderr
    notes = folders["clean"].parent / "notes.html"  # the user's own page: it was replaced
    notes.write_text("<html>my notes</html>")
    refused = _run(folders["unet"], "--reference", folders["clean"], "--html", notes)
    assert refused.exit_code == 2 and "exists and is not a page restore evaluate wrote" in refused.stderr
    assert notes.read_text() == "<html>my notes</html>"
    page = folders["clean"].parent / "page.html"  # its own page is replaced, as before
    for _ in range(2):
        assert _run(folders["unet"], "--reference", folders["clean"], "--html", page).exit_code == 0


def test_no_results_and_nothing_piped_is_a_usage_error() -> None:
    result = _run("--reference", ".")
    assert result.exit_code == 2 and "no result folder or file given" in result.stderr


# ------------------------------------------------------------------ viewer page


def test_html_report_is_self_contained_and_escaped(folders: dict[str, Path], tmp_path: Path) -> None:
    odd = "a <b> & \"c\" #1 <script>"
    _write(folders["unet"] / f"{odd}.png", _img(7))
    curve = tmp_path / "metrics.jsonl"
    curve.write_text("".join(json.dumps({"step": s, "loss": 1 / (s + 1)}) + "\n" for s in range(50)) + "garbage\n")
    page_path = tmp_path / "out" / "report.html"
    result = _run(folders["unet"], folders["bm3d"], "--reference", folders["clean"], "--inputs", folders["degraded"],
                  "--html", page_path, "--curves", curve)
    assert result.exit_code == 3  # the odd name has no reference; the page still lists it
    page = page_path.read_text()
    assert "<script>" not in page.split('id="report-data">', 1)[1].split("</script>", 1)[0]
    blob = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S).group(1)
    data = json.loads(blob)
    assert data["methods"] == ["unet", "bm3d"] and len(data["items"]) == 4
    item = next(i for i in data["items"] if i["name"] == "photo0")
    assert item["original"] == "../degraded/photo0.png" and item["results"][1]["src"] == "../bm3d/photo0.tif"
    assert item["results"][0]["psnr"] > 20
    odd_item = next(i for i in data["items"] if i["name"] == odd)
    assert odd_item["results"][0]["src"] == "../unet/a%20%3Cb%3E%20%26%20%22c%22%20%231%20%3Cscript%3E.png"
    assert odd_item["results"][1] is None
    assert "<polyline" in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")


def test_curves_png_and_checkpoint_sibling(tmp_path: Path) -> None:
    png = _write(tmp_path / "loss.png", _img(1, size=(8, 8)))
    assert lossplot.load_curve(png).png_uri.startswith("data:image/png;base64,")
    ckpt = tmp_path / "mask.safetensors"
    ckpt.write_bytes(b"x")
    lines = ['{"epoch": 1, "train_loss": 0.5, "lr": 0.1}', '{"epoch": 2, "train_loss": 0.25}']
    (tmp_path / "mask.metrics.jsonl").write_text("\n".join(lines) + "\n")
    curve = lossplot.load_curve(ckpt)
    assert curve.title == "mask.metrics.jsonl" and "train_loss" in curve.svg and ">lr<" not in curve.svg
    assert lossplot.parse_jsonl('{"step": 3, "loss": 1.0}\n{"step": 4, "loss": 0.5, "val_loss": 0.7}\n') == {
        "loss": [(3.0, 1.0), (4.0, 0.5)], "val_loss": [(4.0, 0.7)],
    }


def test_script_json_cannot_close_the_script() -> None:
    text = report_html.script_json({"name": "</script><!--&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"name": "</script><!--&"}


def test_training_curves_keep_psnr_apart_from_fractions(tmp_path: Path) -> None:
    from restore_cli.report.curves import plot_curves

    rows = [{"step": s, "loss": 1.0 / s} for s in (1, 2, 3)] + [{"step": 3, "val_psnr": 29.5, "val_ssim": 0.84}]
    widths = {}
    for name, kept in (("both", rows), ("ssim", [r for r in rows if "val_psnr" not in r] + [{"step": 3, "val_ssim": 0.8}])):
        plot_curves(kept, tmp_path / f"{name}.png")
        widths[name] = io.read_image(tmp_path / f"{name}.png").pixels.shape[1]
    assert widths["both"] > widths["ssim"]  # a third panel for the dB-scale metric, none without one
