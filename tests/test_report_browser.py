"""The --html viewer in a real headless Chromium: navigation, method switch, scores, placeholders.

Needs Debian's ``chromium`` (``make test-deps`` / ``.ci/run`` install it). Set
``RESTORE_CHROMIUM`` to use another binary and ``RESTORE_TEST_ARTIFACTS`` to keep the
screenshots somewhere other than the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from restore_cli import io
from restore_cli.cli import app

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def _chromium() -> str:
    path = os.environ.get("RESTORE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(
            "Chromium not found (needed by the browser tests): run `make test-deps` "
            "(apt-get install -y chromium) or set RESTORE_CHROMIUM to a Chromium binary",
            pytrace=False,
        )
    return path


def _build_report(root: Path) -> Path:
    """3 images x 2 methods, degraded inputs, masks and references; the page in a sibling folder."""
    rng = np.random.default_rng(0)
    names = ("clean", "degraded", "unet", "median", "pred", "true")
    for name in names:
        (root / name).mkdir()
    y, x = np.mgrid[0:48, 0:64] / 64.0

    def noisy(clean: np.ndarray, sigma: float) -> np.ndarray:
        return np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 1).astype(np.float32)

    for i, stem in enumerate(("attic", "beach", "wedding")):
        clean = np.stack([x, y, (x + y + i / 3) % 1], axis=-1).astype(np.float32)
        io.write_image(root / "clean" / f"{stem}.png", io.Image(clean))
        io.write_image(root / "degraded" / f"{stem}.png", io.Image(noisy(clean, 0.25)))
        io.write_image(root / "unet" / f"{stem}.png", io.Image(noisy(clean, 0.02)))
        io.write_image(root / "median" / f"{stem}.png", io.Image(noisy(clean, 0.08)))
        mask = np.zeros((48, 64), np.uint8)
        mask[10:20, 5 + 10 * i : 30 + 10 * i] = 255
        io.write_gray8(root / "true" / f"{stem}.png", mask)
        io.write_gray8(root / "pred" / f"{stem}.png", mask)
    page = root / "report" / "index.html"
    result = CliRunner().invoke(app, [
        "evaluate", str(root / "unet"), str(root / "median"), "--reference", str(root / "clean"),
        "--inputs", str(root / "degraded"), "--masks", str(root / "pred"), "--true-masks", str(root / "true"),
        "--html", str(page),
    ])
    assert result.exit_code == 0, result.output
    return page


def test_viewer_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    artifacts = Path(os.environ.get("RESTORE_TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    page_path = _build_report(tmp_path)
    (tmp_path / "median" / "wedding.png").unlink()  # files deleted after the report was written
    (tmp_path / "degraded" / "wedding.png").unlink()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            requested: list[str] = []
            page.on("request", lambda req: requested.append(req.url))
            page.goto(page_path.as_uri())

            assert page.text_content("#counter") == "1 / 3"
            assert page.text_content("#filename") == "attic.png"
            scores = page.text_content("#scores")
            assert "PSNR" in scores and "dB" in scores and "SSIM" in scores and "mask IoU 1.000" in scores
            restored = page.locator("#panel-restored img")
            assert restored.get_attribute("src") == "../unet/attic.png"
            page.wait_for_function("document.querySelector('#panel-restored img').naturalWidth === 64")
            page.screenshot(path=str(artifacts / "viewer-1.png"), full_page=True)

            page.click("#next")
            assert page.text_content("#counter") == "2 / 3"
            assert page.text_content("#filename") == "beach.png"
            page.keyboard.press("ArrowRight")
            assert page.text_content("#counter") == "3 / 3"
            assert page.is_disabled("#next")
            unet_src = restored.get_attribute("src")
            unet_scores = page.text_content("#scores")

            page.select_option("#method", label="median")
            assert restored.get_attribute("src") == "../median/wedding.png" != unet_src
            assert page.text_content("#scores") != unet_scores
            # the file is gone: a placeholder instead of a broken image, the layout holds
            page.wait_for_selector("#panel-restored .missing:not([hidden])")
            assert "image missing" in page.text_content("#panel-restored .missing")
            assert restored.is_hidden()
            # the original is the same file for every method: still a placeholder after the switch
            assert "image missing" in page.text_content("#panel-original .missing")
            assert page.locator("#panel-original img").is_hidden()
            assert page.locator("#ba").is_hidden()  # no half-broken slider
            page.screenshot(path=str(artifacts / "viewer-missing.png"))

            page.keyboard.press("ArrowLeft")
            assert page.text_content("#counter") == "2 / 3"
            assert restored.get_attribute("src") == "../median/beach.png"
            page.fill("#ba-range", "20")
            page.dispatch_event("#ba-range", "input")
            assert "20%" in page.eval_on_selector("#ba-after", "e => e.style.clipPath")
            page.check("#zoom")
            page.wait_for_function("document.querySelector('#panel-restored img').style.width !== ''")
            rendering = page.eval_on_selector("#panel-restored img", "e => getComputedStyle(e).imageRendering")
            assert rendering == "pixelated"
            page.screenshot(path=str(artifacts / "viewer-2.png"), full_page=True)

            assert errors == []
            assert all(url.startswith(("file:", "data:")) for url in requested), requested
        finally:
            browser.close()
