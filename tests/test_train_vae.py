"""train-vae: losses fall on a tiny problem, data for domain Z, the CLI contract, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optax
import pytest
from flax import nnx
from PIL import Image as PILImage
from typer.testing import CliRunner

from restore_cli.cli import app
from restore_cli.errors import UsageError
from restore_cli.io import Image, write_gray8, write_image
from restore_cli.models.checkpoint import read_checkpoint
from restore_cli.models.vae import KIND, build_model
from restore_cli.train.vae import RealCrops, online_degrade_config, val_folder_pairs
from restore_cli.train.vae_config import resolve
from restore_cli.train.vae_steps import LossConfig, make_step

SIZE = 32


def _photo(rng: np.random.Generator, size: int = 40) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return (0.3 + 0.4 * np.sin(xx / rng.uniform(4, 9)) * np.cos(yy / rng.uniform(5, 9)) ** 2).astype(np.float32)


def _batch(seed: int = 0, batch: int = 4) -> dict:
    """Fixed (degraded, clean, mask, real) crops: noise plus one bright scratch per image."""
    rng = np.random.default_rng(seed)
    clean = np.stack([_photo(rng, SIZE) for _ in range(batch)])[..., None]
    mask = np.zeros_like(clean)
    mask[:, 10:12, 4:28] = 1.0
    degraded = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)
    degraded[mask > 0] = 1.0
    real = np.clip(clean[::-1] + rng.normal(0, 0.05, clean.shape), 0, 1).astype(np.float32)
    return {"degraded": degraded, "clean": clean, "mask": mask, "real": real, "beta": np.float32(1e-4)}


@pytest.mark.parametrize("arch, phase", [("translation", 1), ("simple", 0)])
def test_tiny_training_run_reduces_the_loss(arch, phase):
    cfg = resolve("tiny", arch, latent="vector" if arch == "simple" else "spatial")
    model = build_model(cfg.model_config().to_dict())
    optimizer = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)
    step = make_step(LossConfig(arch=arch, cross_weight=1.0))
    batch = {**_batch(), "phase": phase}
    losses = [float(step(model, optimizer, batch)["loss"]) for _ in range(30)]
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3]), losses


def test_online_degradation_is_blind_to_the_noise_level():
    config = online_degrade_config(resolve("default", None))
    assert config.noise.prob == 1.0 and config.noise.sigma_range == (0.0, 50.0)
    assert config.scratches.kinds  # the old-photo defects stay on
    defects = online_degrade_config(resolve("default", None, degrade="defects"))
    assert defects.noise.prob == 1.0 and defects.blur.prob == defects.jpeg.prob == defects.fade.prob == 0.0
    assert defects.scratches == config.scratches
    mixture = online_degrade_config(resolve("default", None, degrade="defects+old-photo"))
    assert mixture[0] == defects and mixture[1].blur.prob > 0 and mixture[1].noise.prob == 1.0
    with pytest.raises(UsageError, match="unknown degrade preset 'sepia-ish'"):
        online_degrade_config(resolve("default", None, degrade="defects+sepia-ish"))


def _folder(root: Path, count: int = 6) -> Path:
    rng = np.random.default_rng(1)
    for i in range(count):
        clean = _photo(rng)
        degraded, mask = clean.copy(), np.zeros(clean.shape, bool)
        mask[rng.integers(2, 36), 3:37] = True
        degraded[mask] = 1.0
        for sub, pixels in (("clean", clean), ("degraded", degraded), ("real", clean.T), ("val", clean[:36, :36])):
            (root / sub).mkdir(parents=True, exist_ok=True)
            write_image(root / sub / f"p{i}.png", Image(pixels=pixels[:, :, None]))
        (root / "masks").mkdir(exist_ok=True)
        write_gray8(root / "masks" / f"p{i}.png", mask.astype(np.uint8) * 255)
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return _folder(tmp_path_factory.mktemp("vae-data"))


def test_real_crops_and_validation_pairs_are_deterministic(folder):
    crops = RealCrops(folder / "real", crop=16, batch=3, seed=5)
    assert crops(7).shape == (3, 16, 16, 1)
    np.testing.assert_array_equal(crops(7), RealCrops(folder / "real", 16, 3, 5)(7))
    assert not np.array_equal(crops(7), crops(8))
    first, again = val_folder_pairs(folder / "val", 25, 0, 10**8), val_folder_pairs(folder / "val", 25, 0, 10**8)
    np.testing.assert_array_equal(first[0][0], again[0][0])
    assert abs(float(np.std(first[0][0] - first[0][1])) - 25 / 255) < 0.02


def _invoke(*args: str, stdin: str | None = None):
    return CliRunner().invoke(app, ["train-vae", *args], input=stdin)


def test_cli_trains_prints_only_the_checkpoint_and_resumes(folder, tmp_path, monkeypatch):
    out = tmp_path / "run" / "vae.safetensors"
    common = ["-o", str(out), "--preset", "tiny", "--real", str(folder / "real"), "--val", str(folder / "val"),
              "--steps", "4", "--checkpoint-every", "2", "--domain-weight", "Z=0.5", "-q"]
    original = RealCrops.__call__

    def interrupted(self, step):
        if step == 3:
            raise KeyboardInterrupt  # as if Ctrl-C arrived during step 3
        return original(self, step)

    monkeypatch.setattr(RealCrops, "__call__", interrupted)
    result = _invoke(*common, stdin=f"{folder}\n")
    assert result.exit_code == 130 and result.stdout == "", result.output
    # The stop came after step 3 (a step-2 checkpoint on disk): step 3's state was written.
    assert read_checkpoint(out.with_name("vae.last.safetensors"))[1]["resume"]["step"] == 3
    _, header = read_checkpoint(out)
    assert header["kind"] == KIND and header["arch"]["arch"] == "translation"
    assert header["training"]["config"]["domain_weights"] == [1.0, 1.0, 0.5]
    assert header["training"]["step"] == 2 and "val_psnr" in header["metrics"] and header["restore_version"]
    assert out.with_name("vae.curves.png").is_file() and out.with_name("vae.last.safetensors").is_file()

    asked = []

    def recording(self, step):
        asked.append(step)
        return original(self, step)

    monkeypatch.setattr(RealCrops, "__call__", recording)
    result = _invoke(str(folder), *common, "--resume")
    assert result.exit_code == 0, result.output
    assert asked[0] == 3  # the batch of step 4 (indices count from 0): on from the state of the stop
    assert result.stdout == f"{out}\n"  # the checkpoint path is the only line on stdout
    rows = [json.loads(x) for x in out.with_name("vae.metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r][-1] == 4 and any("kl_Y" in r for r in rows)
    per_step = [json.loads(x) for x in out.with_name("vae.steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in per_step] == [1, 2, 3, 4] and all({"loss", "kl_Y", "img"} <= set(r) for r in per_step)

    def broken(self, step):
        if step == 1:
            raise RuntimeError("a disk went away")
        return original(self, step)

    # a fresh run over it that fails before writing anything of its own leaves the run's history as it was
    # (before, its step rows were cut to the one step it made, beside the older checkpoint)
    history = {name: out.with_name(name).read_bytes() for name in ("vae.steps.jsonl", "vae.metrics.jsonl")}
    monkeypatch.setattr(RealCrops, "__call__", broken)
    failed = _invoke(str(folder), *common[:-1])
    assert failed.exit_code != 0 and "a disk went away" in str(failed.exception)
    assert {name: out.with_name(name).read_bytes() for name in history} == history


@pytest.mark.parametrize(
    "args, message",
    [
        (["--domain-weight", "Q=1"], "unknown domain"),
        (["--domain-weight", "X=0,Y=0,Z=0"], "all zero"),
        (["--preset", "cr6", "--arch", "translation"], "original family"),
        (["--beta-schedule", "zigzag"], "--beta-schedule"),
        (["--preset", "cr6", "--width", "8"], "--width: they size the translation model"),
        (["--map-blocks", "1", "--init", "any.safetensors"], "keeps the --init checkpoint's architecture"),
    ],
)
def test_cli_usage_errors(folder, tmp_path, args, message):
    result = _invoke(str(folder), "-o", str(tmp_path / "m.safetensors"), "--preset", "tiny", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and result.stdout == ""


def test_data_errors_name_train_vae_s_own_options(folder, tmp_path):
    """Before, they named train-mask's --online."""
    (tmp_path / "empty").mkdir()
    for args, message in (([str(tmp_path / "empty")], "not a degrade folder (no clean/ inside); make one with "
                                                      "`restore degrade`, or use --clean CLEAN_DIR"),
                          (["--clean", str(tmp_path / "empty")], "--clean: no clean images found"),
                          # before: "not a degrade folder (no clean/ inside)" for a typo
                          ([str(tmp_path / "emtpy")], "emtpy: no such folder (give a `restore degrade` output "
                                                      "folder, or use --clean CLEAN_DIR)")):
        result = _invoke(*args, "-o", str(tmp_path / "m.safetensors"), "--preset", "tiny")
        assert result.exit_code == 2 and message in result.stderr, result.output


