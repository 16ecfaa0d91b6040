"""`restore degrade`: generators, mask exactness, presets, overrides, dataset CLI contract."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage import data
from typer.testing import CliRunner

from restore_cli.cli import app
from restore_cli.degrade.config import PRESETS, DegradeConfig, from_preset, with_overrides
from restore_cli.degrade.engine import VISIBLE_LEVELS, Sample, defect_mask, degrade
from restore_cli.degrade.raster import capsules
from restore_cli.errors import UsageError

GRAY = np.full((96, 96, 1), 0.5, dtype=np.float32)


def only(kind: str, **extra) -> DegradeConfig:
    """A config with a single local generator and no global effect."""
    if kind == "dust":
        return with_overrides(PRESETS["scratches"], {"scratches.kinds": "none", **extra})
    return with_overrides(PRESETS["scratches"], {"scratches.kinds": kind, "dust.enabled": False, **extra})


def components(mask: np.ndarray) -> int:
    return ndimage.label(mask, structure=np.ones((3, 3)))[1]


# ----------------------------------------------------------------- engine and generators


@pytest.mark.parametrize("kind", ["linear", "broken", "curved", "cracks", "dust"])
@pytest.mark.parametrize("channels", [1, 3])
def test_mask_is_exactly_the_changed_pixels(kind, channels):
    clean = np.repeat(GRAY, channels, axis=2)
    config = only(kind)
    drawn = 0
    for seed in range(12):
        sample = degrade(clean, config, np.random.default_rng(seed))
        assert isinstance(sample, Sample)
        assert sample.degraded.dtype == np.float32 and sample.degraded.shape == clean.shape
        assert sample.mask.dtype == bool and sample.mask.shape == clean.shape[:2]
        assert 0.0 <= sample.degraded.min() and sample.degraded.max() <= 1.0
        # The documented definition, written out here rather than taken from the engine: a pixel is a
        # defect where its 8-bit value moved by at least VISIBLE_LEVELS (8) in some channel.
        level = lambda x: np.floor(x * 255 + 0.5)  # noqa: E731  (8-bit, rounded half up)
        moved = np.abs(level(clean) - level(sample.degraded)).max(axis=2)
        np.testing.assert_array_equal(sample.mask, moved >= 8)
        np.testing.assert_array_equal(defect_mask(clean, sample.degraded), moved >= 8)
        assert all(item["kind"] == kind for item in sample.params["local"])
        assert sample.params["global"] == []
        drawn += bool(sample.mask.any())
    assert drawn >= 10  # on mid-gray every stroke is visible; dust may draw zero spots


def test_params_are_json_and_seed_determines_sample():
    a = degrade(GRAY, PRESETS["old-photo"], np.random.default_rng(7))
    b = degrade(GRAY, PRESETS["old-photo"], np.random.default_rng(7))
    np.testing.assert_array_equal(a.degraded, b.degraded)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert json.dumps(a.params) == json.dumps(b.params)


@pytest.mark.parametrize("width", [1.0, 2.0, 2.4, 3.0, 4.0])
@pytest.mark.parametrize("offset", [0.0, 0.3, 0.5])
def test_capsule_width_is_exact(width, offset):
    """Across a horizontal or vertical line, coverage sums to the width (width * sqrt 2 at 45 degrees)."""
    shape = (64, 64)
    for (x0, y0, x1, y1), factor in [((5, 30 + offset, 58, 30 + offset), 1.0),
                                     ((30 + offset, 5, 30 + offset, 58), 1.0),
                                     ((5 + offset, 5, 58 + offset, 58), math.sqrt(2))]:
        flat, cover, _ = capsules(x0, y0, x1, y1, width / 2, shape)
        grid = np.zeros(shape[0] * shape[1])
        np.maximum.at(grid, flat, cover)
        grid = grid.reshape(shape)
        steep = x0 == x1
        middle = grid[20:40] if steep else grid[:, 20:40]
        sums = middle.sum(axis=1 if steep else 0)
        # Exact on axis-aligned lines (a linear ramp sampled at unit spacing); at 45 degrees the
        # ramp is sampled every 0.71 px, so only close.
        np.testing.assert_allclose(sums, width * factor, atol=1e-6 if factor == 1.0 else 0.2)
        if factor == 1.0:
            rows = (middle > 0).sum(axis=1 if steep else 0)
            assert rows.min() >= math.floor(width) and rows.max() <= math.ceil(width) + 1


def test_scratch_widths_stay_in_range():
    config = only("linear", **{"scratches.width_range": "2,3", "scratches.count_range": "1"})
    for seed in range(15):
        sample = degrade(GRAY, config, np.random.default_rng(seed))
        (stroke,) = sample.params["local"]
        assert 2.0 <= stroke["width"] <= 3.0
        # Visible thickness <= width + 1 (the anti-aliased ramp): half-thickness from the EDT.
        # (padded: beyond the image border counts as background)
        assert 2 * ndimage.distance_transform_edt(np.pad(sample.mask, 1)).max() <= 3.0 + 2.0


def _inside(points: np.ndarray, shape, margin: float = 3.0) -> np.ndarray:
    return np.all((points >= margin) & (points <= np.array(shape[::-1]) - 1 - margin), axis=-1)


def test_broken_scratches_are_discontinuous():
    config = only("broken", **{"scratches.count_range": "1", "scratches.segments_range": "4,6",
                               "scratches.broken_gap_range": "3,6", "scratches.length_range": "0.4,0.6"})
    clean = np.full((128, 128, 1), 0.5, np.float32)
    separated = 0
    for seed in range(20):
        sample = degrade(clean, config, np.random.default_rng(seed))
        pieces = np.array(sample.params["local"][0]["segments"]).reshape(-1, 2, 2)
        whole = int(np.all(_inside(pieces, clean.shape[:2]), axis=1).sum())  # pieces fully in view
        assert components(sample.mask) >= whole
        separated += components(sample.mask) > 1
    assert separated >= 15


@pytest.mark.parametrize("kind", ["curved", "cracks"])
def test_curved_scratches_and_cracks_are_continuous(kind):
    config = only(kind, **{"scratches.count_range": "1", "scratches.length_range": "0.2,0.4",
                           "scratches.crack_steps_range": "8,15"})
    clean = np.full((128, 128, 1), 0.5, np.float32)
    checked = 0
    for seed in range(30):
        sample = degrade(clean, config, np.random.default_rng(seed))
        points = np.array(sample.params["local"][0]["segments"]).reshape(-1, 2, 2)
        if np.all(_inside(points, clean.shape[:2])):
            assert components(sample.mask) == 1, seed
            checked += 1
    assert checked >= 5


def test_dust_draws_the_configured_number_of_spots():
    config = only("dust", **{"dust.count_range": "25"})
    sample = degrade(GRAY, config, np.random.default_rng(1))
    assert len(sample.params["local"][0]["spots"]) == 25
    assert 1 < components(sample.mask) <= 25


def test_global_effects_do_not_touch_the_mask():
    local = only("linear")
    everything = with_overrides(local, {f"{e}.prob": 1.0 for e in
                                        ("fade", "sepia", "blur", "resample", "grain", "noise", "salt_pepper", "jpeg")})
    clean = np.repeat(GRAY, 3, axis=2)
    a = degrade(clean, local, np.random.default_rng(3))
    b = degrade(clean, everything, np.random.default_rng(3))
    np.testing.assert_array_equal(a.mask, b.mask)
    assert [g["effect"] for g in b.params["global"]] == [
        "fade", "sepia", "blur", "resample", "grain", "noise", "salt_pepper", "jpeg"]


# ----------------------------------------------------------------- presets and overrides


def test_presets():
    assert set(PRESETS) >= {"scratches", "gaussian", "old-photo"}
    scratches, gaussian, old = PRESETS["scratches"], PRESETS["gaussian"], PRESETS["old-photo"]
    globals_ = ("fade", "sepia", "blur", "resample", "grain", "noise", "salt_pepper", "jpeg")
    assert all(getattr(scratches, e).prob == 0 for e in globals_) and scratches.scratches.kinds and scratches.dust.enabled
    assert not gaussian.scratches.kinds and not gaussian.dust.enabled and gaussian.noise.prob == 1.0
    assert all(getattr(gaussian, e).prob == 0 for e in globals_ if e != "noise")
    assert all(getattr(old, e).prob > 0 for e in globals_) and old.scratches.kinds


def test_gaussian_sigma_25_gives_that_noise():
    config = from_preset("gaussian", {"noise.sigma_range": 25})
    assert config.noise.sigma_range == (25.0, 25.0)
    flat = np.full((128, 128, 1), 0.5, np.float32)
    sample = degrade(flat, config, np.random.default_rng(0))
    assert not sample.mask.any()
    noisy = np.round(sample.degraded * 255) / 255
    assert abs(noisy.std() - 25 / 255) < 0.03 * 25 / 255
    assert abs(noisy.mean() - 0.5) < 0.01


def test_grain_preset_gives_correlated_noise_and_no_defects():
    config = PRESETS["grain"]
    globals_ = ("fade", "sepia", "blur", "resample", "noise", "salt_pepper", "jpeg")
    assert config.grain.prob == 1.0 and all(getattr(config, e).prob == 0 for e in globals_)
    flat = np.full((128, 128, 1), 0.5, np.float32)
    for seed in range(3):
        sample = degrade(flat, config, np.random.default_rng(seed))
        assert not sample.mask.any()
        residual = sample.degraded[:, :, 0] - 0.5
        neighbours = np.corrcoef(residual[:, :-1].ravel(), residual[:, 1:].ravel())[0, 1]
        assert neighbours > 0.3  # grain, not white noise (whose neighbours are uncorrelated)


def test_overrides_parse_and_validate():
    config = with_overrides(PRESETS["old-photo"], {
        "scratches.kinds": "linear,cracks", "scratches.width_range": "1.5, 3", "dust.enabled": "no",
        "noise.prob": "0.25", "jpeg.quality_range": "50,70"})
    assert config.scratches.kinds == ("linear", "cracks") and config.scratches.width_range == (1.5, 3.0)
    assert config.dust.enabled is False and config.noise.prob == 0.25 and config.jpeg.quality_range == (50, 70)
    assert config.to_dict()["scratches"]["kinds"] == ("linear", "cracks")
    for bad in ({"noise.prob": 1.5}, {"scratches.width_range": "4,1"}, {"scratches.kinds": "zigzag"},
                {"nosuch.prob": 1}, {"noise.nosuch": 1}, {"jpeg.quality_range": "0,200"},
                {"scratches.count_range": "1.5,2"}, {"noise.sigma_range": "a,b"}):
        with pytest.raises(UsageError):
            with_overrides(PRESETS["old-photo"], bad)
    with pytest.raises(UsageError):
        from_preset("nosuch")
    with pytest.raises(UsageError):
        from_preset("old-photo", settings=["no-equals-sign"])


# ----------------------------------------------------------------- the command


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(data.camera()[100:148, 200:264]).save(folder / "a_gray.png")
    Image.fromarray(data.astronaut()[50:106, 150:190]).save(folder / "b_rgb.png")
    Image.fromarray(data.coffee()[100:150, 100:160]).save(folder / "c_photo.jpg", quality=90)
    return folder


def run(args: list[str], stdin: str = ""):
    return CliRunner().invoke(app, ["degrade", *args], input=stdin)


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "summary.json"}


def test_bad_file_is_reported_and_the_rest_is_written(photos, tmp_path):
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    out = tmp_path / "out"
    result = run([str(photos), "-o", str(out), "--variations", "2", "--size", "32", "--seed", "5"])
    assert result.exit_code == 3, result.output
    assert result.stdout == f"{out}\n"
    assert "broken.png" in result.stderr
    for sub in ("clean", "degraded", "masks"):
        assert sorted(p.name for p in (out / sub).iterdir()) == [
            "a_gray_v000.png", "a_gray_v001.png", "b_rgb_v000.png", "b_rgb_v001.png",
            "c_photo_v000.png", "c_photo_v001.png"]
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["name"] for r in records] == sorted(p.name for p in (out / "clean").iterdir())
    first = records[0]
    assert first["source"].endswith("a_gray.png") and first["seed"] == 5 and first["spawn_key"] == [0, 0]
    assert first["crop"]["width"] == first["crop"]["height"] == 32
    assert {"local", "global"} <= set(first["params"]) and first["channels"] == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"samples": 6, "images_done": 3, "images_failed": 1, "images_skipped": 0,
                                 "images_planned": 4, "samples_planned": 8}
    assert summary["preset"] == "old-photo" and summary["config"]["noise"]["prob"] == 0.5
    assert "restore_version" in summary and summary["elapsed_s"] >= 0
    assert any("broken.png" in e for e in summary["errors"])


def test_same_seed_same_bytes_whatever_the_workers(photos, tmp_path):
    args = [str(photos), "--count", "5", "--size", "24", "--seed", "11"]
    assert run([*args, "-o", str(tmp_path / "one")]).exit_code == 0
    assert run([*args, "-o", str(tmp_path / "again")]).exit_code == 0
    assert run([*args, "-o", str(tmp_path / "two"), "--workers", "2"]).exit_code == 0
    reference = files_of(tmp_path / "one")
    assert len(reference) == 3 * 5 + 1
    assert files_of(tmp_path / "again") == reference
    assert files_of(tmp_path / "two") == reference
    assert run([str(photos), "--count", "5", "--size", "24", "--seed", "12", "-o", str(tmp_path / "other")]).exit_code == 0
    assert files_of(tmp_path / "other") != reference


def test_saved_mask_matches_saved_images(photos, tmp_path):
    out = tmp_path / "out"
    assert run([str(photos), "-o", str(out), "--preset", "scratches", "--variations", "2"]).exit_code == 0
    for mask_file in (out / "masks").iterdir():
        mask = np.asarray(Image.open(mask_file))
        clean = np.asarray(Image.open(out / "clean" / mask_file.name))
        degraded = np.asarray(Image.open(out / "degraded" / mask_file.name))
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
        changed = np.abs(clean.astype(np.int16) - degraded.astype(np.int16)) >= VISIBLE_LEVELS
        np.testing.assert_array_equal(mask == 255, changed.any(axis=2) if changed.ndim == 3 else changed)


def test_stdout_is_only_the_output_path(photos, tmp_path):
    out = tmp_path / "piped"
    done = subprocess.run(
        [sys.executable, "-m", "restore_cli.cli", "degrade", str(photos), "-o", str(out), "--count", "2", "-v"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{out}\n"
    assert "samples" in done.stderr


def test_non_empty_output_needs_overwrite(photos, tmp_path):
    out = tmp_path / "out"
    assert run([str(photos), "-o", str(out), "--count", "1"]).exit_code == 0
    refused = run([str(photos), "-o", str(out), "--count", "1"])
    assert refused.exit_code == 2 and "--overwrite" in refused.stderr and refused.stdout == ""
    again = run([str(photos), "-o", str(out), "--count", "2", "--overwrite"])
    assert again.exit_code == 0 and len(list((out / "clean").iterdir())) == 2


def test_overwrite_replaces_only_a_dataset_and_only_what_it_wrote(photos, tmp_path):
    """Before, --overwrite on any folder deleted its clean/, degraded/ and masks/ sub-folders whole:
    with -o set to the folder above the inputs, the input photos themselves."""
    holder = tmp_path / "archive"
    shutil.copytree(photos, holder / "clean")
    (holder / "masks").mkdir()
    (holder / "masks" / "README.txt").write_text("drawn by hand")
    inside = run([str(holder / "clean"), "-o", str(holder), "--overwrite"])
    assert inside.exit_code == 2 and "holds the input" in inside.stderr and inside.stdout == ""
    not_dataset = run([str(photos), "-o", str(holder), "--overwrite"])
    assert not_dataset.exit_code == 2 and "holds no dataset" in not_dataset.stderr
    assert sorted(p.name for p in (holder / "clean").iterdir()) == sorted(p.name for p in photos.iterdir())
    assert (holder / "masks" / "README.txt").exists()

    out = tmp_path / "out"
    assert run([str(photos), "-o", str(out), "--count", "3"]).exit_code == 0
    (out / "masks" / "notes.txt").write_text("mine")
    again = run([str(photos), "-o", str(out), "--count", "1", "--overwrite"])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["a_gray_v000.png", "notes.txt"]


def test_a_stopped_run_leaves_a_dataset_marked_unfinished(photos, tmp_path, monkeypatch):
    from restore_cli.degrade import dataset

    def stopped_after_one(results, write):
        write(next(iter(results)))
        raise KeyboardInterrupt

    out = tmp_path / "out"
    monkeypatch.setattr(dataset, "run_batch", stopped_after_one)
    assert run([str(photos), "-o", str(out)]).exit_code == 130
    assert json.loads((out / "summary.json").read_text())["state"] == "unfinished"
    monkeypatch.undo()
    rerun = run([str(photos), "-o", str(out)])
    assert rerun.exit_code == 2 and "unfinished" in rerun.stderr and "--overwrite" in rerun.stderr
    assert run([str(photos), "-o", str(out), "--overwrite"]).exit_code == 0
    assert json.loads((out / "summary.json").read_text())["state"] == "complete"


def test_no_samples_is_fatal_and_passes_no_path_on(photos, tmp_path):
    result = run([str(photos), "-o", str(tmp_path / "big"), "--size", "500"])
    assert result.exit_code == 1 and result.stdout == "" and "no samples written" in result.stderr


def _cli(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "restore_cli.cli", *args], stderr=subprocess.PIPE, timeout=120,
                          **kwargs)


def test_an_empty_pipe_is_an_error_not_the_sample_photos(tmp_path):
    """``find ... | restore degrade -o data`` where find found nothing: before, a dataset of
    scikit-image's photos and status 0."""
    done = _cli(["degrade", "-o", str(tmp_path / "out")], input=b"")
    assert done.returncode == 2 and b"stdin is a pipe that gave no paths" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_full_or_closed_stdout_is_a_one_line_error(photos, tmp_path):
    with open("/dev/full", "w") as full:
        done = _cli(["degrade", str(photos), "-o", str(tmp_path / "a"), "--count", "1"], stdout=full)
    assert done.returncode == 1, done.stderr
    assert done.stderr.decode().strip().splitlines()[-1] == (
        f"error: cannot write the path of {tmp_path / 'a'} to stdout (No space left on device)")
    closed = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "restore_cli.cli", "degrade",
                             str(photos), "-o", str(tmp_path / "b"), "--count", "1"],
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    assert closed.returncode == 2 and b"stdout is closed" in closed.stderr


