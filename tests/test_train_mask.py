"""train-mask end to end on a tiny generated degrade folder: batches, loop, resume, NaN guard, detector, CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from restore_cli.errors import CheckpointError, RestoreError, UsageError
from restore_cli.io import Image, read_image, write_gray8, write_image
from restore_cli.models.checkpoint import read_checkpoint, read_header, save_checkpoint
from restore_cli.models.unet import UNetConfig
from restore_cli.restoration.mask_detector import MaskDetector
from restore_cli.train import data, mask
from restore_cli.train.loop import TrainingDiverged
from restore_cli.train.mask import MASK_PRESETS, online_degrade_config, resolve_split_seed, train_mask

REPO = Path(__file__).resolve().parents[1]
TINY = dataclasses.replace(
    MASK_PRESETS["tiny"], arch=UNetConfig(widths=(8, 8), norm="none"), batch=4, crop=24, steps=40,
    lr=1e-2, warmup=2, val_crops=8, log_every=1, eval_every=20, checkpoint_every=20,
)


def _make_degrade_folder(root: Path, count: int = 6, size: int = 40) -> Path:
    """clean/ degraded/ masks/ with bright and dark 1-2 px lines (a stand-in for `restore degrade`)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(count):
        clean = (0.3 + 0.4 * np.sin(xx / rng.uniform(4, 9) + i) * np.cos(yy / 7.0) ** 2).astype(np.float32)
        degraded, mask = clean.copy(), np.zeros((size, size), bool)
        for _ in range(3):
            if rng.random() < 0.5:
                line = np.abs(xx - rng.integers(3, size - 3) - (yy - size / 2) * rng.uniform(-0.3, 0.3)) < rng.uniform(0.6, 1.2)
            else:
                line = np.abs(yy - rng.integers(3, size - 3)) < 0.8
            degraded[line] = 1.0 if rng.random() < 0.6 else 0.0
            mask |= line
        name = f"img{i}.png"
        for sub, pixels in (("clean", clean), ("degraded", degraded)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            write_image(root / sub / name, Image(pixels=pixels[:, :, None]))
        (root / "masks").mkdir(exist_ok=True)
        write_gray8(root / "masks" / name, mask.astype(np.uint8) * 255)
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return _make_degrade_folder(tmp_path_factory.mktemp("degraded"))


@pytest.fixture(scope="module")
def trained(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "mask.safetensors"
    return train_mask(folder, out, TINY)


def _losses(checkpoint: Path) -> dict[int, float]:
    """Loss per step from a run's metrics file; a step logged twice (a resume that redid it) fails."""
    rows = [json.loads(x) for x in checkpoint.with_name(checkpoint.stem + ".metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    assert len(steps) == len(set(steps)), f"steps logged twice: {steps}"
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def _record_steps(monkeypatch) -> list[int]:
    """Patch Batches to note every batch index it is asked for (from the prefetch thread too), in order.

    Index i is the batch of optimizer step i + 1 (the loop counts steps from 1)."""
    asked, real_call = [], data.Batches.__call__

    def recording(self, step):
        asked.append(step)
        return real_call(self, step)

    monkeypatch.setattr(data.Batches, "__call__", recording)
    return asked


def test_batches_follow_the_contract_and_depend_only_on_the_step(folder):
    batches = data.Batches(data.PairSource(folder), batch=3, crop=16, seed=7)
    first, again = batches(5), batches(5)
    assert set(first) == set(data.BATCH_KEYS)
    for key, value in first.items():
        assert value.shape == (3, 16, 16, 1) and value.dtype == np.float32
        assert np.array_equal(value, again[key])
    assert set(np.unique(first["mask"])) <= {0.0, 1.0}
    assert not np.array_equal(batches(6)["degraded"], first["degraded"])
    assert batches.steps_per_epoch == 2  # 6 images, 3 per step
    assert sorted(batches.indices(0) + batches.indices(1)) == list(range(6))  # an epoch shows each image once
    with data.Prefetcher(batches, 4, 7, depth=2) as prefetch:
        steps = [step for step, _ in prefetch]
    assert steps == [4, 5, 6]


def test_online_training_leaves_out_a_broken_file(folder, tmp_path):
    import shutil

    clean = tmp_path / "clean"
    shutil.copytree(folder / "clean", clean)
    (clean / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    source = data.OnlineSource.from_folder(clean, online_degrade_config(), region=32)
    assert len(source) == len(list((folder / "clean").iterdir())) and clean / "zz_broken.png" not in source.paths


def test_a_degrade_folder_leaves_out_a_sample_with_a_broken_file(folder, tmp_path, caplog):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(folder, copy)
    names = sorted(p.name for p in (copy / "degraded").iterdir())
    full = (copy / "masks" / names[0]).read_bytes()
    (copy / "masks" / names[0]).write_bytes(full[: len(full) // 2])  # a sound header over truncated data
    source = data.PairSource(copy)
    assert source.names == names[1:] and f"{names[0]}: skipped (corrupt" in caplog.text
    # a mask of another size: left out up front (it stopped the run, status 2, at the batch that drew it)
    write_gray8(copy / "masks" / names[1], np.zeros((10, 10), np.uint8))
    assert data.PairSource(copy).names == names[2:]
    assert f"{names[1]}: skipped (differs in size between clean/, degraded/ and masks/)" in caplog.text
    (copy / "summary.json").write_text('{"state": "unfinished"}')  # a degrade run stopped half-way
    with pytest.raises(UsageError, match="an unfinished dataset"):
        data.PairSource(copy)


def test_a_dataset_without_any_defect_is_refused(folder, tmp_path):
    """Before, a `degrade --preset gaussian` folder trained a detector that marks nothing, silently,
    its validation F1 reading 1."""
    blank = tmp_path / "gaussian"
    shutil.copytree(folder, blank)
    for mask_file in (blank / "masks").iterdir():
        write_gray8(mask_file, np.zeros((40, 40), np.uint8))
    with pytest.raises(UsageError, match="every mask is empty"):
        train_mask(blank, tmp_path / "m.safetensors", TINY)
    assert not (tmp_path / "m.safetensors").exists()
    # a 0/1 mask (numpy booleans saved as 8 bits) marks defects, as restore --masks and evaluate read it
    ones = tmp_path / "ones"
    shutil.copytree(folder, ones)
    for mask_file in (ones / "masks").iterdir():
        write_gray8(mask_file, (read_image(mask_file).pixels[:, :, 0] > 0.5).astype(np.uint8))
    source = data.PairSource(ones)
    assert source.has_defects()
    assert np.array_equal(source._load("img0.png")[2], data.PairSource(folder)._load("img0.png")[2])


def test_online_batches_are_fresh_but_reproducible(folder):
    source = data.OnlineSource.from_folder(folder / "clean", online_degrade_config(), region=32)
    batches = data.Batches(source, batch=6, crop=24, seed=1)
    first = batches(0)
    assert all(np.array_equal(first[k], batches(0)[k]) for k in data.BATCH_KEYS)
    assert first["degraded"].shape == (6, 24, 24, 1) and first["mask"].sum() > 0
    assert np.abs(first["degraded"] - first["clean"]).max() > 0.1
    later = batches(1)  # next epoch: the same six images, degraded afresh
    assert sorted(batches.indices(1)) == sorted(batches.indices(0))
    assert not np.array_equal(later["mask"], first["mask"])
    val = data.validation_set(source, count=5, batch=2, crop=24, seed=1)
    assert len(val) == 3 and np.array_equal(val[0]["degraded"], data.validation_set(source, 5, 2, 24, 1)[0]["degraded"])


def test_online_mixture_draws_every_member_reproducibly(folder):
    """The detector's mixture: clean, noisy and aged members, one per sample, fixed by the seed."""
    members = online_degrade_config()
    assert len(members) == 3 and members[0].noise.prob == 0.0 and members[1].noise.sigma_range == (0.0, 50.0)
    assert all(m.scratches.count_range[0] >= 1 and m.dust.enabled for m in members)
    source = data.OnlineSource.from_folder(folder / "clean", members, region=32)
    batch = data.Batches(source, batch=6, crop=24, seed=3)(0)
    residual = np.abs(batch["degraded"] - batch["clean"]) * (batch["mask"] < 0.5)  # change off the defects
    off_defect = residual.reshape(6, -1).max(axis=1)  # clean member: only sub-visible fringes (< 8 levels)
    assert (off_defect < 8.5 / 255).any() and (off_defect > 0.1).any(), off_defect
    assert np.array_equal(batch["degraded"], data.Batches(source, batch=6, crop=24, seed=3)(0)["degraded"])
    single = data.OnlineSource.from_folder(folder / "clean", members[0], region=32)
    assert single.fingerprint() != source.fingerprint()


def test_grain_adds_a_fourth_member_with_defects_under_film_grain(folder):
    members = online_degrade_config(grain=True)
    assert members[:3] == online_degrade_config() and members[3].grain.prob == 1.0
    source = data.OnlineSource.from_folder(folder / "clean", members[3], region=32)
    batch = data.Batches(source, batch=4, crop=24, seed=0)(0)
    assert (batch["mask"] > 0.5).any(axis=(1, 2, 3)).all()  # defects in every sample, as in the other members
    residual = np.abs(batch["degraded"] - batch["clean"]) * (batch["mask"] < 0.5)
    assert (residual.reshape(4, -1).mean(axis=1) > 1 / 255).all()  # and grain everywhere off them


class _OneLine:
    """A source whose every sample is a flat gray crop with a one-pixel defect column in its middle."""

    def __len__(self) -> int:
        return 1

    def sample(self, rng, index, crop, augment):
        image, mask = np.full((crop, crop), 0.4, np.float32), np.zeros((crop, crop), np.float32)
        image[:, crop // 2], mask[:, crop // 2] = 1.0, 1.0
        return image, image.copy(), mask

    def fingerprint(self) -> str:
        return "one-line"


def test_zoomed_samples_show_defects_as_wide_as_the_zoom_drawn():
    crop, widths = 96, []
    zoomed = data.ZoomedSource(_OneLine(), max_zoom=4.0, prob=1.0)
    for seed in range(12):
        degraded, clean, mask = zoomed.sample(np.random.default_rng(seed), 0, crop, augment=False)
        assert degraded.shape == clean.shape == mask.shape == (crop, crop) and set(np.unique(mask)) <= {0.0, 1.0}
        assert 0.0 <= degraded.min() and degraded.max() <= 1.0  # bicubic overshoot clipped
        zoom = math.exp(np.random.default_rng(seed).uniform(0.0, math.log(4.0)))  # the draw the source made
        small = max(data.ZoomedSource.MIN_SIDE, math.ceil(crop / zoom))
        width, factor = mask.sum(axis=1).mean(), crop / small  # bilinear >= 1/4 of a 1 px line: 1.5 x the factor
        assert 1.5 * factor - 1.5 <= width <= 1.5 * factor + 1.5, (seed, zoom, width)
        widths.append(width)
    assert max(widths) >= 3 and min(widths) < max(widths)
    plain = data.ZoomedSource(_OneLine(), max_zoom=4.0, prob=0.0).sample(np.random.default_rng(0), 0, crop, False)
    assert all(np.array_equal(a, b) for a, b in zip(plain, _OneLine().sample(None, 0, crop, False)))
    assert zoomed.fingerprint() != data.ZoomedSource(_OneLine(), 3.0, 1.0).fingerprint()


def test_zoom_wraps_train_and_validation_sources_and_is_validated(folder):
    from restore_cli.train.mask import _sources

    config = dataclasses.replace(TINY, region=32, zoom=3.0, zoom_prob=0.5)
    train, val, free, described = _sources(None, folder / "clean", config, 10**7)
    assert all(isinstance(s, data.ZoomedSource) and s.max_zoom == 3.0 for s in (train, val, free))
    assert described["zoom"] == {"max": 3.0, "prob": 0.5}
    assert not isinstance(_sources(None, folder / "clean", TINY, 10**7)[0], data.ZoomedSource)
    for bad in ({"zoom": 0.5}, {"zoom": 9.0}, {"zoom_prob": 1.5}):
        with pytest.raises(UsageError, match="--zoom"):
            dataclasses.replace(TINY, **bad)


def test_repair_threshold_validation_adds_defect_free_crops_of_the_held_out_images(folder):
    from restore_cli.train.mask import _sources, without_defects

    members = online_degrade_config()
    free = without_defects(members)
    assert all(not m.scratches.kinds and not m.dust.enabled for m in free)
    assert [m.noise for m in free] == [m.noise for m in members] and [m.jpeg for m in free] == [m.jpeg for m in members]
    config = dataclasses.replace(TINY, region=32)
    train, val, free_source, described = _sources(None, folder / "clean", config, 10**7)
    assert free_source.paths == val.paths and not set(free_source.paths) & set(train.paths)
    assert described["repair_validation"] == "defect and defect-free crops"
    crops = data.validation_set(free_source, 6, 3, 24, 0)
    assert all(b["mask"].max() == 0 for b in crops)  # nothing to find: any flagged pixel is a false alarm
    defect_crops = data.validation_set(val, 6, 3, 24, 0)
    assert sum(b["mask"].sum() for b in defect_crops) > 0
    assert _sources(folder, None, config, 10**7)[2] is None  # a degrade folder has no defect-free twin


def test_free_share_mixes_defect_free_crops_into_training_only(folder):
    from restore_cli.train.mask import _sources

    config = dataclasses.replace(TINY, region=32, free_share=0.5)
    train, val, free, described = _sources(None, folder / "clean", config, 10**7)
    assert isinstance(train, data.MixedSource) and described["free_share"] == 0.5
    assert isinstance(val, data.OnlineSource) and isinstance(free, data.OnlineSource)  # validation unchanged
    plain = _sources(None, folder / "clean", dataclasses.replace(TINY, region=32), 10**7)[0]
    assert isinstance(plain, data.OnlineSource) and train.fingerprint() != plain.fingerprint()

    def empty_masks(source, n=40):
        rngs = (np.random.default_rng(np.random.SeedSequence([3, i])) for i in range(n))
        return sum(source.sample(rng, i % len(source), 24, True)[2].max() == 0 for i, rng in enumerate(rngs))

    assert empty_masks(plain) <= 4  # every mixture member draws defects (a few miss a 24 px crop)
    assert 12 <= empty_masks(train) <= 32  # about half drawn without any
    with pytest.raises(UsageError, match="--free-share needs --online"):
        _sources(folder, None, config, 10**7)
    for bad in (-0.1, 1.0):
        with pytest.raises(UsageError, match="--free-share"):
            dataclasses.replace(TINY, free_share=bad)


def test_init_fine_tunes_from_a_checkpoint_and_keeps_its_architecture(trained, folder, tmp_path):
    other_arch = dataclasses.replace(TINY, arch=UNetConfig(widths=(4, 8), norm="none"), steps=1, lr=1e-9,
                                     eval_every=1, checkpoint_every=1, init=str(trained.checkpoint), seed=7)
    tuned = train_mask(folder, tmp_path / "tuned.safetensors", other_arch)
    arrays, header = read_checkpoint(tuned.checkpoint)
    assert UNetConfig.from_dict(header["arch"]) == TINY.arch  # the checkpoint's widths (8, 8), not (4, 8)
    # new batches (seed 7), but validated on the images the first stage held out (its seed, 0)
    assert header["training"]["config"]["seed"] == 7 and header["training"]["config"]["split_seed"] == 0
    assert header["training"]["config"]["init"] == str(trained.checkpoint)
    before, init_header = read_checkpoint(trained.checkpoint)
    started = header["training"]["init"]  # the first stage's cost stays on record
    assert started["step"] == init_header["training"]["step"] and started["path"].endswith("mask.safetensors")
    assert started["wall_s"] == init_header["training"]["wall_s"] and started["metrics"] == init_header["metrics"]
    assert arrays.keys() == before.keys()
    assert max(np.abs(arrays[k] - before[k]).max() for k in arrays) < 1e-4  # one step at lr 1e-9: still the init
    with pytest.raises(CheckpointError, match="expected 'mask-unet'|not a|cannot"):
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(b"junk" * 20)
        train_mask(folder, tmp_path / "x.safetensors", dataclasses.replace(TINY, init=str(bad)))


def test_distill_target_is_the_detectors_mean_over_views(trained):
    import jax
    import jax.numpy as jnp

    from restore_cli.models.checkpoint import load_model
    from restore_cli.models.unet import build_unet
    from restore_cli.restoration.mask_detector import DIHEDRAL
    from restore_cli.train.mask import DISTILL_VIEWS, KIND, distill_target

    x = np.random.default_rng(3).random((2, 24, 24, 1), dtype=np.float32)
    for view, (forward, _) in zip(DISTILL_VIEWS, DIHEDRAL):  # the detector's views, in its order
        assert np.array_equal(np.asarray(view(jnp.asarray(x)))[1, :, :, 0], forward(x[1, :, :, 0]))
        assert np.array_equal(np.asarray(view(view(jnp.asarray(x)))), x)  # each its own inverse
    teacher, _ = load_model(trained.checkpoint, KIND, build_unet)
    assert np.allclose(distill_target(teacher, jnp.asarray(x), 1), jax.nn.sigmoid(teacher(jnp.asarray(x))), atol=1e-6)
    four = np.asarray(distill_target(teacher, jnp.asarray(x), 4))
    detector = MaskDetector(teacher, tile=24, overlap=8, views=4)  # one tile: exactly what inference averages
    assert np.allclose(four[1, :, :, 0], detector.probabilities(x[1, :, :, 0]), atol=1e-5)
    assert not np.allclose(four, np.asarray(distill_target(teacher, jnp.asarray(x), 1)), atol=1e-3)


def test_distillation_moves_one_pass_toward_the_init_models_view_mean(trained, folder, tmp_path):
    import jax
    import jax.numpy as jnp

    from restore_cli.models.checkpoint import load_model
    from restore_cli.models.unet import build_unet
    from restore_cli.train.mask import KIND, distill_target

    with pytest.raises(UsageError, match="--distill-views needs --init"):
        dataclasses.replace(TINY, distill_views=4)
    for bad in (-1, 5):
        with pytest.raises(UsageError, match="--distill-views"):
            dataclasses.replace(TINY, init=str(trained.checkpoint), distill_views=bad)
    with pytest.raises(UsageError, match="--distill-share"):
        dataclasses.replace(TINY, init=str(trained.checkpoint), distill_views=4, distill_share=1.5)
    config = dataclasses.replace(TINY, init=str(trained.checkpoint), distill_views=4, distill_share=0.98, steps=30,
                                 lr=3e-3, seed=7, eval_every=30, checkpoint_every=30)
    result = train_mask(folder, tmp_path / "student.safetensors", config)
    plain = train_mask(folder, tmp_path / "plain.safetensors", dataclasses.replace(config, distill_views=0))
    assert result.step_traces == 1
    teacher, _ = load_model(trained.checkpoint, KIND, build_unet)
    images = jnp.asarray(data.validation_set(data.PairSource(folder), 8, 4, 24, 0)[0]["degraded"])
    target = distill_target(teacher, images, 4)

    def gap(model) -> float:  # mean |one pass - the teacher's four-view mean|
        return float(jnp.abs(jax.nn.sigmoid(model(images)) - target).mean())

    student, header = load_model(result.checkpoint, KIND, build_unet)
    assert header["training"]["config"]["distill_views"] == 4
    # the same 30 steps without the term move away from the four-view mean, with it toward it
    assert gap(student) < gap(teacher) < gap(load_model(plain.checkpoint, KIND, build_unet)[0])
    rows = [json.loads(x) for x in result.checkpoint.with_name("student.metrics.jsonl").read_text().splitlines()]
    assert any("distill" in r for r in rows)


def test_split_seed_is_the_given_one_else_the_parents_else_the_seed():
    config = dataclasses.replace(TINY, seed=3)
    assert resolve_split_seed(config, None).split_seed == 3
    assert resolve_split_seed(config, {"training": {"config": {"seed": 1}}}).split_seed == 1  # written before the field
    assert resolve_split_seed(config, {"training": {"config": {"seed": 1, "split_seed": 5}}}).split_seed == 5
    assert resolve_split_seed(dataclasses.replace(config, split_seed=9), {"training": {"config": {"seed": 1}}}).split_seed == 9


def test_prefetcher_reraises_producer_errors():
    def broken(step):
        if step == 2:
            raise RuntimeError("bad image")
        return {"x": np.zeros(1)}

    got = []
    with pytest.raises(RuntimeError, match="bad image"), data.Prefetcher(broken, 0, 5) as prefetch:
        for step, _ in prefetch:
            got.append(step)
    assert got == [0, 1]  # the batches before the bad one arrive, then its error, at its place


def test_worker_processes_give_the_same_batches_in_order(folder):
    source = data.OnlineSource.from_folder(folder / "clean", online_degrade_config(), region=32)
    batches = data.Batches(source, batch=3, crop=24, seed=2)
    make = lambda step: {**batches(step), "step": np.int64(step)}  # noqa: E731  (a closure: fork needs no pickling)
    with data.Prefetcher(make, 1, 8, depth=2, workers=2) as prefetch:
        assert prefetch.workers == 2
        got = list(prefetch)
    assert [step for step, _ in got] == list(range(1, 8))
    for step, batch in got:
        expected = make(step)
        assert all(np.array_equal(batch[k], expected[k]) for k in expected), step


def test_worker_processes_reraise_errors_at_their_batch():
    def broken(step):
        if step == 2:
            raise RuntimeError("bad image")
        return {"x": np.full(1, step)}

    with pytest.raises(RuntimeError, match="bad image"), data.Prefetcher(broken, 0, 6, workers=2) as prefetch:
        seen = []
        for step, batch in prefetch:
            seen.append((step, int(batch["x"][0])))
    assert seen == [(0, 0), (1, 1)]


def test_training_with_worker_processes_matches_the_thread(trained, folder, tmp_path):
    """Same seed, same steps: batches from two processes train the very same model as the thread."""
    again = train_mask(folder, tmp_path / "mask.safetensors", TINY, data_workers=2)
    assert _losses(again.checkpoint) == _losses(trained.checkpoint)
    assert read_checkpoint(again.checkpoint)[0].keys() == read_checkpoint(trained.checkpoint)[0].keys()
    for name, value in read_checkpoint(again.checkpoint)[0].items():
        assert np.array_equal(value, read_checkpoint(trained.checkpoint)[0][name]), name


def test_training_loss_falls_and_step_compiles_once(trained):
    losses = _losses(trained.checkpoint)
    early, late = np.mean([losses[s] for s in range(1, 6)]), np.mean([losses[s] for s in range(36, 41)])
    assert late < 0.8 * early, (early, late)
    assert trained.step_traces == 1 and trained.eval_traces == 1
    assert trained.fit.step == 40 and trained.checkpoint.with_name("mask.curves.png").stat().st_size > 1000


def test_threshold_and_metadata_survive_save_and_load(trained, folder):
    _, header = read_checkpoint(trained.checkpoint)
    assert header["kind"] == "mask-unet" and header["restore_version"]
    assert UNetConfig.from_dict(header["arch"]) == TINY.arch
    assert header["training"]["config"]["lr"] == TINY.lr and header["training"]["data"]["fingerprint"]
    assert header["training"]["machine"]["jax_devices"] and header["training"]["wall_s"] > 0
    assert {"val_f1", "val_iou", "val_precision", "val_recall"} <= header["metrics"].keys()
    detector = MaskDetector.load(trained.checkpoint, tile=32, overlap=8)
    assert detector.threshold == header["threshold"] == header["metrics"]["threshold"]
    assert 0.05 <= detector.threshold <= 0.95
    for shape in ((37, 53), (90, 41)):
        probs = detector.probabilities(np.random.default_rng(0).random(shape, dtype=np.float32))
        assert probs.shape == shape and probs.dtype == np.float32 and 0 <= probs.min() <= probs.max() <= 1
    assert detector.compile_count == 1
    luma = data.to_luma(np.asarray(read_image(folder / "degraded" / "img0.png").pixels))
    probs = detector.probabilities(luma)
    assert np.array_equal(detector.predict(luma), probs >= detector.threshold)
    assert np.array_equal(detector.predict(luma, threshold=0.0), np.ones_like(luma, bool))
    assert detector.repair_threshold == header["repair_threshold"] == header["metrics"]["repair_threshold"]
    assert np.array_equal(detector.repair_mask(luma), probs >= detector.repair_threshold)


def test_repair_threshold_is_the_one_whose_inpainting_comes_closest_to_clean():
    from restore_cli.train.mask import REPAIR_THRESHOLDS, best_repair_threshold

    rng = np.random.default_rng(0)
    clean = rng.random((4, 32, 32, 1)).astype(np.float32)  # fine detail everywhere
    degraded = clean.copy()
    degraded[:, 10:12, 4:28] = 1.0  # a bright scratch
    probs = np.where(rng.random(clean.shape) < 0.1, 0.6, 0.02).astype(np.float32)  # false alarms on detail
    probs[:, 10:12, 4:28] = 0.99
    degraded += rng.normal(0, 0.05, clean.shape).astype(np.float32)  # noise the inpainting is not judged on
    mask = np.zeros_like(clean)
    mask[:, 10:12, 4:28] = 1.0
    batches = [{"degraded": degraded[:2], "clean": clean[:2], "mask": mask[:2]},
               {"degraded": degraded[2:], "clean": clean[2:], "mask": mask[2:]}]
    threshold, psnr = best_repair_threshold(probs, batches)
    assert threshold > 0.6 and threshold in REPAIR_THRESHOLDS  # not the low thresholds that repaint detail
    assert psnr > 10 * np.log10(1 / np.mean((np.where(mask > 0, degraded, clean) - clean) ** 2)) + 3  # repaired
    probs[:, 10:12, 4:28] = 0.4  # a faint-but-real scratch now needs the low threshold
    probs[probs == 0.6] = 0.02
    assert best_repair_threshold(probs, batches)[0] == min(REPAIR_THRESHOLDS)


def test_corrupt_or_foreign_checkpoints_fail_clearly(trained, tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01not a checkpoint" * 10)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(trained.checkpoint.read_bytes()[:-100])
    for path, reason in ((garbage, "not a valid checkpoint"), (truncated, "not a valid checkpoint"),
                         (trained.checkpoint.with_name("mask.last.safetensors"), "expected 'mask-unet'"),
                         (tmp_path / "missing.safetensors", "not found")):
        with pytest.raises(CheckpointError, match=reason):
            MaskDetector.load(path)


def test_header_alone_is_read_without_the_weights(trained, tmp_path):
    """read_header gives read_checkpoint's header from the first bytes only, and the same clear errors."""
    from safetensors.numpy import save_file

    _, header = read_checkpoint(trained.checkpoint)
    assert read_header(trained.checkpoint) == header and header["kind"] == "mask-unet"
    cut = tmp_path / "cut.safetensors"  # header intact, weights cut short: only reading them notices
    cut.write_bytes(trained.checkpoint.read_bytes()[:-100])
    assert read_header(cut) == header
    with pytest.raises(CheckpointError, match="not a valid checkpoint"):
        read_checkpoint(cut)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01not a checkpoint" * 10)  # its first 8 bytes claim an absurd header length
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(foreign))  # valid safetensors, not ours
    for path, reason in ((garbage, "not a valid checkpoint"), (foreign, "not a restore checkpoint"),
                         (tmp_path / "missing.safetensors", "not found")):
        with pytest.raises(CheckpointError, match=reason):
            read_header(path)


def test_resume_continues_exactly(trained, folder, tmp_path, monkeypatch):
    """Kill a run after its step-20 checkpoint, resume it: steps 21..40 match the uninterrupted run bit for bit."""
    real_call = data.Batches.__call__

    def killed_at_21(self, step):
        if step == 21:
            raise RuntimeError("killed")
        return real_call(self, step)

    monkeypatch.setattr(data.Batches, "__call__", killed_at_21)
    out = tmp_path / "m.safetensors"
    with pytest.raises(RuntimeError, match="killed"):
        train_mask(folder, out, TINY)
    monkeypatch.setattr(data.Batches, "__call__", real_call)
    asked = _record_steps(monkeypatch)
    resumed = train_mask(folder, out, TINY, resume=True)
    assert asked[0] == 20  # it went on from the checkpoint (batch indices count from 0), not from step 1
    straight, again = _losses(trained.checkpoint), _losses(out)
    assert sorted(again) == list(range(1, 41))
    assert [straight[s] for s in range(21, 41)] == [again[s] for s in range(21, 41)]
    arrays_a, _ = read_checkpoint(trained.checkpoint.with_name("mask.last.safetensors"))
    arrays_b, _ = read_checkpoint(resumed.checkpoint.with_name("m.last.safetensors"))
    assert all(np.array_equal(arrays_a[k], arrays_b[k]) for k in arrays_a)
    with pytest.raises(UsageError, match=r"different settings \(lr\)"):
        train_mask(folder, out, dataclasses.replace(TINY, lr=0.5), resume=True)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_keeps_the_step_it_lands_on_and_resume_is_exact(trained, folder, tmp_path, monkeypatch,
                                                                          signum):
    """The signal arrives while step 15 is being dispatched (the first regular checkpoint would be
    step 20's): it is delivered once that step is whole, the state of step 15 is written, and the
    resumed run equals an uninterrupted one. Before, a stop kept only the last regular checkpoint."""
    from restore_cli.cli import _raise_terminated

    real_make = mask.make_train_step

    def signalling_make(loss_fn):
        step_fn, calls = real_make(loss_fn), []

        def step(model, optimizer, batch):
            calls.append(1)
            if len(calls) == 15:
                signal.raise_signal(signum)  # lands inside the held dispatch, delivered right after it
            return step_fn(model, optimizer, batch)

        step.traced = step_fn.traced
        return step

    monkeypatch.setattr(mask, "make_train_step", signalling_make)
    # The handlers as the CLI has them while a command runs (pytest started in the background by a
    # script without job control would otherwise inherit SIGINT ignored, which HeldSignals respects).
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
                signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_terminated)}
    try:
        out = tmp_path / "m.safetensors"
        with pytest.raises(KeyboardInterrupt):
            train_mask(folder, out, TINY)
        # the held handlers were put back
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) is _raise_terminated
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert read_checkpoint(out.with_name("m.last.safetensors"))[1]["resume"]["step"] == 15
    monkeypatch.setattr(mask, "make_train_step", real_make)
    asked = _record_steps(monkeypatch)
    train_mask(folder, out, TINY, resume=True)
    assert asked[0] == 15  # the batch of step 16: nothing redone, nothing skipped
    assert _losses(out) == _losses(trained.checkpoint)


def test_unwritable_outputs_are_refused_before_training(folder, tmp_path, monkeypatch):
    """Before, -o a folder or a device failed with a traceback at the first checkpoint (or, for
    /dev/null, replaced the device node with the checkpoint)."""
    monkeypatch.setattr(mask, "new_unet", lambda *a: pytest.fail("training started"))
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    for out, error in ((tmp_path / "adir", "exists and is not a regular file"),
                       (tmp_path / "afile" / "m.safetensors", "cannot write in"),
                       (Path(os.devnull), "exists and is not a regular file")):
        with pytest.raises(RestoreError, match=error):
            train_mask(folder, out, TINY)
    assert Path(os.devnull).is_char_device()
    photo = tmp_path / "photo.png"  # before: replaced by the checkpoint without a word
    photo.write_bytes(b"\x89PNG not a checkpoint")
    vae = tmp_path / "vae.safetensors"  # another kind of model: replaced too
    save_checkpoint(vae, {"w": np.zeros(2, np.float32)}, {"kind": "vae"})
    for out, error in ((photo, "exists and is not a restore checkpoint"),
                       (vae, "is a 'vae' checkpoint, not 'mask-unet'")):
        with pytest.raises(RestoreError, match=error):
            train_mask(folder, out, TINY)
    assert photo.read_bytes() == b"\x89PNG not a checkpoint"


def test_a_fresh_run_says_it_replaces_a_stopped_one(folder, tmp_path, caplog):
    out = tmp_path / "m.safetensors"
    train_mask(folder, out, TINY, stop_at=2)
    train_mask(folder, out, dataclasses.replace(TINY, steps=3))
    assert "m.last.safetensors holds an earlier run's state at step 2: this run starts afresh" in caplog.text


def test_a_stop_during_the_first_compiling_step_writes_no_state(folder, tmp_path, monkeypatch, caplog):
    """The first call compiles and is not held (Ctrl-C stays prompt): a stop there saves nothing,
    and on a resumed run it says which step the state on disk holds."""
    real_make = mask.make_train_step

    def interrupted_make(loss_fn):
        def step(model, optimizer, batch):
            raise KeyboardInterrupt  # as if Ctrl-C arrived while XLA compiled

        step.traced = real_make(loss_fn).traced
        return step

    monkeypatch.setattr(mask, "make_train_step", interrupted_make)
    out = tmp_path / "m.safetensors"
    with pytest.raises(KeyboardInterrupt):
        train_mask(folder, out, TINY)
    assert not out.with_name("m.last.safetensors").exists()
    monkeypatch.setattr(mask, "make_train_step", real_make)
    train_mask(folder, out, TINY, stop_at=3)
    monkeypatch.setattr(mask, "make_train_step", interrupted_make)
    with pytest.raises(KeyboardInterrupt):
        train_mask(folder, out, TINY, resume=True)
    assert read_checkpoint(out.with_name("m.last.safetensors"))[1]["resume"]["step"] == 3
    assert "m.last.safetensors holds step 3; --resume continues from there" in caplog.text


@pytest.mark.parametrize("stop, at", [({"time_limit_s": 0.0}, 1),  # out of time after the first step
                                      ({"stop_at": 13}, 13)])  # --stop-at: the same, at a chosen step
def test_a_stopped_run_stops_cleanly_and_resume_finishes_the_same_run(trained, folder, tmp_path, stop, at,
                                                                      monkeypatch):
    out = tmp_path / "m.safetensors"
    stopped = train_mask(folder, out, TINY, **stop)
    assert stopped.fit.step == at
    assert read_checkpoint(out)[1]["training"]["step"] == at  # evaluated and written at the stop
    assert read_checkpoint(out.with_name("m.last.safetensors"))[1]["resume"]["step"] == at
    asked = _record_steps(monkeypatch)
    finished = train_mask(folder, out, TINY, resume=True)
    assert asked[0] == at  # the batch of step at + 1 (indices count from 0): nothing redone
    assert finished.fit.step == 40 and _losses(out) == _losses(trained.checkpoint)


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(folder, tmp_path, monkeypatch):
    config = dataclasses.replace(TINY, steps=10, checkpoint_every=4, eval_every=4)
    real_call = data.Batches.__call__

    def poisoned(self, step):
        batch = real_call(self, step)
        if step == 5:
            batch["degraded"][0, 0, 0, 0] = np.nan
        return batch

    monkeypatch.setattr(data.Batches, "__call__", poisoned)
    out = tmp_path / "m.safetensors"
    with pytest.raises(TrainingDiverged, match=r"diverged at step 6: .*loss=nan.*last good checkpoint .*m\.last\.safetensors \(step 4\)"):
        train_mask(folder, out, config)
    arrays, header = read_checkpoint(out.with_name("m.last.safetensors"))
    assert header["resume"]["step"] == 4 and all(np.isfinite(v).all() for v in arrays.values())
    MaskDetector.load(out)  # the best checkpoint is intact too
    # a fresh run over it that diverges before writing anything of its own leaves the history as it
    # was (it was emptied, the checkpoint kept); in a new place it leaves no stray file
    history = out.with_name("m.metrics.jsonl").read_bytes()
    early = dataclasses.replace(config, checkpoint_every=8, eval_every=8)
    for target in (out, tmp_path / "new" / "n.safetensors"):
        with pytest.raises(TrainingDiverged, match="no checkpoint was written|last good"):
            train_mask(folder, target, early)
    assert out.with_name("m.metrics.jsonl").read_bytes() == history
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == []


def test_cli_prints_only_the_checkpoint_path(folder, tmp_path):
    out = tmp_path / "cli.safetensors"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "restore_cli.cli", "train-mask", str(folder), "-o", str(out), "--preset", "tiny",
         "--steps", "3", "--stop-at", "2", "--crop", "16", "--widths", "4,8,16"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{out}\n"
    assert out.is_file() and out.with_name("cli.last.safetensors").is_file()
    header = read_checkpoint(out)[1]
    assert header["arch"]["widths"] == [4, 8, 16] and header["training"]["step"] == 2
    for widths, reason in (("4,x", "expected comma-separated channel counts"), ("4,0", "widths must be positive")):
        bad = subprocess.run(
            [sys.executable, "-m", "restore_cli.cli", "train-mask", str(folder), "-o", str(out), "--widths", widths],
            capture_output=True, text=True, env=env, timeout=60,
        )
        assert bad.returncode == 2 and bad.stdout == "" and reason in bad.stderr and "Traceback" not in bad.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "restore_cli.cli", "train-mask", str(folder), "-o", str(out), "--loss", "l2"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert bad.returncode == 2 and bad.stdout == "" and "unknown loss 'l2'" in bad.stderr


def test_detector_views_average_flips_and_rotations(trained):
    from restore_cli.restoration.mask_detector import DIHEDRAL

    x = np.random.default_rng(1).random((37, 53), dtype=np.float32)
    views = [forward(x) for forward, _ in DIHEDRAL]
    assert all(np.array_equal(inverse(forward(x)), x) for forward, inverse in DIHEDRAL)
    assert len({(v.shape, v.tobytes()) for v in views}) == 8  # the eight symmetries of the square, each once
    one = MaskDetector.load(trained.checkpoint, tile=32, overlap=8)
    two = MaskDetector.load(trained.checkpoint, tile=32, overlap=8, views=2)
    mirrored = one.probabilities(x[:, ::-1])[:, ::-1]
    assert not np.allclose(one.probabilities(x), mirrored)  # the network alone is not mirror-symmetric
    assert np.allclose(two.probabilities(x), (one.probabilities(x) + mirrored) / 2, atol=1e-6)
    eight = MaskDetector.load(trained.checkpoint, tile=32, overlap=8, views=8)
    by_hand = np.mean([inverse(one.probabilities(np.ascontiguousarray(forward(x)))) for forward, inverse in DIHEDRAL],
                      axis=0)
    np.testing.assert_allclose(eight.probabilities(x), by_hand, atol=1e-6)  # each view mapped back before averaging
    assert eight.compile_count == 1  # square tiles: the transposed views need no second shape
    with pytest.raises(ValueError, match="views"):
        MaskDetector.load(trained.checkpoint, views=9)


def test_detector_scales_keep_the_highest_probability_of_the_coarser_halvings(trained):
    from PIL import Image
    from scipy import ndimage

    from restore_cli.restoration.mask_detector import MIN_SCALE_SIDE

    x = np.random.default_rng(2).random((2 * MIN_SCALE_SIDE + 4, 2 * MIN_SCALE_SIDE + 44), dtype=np.float32)
    full = MaskDetector.load(trained.checkpoint, tile=32, overlap=8)
    one, two = (MaskDetector.load(trained.checkpoint, tile=32, overlap=8, scales=n) for n in (1, 2))
    h, w = x.shape
    half = np.asarray(Image.fromarray(x).resize((round(w / 2), round(h / 2)), Image.BOX), np.float32)
    enlarged = np.asarray(Image.fromarray(full.probabilities(half)).resize((w, h), Image.BILINEAR), np.float32)
    enlarged = ndimage.maximum_filter(enlarged, size=3)  # placed to within a pixel at full size: grown by one
    p = one.probabilities(x)
    assert p.shape == x.shape and np.all(p >= full.probabilities(x))
    np.testing.assert_allclose(p, np.maximum(full.probabilities(x), enlarged), atol=1e-6)
    np.testing.assert_array_equal(two.probabilities(x), p)  # a quarter would be under MIN_SCALE_SIDE: not used
    with pytest.raises(ValueError, match="scales"):
        MaskDetector.load(trained.checkpoint, scales=-1)


def test_detector_coarse_levels_by_default_follow_the_image_size(trained):
    from restore_cli.restoration.mask_detector import auto_scales

    assert [auto_scales(s, 10000) for s in (256, 736, 1023, 1024, 2047, 2048, 4000, 4096, 9000)] == [0, 0, 0, 1, 1, 2, 2, 3, 3]
    assert auto_scales(3000, 600) == 0  # the shorter side decides
    x = np.random.default_rng(4).random((1024, 1040), dtype=np.float32)
    by_size, one = (MaskDetector.load(trained.checkpoint, tile=64, overlap=8, scales=n) for n in (None, 1))
    np.testing.assert_array_equal(by_size.probabilities(x), one.probabilities(x))
    small = x[:300, :400]
    np.testing.assert_array_equal(by_size.probabilities(small), MaskDetector.load(trained.checkpoint, tile=64, overlap=8).probabilities(small))


@pytest.mark.parametrize("args, message", [
    (["--lr", "nan"], "--lr must be above 0, got nan"),  # before: "training diverged" after compiling
    (["--lr", "0"], "--lr must be above 0"),
    (["--val-fraction", "1.5"], "--val-fraction must be between 0 and 1"),  # before: accepted
    (["--seed", "-1"], "--seed"),  # before: a numpy traceback
    (["--epochs", "nan"], "--epochs must be above 0, got nan"),  # before: a traceback
    (["--epochs", "inf"], "--epochs must be above 0, got inf"),
])
def test_cli_refuses_bad_numbers_before_training(folder, tmp_path, args, message):
    from typer.testing import CliRunner

    from restore_cli.cli import app

    result = CliRunner().invoke(app, ["train-mask", str(folder), "-o", str(tmp_path / "m.safetensors"),
                                      "--preset", "tiny", *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m.safetensors").exists()


def test_resume_names_a_folder_or_another_trainer_s_state(folder, tmp_path, trained):
    """Before: "checkpoint not found" for a folder, and 48 differing settings listed for train-vae's state."""
    from restore_cli.models.checkpoint import save_checkpoint

    with pytest.raises(CheckpointError, match="a folder, not a checkpoint file"):
        train_mask(folder, tmp_path / "m.safetensors", dataclasses.replace(TINY, init=str(tmp_path)))
    arrays, header = read_checkpoint(trained.checkpoint.with_name("mask.last.safetensors"))
    header["resume"]["key"] = {"arch": "translation", "beta_max": 1.0}  # keyed as train-vae keys its runs
    save_checkpoint(tmp_path / "o.last.safetensors", arrays, header)
    with pytest.raises(UsageError, match="holds another kind of run"):
        train_mask(folder, tmp_path / "o.safetensors", TINY, resume=True)