def test_val_images_too_small_for_ssim_are_left_out_up_front(tmp_path, caplog):
    """Before: a 7x5 --val image ended a finished run with an SSIM traceback and no checkpoint."""
    val = tmp_path / "val"
    val.mkdir()
    PILImage.fromarray(np.zeros((5, 7), np.uint8)).save(val / "tiny.png")
    with pytest.raises(UsageError, match="no image of at least 7x7 pixels"):
        val_folder_pairs(val, 25, 0, 10**8)
    PILImage.fromarray(np.full((8, 9), 90, np.uint8)).save(val / "ok.png")
    assert [clean.shape[:2] for _, clean in val_folder_pairs(val, 25, 0, 10**8)] == [(8, 9)]
    assert "tiny.png: skipped (--val images need at least 7x7 pixels" in caplog.text


def test_bad_schedule_values_and_a_misplaced_degrade_are_refused(folder, tmp_path):
    """Before: --beta-max nan trained to "diverged" (status 1), --anneal-epochs nan wrote NaN into the
    checkpoint's JSON header, and --degrade with a DATASET was ignored (an unknown preset too)."""
    for args, message in ((["--beta-max", "nan"], "--beta-max must be a finite number >= 0, got nan"),
                          (["--beta-start", "-1"], "--beta-start must be a finite number >= 0, got -1"),
                          (["--anneal-epochs", "nan"], "--anneal-epochs must be above 0, got nan"),
                          (["--degrade", "foo"], "--degrade draws online damage for --clean")):
        result = _invoke(str(folder), "-o", str(tmp_path / "m.safetensors"), "--preset", "tiny", *args)
        assert result.exit_code == 2 and message in result.stderr, result.output
    assert not (tmp_path / "m.safetensors").exists()