def test_builtin_samples_stdin_count_and_colour(photos, tmp_path):
    out = tmp_path / "builtin"
    result = run(["-o", str(out), "--count", "3", "--size", "32", "--gray"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(r["source"].startswith("skimage.data/") for r in records)
    assert all(np.asarray(Image.open(p)).ndim == 2 for p in (out / "clean").iterdir())

    piped = tmp_path / "piped"
    result = run(["-o", str(piped), "--rgb", "--variations", "1"], stdin=f"{photos}\n")
    assert result.exit_code == 0, result.output
    assert len(list((piped / "clean").iterdir())) == 3
    assert all(np.asarray(Image.open(p)).shape[2] == 3 for p in (piped / "degraded").iterdir())


def test_too_small_images_are_skipped_and_options_validated(photos, tmp_path):
    result = run([str(photos), "-o", str(tmp_path / "big"), "--size", "50"])
    assert result.exit_code == 0, result.output
    assert "smaller than --size" in result.stderr
    assert [p.name for p in (tmp_path / "big" / "clean").iterdir()] == ["c_photo_v000.png"]
    summary = json.loads((tmp_path / "big" / "summary.json").read_text())
    assert summary["counts"]["images_skipped"] == 2

    bad = run([str(photos), "-o", str(tmp_path / "x"), "--width-range", "5,1"])
    assert bad.exit_code == 2 and "width_range" in bad.stderr
    bad = run([str(photos), "-o", str(tmp_path / "y"), "--preset", "nosuch"])
    assert bad.exit_code == 2 and "old-photo" in bad.stderr


def test_sigma_and_overrides_reach_the_manifest(photos, tmp_path):
    out = tmp_path / "g"
    result = run([str(photos), "-o", str(out), "--preset", "gaussian", "--sigma", "25", "--set", "noise.prob=1"])
    assert result.exit_code == 0, result.output
    for line in (out / "manifest.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert record["params"] == {"local": [], "global": [{"effect": "noise", "sigma": 25.0}]}
        assert record["mask_fraction"] == 0.0


def test_what_a_dataset_cannot_keep_is_said_once(tmp_path):
    """Datasets are 8-bit grey or RGB: alpha and 16-bit depth were dropped without a word."""
    from restore_cli import io as rio

    folder = tmp_path / "in"
    folder.mkdir()
    rgba = np.dstack([data.astronaut()[:40, :40], np.full((40, 40), 128, np.uint8)])
    Image.fromarray(rgba).save(folder / "a.png")
    Image.fromarray(rgba).save(folder / "b.png")
    deep = rio.Image(pixels=np.full((40, 40, 1), 0.5, np.float32), bit_depth=16)
    rio.write_image(folder / "c.png", deep)
    result = run([str(folder), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("datasets are 8-bit grey or RGB") == 1
    assert "1 input(s) were 16-bit, written with 8, 2 input(s) lost their alpha channel" in result.stderr


def test_a_plan_beyond_the_sample_limit_is_refused_before_anything(tmp_path: Path) -> None:
    """Before, --count 1000000000 filled the memory (GBs in seconds) before writing a sample."""
    result = run(["-o", str(tmp_path / "out"), "--count", "1000000000", "--size", "8"])
    assert result.exit_code == 2 and "1,000,000,000 samples asked for: one run makes at most 1,000,000" in result.stderr
    assert not (tmp_path / "out").exists()
