"""The benchmark harness (`make bench`) end to end on tiny generated data: no ../shared, well under 30 s.

What must hold whatever methods and checkpoints exist: the results files are written,
every number has a machine line above it, published figures are labelled as quoted,
files that are not Set12 are ignored and named, a failing section is recorded (and the
run's exit status says so) instead of stopping the benchmark, and the README splice only
touches the text between its markers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from skimage import data as skdata

from bench import report, update_readme
from bench.run import main
from bench.sections.common import Context


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """DATA with set12/01.png, 02.png (64x64 gray), a stray non-Set12 file, and two small 'old photos'."""
    root = tmp_path / "datasets"
    (root / "set12").mkdir(parents=True)
    (root / "old_photos").mkdir()
    camera = Image.fromarray(skdata.camera())
    for i, box in enumerate([(0, 0, 256, 256), (200, 200, 456, 456)], start=1):
        camera.crop(box).resize((64, 64), Image.Resampling.LANCZOS).save(root / "set12" / f"{i:02d}.png")
    camera.resize((64, 64)).save(root / "set12" / "test_001.png")
    astronaut = Image.fromarray(skdata.astronaut()).resize((72, 96), Image.Resampling.LANCZOS)
    astronaut.save(root / "old_photos" / "a.png")
    rgba = astronaut.convert("RGBA")
    rgba.putalpha(200)
    rgba.save(root / "old_photos" / "b.png")
    return root


def test_quick_run_writes_results(dataset: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "results"
    ctx = Context(data=dataset, out=out, quick=True, max_images=1, sigmas=(25,), methods=["classical"])
    status = main(["--data", str(dataset), "--out", str(out), "--quick", "--only", "denoise,real_photos"], ctx=ctx)
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out / "results.md")
    assert status == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["machine"]["cores"] >= 1 and doc["machine"]["versions"]["numpy"]
    assert [s["name"] for s in doc["sections"]] == ["denoise", "real_photos"]
    assert all(s["status"] == "ok" for s in doc["sections"])

    rows = {r["method"]: r for r in doc["sections"][0]["tables"][0]["rows"]}
    noisy = rows["noisy input"]["PSNR"]
    for name in ("BM3D", "NL-means", "TV (Chambolle)", "wavelet (BayesShrink)", "classical"):
        assert rows[name]["PSNR"] > noisy, name
    assert rows["BM3D (published, not measured here)"]["PSNR"] == 29.97
    assert rows["DnCNN-S (published, not measured here)"]["PSNR"] == 30.44
    notes = " ".join(doc["sections"][0]["tables"][-1]["notes"])
    assert "test_001.png" in notes and "ignored" in notes

    photos = doc["sections"][1]["tables"][0]["rows"]
    assert [r["photo"] for r in photos] == ["a.png", "b.png"]
    assert all(0.0 <= r["masked_percent"] <= 100.0 for r in photos)
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.width == 1600 and sheet.height > 100
    assert sorted(p.name for p in (out / "overlays").iterdir()) == ["a.png", "b.png"]
    assert (out / "data" / ".gitignore").read_text().strip().endswith("*")

    md = (out / "results.md").read_text()
    assert md.startswith("### Benchmark results") and "cores" in md and "| BM3D |" in md


def test_untrained_original_models_get_a_row_that_says_how_to_train_them(tmp_path: Path) -> None:
    from bench.sections.denoise import cr6_row

    row = cr6_row(Context(data=tmp_path, out=tmp_path / "out", repo=tmp_path), None, "unet")
    assert row["method"] == "cr6 unet" and "PSNR" not in row
    assert row["note"].startswith("not available: ")
    assert row["note"].endswith("checkpoints/cr6/unet/vae.safetensors not found (make cr6)")


def test_an_original_model_measured_before_is_carried_with_a_note_when_its_checkpoint_is_gone(tmp_path: Path) -> None:
    """A fresh checkout has no cr6 checkpoints (1.2 GB, git-ignored): its make bench kept erasing the
    last measured row from the committed results."""
    from bench.sections.denoise import CARRIED, cr6_row

    out = tmp_path / "out"
    out.mkdir()
    measured = {"method": "cr6 resblock", "kind": "original family, --preset cr6", "PSNR": 13.12, "SSIM": 0.15,
                "s_per_image": 0.36, "note": "best checkpoint at step 280 of 690"}
    previous = {"machine": {"date": "2026-11-28 15:16 UTC", "cpu": "AMD EPYC", "cores": 2},
                "sections": [{"name": "denoise", "tables": [{"title": "Set12 Gaussian noise σ=25 (12 images)",
                                                             "rows": [measured]}]}]}
    (out / "results.json").write_text(json.dumps(previous))
    ctx = Context(data=tmp_path, out=out, repo=tmp_path)
    row = cr6_row(ctx, None, "resblock")
    assert row["PSNR"] == 13.12 and row["SSIM"] == 0.15
    assert row["note"] == f"{CARRIED} from make bench of 2026-11-28 15:16 UTC on AMD EPYC, 2 cores: " + measured["note"]
    previous["machine"]["date"] = "2026-11-29 04:00 UTC"  # carried again: the first measurement's note stays
    previous["sections"][0]["tables"][0]["rows"] = [row]
    (out / "results.json").write_text(json.dumps(previous))
    assert cr6_row(ctx, None, "resblock")["note"] == row["note"]
    assert "PSNR" not in cr6_row(ctx, None, "unet")  # never measured: not available, as before
    quick = Context(data=tmp_path, out=out, repo=tmp_path, quick=True)
    assert "PSNR" not in cr6_row(quick, None, "resblock")


def test_checkpoints_option_makes_every_restore_run_use_that_folder(dataset: Path, tmp_path: Path) -> None:
    """`python -m bench.run --checkpoints DIR` scores a candidate without touching checkpoints/."""
    from bench.run import parse_args
    from bench.sections.runs import method_unavailable, run_method

    assert parse_args(["--checkpoints", "cand"]).checkpoints == Path("cand")
    empty = tmp_path / "candidate"
    empty.mkdir()
    ctx = Context(data=dataset, out=tmp_path / "out", models=empty)
    assert ctx.checkpoints == empty and ctx.checkpoint_args() == ["--checkpoints", empty]
    with pytest.raises(Exception) as failed:  # noqa: PT011 - BenchError, whose text is what matters
        run_method(ctx, "hybrid", dataset / "set12", tmp_path / "run")
    assert method_unavailable(failed.value).startswith("not available: ")
    assert "candidate/mask_unet.safetensors" in str(failed.value)


def test_failing_section_is_recorded_and_the_run_goes_on(tmp_path: Path, capsys) -> None:
    out = tmp_path / "results"
    missing = main(["--data", str(tmp_path / "nothing-here"), "--out", str(out), "--only", "denoise"])
    assert missing == 2 and not out.exists()  # no data folder at all: one line, nothing written
    (tmp_path / "nothing-here").mkdir()  # a data folder without set12/: the section fails, the run goes on
    status = main(["--data", str(tmp_path / "nothing-here"), "--out", str(out), "--only", "denoise"])
    assert status == 1
    doc = json.loads((out / "results.json").read_text())
    assert doc["sections"][0]["status"].startswith("failed:")
    assert "set12" in (out / "results.md").read_text()
    assert capsys.readouterr().out.strip() == str(out / "results.md")


def test_cells_never_invent_numbers() -> None:
    assert report.fmt(None) == "–"
    assert report.fmt(float("nan")) == "–"
    assert report.fmt(30.4449) == "30.44"
    assert report.fmt(0.85314) == "0.8531"
    assert report.fmt(12345.6) == "12,346"
    table = report.Table("t", rows=[{"method": "a", "PSNR": 1.5}, {"method": "b", "note": "not available: x"}])
    md = report.table_markdown(table)
    assert "| b | – | not available: x |" in md and "| a | 1.5 |  |" in md


def test_readme_splice_replaces_only_the_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    results = tmp_path / "results.md"
    readme.write_text("# restore\nintro\n<!-- bench:start -->\nold numbers\n<!-- bench:end -->\nafter\n")
    results.write_text("### Benchmark results\n\n| a | b |\n")
    assert update_readme.main(["--readme", str(readme), "--results", str(results), "--check"]) == 1
    assert update_readme.main(["--readme", str(readme), "--results", str(results)]) == 0
    text = readme.read_text()
    block = "<!-- bench:start -->\n### Benchmark results\n\n| a | b |\n<!-- bench:end -->\n"
    assert text == "# restore\nintro\n" + block + "after\n"
    assert update_readme.main(["--readme", str(readme), "--results", str(results), "--check"]) == 0
    readme.write_text("no markers\n")
    assert update_readme.main(["--readme", str(readme), "--results", str(results)]) == 2


def test_time_to_quality_reads_the_first_crossing(tmp_path: Path) -> None:
    from bench.sections.speed import time_to_quality

    rows = [{"step": 50, "loss": 1.0, "wall_s": 60.0}, {"step": 100, "loss": 0.9, "wall_s": 120.0},
            {"step": 100, "val_f1": 0.81}, {"step": 200, "loss": 0.8, "wall_s": 240.0}, {"step": 200, "val_f1": 0.9}]
    metrics = tmp_path / "m.metrics.jsonl"
    metrics.write_text("\n".join(json.dumps(r) for r in rows))
    assert time_to_quality(metrics, "mask-unet") == "val_f1 0.8 at step 100, 2.0 min"
    metrics.write_text("\n".join(json.dumps(r) for r in rows[:3]).replace("0.81", "0.42"))
    assert time_to_quality(metrics, "mask-unet") == "val_f1 0.8 not reached (best 0.42)"
    assert time_to_quality(metrics, "vae") is None and time_to_quality(tmp_path / "none.jsonl", "vae") is None
    metrics.write_text("\n".join(json.dumps(r) for r in rows))
    first = {"step": 1000, "wall_s": 600.0, "metrics": {"val_f1": 0.5}}
    assert time_to_quality(metrics, "mask-unet", [first, {"step": 200}]) == "val_f1 0.8 at step 1100, 12.0 min"
    crossed = {"step": 1000, "wall_s": 600.0, "metrics": {"val_f1": 0.85}}  # only an earlier stage's end is known
    assert time_to_quality(metrics, "mask-unet", [first, crossed, {"step": 200}]) == (
        "val_f1 0.8 by the end of stage 2 of 3 (step 2000, 20.0 min; its curve is not kept)")


def test_fine_tuned_checkpoints_report_every_stage() -> None:
    from bench.sections.speed import _stages, _stages_note

    training = {"step": 1000, "wall_s": 1800.0, "init": {"step": 2500, "wall_s": 7380.0, "path": "stage1.safetensors"}}
    stages = _stages(training)
    assert [s["step"] for s in stages] == [2500, 1000]  # first stage first
    assert _stages_note(stages).startswith("2 stages (2500 steps, 123 min; 1000 steps, 30 min)")
    assert _stages({"step": 5, "wall_s": 1.0}) == [{"step": 5, "wall_s": 1.0}]


def test_training_table_names_each_device_a_model_was_trained_on() -> None:
    from bench.sections.speed import _stages, _stages_note, _trained_on

    cpu = {"processor": "x86_64", "jax_devices": "cpu:0"}
    gpu_old = {"processor": "x86_64", "jax_devices": "cuda:0"}  # a header written before device_kind was recorded
    gpu = {"processor": "x86_64", "jax_devices": "cuda:0", "device_kind": "NVIDIA H200"}
    training = {"step": 50, "wall_s": 60.0, "machine": gpu,
                "init": {"step": 900, "wall_s": 120.0, "machine": gpu_old,
                         "init": {"step": 3000, "wall_s": 2400.0, "machine": cpu}}}
    stages = _stages(training)
    assert _trained_on(stages) == "x86_64 CPU + GPU (cuda:0) + NVIDIA H200"
    assert _stages_note(stages).startswith("3 stages (3000 steps, 40 min on x86_64 CPU; 900 steps, 2 min on GPU (cuda:0); ")
    assert _trained_on(stages[:1]) == "x86_64 CPU"
    assert " on " not in _stages_note([stages[0], stages[0]])  # one device: not repeated per stage
