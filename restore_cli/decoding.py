"""How each file format's pixels become an integer array (H, W[, C]) and a bit depth.

:func:`restore_cli.io.read_image` opens every file with Pillow and hands the pixels to one of
these: Pillow itself for 8-bit files and for what needs interpreting (palette, 1-bit, CMYK),
pypng for 16-bit PNG (Pillow truncates 16-bit RGB PNG to 8 bits), tifffile for grey and RGB(A)
TIFF at 8 or 16 bits (with imagecodecs for LZW, JPEG, PackBits and Deflate), and Little CMS
(Pillow's ImageCms) for a CMYK file that embeds its colour profile. Pixels this tool
does not handle (32-bit, floating point, extra channels) raise :class:`UnsupportedPixels`, which
``read_image`` turns into a one-line reason naming the file.
"""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path

import numpy as np
import png  # pypng
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms, TiffImagePlugin


def png_bit_depth(path: Path) -> int:
    """The IHDR bit depth byte of a PNG (offset 24)."""
    with open(path, "rb") as fh:
        header = fh.read(25)
    return header[24] if len(header) == 25 else 8


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an (H, W, ...) array."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.swapaxes(a, 0, 1)[::-1],
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(array)) if op else array


class UnsupportedPixels(ValueError):
    """A well-formed file whose pixels this tool does not handle (32-bit, floating point, extra channels)."""


def decode_pillow(im: PILImage.Image) -> tuple[np.ndarray, int]:
    """Pillow image -> (integer array (H, W[, C]), bit depth), palette and odd modes normalised."""
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    elif mode in ("L", "RGB") and "transparency" in im.info:  # a tRNS colour key is an alpha channel too
        im = im.convert(mode + "A")
    elif mode == "1":
        im = im.convert("L")
    elif mode == "CMYK":
        transform = cmyk_transform(im)
        im = im.convert("RGB") if transform is None else ImageCms.applyTransform(im, transform)
    elif mode in ("YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
    elif mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(im)
        if array.max(initial=0) > 65535 or array.min(initial=0) < 0:
            raise UnsupportedPixels("32-bit integer pixels (save it with 8 or 16 bits)")
        return array.astype(np.uint16), 16
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        kind = "32-bit floating-point pixels" if mode == "F" else f"pixel mode {mode!r}"
        raise UnsupportedPixels(f"{kind} (save it as 8- or 16-bit grey or RGB)")
    return np.asarray(im), 8


#: The profile of every colour-managed conversion's result (Little CMS's built-in sRGB, 588 bytes):
#: written into the output so that colour-managed viewers show it as converted.
SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def cmyk_transform(im: PILImage.Image) -> ImageCms.ImageCmsTransform | None:
    """The CMYK -> sRGB transform of a CMYK image's embedded profile; None without a usable one.

    Why: a CMYK file's numbers are ink amounts on one press and paper, which only its profile
    turns into colours. Pillow's plain conversion (R = 255 - C - K, ...) ignores it, so a press
    profile's dull black, a cyan that is really blue-green, or a paper tint come out wrong, by tens
    of levels. Relative colorimetric with black point compensation is the conversion Photoshop
    does by default: the paper becomes white, the darkest ink mix black. Without a profile (or
    with a corrupt one) ``decode_pillow`` falls back to the plain conversion and ``read_image``
    says so.
    """
    icc = im.info.get("icc_profile")
    if im.mode != "CMYK" or not isinstance(icc, bytes) or icc[16:20] != b"CMYK":
        return None
    return _cmyk_to_srgb(icc)


@functools.lru_cache(maxsize=8)  # a folder of one press's files shares its profile: built once
def _cmyk_to_srgb(icc: bytes) -> ImageCms.ImageCmsTransform | None:
    try:
        return ImageCms.buildTransform(
            ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.ImageCmsProfile(io.BytesIO(SRGB_PROFILE)), "CMYK",
            "RGB", renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, flags=ImageCms.Flags.BLACKPOINTCOMPENSATION)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def decode_png16(path: Path) -> np.ndarray:
    width, height, rows, info = png.Reader(filename=os.fspath(path)).asDirect()
    planes = info["planes"]
    array = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    return array.reshape(height, width, planes)


def _open_16_bit_grey_with_alpha_tiffs() -> None:
    """Let Pillow *open* 16-bit grey + alpha TIFFs, which its layout table lacks (13.0.0).

    Why: ``read_image`` opens every file with Pillow for its metadata (EXIF, ICC, XMP, IPTC, dpi,
    orientation) and takes a TIFF's grey or RGB pixels from tifffile (:func:`decode_tiff`). Pillow
    refused to open this one layout ("not a recognised image file"), which ``write_image`` itself
    writes for a 16-bit grey image with transparency: the tool could not read its own output. The
    entries below only get such a file past Pillow's header check (as mode I;16, one plane);
    Pillow never decodes it, because :func:`decode_tiff` reads every 16-bit grey TIFF with
    tifffile. Keys: byte order, photometric (1 = grey), sample format (1 = unsigned), fill order,
    bits per sample, extra samples (0 unspecified, 1 associated, 2 unassociated alpha).
    """
    for order, mode in ((b"II", "I;16"), (b"MM", "I;16B")):
        for extra in (0, 1, 2):
            TiffImagePlugin.OPEN_INFO.setdefault((order, 1, (1,), 1, (16, 16), (extra,)), (mode, mode))


_open_16_bit_grey_with_alpha_tiffs()


def decode_tiff(path: Path, im: PILImage.Image) -> tuple[np.ndarray, int]:
    """The first page: tifffile for grey and RGB(A) at 8 or 16 bits (Pillow cannot read 16-bit RGB),
    Pillow for what needs interpreting (1-bit, white-is-zero, palette, CMYK -> RGB), which tifffile
    would hand over as raw numbers."""
    with tifffile.TiffFile(os.fspath(path)) as tif:
        page = tif.pages.first
        raw = (page.photometric in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB)
               and page.bitspersample in (8, 16) and page.sampleformat == tifffile.SAMPLEFORMAT.UINT)
        if raw:
            array = page.asarray()
    if not raw:
        im.load()
        return decode_pillow(im)
    if array.ndim == 3 and array.shape[0] in (1, 2, 3, 4) and array.shape[2] not in (1, 2, 3, 4):
        array = np.moveaxis(array, 0, -1)  # planar (C, H, W) storage
    return array, tiff_bit_depth(array)


