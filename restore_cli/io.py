"""Image I/O that never loses data. Every command reads and writes images through here.

Reading gives an :class:`Image`: float32 pixels in [0, 1] (H, W, C) with C = 1 or 3,
plus everything needed to write the result back the way it came in: alpha (kept
untouched, in its original integer dtype), bit depth (8 or 16), format, EXIF, ICC, XMP and IPTC
(where archive software keeps captions, credits and keywords), PNG text chunks and JPEG comments,
and the resolution (dots per inch: a 600 dpi scan prints at its size again; WebP, which has no
field for it, states it in its EXIF). What a format cannot hold is dropped when converting (EXIF,
ICC, XMP, IPTC and text into BMP; PNG text chunks into TIFF and WebP; IPTC into WebP). A PNG keeps IPTC as ImageMagick and exiftool do, in a
"Raw profile type iptc" text chunk.
EXIF orientation is applied on read and reset to 1 on write, so viewers agree. A file that holds
more than one image (a TIFF with pages or a thumbnail, an animation) is read as its first image;
:attr:`Image.frames` says how many it holds, so a caller can warn or refuse to overwrite it.

Backends: Pillow for 8-bit files (and for validating every file's header), pypng for
16-bit PNG (Pillow silently truncates 16-bit RGB PNG to 8 bits), tifffile for TIFF (with
imagecodecs for the compressions scanners write: LZW, JPEG, PackBits, Deflate); the per-format
pixel decoders are in :mod:`restore_cli.decoding`, the metadata helpers in :mod:`restore_cli.metadata`.
Palette images are read as RGB(A) and written back as RGB(A): re-quantising a restored
photo to 256 colours would throw the restoration away.

Writes are atomic: a temporary file in the target folder, fsync, then ``os.replace``,
so a killed run never leaves a truncated image behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import logging
import os
import stat
import struct
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import png  # pypng
import tifffile
from PIL import Image as PILImage
from PIL import JpegImagePlugin, UnidentifiedImageError

from restore_cli.decoding import (
    SRGB_PROFILE, UnsupportedPixels, cmyk_transform, decode_pillow, decode_png16, decode_tiff, orient, png_bit_depth,
    split_channels, why_tiff_is_not_read,
)
from restore_cli.errors import InputError, RestoreError, UsageError
from restore_cli.metadata import (
    EXIF_ORIENTATION, TIFF_IPTC_TAG, add_png_chunks, dpi_of, exif_block, exif_dpi, jpeg_iptc_segment,
    png16_metadata, png_text, read_iptc, read_text, read_xmp, tiff_text_tags, with_resolution, xmp_upright,
)

log = logging.getLogger("restore.io")

#: Default decompression-bomb guard: 180 megapixels (a 16k x 11k scan). ``--max-pixels`` raises it.
DEFAULT_MAX_PIXELS = 180_000_000

#: Suffix -> format name. The suffix decides the format of a written file.
IMAGE_SUFFIXES = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".webp": "WEBP",
}
FORMAT_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "BMP": ".bmp", "WEBP": ".webp"}
_SUPPORTED = "PNG, JPEG, TIFF, BMP or WebP"

PILImage.MAX_IMAGE_PIXELS = None  # we apply our own, clearer, limit before decoding


def _file_mode() -> int:
    """The mode a plain ``open()`` would give a new file (mkstemp's 0600 would hide outputs from others)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_NEW_FILE_MODE = _file_mode()


@dataclasses.dataclass
class Image:
    """A decoded image plus what is needed to write it back faithfully.

    pixels: float32 (H, W, C), C = 1 (gray) or 3 (RGB), values in [0, 1].
    alpha: (H, W) in the file's integer dtype, or None. Restoration never touches it.
    bit_depth: 8 or 16, the depth the file had (and the one it is written with).
    dpi: (x, y) dots per inch as the file stated them, or None.
    xmp: the XMP packet (bytes), or None. iptc: the IPTC-IIM records (bytes) of a JPEG, TIFF or PNG, or None.
    text: PNG text chunks (a JPEG comment as "Comment"), or None.
    jpeg_subsampling: a JPEG's chroma subsampling as Pillow names it (0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0), or None.
    frames: how many images the file holds (pages, thumbnails, animation frames); only the first is read.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    bit_depth: int = 8
    format: str = "PNG"
    exif: bytes | None = None
    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None
    frames: int = 1
    xmp: bytes | None = None
    text: dict[str, str] | None = None
    iptc: bytes | None = None
    jpeg_subsampling: int | None = None

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2])

    def with_pixels(self, pixels: np.ndarray) -> Image:
        """The same file metadata around new pixels (same size and channel count)."""
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if pixels.shape != self.pixels.shape:
            raise ValueError(f"pixel shape changed: {self.pixels.shape} -> {pixels.shape}")
        return dataclasses.replace(self, pixels=np.clip(pixels, 0.0, 1.0).astype(np.float32))


def display_path(path: object) -> str:
    """A printable form of any path, also one whose bytes are not valid UTF-8."""
    return os.fsencode(os.fspath(path)).decode("utf-8", "backslashreplace")


def max_value(bit_depth: int) -> int:
    return (1 << bit_depth) - 1


def to_float(array: np.ndarray, bit_depth: int) -> np.ndarray:
    return array.astype(np.float32) / np.float32(max_value(bit_depth))


def to_integer(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """[0, 1] floats -> uint8/uint16 with rounding (the inverse of :func:`to_float`)."""
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    scaled = np.clip(pixels, 0.0, 1.0) * max_value(bit_depth) + 0.5
    return scaled.astype(dtype)


# --------------------------------------------------------------------------- reading


def _check_readable_file(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except OSError as exc:
        raise InputError(path, f"cannot access file ({exc.strerror})") from None
    if path.is_dir():
        raise InputError(path, "is a directory, not an image file")
    if not stat.S_ISREG(st.st_mode):  # a named pipe would block or read as empty; a device is no file
        raise InputError(path, "not a regular file: a pipe, socket or device")
    if st.st_size == 0:
        raise InputError(path, "empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise InputError(path, "permission denied")


@contextlib.contextmanager
def _open_quietly(path: str | os.PathLike) -> Iterator[PILImage.Image]:
    """``PIL.Image.open`` without its stderr warnings about tags typed unlike the TIFF spec (Photoshop's
    IPTC tag is one): harmless, and a user's terminal is no place for them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Metadata Warning", category=UserWarning)
        with PILImage.open(path) as im:
            yield im


@dataclasses.dataclass(frozen=True)
class Header:
    """What an image file's header says before decoding: its size and how many images it holds."""

    width: int
    height: int
    frames: int = 1  # as Image.frames


def read_header(path: str | os.PathLike) -> Header | None:
    """The :class:`Header` of an image file, without decoding its pixels; None where it cannot be
    read (:func:`read_image` then says why). Only regular files are opened: opening a named pipe
    would wait for a writer forever."""
    if not Path(path).is_file():
        return None
    try:
        with _open_quietly(path) as im:
            return Header(im.width, im.height, _frame_count(im))
    except Exception:  # noqa: BLE001 - any failure is read_image's to report
        return None


def _frame_count(im: PILImage.Image) -> int:
    """How many images an opened file holds (TIFF pages, a JPEG's MPO thumbnails, animation frames)."""
    return int(getattr(im, "n_frames", 1) or 1)


def usable_images(paths: list[Path], max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Path]:
    """The ``paths`` whose pixels decode, each one left out named in a warning with :func:`read_image`'s
    reason. Training folders are checked this way up front, so that one bad file is left out instead
    of stopping a run hours in (where its data fingerprint would then refuse ``--resume``). Every file
    is decoded, not just its header read: a header can be sound above truncated data or pixels this
    tool does not read (five channels, floating point). Train400 takes ~0.3 s; a folder of large
    scans costs one extra decode of each."""
    kept = []
    for path in paths:
        try:
            read_image(path, max_pixels)  # refuses an image over the pixel limit before decoding it
        except InputError as exc:
            log.warning("%s: skipped (%s)", display_path(path), exc.reason)
            continue
        kept.append(path)
    return kept


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image:
    """Decode an image file. Raises :class:`InputError` (one line, naming the file) on any problem."""
    path = Path(path)
    _check_readable_file(path)
    try:
        with _open_quietly(path) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise InputError(
                    path,
                    f"image too large: {width}x{height} = {width * height:,} pixels exceeds the "
                    f"limit of {max_pixels:,} (raise it with --max-pixels)",
                )
            fmt = (im.format or "").upper()
            if fmt == "MPO":
                fmt = "JPEG"
            if fmt not in FORMAT_SUFFIX:
                raise InputError(path, f"unsupported format {im.format or 'unknown'} (use {_SUPPORTED})")
            exif = im.getexif()
            orientation = int(exif.get(EXIF_ORIENTATION, 1) or 1)
            icc = im.info.get("icc_profile")
            dpi = dpi_of(im.info.get("dpi")) if fmt != "WEBP" else exif_dpi(exif)
            frames = _frame_count(im)
            if fmt == "PNG" and png_bit_depth(path) == 16:
                array, depth = decode_png16(path), 16
            elif fmt == "TIFF":
                array, depth = decode_tiff(path, im)
            else:
                im.load()
                array, depth = decode_pillow(im)
            if cmyk_transform(im) is not None:  # decode_pillow converted with it: the pixels are sRGB now
                icc = SRGB_PROFILE
            elif im.mode == "CMYK" and not icc:
                log.warning("%s: a CMYK file without a colour profile: read as RGB by a plain formula, so its "
                            "colours are approximate (convert it to RGB in an editor that knows its press)",
                            display_path(path))
            colour, alpha = split_channels(array)
            xmp, text, iptc = read_xmp(im), read_text(im), read_iptc(im)
            exif_bytes = exif_block(im, exif, upright=orientation != 1)
            if xmp and orientation != 1:
                xmp = xmp_upright(xmp)
            subsampling = JpegImagePlugin.get_sampling(im) if fmt == "JPEG" and im.mode in ("RGB", "YCbCr") else -1
    except InputError:
        raise
    except UnsupportedPixels as exc:
        raise InputError(path, f"unsupported image: {exc}") from None
    except UnidentifiedImageError:
        raise InputError(path, why_tiff_is_not_read(path) or f"not a recognised image file (expected {_SUPPORTED})") from None
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except MemoryError:
        raise InputError(path, "not enough memory to decode this image") from None
    except (OSError, ValueError, SyntaxError, EOFError, png.Error, IndexError, KeyError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "truncated" in reason.lower() or isinstance(exc, EOFError):
            reason = "truncated file (image data ends early)"
        raise InputError(path, f"corrupt or unreadable image data: {reason}") from None
    icc = _icc_matching(path, icc, colour.shape[2])
    colour, alpha = orient(colour, orientation), (None if alpha is None else orient(alpha, orientation))
    return Image(
        pixels=to_float(colour, depth),
        alpha=alpha,
        bit_depth=depth,
        format=fmt,
        exif=exif_bytes,
        icc_profile=icc,
        dpi=(dpi[1], dpi[0]) if dpi and orientation in (5, 6, 7, 8) else dpi,  # these orientations swap the axes
        frames=frames,
        xmp=xmp,
        text=text,
        iptc=iptc,
        jpeg_subsampling=subsampling if subsampling in (0, 1, 2) else None,
    )


def _icc_matching(path: Path, icc: bytes | None, channels: int) -> bytes | None:
    """The file's ICC profile if it describes the pixels as read, else None with a warning.

    A Lab file, or a CMYK one whose profile Little CMS cannot use, is read as RGB by Pillow's
    plain conversion (a CMYK file with a usable profile is converted with it, and then carries
    sRGB's: :func:`restore_cli.decoding.cmyk_transform`); the file's own profile, written into
    the RGB output, would make colour-managed viewers misread it.
    """
    if not icc or len(icc) < 20:
        return icc or None
    space = icc[16:20].decode("latin-1").strip()
    if space == ("GRAY" if channels == 1 else "RGB"):
        return icc
    log.warning("%s: its %s colour profile does not describe the %s pixels it is read as: not kept (converted "
                "without colour management; convert it to RGB in an editor for exact colours)",
                display_path(path), space or "unknown", "grey" if channels == 1 else "RGB")
    return None


# --------------------------------------------------------------------------- writing


def partial_prefix(name: str) -> str:
    """How :func:`atomic_path` starts the temporary of a file ``name``: readable (its stem, cut at 40
    characters) and its own (a tag of the whole name), so that a shard cleaning up its temporaries
    never takes another shard's (``x.png`` beside ``x.0001.png`` or ``x.jpg``)."""
    tag = hashlib.sha1(os.fsencode(name)).hexdigest()[:8]
    return f".{Path(name).stem[:40]}.{tag}."


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, before_replace: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically.

    The temporary name starts with '.' and ends with '.partial' so folder listings skip it;
    it is removed if the block raises. A ``target`` that exists and is not a regular file (a
    folder, /dev/null, a pipe) is refused with an OSError: replacing it would not write a file there.
    ``before_replace(tmp)`` runs on the finished file just before the rename, which keeps its size
    and mtime: a record of it written there is already true of ``target`` the moment it appears.
    """
    target = Path(target)
    if os.path.lexists(target) and not target.is_file():
        raise OSError(errno.EEXIST, "exists and is not a regular file", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=partial_prefix(target.name), suffix=".partial", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # A new file gets what open() would give it; a replaced one keeps its own mode (--in-place on a
    # private 0600 scan must not make it world-readable).
    os.chmod(tmp, stat.S_IMODE(target.stat().st_mode) if target.is_file() else _NEW_FILE_MODE)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if before_replace is not None:
            before_replace(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_stream(stream, text: str, what: str) -> None:
    """Write ``text`` to an open stream (stdout, for a pipeline) and flush it; a failure other than
    a closed pipe (a full disk behind ``> file``) is a RestoreError naming ``what`` was written."""
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise RestoreError(f"cannot write {what} to stdout ({exc.strerror or exc})") from None


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def file_stamp(path: Path) -> dict[str, int] | None:
    """A file's size and mtime_ns (None if it cannot be stat'ed): enough to tell it was rewritten."""
    try:
        st = path.stat()
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def check_output_files(paths: list[Path], what: str) -> None:
    """Before any long work: each of ``paths`` is absent or a regular file, and its folder exists (it is
    created) and takes a new file. ``what`` names the option for the message (``-o names the checkpoint
    file``). UsageError / RestoreError otherwise, so a bad target fails at once, not at the end."""
    for path in paths:
        if os.path.lexists(path) and not path.is_file():
            raise UsageError(f"{display_path(path)}: exists and is not a regular file ({what})")
    for folder in dict.fromkeys(path.parent for path in paths):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-test.", suffix=".partial", dir=folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            reason = "a file is in the way" if isinstance(exc, (FileExistsError, NotADirectoryError)) else exc.strerror
            raise RestoreError(f"{display_path(paths[0])}: cannot write in {display_path(folder)} "
                               f"({reason or exc})") from None


def format_for_path(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise UsageError(f"{display_path(path)}: cannot tell the image format from {suffix!r} (use {_SUPPORTED})")
    return IMAGE_SUFFIXES[suffix]


def _merged(image: Image) -> np.ndarray:
    """Integer array (H, W) or (H, W, C) including alpha, ready for an encoder."""
    colour = to_integer(image.pixels, image.bit_depth)
    if image.alpha is not None:
        alpha = image.alpha.astype(colour.dtype)
        colour = np.concatenate([colour, alpha[:, :, None]], axis=2)
    return colour[:, :, 0] if colour.shape[2] == 1 else colour


#: JPEG outputs: quality 95, fidelity first (``--jpeg-quality``), with full-resolution chroma (4:4:4) unless
#: the input was a JPEG with less: its 4:2:0 colour holds no more detail to keep, and 4:4:4 made a
#: restored camera JPEG (q85, 4:2:0, 2000x2000) 2.6x the size of its input.
JPEG_QUALITY = 95


def check_storable(path: str | os.PathLike, image: Image) -> str:
    """The format ``path``'s suffix names, or InputError where it cannot hold what ``image`` has
    (16 bits in JPEG/BMP/WebP, alpha in JPEG/BMP). :func:`write_image` checks it; a caller checks
    it first too where making the image costs something (restoring it)."""
    path = Path(path)
    fmt = format_for_path(path)
    if image.bit_depth == 16 and fmt not in ("PNG", "TIFF"):
        raise InputError(path, f"{fmt} cannot store 16-bit images; write PNG or TIFF instead")
    if image.alpha is not None and fmt in ("JPEG", "BMP"):  # Pillow's 32-bit BMP reads back without its alpha
        raise InputError(path, f"{fmt} cannot store an alpha channel; write PNG, TIFF or WebP instead")
    return fmt


def write_image(path: str | os.PathLike, image: Image, jpeg_quality: int = JPEG_QUALITY,
                before_replace: Callable[[Path], None] | None = None) -> None:
    """Encode ``image`` at ``path`` (format from the suffix) atomically, keeping depth, alpha, EXIF, ICC.

    Formats that cannot hold what the image has (16 bits in JPEG/BMP/WebP, alpha in JPEG/BMP)
    raise :class:`InputError` rather than silently dropping data. ``before_replace``: see
    :func:`atomic_path`.
    """
    path = Path(path)
    fmt = check_storable(path, image)
    array = _merged(image)
    with atomic_path(path, before_replace) as tmp:
        if fmt == "TIFF":
            extratags = [(34675, "B", len(image.icc_profile), image.icc_profile, True)] if image.icc_profile else []
            photometric = "rgb" if array.ndim == 3 and array.shape[2] >= 3 else "minisblack"
            extrasamples = ("unassalpha",) if image.alpha is not None else None
            resolution = {} if image.dpi is None else {"resolution": image.dpi, "resolutionunit": "INCH"}
            text = tiff_text_tags(image.exif)
            extratags += [(tag, "s", 0, value, True) for tag, value in text.items() if tag not in (270, 305)]
            if image.xmp:
                extratags.append((700, "B", len(image.xmp), image.xmp, True))
            if image.iptc:
                extratags.append((TIFF_IPTC_TAG, "B", len(image.iptc), image.iptc, True))
            tifffile.imwrite(
                tmp, array, photometric=photometric, extrasamples=extrasamples,
                # Deflate with horizontal differencing: lossless, and half the size of plain Deflate
                # on an 8-bit photo (7.3 -> 3.9 MB at 2048x2048; 16-bit with grain: 23.4 -> 20.4 MB).
                compression="zlib", predictor=True,
                extratags=extratags, metadata=None,  # no tifffile JSON in the description
                description=text.get(270), software=text.get(305, False), **resolution,
            )
        elif fmt == "PNG" and image.bit_depth == 16:
            _write_png16(tmp, array, has_alpha=image.alpha is not None)
            add_png_chunks(tmp, png16_metadata(image))
        else:
            kwargs: dict = {}
            if image.exif and fmt in ("PNG", "JPEG", "WEBP"):
                kwargs["exif"] = image.exif
            if image.dpi and fmt == "WEBP":  # WebP has no resolution field: EXIF's, as exiftool reads it
                kwargs["exif"] = with_resolution(image.exif, image.dpi)
            if image.icc_profile and fmt in ("PNG", "JPEG", "WEBP"):
                kwargs["icc_profile"] = image.icc_profile
            if image.dpi and fmt in ("PNG", "JPEG", "BMP"):
                kwargs["dpi"] = image.dpi
            if image.xmp and fmt in ("JPEG", "WEBP"):
                kwargs["xmp"] = image.xmp
            if fmt == "PNG" and (image.text or image.xmp or image.iptc):
                kwargs["pnginfo"] = png_text(image)
            if fmt == "JPEG" and image.text and image.text.get("Comment"):
                kwargs["comment"] = image.text["Comment"].encode("utf-8")
            if fmt == "JPEG" and image.iptc:
                kwargs["iptc"] = jpeg_iptc_segment(image.iptc)
            if fmt == "JPEG":
                _fit_jpeg_segments(path, kwargs)
                if "iptc" in kwargs:  # Pillow writes no APP13 itself, but passes ready-made segments on
                    body = kwargs.pop("iptc")
                    kwargs["extra"] = b"\xff\xed" + struct.pack(">H", len(body) + 2) + body
                kwargs.update(quality=jpeg_quality, subsampling=image.jpeg_subsampling or 0)
            elif fmt == "WEBP":
                kwargs.update(lossless=True, exact=True)  # exact: keep RGB under transparent pixels
            PILImage.fromarray(array).save(tmp, format=fmt, **kwargs)


#: What one JPEG segment holds of each metadata kind (Pillow raises beyond it; ICC alone is split).
_JPEG_SEGMENT_LIMITS = {"exif": 65533, "xmp": 65533 - len(b"http://ns.adobe.com/xap/1.0/\x00"), "comment": 65533,
                        "iptc": 65533}


def _fit_jpeg_segments(path: Path, kwargs: dict) -> None:
    """Drop, with a warning, metadata too big for one JPEG segment (a long XMP history, say), rather
    than fail the image: the input keeps it, and a PNG or TIFF output would too."""
    for key, limit in _JPEG_SEGMENT_LIMITS.items():
        if key in kwargs and len(kwargs[key]) > limit:
            keeper = "a TIFF output" if key == "iptc" else "a PNG or TIFF output"
            log.warning("%s: its %s (%d bytes) does not fit in a JPEG segment: not written (%s keeps it)",
                        display_path(path), key if key == "comment" else key.upper(), len(kwargs.pop(key)), keeper)


def _write_png16(path: Path, array: np.ndarray, has_alpha: bool) -> None:
    height, width = array.shape[:2]
    planes = 1 if array.ndim == 2 else array.shape[2]
    writer = png.Writer(
        width, height, greyscale=planes in (1, 2), alpha=has_alpha, bitdepth=16
    )
    with open(path, "wb") as fh:
        writer.write(fh, array.reshape(height, width * planes))


def defect_mask(image: Image) -> np.ndarray:
    """A mask file as bool (H, W): True (defect) where any channel reaches half its range, 128 of
    255 (the masks this tool writes hold 255 = defect, 0 = clean; a colour mask drawn in red counts).

    A file whose largest value is 1 is a 0/1 mask (numpy booleans saved as 8 bits, as many tools
    write them); there 1 = defect. By the half-range rule alone it would read as empty, as it did
    in ``restore --masks`` and ``evaluate`` until 2026-11-29, and nothing would be repaired or scored.
    """
    strongest = image.pixels.max(axis=2)
    if 0 < float(strongest.max()) * max_value(image.bit_depth) < 1.5:
        return strongest > 0
    return strongest >= 0.5


def write_gray8(path: str | os.PathLike, array: np.ndarray,
                before_replace: Callable[[Path], None] | None = None) -> None:
    """Write a float [0, 1] or uint8 (H, W) array as an 8-bit grayscale PNG (masks, previews)."""
    if array.dtype != np.uint8:
        array = to_integer(array, 8)
    write_image(path, Image(pixels=to_float(array.reshape(array.shape[0], array.shape[1], 1), 8)),
                before_replace=before_replace)


# --------------------------------------------------------------------------- finding inputs


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


#: Picture formats a scan folder may hold that restore does not read: named as such when skipped.
OTHER_PICTURE_SUFFIXES = frozenset(
    ".gif .heic .heif .avif .jxl .jp2 .j2k .psd .dng .cr2 .cr3 .nef .arw .orf .rw2 .raf .ico .svg .pdf .eps".split())


def _not_read_because(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in OTHER_PICTURE_SUFFIXES:
        return f"{suffix} pictures are not read: convert to {_SUPPORTED}"
    return "not an image file name"


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """Image-named entries of ``folder`` in sorted order.

    Non-recursive listings include entries that merely *look* like images (a directory
    called ``x.jpg``) so that the batch reports them instead of silently ignoring them.
    Other files are skipped with a warning. Hidden and temporary (``.partial``) files are ignored.
    A recursive listing enters each real folder once: a symlink back up the tree (``ln -s ..``)
    is skipped with a warning instead of walked until the path is too long, or, with two such
    links, for ever. Links to folders are entered after the whole real tree, so a folder reached
    both ways keeps its real path (before, ``a_link -> z_real`` read z_real's files under
    a_link/ and skipped the real folder as "a link").
    """
    if not recursive:
        return _list_folder(folder, None, None)
    seen: set[tuple[int, int]] = set()
    links: list[Path] = []
    found = _list_folder(folder, seen, links)
    while links:
        found.extend(_list_folder(links.pop(0), seen, links))
    return sorted(found, key=lambda p: [os.fsencode(part) for part in p.relative_to(folder).parts])


def images_below(folder: Path) -> bool:
    """Whether ``folder``'s sub-folders hold an image (only ``-r`` reads them), found without listing,
    and so without warning about, every other file of the tree."""
    for root, subfolders, files in os.walk(folder):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        if Path(root) != folder and any(is_image_name(Path(name)) for name in files if not name.startswith(".")):
            return True
    return False


def _list_folder(folder: Path, seen: set | None, links: list[Path] | None) -> list[Path]:
    """One folder of :func:`list_images`; with ``seen`` (recursive), its real sub-folders too, and
    the linked ones appended to ``links`` for later."""
    if seen is not None:
        try:
            info = folder.stat()
        except OSError:
            info = None
        if info is not None:
            if (info.st_dev, info.st_ino) in seen:
                log.warning("%s: skipped (a link to a folder already read)", display_path(folder))
                return []
            seen.add((info.st_dev, info.st_ino))
    found: list[Path] = []
    try:
        entries = sorted(folder.iterdir(), key=lambda p: os.fsencode(p.name))
    except PermissionError:
        raise InputError(folder, "permission denied (cannot list folder)") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if seen is not None and entry.is_dir():
            if entry.is_symlink():
                links.append(entry)
            else:
                found.extend(_list_folder(entry, seen, links))
        elif is_image_name(entry):
            found.append(entry)
        elif entry.is_file():
            log.warning("%s: skipped (%s)", display_path(entry), _not_read_because(entry))
    return found


def collect_inputs(inputs: list[Path], recursive: bool = False) -> list[tuple[Path, Path]]:
    """Expand files and folders to ``(path, relative output path)`` pairs, in sorted order.

    A folder's images keep their path relative to that folder (so ``--recursive`` mirrors
    the tree); a file given directly keeps only its name. Duplicates are dropped with a warning;
    of a file reached through a link and by its real path, the real path is kept (before, the
    link's name was restored and the real file went unmentioned).
    """
    pairs: list[tuple[Path, Path]] = []
    seen: dict[Path, int] = {}
    for item in inputs:
        if item.is_dir() and not is_image_name(item):
            members = [(p, p.relative_to(item)) for p in list_images(item, recursive)]
        elif item.exists() or is_image_name(item):
            members = [(item, Path(item.name))]
        else:
            raise UsageError(f"{display_path(item)}: no such file or folder")
        for path, rel in members:
            key = path.resolve() if path.exists() else path
            if key not in seen:
                seen[key] = len(pairs)
                pairs.append((path, rel))
                continue
            kept = pairs[seen[key]][0]
            if _through_link(kept) and not _through_link(path):
                pairs[seen[key]], path = (path, rel), kept
            log.warning("%s: skipped (the same file as %s)", display_path(path), display_path(pairs[seen[key]][0]))
    return pairs


def _through_link(path: Path) -> bool:
    """Whether ``path`` reaches its file through a symbolic link (its own name or a folder's)."""
    try:
        return path.resolve() != path.absolute()
    except OSError:
        return False


def read_paths_from_stdin(stream) -> list[Path]:
    """Paths, one per line, from a pipe (e.g. the output folder printed by ``restore degrade``).

    Read as bytes where the stream has them and decoded as the file system does
    (``os.fsdecode``): under a UTF-8 locale a text stdin would raise on a file name that is not
    valid UTF-8 (an old Latin-1 one, say), which ``find`` passes on as it is."""
    raw = getattr(stream, "buffer", None)
    lines = (os.fsdecode(line) for line in raw) if raw is not None else stream
    return [Path(line.rstrip("\r\n")) for line in lines if line.strip()]