def test_fine_tune_from_a_checkpoint_on_a_mixture_without_the_mask(folder, tmp_path):
    first = tmp_path / "a.safetensors"  # seed 1: a fresh seed-0 model would start elsewhere
    assert _invoke(str(folder), "-o", str(first), "--preset", "tiny", "--steps", "2", "--seed", "1", "-q").exit_code == 0
    start, _ = read_checkpoint(first)
    tuned = tmp_path / "b.safetensors"
    result = _invoke("--clean", str(folder / "clean"), "-o", str(tuned), "--preset", "tiny", "--steps", "2",
                     "--init", str(first), "--degrade", "defects+old-photo", "--no-mask-input", "-q")
    assert result.exit_code == 0, result.output
    weights, header = read_checkpoint(tuned)
    config = header["training"]["config"]
    assert config["init"] == str(first) and config["mask_input"] is False
    assert len(header["training"]["data"]["degrade"]) == 2  # both mixture members recorded
    assert header["training"]["init"]["step"] == 2 and header["training"]["init"]["wall_s"] > 0  # stage 1's cost
    assert weights.keys() == start.keys()
    assert max(float(np.max(np.abs(weights[k] - start[k]))) for k in start) < 0.05  # a few small steps from init
    wrong = _invoke(str(folder), "-o", str(tmp_path / "c.safetensors"), "--preset", "tiny", "--init", str(first),
                    "--arch", "simple")
    assert wrong.exit_code == 2 and "--arch translation" in wrong.output


def test_worker_processes_train_the_same_model_as_the_thread(folder, tmp_path, monkeypatch):
    """Online damage and real crops from two forked workers, beta from the training process: same bytes."""
    monkeypatch.setattr("restore_cli.train.prefetch.WORKER_TIMEOUT_S", 60)  # a hung worker fails fast here
    runs = {}
    for workers in (0, 2):
        out = tmp_path / f"w{workers}" / "vae.safetensors"
        result = _invoke("--clean", str(folder / "clean"), "--real", str(folder / "real"), "-o", str(out),
                         "--preset", "tiny", "--steps", "3", "--data-workers", str(workers), "-q")
        assert result.exit_code == 0, result.output
        runs[workers] = (read_checkpoint(out)[0], out.with_name("vae.steps.jsonl").read_text())
    assert runs[0][1] == runs[2][1] and '"beta"' in runs[0][1]  # every step's losses, beta included
    assert all(np.array_equal(runs[0][0][k], runs[2][0][k]) for k in runs[0][0])


def test_width_and_map_blocks_size_the_translation_model(folder, tmp_path):
    out = tmp_path / "small.safetensors"
    result = _invoke(str(folder), "-o", str(out), "--preset", "tiny", "--steps", "2", "--checkpoint-every", "2",
                     "--width", "8", "--map-blocks", "2", "-q")
    assert result.exit_code == 0, result.output
    arrays, header = read_checkpoint(out)
    assert header["arch"]["width"] == 8 and header["arch"]["map_blocks"] == 2
    default = _invoke(str(folder), "-o", str(tmp_path / "tiny.safetensors"), "--preset", "tiny", "--steps", "2",
                      "--checkpoint-every", "2", "-q")
    assert default.exit_code == 0, default.output
    tiny_arrays, tiny_header = read_checkpoint(tmp_path / "tiny.safetensors")
    assert tiny_header["arch"]["width"] == 16 and tiny_header["arch"]["map_blocks"] == 1
    count = lambda a: sum(int(v.size) for v in a.values())  # noqa: E731
    assert count(arrays) < count(tiny_arrays)  # half the width: fewer parameters despite a block more
    tuned = _invoke(str(folder), "-o", str(tmp_path / "tuned.safetensors"), "--preset", "tiny", "--steps", "2",
                    "--checkpoint-every", "2", "--init", str(out), "-q")
    assert tuned.exit_code == 0, tuned.output
    config = read_checkpoint(tmp_path / "tuned.safetensors")[1]["training"]["config"]
    assert (config["width"], config["map_blocks"]) == (8, 2)  # what it trained, not the preset's 16 / 1