def tiff_bit_depth(array: np.ndarray) -> int:
    """The bit depth of a TIFF read by tifffile, or :class:`UnsupportedPixels`."""
    if array.dtype == np.uint8:
        return 8
    if array.dtype == np.uint16:
        return 16
    kind = {"f": "floating-point", "i": "signed integer"}.get(array.dtype.kind, "integer")
    raise UnsupportedPixels(f"{array.dtype.itemsize * 8}-bit {kind} samples (save it as 8- or 16-bit integer)")


def why_tiff_is_not_read(path: Path) -> str | None:
    """Why a TIFF that Pillow does not recognise (floating-point RGB, say) is not read, or None."""
    try:
        with tifffile.TiffFile(os.fspath(path)) as tif:
            page = tif.pages.first
            tiff_bit_depth(np.zeros(1, page.dtype))
    except UnsupportedPixels as exc:
        return f"unsupported image: {exc}"
    except Exception:  # noqa: BLE001 - not a TIFF after all, or unreadable: the generic reason stands
        return None
    return None


def split_channels(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W[, C]) integer array -> colour (H, W, 1|3) and alpha (H, W) or None."""
    if array.ndim == 2:
        return array[:, :, None], None
    channels = array.shape[2]
    if channels == 1:
        return array, None
    if channels == 2:
        return array[:, :, :1], array[:, :, 1].copy()
    if channels == 3:
        return array, None
    if channels == 4:
        return array[:, :, :3], array[:, :, 3].copy()
    raise UnsupportedPixels(f"{channels} channels per pixel (grey or RGB, with or without alpha, are read)")
