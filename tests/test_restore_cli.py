"""``restore restore`` end to end: formats, idempotency, kills, locks, shards, exit statuses."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from restore_cli import io
from restore_cli.cli import app
from restore_cli.restoration.jobs import shard_of
from restore_cli.restoration.lock import lock_path


def photo(h: int, w: int, channels: int, seed: int = 0) -> np.ndarray:
    """uint8 (h, w[, c]) test photo: gradient, texture and a bright and a dark scratch."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 120 + 60 * np.sin(x / 9.0) * np.cos(y / 13.0) + rng.normal(0, 6, (h, w))
    base[(np.abs(y - 0.6 * x - 5) < 1.2)] = 250
    base[(np.abs(x - w // 3) < 1)] = 10
    planes = [np.clip(base + 25 * c, 0, 255) for c in range(channels)]
    array = np.stack(planes, axis=-1).astype(np.uint8)
    return array[:, :, 0] if channels == 1 else array


def restore(*args: object, input: str | None = None):
    return CliRunner().invoke(app, ["restore", *map(str, args)], input=input)


def records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def statuses(stdout: str) -> dict[str, str]:
    return {Path(r["input"]).name: r["status"] for r in records(stdout) if "summary" not in r}


def folder_of_photos(root: Path, count: int = 3, size: int = 48) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        PILImage.fromarray(photo(size, size + 8, 3, seed=i)).save(root / f"p{i:02d}.png")
    return root


# --------------------------------------------------------------------------- formats


def _write_inputs(folder: Path) -> None:
    folder.mkdir()
    PILImage.fromarray(photo(40, 56, 1)).save(folder / "gray.png")
    PILImage.fromarray(photo(40, 56, 3)).save(folder / "rgb.png")
    rgba = np.dstack([photo(40, 56, 3), (np.arange(40 * 56).reshape(40, 56) * 7 % 256).astype(np.uint8)])
    PILImage.fromarray(rgba).save(folder / "rgba.png")
    PILImage.fromarray(photo(40, 56, 3)).quantize(64).save(folder / "palette.png")
    io.write_image(folder / "gray16.png", io.Image(pixels=io.to_float(photo(40, 56, 1)[:, :, None].astype(np.uint16) * 257, 16), bit_depth=16))
    io.write_image(folder / "rgb16.tif", io.Image(pixels=io.to_float(photo(40, 56, 3).astype(np.uint16) * 257, 16), bit_depth=16))
    PILImage.fromarray(photo(40, 56, 3)).save(folder / "rgb.tif")
    alpha16 = (np.arange(40 * 56).reshape(40, 56) * 37 % 65536).astype(np.uint16)
    grey16 = io.to_float(photo(40, 56, 1)[:, :, None].astype(np.uint16) * 257, 16)
    io.write_image(folder / "grey16a.tif", io.Image(pixels=grey16, alpha=alpha16, bit_depth=16))  # Pillow cannot open these
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: displayed 40 wide, 56 high
    PILImage.fromarray(photo(40, 56, 3)).save(folder / "rotated.jpg", exif=exif, quality=95)


def test_every_format_round_trips_with_size_depth_alpha_and_orientation(tmp_path: Path) -> None:
    _write_inputs(tmp_path / "in")
    result = restore(tmp_path / "in", "-o", tmp_path / "out", "--method", "classical")
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "in").iterdir())
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == names
    for name in names:
        before, after = io.read_image(tmp_path / "in" / name), io.read_image(tmp_path / "out" / name)
        assert after.pixels.shape == before.pixels.shape, name
        assert after.bit_depth == before.bit_depth, name
        assert after.format == before.format, name
        assert (after.alpha is None) == (before.alpha is None), name
        if before.alpha is not None:
            assert np.array_equal(after.alpha, before.alpha), "alpha must be untouched bit for bit"
    modes = {n: PILImage.open(tmp_path / "out" / n).mode for n in names}
    assert modes["gray.png"] == "L" and modes["rgb.png"] == "RGB" and modes["rgba.png"] == "RGBA"
    assert modes["palette.png"] == "RGB"  # restored photos are not re-quantised to 256 colours
    rotated = PILImage.open(tmp_path / "out" / "rotated.jpg")
    assert rotated.size == (40, 56) and rotated.getexif().get(0x0112, 1) == 1


def test_format_suffix_recursive_and_sixteen_bit_jpeg_error(tmp_path: Path, monkeypatch) -> None:
    from restore_cli.restoration import methods

    real_restore, restored = methods.Classical.restore, []

    def counting(self, pixels, mask):
        restored.append(pixels.shape)
        return real_restore(self, pixels, mask)

    monkeypatch.setattr(methods.Classical, "restore", counting)
    (tmp_path / "in" / "sub").mkdir(parents=True)
    PILImage.fromarray(photo(32, 32, 3)).save(tmp_path / "in" / "a.png")
    PILImage.fromarray(photo(32, 32, 3)).save(tmp_path / "in" / "sub" / "b.tif")
    io.write_image(tmp_path / "in" / "deep.png", io.Image(pixels=np.full((32, 32, 1), 0.5, np.float32), bit_depth=16))
    result = restore(tmp_path / "in", "-r", "-o", tmp_path / "out", "--method", "classical",
                     "--format", "jpg", "--suffix", "_restored")
    assert result.exit_code == 3
    assert (tmp_path / "out" / "a_restored.jpg").is_file()
    assert (tmp_path / "out" / "sub" / "b_restored.jpg").is_file()
    assert "deep.png" in result.stderr and "16-bit" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(restored) == 2  # the 16-bit image was refused before it was restored, not after


# --------------------------------------------------------------------------- idempotency


def test_rerun_skips_finished_work_and_redoes_what_changed(tmp_path: Path) -> None:
    src, out = folder_of_photos(tmp_path / "in"), tmp_path / "out"
    first = restore(src, "-o", out, "--method", "classical", "--json")
    assert first.exit_code == 0 and set(statuses(first.stdout).values()) == {"ok"}
    assert (out / ".restore" / "p00.png.json").is_file()
    again = restore(src, "-o", out, "--method", "classical", "--json")
    assert set(statuses(again.stdout).values()) == {"skipped"}

    PILImage.fromarray(photo(48, 56, 3, seed=9)).save(src / "p01.png")  # new content
    os.utime(src / "p02.png")  # touched, same bytes
    (out / "p00.png").unlink()  # output lost
    third = restore(src, "-o", out, "--method", "classical", "--json")
    assert statuses(third.stdout) == {"p00.png": "ok", "p01.png": "ok", "p02.png": "skipped"}

    other_recipe = restore(src, "-o", out, "--method", "hybrid", "--masks", _masks_for(src, tmp_path), "--json")
    assert set(statuses(other_recipe.stdout).values()) == {"ok"}
    forced = restore(src, "-o", out, "--method", "hybrid", "--masks", tmp_path / "masks", "--json", "--overwrite")
    assert set(statuses(forced.stdout).values()) == {"ok"}
    summary = records(forced.stdout)[-1]
    assert summary["summary"] and summary["done"] == 3 and summary["status"] == 0


def _masks_for(src: Path, tmp_path: Path) -> Path:
    masks = tmp_path / "masks"
    masks.mkdir(exist_ok=True)
    for image in src.glob("*.png"):
        array = np.zeros(PILImage.open(image).size[::-1], np.uint8)
        array[10:14, :] = 255
        PILImage.fromarray(array).save(masks / image.name)
    return masks


def test_killed_run_then_rerun_leaves_only_valid_images(tmp_path: Path) -> None:
    src, out = folder_of_photos(tmp_path / "in", count=20, size=160), tmp_path / "out"
    command = [sys.executable, "-m", "restore_cli.cli", "restore", str(src), "-o", str(out), "--method", "classical"]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not list(out.glob("p*.png")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = len(list(out.glob("p*.png")))
    assert 0 < finished_before < 20, "the kill should land mid-run"
    rerun = subprocess.run(command + ["--json"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stderr
    assert sum(r.get("status") == "skipped" for r in records(rerun.stdout)) >= finished_before - 1
    assert sorted(p.name for p in out.glob("*.png")) == sorted(p.name for p in src.glob("*.png"))
    for path in out.glob("*.png"):
        assert io.read_image(path).pixels.shape == (160, 168, 3)
    assert not [p for p in out.rglob("*") if p.name.endswith(".partial")]


def test_sigterm_stops_a_run_as_ctrl_c_does_with_status_143(tmp_path: Path) -> None:
    """kill / timeout / a scheduler send SIGTERM: the run stops between files, whole, and says so."""
    src, out = folder_of_photos(tmp_path / "in", count=20, size=160), tmp_path / "out"
    command = [sys.executable, "-m", "restore_cli.cli", "restore", str(src), "-o", str(out), "--method", "classical"]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not list(out.glob("p*.png")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr[-2000:]
    assert "terminated" in stderr and "Traceback" not in stderr
    finished = list(out.glob("p*.png"))
    assert 0 < len(finished) < 20, "the signal should land mid-run"
    assert not [p for p in out.rglob("*") if p.name.endswith(".partial")]  # no half-written file left
    for path in finished:
        assert io.read_image(path).pixels.shape == (160, 168, 3)
    rerun = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stderr  # the lock went with the process


# --------------------------------------------------------------------------- lock, shards, statuses


def test_a_locked_output_folder_exits_4_at_once(tmp_path: Path) -> None:
    src, out = folder_of_photos(tmp_path / "in", count=1), tmp_path / "out"
    lock_path(out).parent.mkdir(parents=True)
    with open(lock_path(out), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = restore(src, "-o", out, "--method", "classical")
    assert result.exit_code == 4
    assert "locked" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not list(out.glob("*.png"))
    # a --save-masks folder too: another run writing masks there would have its unfinished files
    # cleaned away (before, it failed with "No such file or directory")
    masks = tmp_path / "masks"
    lock_path(masks).parent.mkdir(parents=True)
    with open(lock_path(masks), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = restore(src, "-o", tmp_path / "out2", "--method", "classical", "--save-masks", masks)
    assert result.exit_code == 4 and "masks is locked" in result.stderr
    assert not (tmp_path / "out2").exists()  # before: an empty folder holding only .restore/lock
    # a folder inside one another run is writing (which writes it too), and the reverse
    with open(lock_path(out), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        inside = restore(src, "-o", out / "roll", "--method", "classical")
    assert inside.exit_code == 4 and "which holds" in inside.stderr
    assert not (out / "roll").exists()  # refused, it leaves no empty folder in the other run's tree
    with open(lock_path(out), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        deeper = restore(src, "-o", out / "new1" / "new2", "--save-masks", out / "newm", "--method", "classical")
    assert deeper.exit_code == 4 and not (out / "new1").exists() and not (out / "newm").exists()
    lock_path(out / "roll").parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path(out / "roll"), "w") as held:
        fcntl.flock(held, fcntl.LOCK_SH | fcntl.LOCK_NB)  # what the run on out/roll holds of out's lock, here
        with open(lock_path(out), "r") as above:
            fcntl.flock(above, fcntl.LOCK_SH | fcntl.LOCK_NB)
            assert restore(src, "-o", out, "--method", "classical").exit_code == 4
    # a run's own folders nested in each other do not lock each other out, also through a link
    (tmp_path / "o7").mkdir()
    (tmp_path / "link7").symlink_to("o7")
    for output, masks_folder in (("o5", "o5/masks"), ("o6/out", "o6"), ("o7", "link7/masks")):
        nested_run = restore(src, "-o", tmp_path / output, "--method", "classical", "--save-masks",
                             tmp_path / masks_folder)
        assert nested_run.exit_code == 0, nested_run.stderr
    # a folder of another run's nested in this one's: its unfinished files are that run's (before,
    # this run's clean-up deleted them, and that run failed at those files)
    nested = tmp_path / "out3" / "masks_of_another_run"
    lock_path(nested).parent.mkdir(parents=True)
    in_flight = nested / ".p00.abc.partial"
    in_flight.write_bytes(b"being written")
    stale = tmp_path / "out3" / ".p00.def.partial"
    stale.write_bytes(b"left by a killed run")
    with open(lock_path(nested), "w") as held:  # a shard of a run (sharing out3's lock, unseen) writes there now
        fcntl.flock(held, fcntl.LOCK_SH | fcntl.LOCK_NB)
        assert restore(src, "-o", tmp_path / "out3", "--method", "classical").exit_code == 0
    assert in_flight.exists() and not stale.exists()
    assert restore(src, "-o", tmp_path / "out3", "--method", "classical").exit_code == 0
    assert not in_flight.exists()  # nobody holds that lock any more: a killed run's leftover, cleaned


def test_shards_share_an_output_folder_but_exclude_their_twin_and_unsharded_runs(tmp_path: Path) -> None:
    src, out = folder_of_photos(tmp_path / "in", count=4, size=24), tmp_path / "out"
    lock_path(out).parent.mkdir(parents=True)
    stale = out / ".other_shard_file.abc.partial"
    with open(lock_path(out), "w") as shared, open(lock_path(out, (1, 2)), "w") as own:
        fcntl.flock(shared, fcntl.LOCK_SH | fcntl.LOCK_NB)  # what a running shard 1/2 holds
        fcntl.flock(own, fcntl.LOCK_EX | fcntl.LOCK_NB)
        stale.write_bytes(b"in flight")  # not shard 2's: must survive its clean-up
        assert restore(src, "-o", out, "--method", "classical", "--shard", "2/2").exit_code == 0
        assert stale.exists()
        twin = restore(src, "-o", out, "--method", "classical", "--shard", "1/2")
        assert twin.exit_code == 4 and "shard 1/2" in twin.stderr
        assert restore(src, "-o", out, "--method", "classical").exit_code == 4
        # shard 1/2's temporary of p00.0001.png: shard 2's p00.png must not take it for its own
        # (before, temporaries were known by their stem's start, ".p00.")
        stem = next(f"p{i:02d}" for i in range(4) if shard_of(Path(f"p{i:02d}.png"), 2) == 1)
        other = out / (io.partial_prefix(f"{stem}.0001.png") + "abc.partial")
        other.write_bytes(b"in flight")
        with open(lock_path(out).with_name("lock-of-2"), "w") as count:
            fcntl.flock(count, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shards of 2 at work
            assert restore(src, "-o", out, "--method", "classical", "--shard", "2/2", "--overwrite").exit_code == 0
            assert other.exists()
            thirds = restore(src, "-o", out, "--method", "classical", "--shard", "1/3")  # before: both ran
            assert thirds.exit_code == 4 and "shards of another count (2)" in thirds.stderr


def test_shards_fail_a_name_two_of_their_files_share_as_one_run_does(tmp_path: Path) -> None:
    """Before, x.png and x.jpg in different shards each wrote the mask x.png, one over the other."""
    stem = next(f"s{i}" for i in range(100) if shard_of(Path(f"s{i}.png"), 2) != shard_of(Path(f"s{i}.jpg"), 2))
    src = tmp_path / "in"
    src.mkdir()
    PILImage.fromarray(photo(24, 32, 3, seed=1)).save(src / f"{stem}.png")
    PILImage.fromarray(photo(24, 32, 3, seed=2)).save(src / f"{stem}.jpg", quality=95)
    png_shard = shard_of(Path(f"{stem}.png"), 2) + 1  # the losing file's shard must leave the winner's temporaries
    (tmp_path / "masks").mkdir()
    in_flight = tmp_path / "masks" / (io.partial_prefix(f"{stem}.png") + "zz.partial")  # the jpg's mask
    in_flight.write_bytes(b"the other shard's, being written")
    losing = restore(src, "-o", tmp_path / "out", "--save-masks", tmp_path / "masks", "--method", "classical",
                     "--shard", f"{png_shard}/2")
    assert losing.exit_code == 3 and in_flight.exists()
    in_flight.unlink()
    runs = [restore(src, "-o", tmp_path / "out", "--save-masks", tmp_path / "masks", "--method", "classical",
                    "--shard", f"{i}/2", "--json") for i in (1, 2)]
    seen = {name: status for run in runs for name, status in statuses(run.stdout).items()}
    assert seen == {f"{stem}.jpg": "ok", f"{stem}.png": "failed"}  # as one unsharded run: the first claims it
    assert any("its mask would overwrite" in run.stderr for run in runs)


def test_shards_cover_every_file_exactly_once(tmp_path: Path) -> None:
    src, out = folder_of_photos(tmp_path / "in", count=7, size=24), tmp_path / "out"
    seen: list[str] = []
    for index in (1, 2, 3):
        result = restore(src, "-o", out, "--method", "classical", "--shard", f"{index}/3", "--json")
        assert result.exit_code == 0
        seen += [name for name, status in statuses(result.stdout).items() if status == "ok"]
    assert sorted(seen) == sorted(p.name for p in src.glob("*.png"))
    names = [Path(f"dir/{i}.png") for i in range(300)]
    counts = np.bincount([shard_of(n, 4) for n in names], minlength=4)
    assert counts.sum() == 300 and counts.min() > 40  # a partition, and a balanced one


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "gif"], "--format"),
        (["--shard", "4/3"], "--shard"),
        (["--method", "magic"], "--method"),
        (["--tile", "100"], "--tile"),
        (["--max-memory", "lots"], "--max-memory"),
        (["--device", "tpu"], "--device"),
        (["--mask-views", "3"], "--mask-views 3: choose one of 1, 2, 4, 8"),
        (["--mask-scales", "5"], "--mask-scales 5: choose one of 0, 1, 2, 3, 4"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, extra: list[str], message: str) -> None:
    src = folder_of_photos(tmp_path / "in", count=1, size=16)
    result = restore(src, "-o", tmp_path / "out", "--method", "classical", *extra)
    assert result.exit_code == 2 and message in result.stderr


def test_command_line_mistakes_are_one_line_from_the_real_entry_point(tmp_path: Path) -> None:
    """Typer's own usage errors (unknown option, missing -o, unknown command, bad integer) are one
    line naming the help to read (they were a four-line usage block), status 2; bare ``restore``
    still shows the help."""
    def entry(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "restore_cli.cli", *args], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)

    for args, says in [(["restore", "--bogus", "x", "-o", "y"], "No such option: --bogus"),
                       (["degrade", "x"], "Missing option '--out'"),
                       (["restor"], "No such command 'restor'"),
                       (["restore", "x", "-o", "y", "--tile", "abc"], "Invalid value for '--tile'")]:
        done = entry(*args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], args
        assert "-h')" in lines[0] and done.stdout == ""
    bare = entry()
    assert bare.returncode == 2 and "Usage: restore" in bare.stderr and "Commands" in bare.stderr
    assert entry("--version").returncode == 0


def test_file_names_with_control_characters_keep_one_line_per_message(tmp_path: Path) -> None:
    """A newline or an escape sequence in a file name is written as an escape on stderr (it split
    the file's log line in two, or drove the terminal); --json keeps the true name."""
    src = folder_of_photos(tmp_path / "in", count=1, size=24)
    (src / "p00.png").rename(src / "a\nb.png")
    (src / "bad\x1b[31mx.png").write_bytes(b"junk")
    result = restore(src, "-o", tmp_path / "out\nput", "--method", "classical", "--json")
    assert result.exit_code == 3
    lines = result.stderr.splitlines()
    assert len(lines) == 3 and "\x1b" not in result.stderr, lines  # one line per file, one summary
    assert any("a\\nb.png ->" in line for line in lines) and any("bad\\x1b[31mx.png: not a" in line for line in lines)
    assert "-> " + str(tmp_path / "out\\nput") in lines[-1]
    assert statuses(result.stdout) == {"a\nb.png": "ok", "bad\x1b[31mx.png": "failed"}
    assert (tmp_path / "out\nput" / "a\nb.png").is_file()


def test_refuses_to_write_into_an_input_folder_unless_in_place(tmp_path: Path) -> None:
    src = folder_of_photos(tmp_path / "in", count=2, size=24)
    refused = restore(src, "-o", src, "--method", "classical")
    assert refused.exit_code == 2 and "--in-place" in refused.stderr
    inside = restore(src, "-r", "-o", src / "restored", "--method", "classical")
    assert inside.exit_code == 2
    allowed = restore(src, "-o", src, "--method", "classical", "--in-place", "--suffix", "_r")
    assert allowed.exit_code == 0 and (src / "p00_r.png").is_file()
    again = restore(src, "-o", src, "--method", "classical", "--in-place", "--suffix", "_r", "--json")
    assert again.exit_code == 0 and not list(src.glob("*_r_r.png"))
    # every input has its record, the earlier results too (before: 2 records, "skipped": 4)
    assert statuses(again.stdout) == {name: "skipped" for name in ("p00.png", "p00_r.png", "p01.png", "p01_r.png")}


def test_in_place_without_suffix_replaces_originals_once(tmp_path: Path) -> None:
    src = folder_of_photos(tmp_path / "in", count=2, size=32)
    original = (src / "p00.png").read_bytes()
    first = restore(src, "-o", src, "--method", "classical", "--in-place", "--json")
    assert first.exit_code == 0 and (src / "p00.png").read_bytes() != original
    restored = (src / "p00.png").read_bytes()
    os.utime(src / "p00.png")  # a backup tool touching the file must not trigger a second restoration
    again = restore(src, "-o", src, "--method", "classical", "--in-place", "--json")
    assert set(statuses(again.stdout).values()) == {"skipped"}
    assert (src / "p00.png").read_bytes() == restored


def test_a_file_with_several_pages_warns_and_is_never_overwritten(tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "in"
    src.mkdir()
    pages = [PILImage.fromarray(photo(32, 32, 3, seed=s)) for s in (0, 1)]
    pages[0].save(src / "album.tif", save_all=True, append_images=pages[1:])
    original = (src / "album.tif").read_bytes()
    copy = restore(src, "-o", tmp_path / "out", "--method", "classical", "--json")
    assert copy.exit_code == 0 and "holds 2 images" in copy.stderr
    assert (tmp_path / "out" / "album.tif").is_file()
    from restore_cli.restoration import runner

    def not_decoded(*args, **kwargs):
        raise AssertionError("decoded before being refused")

    monkeypatch.setattr(runner, "read_image", not_decoded)  # the header is enough to refuse it
    in_place = restore(src, "-o", src, "--method", "classical", "--in-place", "--json")
    assert in_place.exit_code == 3 and statuses(in_place.stdout) == {"album.tif": "failed"}
    assert "only the first would be kept" in in_place.stderr and "Traceback" not in in_place.stderr
    assert (src / "album.tif").read_bytes() == original  # both pages still there


def test_one_file_to_a_named_file(tmp_path: Path) -> None:
    src = folder_of_photos(tmp_path / "in", count=2, size=24)
    out = tmp_path / "fixed" / "grandma.tif"
    result = restore(src / "p00.png", "-o", out, "--method", "classical", "--json")
    assert result.exit_code == 0 and statuses(result.stdout) == {"p00.png": "ok"}
    assert io.read_image(out).format == "TIFF" and sorted(p.name for p in out.parent.iterdir()) == [".restore", "grandma.tif"]
    again = restore(src / "p00.png", "-o", out, "--method", "classical", "--json")
    assert set(statuses(again.stdout).values()) == {"skipped"}
    for args, reason in [((src, "-o", tmp_path / "x.png"), "input is a folder"),
                         ((src / "p00.png", src / "p01.png", "-o", tmp_path / "x.png"), "2 files"),
                         ((src / "p00.png", "-o", tmp_path / "x.png", "--suffix", "_r"), "--suffix"),
                         ((src / "p00.png", "-o", src / "p00.png"), "--in-place"),
                         # before: a folder named x.gif holding p00.png
                         ((src / "p00.png", "-o", tmp_path / "x.gif"), "cannot write .gif images")]:
        refused = restore(*args, "--method", "classical")
        assert refused.exit_code == 2 and reason in refused.stderr
    assert not (tmp_path / "x.png").exists()
    (tmp_path / "looks.png").mkdir()  # an existing folder with an image-like name stays a folder
    assert restore(src, "-o", tmp_path / "looks.png", "--method", "classical").exit_code == 0
    assert (tmp_path / "looks.png" / "p01.png").is_file()
    # a trailing slash names a new folder (before, Path dropped it and a file named slash.png was written)
    assert restore(src / "p00.png", "-o", f"{tmp_path / 'slash.png'}/", "--method", "classical").exit_code == 0
    assert (tmp_path / "slash.png" / "p00.png").is_file()
    assert restore(src / "p00.png", "-o", f"{tmp_path / 'dot.png'}/.", "--method", "classical").exit_code == 0
    assert (tmp_path / "dot.png" / "p00.png").is_file()
    # a file where the folder should be is a usage error (before: status 1, "cannot create the output folder")
    on_file = restore(src / "p00.png", "-o", f"{src / 'p01.png'}/", "--method", "classical")
    assert on_file.exit_code == 2 and "p01.png: exists and is not a folder" in on_file.stderr


def test_an_image_too_big_for_memory_fails_alone_before_decoding(tmp_path: Path, monkeypatch) -> None:
    from restore_cli.restoration import runner

    src = tmp_path / "in"
    src.mkdir()
    PILImage.fromarray(photo(40, 40, 3)).save(src / "big.png")
    PILImage.fromarray(photo(20, 20, 3)).save(src / "small.png")
    monkeypatch.setattr(runner, "memory_available", lambda: 30 * 30 * 42)  # classical: 42 bytes per pixel
    result = restore(src, "-o", tmp_path / "out", "--method", "classical", "--json")
    assert result.exit_code == 3 and statuses(result.stdout) == {"big.png": "failed", "small.png": "ok"}
    assert "big.png: 40x40 needs about" in result.stderr and "free (RAM and swap)" in result.stderr
    assert not (tmp_path / "out" / "big.png").exists()


def test_jpeg_quality_sets_the_size_of_jpeg_outputs_and_counts_as_a_setting(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    PILImage.fromarray(photo(64, 64, 3)).save(src / "p.jpg", quality=90)
    default = restore(src, "-o", tmp_path / "a", "--method", "classical")
    low = restore(src, "-o", tmp_path / "b", "--method", "classical", "--jpeg-quality", "40", "--json")
    assert default.exit_code == 0 and low.exit_code == 0
    assert (tmp_path / "b" / "p.jpg").stat().st_size < (tmp_path / "a" / "p.jpg").stat().st_size
    again = restore(src, "-o", tmp_path / "b", "--method", "classical", "--jpeg-quality", "40", "--json")
    assert set(statuses(again.stdout).values()) == {"skipped"}
    changed = restore(src, "-o", tmp_path / "b", "--method", "classical", "--json")  # back to 95: redone
    assert statuses(changed.stdout) == {"p.jpg": "ok"}
    assert restore(src, "-o", tmp_path / "c", "--jpeg-quality", "0").exit_code == 2


def test_a_full_disk_stops_the_run_with_status_1(tmp_path: Path, monkeypatch) -> None:
    import errno

    from restore_cli.restoration import runner

    src = folder_of_photos(tmp_path / "in", count=3, size=24)
    calls = []

    def full(path, image, **_):
        calls.append(path)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runner, "write_image", full)
    result = restore(src, "-o", tmp_path / "out", "--method", "classical", "--json")
    assert result.exit_code == 1 and len(calls) == 1  # not three failures in a row
    assert "No space left on device" in result.stderr and "a rerun skips" in result.stderr
    assert "Traceback" not in result.stderr
    assert statuses(result.stdout) == {"p00.png": "failed"}
    summary = records(result.stdout)[-1]  # before: no summary record, so a log could not tell a stop from a cut
    assert summary["summary"] is True and summary["status"] == 1 and "No space left on device" in summary["error"]
    assert (summary["done"], summary["failed"], summary["not_tried"]) == (0, 1, 2)


def test_bad_files_fail_alone_with_status_3_and_fail_fast_stops(tmp_path: Path) -> None:
    src = folder_of_photos(tmp_path / "in", count=2, size=24)
    (src / "a_broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (src / "notes.txt").write_text("not an image")
    result = restore(src, "-o", tmp_path / "out", "--method", "classical", "--json")
    assert result.exit_code == 3
    assert statuses(result.stdout) == {"a_broken.png": "failed", "p00.png": "ok", "p01.png": "ok"}
    failed = [r for r in records(result.stdout) if r.get("status") == "failed"][0]
    assert "a_broken.png" in failed["error"] and "Traceback" not in result.stderr
    assert "notes.txt" in result.stderr  # skipped with a warning
    fast = restore(src, "-o", tmp_path / "out2", "--method", "classical", "--fail-fast", "--json")
    assert fast.exit_code == 3 and list(statuses(fast.stdout).values()) == ["failed"]
    # the two it never reached are counted, so a reader knows the batch was not finished
    assert records(fast.stdout)[-1]["not_tried"] == 2 and "1 failed, 2 not tried (--fail-fast)" in fast.stderr
    assert records(result.stdout)[-1]["not_tried"] == 0


def test_hybrid_without_checkpoint_is_fatal_with_a_hint(tmp_path: Path) -> None:
    src = folder_of_photos(tmp_path / "in", count=1, size=16)
    result = restore(src, "-o", tmp_path / "out", "--method", "hybrid", "--checkpoints", tmp_path / "none")
    assert result.exit_code == 1
    assert "mask_unet.safetensors" in result.stderr and "make checkpoints" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing left behind (it kept an empty out/.restore/)
    one = restore(src / "p00.png", "-o", tmp_path / "new" / "x.png", "--method", "hybrid", "--checkpoints",
                  tmp_path / "none")
    assert one.exit_code == 1 and not (tmp_path / "new").exists()


def test_saved_masks_never_replace_originals_or_results(tmp_path: Path) -> None:
    """Masks are PNGs named after the inputs: before, --save-masks set to the input folder replaced
    the original x.png files (status 0), and x.png + x.jpg wrote one mask over the other."""
    src = folder_of_photos(tmp_path / "in", count=2, size=32)
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    for masks_folder, message in ((src, "is an input folder"), (tmp_path / "out", "is the output folder")):
        result = restore(src, "-o", tmp_path / "out", "--method", "classical", "--save-masks", masks_folder)
        assert result.exit_code == 2 and message in result.stderr, result.output
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    PILImage.open(src / "p00.png").convert("RGB").save(src / "p00.jpg", quality=95)
    result = restore(src, "-o", tmp_path / "out", "--method", "classical", "--save-masks", tmp_path / "m", "--json")
    assert result.exit_code == 3 and statuses(result.stdout) == {"p00.jpg": "ok", "p00.png": "failed", "p01.png": "ok"}
    assert "its mask would overwrite" in result.stderr
    single = restore(src / "p01.png", "-o", tmp_path / "m2" / "p01.png", "--method", "classical",
                     "--save-masks", tmp_path / "m2")
    assert single.exit_code == 3 and "its mask would overwrite its result" in single.stderr
    bad_suffix = restore(src, "-o", tmp_path / "out3", "--method", "classical", "--suffix", "/../x")
    assert bad_suffix.exit_code == 2 and "--suffix" in bad_suffix.stderr
    # the user's own masks (they were replaced by binarised predictions), and a file (every image
    # was restored, then failed at its mask, so a rerun refused the results as "not written by restore")
    drawn = _masks_for(src, tmp_path)
    before = {p.name: p.read_bytes() for p in drawn.iterdir()}
    own = restore(src, "-o", tmp_path / "out4", "--method", "classical", "--masks", drawn, "--save-masks", drawn)
    assert own.exit_code == 2 and "is the --masks folder" in own.stderr
    assert {p.name: p.read_bytes() for p in drawn.iterdir()} == before
    (tmp_path / "notes.txt").write_text("x")
    to_file = restore(src, "-o", tmp_path / "out5", "--method", "classical", "--save-masks", tmp_path / "notes.txt")
    assert to_file.exit_code == 2 and "exists and is not a folder" in to_file.stderr
    assert not (tmp_path / "out5").exists()


def test_saved_masks_never_replace_a_users_file_of_the_same_name(tmp_path: Path) -> None:
    """Before, --save-masks wrote over any p00.png in its folder (a drawing, another run's mask)."""
    src = folder_of_photos(tmp_path / "in", count=2, size=24)
    masks = tmp_path / "masks"
    masks.mkdir()
    (masks / "p00.png").write_bytes(b"the user's own file")
    first = restore(src, "-o", tmp_path / "out", "--method", "classical", "--save-masks", masks, "--json")
    assert first.exit_code == 3 and statuses(first.stdout) == {"p00.png": "failed", "p01.png": "ok"}
    assert "masks/p00.png exists and is not a mask restore saved" in first.stderr
    assert (masks / "p00.png").read_bytes() == b"the user's own file"
    again = restore(src, "-o", tmp_path / "out", "--method", "classical", "--save-masks", masks, "--json")
    assert statuses(again.stdout) == {"p00.png": "failed", "p01.png": "skipped"}  # its own mask is known
    PILImage.fromarray(photo(24, 32, 3, seed=9)).save(src / "p01.png")  # a new scan: both redone
    redone = restore(src, "-o", tmp_path / "out", "--method", "classical", "--save-masks", masks, "--json")
    assert statuses(redone.stdout) == {"p00.png": "failed", "p01.png": "ok"}
    forced = restore(src, "-o", tmp_path / "out", "--method", "classical", "--save-masks", masks, "--overwrite")
    assert forced.exit_code == 0 and (masks / "p00.png").read_bytes() != b"the user's own file"
    # masks restore saved are its own whatever the output (before: refused for another -o)
    elsewhere = restore(src / "p01.png", "-o", tmp_path / "other.jpg", "--method", "classical", "--save-masks", masks)
    assert elsewhere.exit_code == 0, elsewhere.stderr
    # a result over a saved mask is refused for what it is (before: "changed since restore wrote it")
    over_mask = restore(src / "p00.png", "-o", masks / "p01.png", "--method", "classical")
    assert over_mask.exit_code == 3 and "p01.png exists and is a mask restore saved there" in over_mask.stderr


def test_user_masks_saved_masks_json_and_stdin(tmp_path: Path) -> None:
    src = folder_of_photos(tmp_path / "in", count=3, size=32)
    masks = _masks_for(src, tmp_path)
    (masks / "p02.png").unlink()
    result = restore("-o", tmp_path / "out", "--method", "hybrid", "--masks", masks, "--save-masks",
                     tmp_path / "saved", "--json", input="\n".join(str(p) for p in sorted(src.glob("*.png"))) + "\n")
    assert result.exit_code == 3
    recs = {Path(r["input"]).name: r for r in records(result.stdout) if "summary" not in r}
    assert recs["p00.png"]["status"] == "ok" and recs["p00.png"]["defect_coverage"] == pytest.approx(4 / 32)
    assert recs["p02.png"]["status"] == "failed" and "no mask" in recs["p02.png"]["error"]
    assert set(recs["p00.png"]) >= {"input", "output", "status", "error", "seconds", "defect_coverage"}
    saved = np.asarray(PILImage.open(tmp_path / "saved" / "p00.png"))
    assert set(np.unique(saved)) == {0, 255} and saved[10:14].all()
    restored, original = io.read_image(tmp_path / "out" / "p00.png").pixels, io.read_image(src / "p00.png").pixels
    assert np.array_equal(np.delete(restored, np.s_[10:14], axis=0), np.delete(original, np.s_[10:14], axis=0))


def test_an_empty_top_folder_hints_at_r_only_when_sub_folders_hold_images(tmp_path: Path) -> None:
    (tmp_path / "top" / "empty").mkdir(parents=True)
    (tmp_path / "top" / "empty" / "readme.txt").write_text("notes")
    result = restore(tmp_path / "top", "-o", tmp_path / "out", "--method", "classical")
    assert result.exit_code == 0 and "no images to restore" in result.stderr
    assert "with -r" not in result.stderr  # before: "(sub-folders are read with -r)", which would find nothing
    folder_of_photos(tmp_path / "top" / "roll", count=1, size=24)
    hinted = restore(tmp_path / "top", "-o", tmp_path / "out", "--method", "classical")
    assert "(sub-folders are read with -r)" in hinted.stderr


def test_a_soft_user_mask_that_marks_nothing_is_named(tmp_path: Path) -> None:
    """Before, a mask painted at half strength (127 < 128) repaired nothing without a word."""
    src = folder_of_photos(tmp_path / "in", count=1, size=32)
    masks = tmp_path / "masks"
    masks.mkdir()
    soft = np.zeros((32, 40), np.uint8)
    soft[10:14] = 127
    PILImage.fromarray(soft).save(masks / "p00.png")
    result = restore(src, "-o", tmp_path / "out", "--method", "classical", "--masks", masks)
    assert result.exit_code == 0 and "p00.png: marks no defect (its brightest pixel is 49.8% of white" in result.stderr
    io.write_image(masks / "p00.png", io.Image(pixels=np.full((32, 40, 1), 32767 / 65535, np.float32), bit_depth=16))
    half = restore(src, "-o", tmp_path / "out16", "--method", "classical", "--masks", masks)
    assert "its brightest pixel is 49.9% of white" in half.stderr  # before: "50.0%", against the 50 % rule
    PILImage.fromarray(np.full((32, 40), 255, np.uint8)).save(masks / "p00.png")  # before: the file went unnamed
    everything = restore(src, "-o", tmp_path / "out2", "--method", "classical", "--masks", masks)
    assert "p00.png: its defect mask covers the whole image; nothing to inpaint from" in everything.stderr


def test_restore_prints_where_its_results_are_for_the_next_command(tmp_path: Path) -> None:
    src = folder_of_photos(tmp_path / "in", count=2, size=32)
    made = restore(src, "-o", tmp_path / "out", "--method", "classical")
    assert made.exit_code == 0 and made.stdout == f"{tmp_path / 'out'}\n"  # and nothing else
    scored = CliRunner().invoke(app, ["evaluate", "--reference", str(src), "--json", "-q"], input=made.stdout)
    assert scored.exit_code == 0, scored.stderr
    assert len([r for r in records(scored.stdout) if "psnr" in r]) == 2
    one = restore(src / "p00.png", "-o", tmp_path / "one.png", "--method", "classical")
    assert one.stdout == f"{tmp_path / 'one.png'}\n"


def test_paths_on_stdin_may_be_any_bytes_a_file_system_allows() -> None:
    import io as stdio

    latin1 = b"caf\xe9.png"  # not valid UTF-8: a text stdin under a UTF-8 locale would raise
    stream = stdio.TextIOWrapper(stdio.BytesIO(b"a.png\r\n\n" + latin1 + b"\n"), encoding="utf-8", errors="strict")
    assert io.read_paths_from_stdin(stream) == [Path("a.png"), Path(os.fsdecode(latin1))]


def test_cli_default_method_is_the_library_default() -> None:
    import inspect

    from restore_cli.cli import restore_command
    from restore_cli.restoration.methods import DEFAULT_METHOD, METHODS

    assert inspect.signature(restore_command).parameters["method"].default == DEFAULT_METHOD in METHODS


# --------------------------------------------------------------------------- second audit (2026-11-29)


def test_a_file_restore_did_not_write_is_not_replaced_without_overwrite(tmp_path: Path) -> None:
    """Before, -o precious.png (or a folder holding an unrelated a.png) was replaced silently."""
    src = folder_of_photos(tmp_path / "in", count=2, size=24)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "p00.png").write_bytes(b"someone else's file")
    result = restore(src, "-o", tmp_path / "out", "--method", "classical", "--json")
    assert result.exit_code == 3 and statuses(result.stdout) == {"p00.png": "failed", "p01.png": "ok"}
    assert "exists and was not written by restore (pass --overwrite" in result.stderr
    assert (tmp_path / "out" / "p00.png").read_bytes() == b"someone else's file"
    assert restore(src, "-o", tmp_path / "out", "--method", "classical", "--overwrite").exit_code == 0
    assert io.read_image(tmp_path / "out" / "p00.png").pixels.shape == (24, 32, 3)


def test_in_place_keeps_a_private_file_private(tmp_path: Path) -> None:
    src = folder_of_photos(tmp_path / "in", count=1, size=24)
    (src / "p00.png").chmod(0o600)
    assert restore(src, "-o", src, "--in-place", "--method", "classical").exit_code == 0
    assert (src / "p00.png").stat().st_mode & 0o777 == 0o600  # before: 0644, readable by everyone


def test_recursive_listing_survives_symlink_cycles(tmp_path: Path) -> None:
    """Two links back up the tree made the walk grow without end (killed by timeout)."""
    src = tmp_path / "in"
    folder_of_photos(src / "d", count=1, size=24)
    (src / "d" / "loop").symlink_to("..")
    (src / "d" / "loop2").symlink_to("..")
    result = restore(src, "-r", "-o", tmp_path / "out", "--method", "classical", "--json")
    assert result.exit_code == 0 and statuses(result.stdout) == {"p00.png": "ok"}
    assert "a link to a folder already read" in result.stderr


def test_a_result_retouched_since_it_was_written_is_not_replaced(tmp_path: Path) -> None:
    """Before, a rerun replaced a retouched result without a word (status 0)."""
    src = folder_of_photos(tmp_path / "in", count=2, size=24)
    out = tmp_path / "out"
    assert restore(src, "-o", out, "--method", "classical").exit_code == 0
    retouched = b"retouched by hand"
    (out / "p00.png").write_bytes(retouched)
    again = restore(src, "-o", out, "--method", "classical", "--json")
    assert again.exit_code == 3 and statuses(again.stdout) == {"p00.png": "failed", "p01.png": "skipped"}
    assert "p00.png was changed since restore wrote it (pass --overwrite" in again.stderr
    assert (out / "p00.png").read_bytes() == retouched
    forced = restore(src, "-o", out, "--method", "classical", "--overwrite")
    assert forced.exit_code == 0 and (out / "p00.png").read_bytes() != retouched


def test_a_stop_around_the_output_rename_is_redone_not_refused(tmp_path: Path, monkeypatch) -> None:
    """Before, the record was written after the output: a run stopped between the two left an output
    the next run refused as "not written by restore" (status 3). Now the record comes first, and names
    the file it replaces, so a stop just before the rename is redone too."""
    from restore_cli.restoration import runner

    src = folder_of_photos(tmp_path / "in", count=1, size=24)
    out = tmp_path / "out"
    real_write = runner.write_image

    def stopped_after_the_rename(*args, **kwargs):
        real_write(*args, **kwargs)
        raise RuntimeError("stopped")

    monkeypatch.setattr(runner, "write_image", stopped_after_the_rename)
    assert restore(src, "-o", out, "--method", "classical").exit_code == 3
    monkeypatch.undo()
    again = restore(src, "-o", out, "--method", "classical", "--json")
    assert again.exit_code == 0 and statuses(again.stdout) == {"p00.png": "skipped"}, again.stderr

    def stopped_before_the_rename(path, image, jpeg_quality, before_replace):
        real_write(tmp_path / "elsewhere.png", image, jpeg_quality, before_replace)  # the record, not the rename
        raise RuntimeError("stopped")

    earlier = (out / "p00.png").read_bytes()
    PILImage.fromarray(photo(24, 32, 3, seed=7)).save(src / "p00.png")  # a new scan: its result is redone
    monkeypatch.setattr(runner, "write_image", stopped_before_the_rename)
    assert restore(src, "-o", out, "--method", "classical").exit_code == 3
    monkeypatch.undo()
    assert (out / "p00.png").read_bytes() == earlier  # the file it was replacing, now named under "replaces"
    redone = restore(src, "-o", out, "--method", "classical", "--json")
    assert redone.exit_code == 0 and statuses(redone.stdout) == {"p00.png": "ok"}, redone.stderr


def test_a_tree_restored_again_through_one_of_its_folders_keeps_its_records(tmp_path: Path) -> None:
    """Records live where a run was pointed: after `-r -o A`, a run on one roll into A/roll found
    none in A/roll/.restore and refused its own results as "not written by restore" (status 3),
    and its masks as not saved by restore."""
    folder_of_photos(tmp_path / "in" / "roll", count=2, size=24)
    whole = restore(tmp_path / "in", "-r", "-o", tmp_path / "A", "--method", "classical", "--save-masks",
                    tmp_path / "M")
    assert whole.exit_code == 0, whole.stderr
    one_roll = restore(tmp_path / "in" / "roll", "-o", tmp_path / "A" / "roll", "--method", "classical",
                       "--save-masks", tmp_path / "M" / "roll", "--json")
    assert one_roll.exit_code == 0 and set(statuses(one_roll.stdout).values()) == {"skipped"}, one_roll.stderr
    PILImage.fromarray(photo(24, 32, 3, seed=5)).save(tmp_path / "in" / "roll" / "p00.png")  # a new scan
    redone = restore(tmp_path / "in" / "roll", "-o", tmp_path / "A" / "roll", "--method", "classical",
                     "--save-masks", tmp_path / "M" / "roll", "--json")
    assert redone.exit_code == 0 and statuses(redone.stdout) == {"p00.png": "ok", "p01.png": "skipped"}
    # and the whole tree again: A's own record of roll/p00.png is stale, the one in A/roll describes it
    again = restore(tmp_path / "in", "-r", "-o", tmp_path / "A", "--method", "classical", "--save-masks",
                    tmp_path / "M", "--json")
    assert again.exit_code == 0 and set(statuses(again.stdout).values()) == {"skipped"}, again.stderr


def test_in_place_suffix_results_are_recognised_from_either_level(tmp_path: Path) -> None:
    """Before, an in-place --suffix run on a sub-folder restored the whole tree's x_r.png results
    again (x_r_r.png), since their records were in the tree's own .restore."""
    folder_of_photos(tmp_path / "in" / "roll", count=1, size=24)
    whole = restore(tmp_path / "in", "-r", "--in-place", "--suffix", "_r", "-o", tmp_path / "in",
                    "--method", "classical")
    assert whole.exit_code == 0, whole.stderr
    roll = restore(tmp_path / "in" / "roll", "--in-place", "--suffix", "_r", "-o", tmp_path / "in" / "roll",
                   "--method", "classical", "--json")
    assert roll.exit_code == 0 and statuses(roll.stdout) == {"p00.png": "skipped", "p00_r.png": "skipped"}
    assert sorted(p.name for p in (tmp_path / "in" / "roll").glob("*.png")) == ["p00.png", "p00_r.png"]


def test_recursive_listing_keeps_real_paths_over_links(tmp_path: Path) -> None:
    """Before, a link to a folder sorted before it was read instead of the real folder (which was
    skipped as "a link"), and a linked file was restored under the link's name, the real one unmentioned."""
    src = tmp_path / "in"
    folder_of_photos(src / "z_real", count=1, size=24)
    (src / "a_link").symlink_to("z_real")
    folder_of_photos(src, count=1, size=24)  # in/p00.png
    (src / "b").mkdir()
    (src / "b" / "alias.png").symlink_to("../p00.png")
    result = restore(src, "-r", "-o", tmp_path / "out", "--method", "classical", "--json")
    assert result.exit_code == 0, result.stderr
    assert sorted(r["input"] for r in records(result.stdout) if "input" in r) == [str(src / "p00.png"),
                                                                                str(src / "z_real" / "p00.png")]
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == [
        "p00.png", "z_real/p00.png"]
    assert "b/alias.png: skipped (the same file as" in result.stderr and "a_link: skipped (a link" in result.stderr


def test_tile_bounds_and_a_changed_tile_redoes_the_file(tmp_path: Path, monkeypatch) -> None:
    """Before, --tile 8192 aborted the process (std::bad_alloc), and a rerun with another --tile
    was 'up to date' though the detector's mask depends on the tile."""
    from restore_cli.restoration import methods

    src = folder_of_photos(tmp_path / "in", count=1, size=24)
    big = restore(src, "-o", tmp_path / "out", "--tile", "8192")
    assert big.exit_code == 2 and "from 128 to 1024" in big.stderr
    default = methods.MethodSettings()
    assert methods.tiling_recipe(default) == {}
    assert methods.tiling_recipe(methods.MethodSettings(tile=128)) == {"tile": 128, "large_tiles": True}
    weights = restore(src, "-o", tmp_path / "out", "--method", "hybrid", "--domain-weights", "Q=1")
    assert weights.exit_code == 2 and "unknown domain 'Q'" in weights.stderr  # before: accepted by hybrid


def test_one_file_given_twice_is_one_file(tmp_path: Path) -> None:
    src = folder_of_photos(tmp_path / "in", count=1, size=24)
    result = restore(src / "p00.png", src / ".." / "in" / "p00.png", "-o", tmp_path / "one.png",
                     "--method", "classical")
    assert result.exit_code == 0 and (tmp_path / "one.png").is_file()  # before: "the input is 1 files"
