"""Metadata an archive keeps beside the pixels: XMP, IPTC, PNG text, JPEG comments, TIFF text tags, dpi
(WebP's in EXIF).

:mod:`restore_cli.io` reads them into its ``Image`` and writes them back through these helpers,
so a restored scan keeps its caption, keywords, credits and print size. Pillow reads them all;
for writing, Pillow covers 8-bit files, tifffile TIFF (given tags) and pypng 16-bit PNG (given
ready-made chunks: :func:`png16_metadata`, :func:`add_png_chunks`). IPTC (the IIM records that
archive and newsroom software such as Photoshop or Photo Mechanic keep captions, credits and
keywords in) has no writer in Pillow: :func:`jpeg_iptc_segment` builds the JPEG segment itself,
:func:`raw_profile` the PNG text chunk that ImageMagick and exiftool use for it.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import zlib
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image as PILImage
from PIL import PngImagePlugin

if TYPE_CHECKING:
    from restore_cli.io import Image


PNG_XMP_KEY = "XML:com.adobe.xmp"


def read_xmp(im: PILImage.Image) -> bytes | None:
    """The raw XMP packet of a JPEG, WebP, PNG or TIFF file, or None."""
    value = im.info.get("xmp") or im.info.get(PNG_XMP_KEY)
    if value is None and hasattr(im, "tag_v2"):
        value = im.tag_v2.get(700)
    if isinstance(value, tuple):  # a TIFF BYTE array read as numbers
        value = bytes(value)
    if isinstance(value, str):
        value = value.encode("utf-8")
    return value if isinstance(value, bytes) and value.strip() else None


#: Where IPTC-IIM data sits: a TIFF tag of its own, or resource 0x0404 of a Photoshop block
#: (a JPEG's APP13 segment, or TIFF tag 34377).
TIFF_IPTC_TAG, TIFF_PHOTOSHOP_TAG, PHOTOSHOP_IPTC_RESOURCE = 33723, 34377, 0x0404
PHOTOSHOP_APP13_HEADER = b"Photoshop 3.0\x00"


#: A PNG has no IPTC chunk: ImageMagick and exiftool keep it in a text chunk of this name (see raw_profile).
PNG_IPTC_KEY = "Raw profile type iptc"


def read_iptc(im: PILImage.Image) -> bytes | None:
    """The raw IPTC-IIM records of a JPEG, TIFF or PNG file, or None."""
    value = None
    if im.format == "PNG":
        value = from_raw_profile(im.info.get(PNG_IPTC_KEY))
        if value and value.startswith(b"8BIM"):  # exiftool may store the whole Photoshop block
            value = photoshop_resource(value, PHOTOSHOP_IPTC_RESOURCE)
    elif im.format in ("JPEG", "MPO"):
        value = (im.info.get("photoshop") or {}).get(PHOTOSHOP_IPTC_RESOURCE)
    elif hasattr(im, "tag_v2"):
        # Raw bytes: Photoshop declares the tag as 32-bit integers, which Pillow's typed reading mangles.
        raw = getattr(im.tag_v2, "_tagdata", {})
        value = raw.get(TIFF_IPTC_TAG) or photoshop_resource(raw.get(TIFF_PHOTOSHOP_TAG), PHOTOSHOP_IPTC_RESOURCE)
    return bytes(value) if isinstance(value, bytes) and value.strip(b"\x00") else None


def photoshop_resource(block: bytes | None, wanted: int) -> bytes | None:
    """One resource of a Photoshop image-resource block ('8BIM', id, padded name, size, padded data)."""
    offset = 0
    while block and offset + 12 <= len(block) and block[offset:offset + 4] == b"8BIM":
        resource = struct.unpack_from(">H", block, offset + 4)[0]
        name_length = block[offset + 6]
        offset += 6 + ((name_length + 2) & ~1)  # Pascal name, length byte included, padded to even
        if offset + 4 > len(block):
            return None
        size = struct.unpack_from(">I", block, offset)[0]
        data = block[offset + 4:offset + 4 + size]
        if resource == wanted:
            return data
        offset += 4 + size + (size & 1)
    return None


def raw_profile(kind: str, data: bytes) -> str:
    """``data`` as ImageMagick's "Raw profile type KIND" PNG text: the kind, the length, then hex, 36 bytes a line."""
    lines = (data[i:i + 36].hex() for i in range(0, len(data), 36))
    return f"\n{kind}\n{len(data):8d}\n" + "\n".join(lines) + "\n"


def from_raw_profile(text: object) -> bytes | None:
    """The bytes of a "Raw profile type ..." PNG text (see :func:`raw_profile`), or None if it is not one."""
    if not isinstance(text, str):
        return None
    parts = text.strip().split(None, 2)  # kind, length, hex (with line breaks)
    try:
        length, data = int(parts[1]), bytes.fromhex("".join(parts[2].split()))
    except (IndexError, ValueError):
        return None
    return data if len(data) == length and data.strip(b"\x00") else None


def jpeg_iptc_segment(iptc: bytes) -> bytes:
    """The APP13 segment body (marker and length excluded) that holds ``iptc``, as Photoshop writes it."""
    resource = b"8BIM" + struct.pack(">H", PHOTOSHOP_IPTC_RESOURCE) + b"\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    return PHOTOSHOP_APP13_HEADER + resource + b"\x00" * (len(iptc) & 1)


def xmp_upright(xmp: bytes) -> bytes:
    """``xmp`` with its tiff:Orientation (if any) set to 1: the pixels were turned upright, and a
    viewer that reads the orientation from XMP (Pillow's ``exif_transpose`` does) would turn them again."""
    return re.sub(rb'(tiff:Orientation(?:="|>))[0-9]', rb"\g<1>1", xmp)


def read_text(im: PILImage.Image) -> dict[str, str] | None:
    """PNG text chunks (those before the image data, or all once decoded) and a JPEG comment."""
    text: dict[str, str] = {}
    if im.format == "PNG":
        skip = {PNG_XMP_KEY, PNG_IPTC_KEY, "icc_profile", "exif", "dpi", "gamma", "transparency", "aspect", "srgb",
                "chromaticity"}
        text = {k: str(v) for k, v in im.info.items() if isinstance(v, str) and k not in skip}
    comment = im.info.get("comment") if im.format in ("JPEG", "MPO") else None
    if isinstance(comment, bytes) and comment.strip(b"\x00 "):
        text["Comment"] = comment.rstrip(b"\x00").decode("utf-8", "replace")
    return text or None


def dpi_of(value: object) -> tuple[float, float] | None:
    """Pillow's ``info['dpi']`` (inches, also for files that state centimetres) as two positive floats, or None."""
    try:
        x, y = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return (x, y) if x > 0 and y > 0 and np.isfinite(x) and np.isfinite(y) else None


EXIF_ORIENTATION = 0x0112
EXIF_HEADER = b"Exif\x00\x00"
EXIF_SUB_IFD = 0x8769  # IFD0's pointer to the EXIF sub-IFD (camera settings, picture size)
PIXEL_X, PIXEL_Y = 0xA002, 0xA003  # PixelXDimension, PixelYDimension: the picture's size, in the sub-IFD
QUARTER_TURNS = (5, 6, 7, 8)  # orientations whose upright picture has width and height swapped


def exif_block(im: PILImage.Image, exif: PILImage.Exif, upright: bool) -> bytes | None:
    """The EXIF block to write back: the file's own bytes where possible, else ``exif`` re-encoded.

    ``upright``: the pixels were rotated to their EXIF orientation, which must then read 1. The
    file's bytes are kept (patched in place) because re-encoding loses data: Pillow writes every
    text character outside ASCII as '?' (a UTF-8 caption from exiftool or Lightroom) and moves
    the blocks a camera's maker note points into. The patch also unlinks the embedded thumbnail
    (IFD1), which would show file browsers the damaged picture. Turning upright an orientation
    of 5-8 (a quarter turn) also swaps the picture's width and height recorded in the EXIF
    sub-IFD (PixelXDimension, PixelYDimension). A TIFF's tags (``exif`` holds all of its IFD0)
    are reduced by :func:`keep_descriptive_tiff_tags` and re-encoded, their text as the file's own
    bytes.
    """
    raw = im.info.get("exif") if im.format != "TIFF" else None
    if isinstance(raw, bytes) and raw:
        raw = raw if raw.startswith(EXIF_HEADER) else EXIF_HEADER + raw
        patched = _patched(raw, upright)
        if patched is not None:
            return patched
    try:
        if im.format == "TIFF":
            keep_descriptive_tiff_tags(exif)
        if upright:
            if exif.get(EXIF_ORIENTATION) in QUARTER_TURNS:
                sub = exif.get_ifd(EXIF_SUB_IFD)
                if PIXEL_X in sub and PIXEL_Y in sub:
                    sub[PIXEL_X], sub[PIXEL_Y] = sub[PIXEL_Y], sub[PIXEL_X]
            exif[EXIF_ORIENTATION] = 1
        for tag, value in list(exif.items()):
            if isinstance(value, str):  # Pillow read the text as Latin-1: these are the file's bytes again
                exif[tag] = _file_bytes(value)
        return exif.tobytes() if len(exif) else None
    except Exception:  # noqa: BLE001 - metadata Pillow cannot re-encode is dropped, never fatal to the image
        return None


def _file_bytes(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:  # set by code, not read from a file
        return text.encode("utf-8")


def _patched(raw: bytes, upright: bool) -> bytes | None:
    """``raw`` (an EXIF block) without its link to IFD1 (the thumbnail) and, if ``upright``, with its
    orientation entry rewritten as 1 (and the picture's size swapped after a quarter turn); None
    where its IFD0 cannot be walked."""
    try:
        tiff = len(EXIF_HEADER)
        order = {b"II": "<", b"MM": ">"}[raw[tiff:tiff + 2]]
        block = bytearray(raw)
        entries, link = _ifd(raw, order, tiff + struct.unpack_from(order + "I", raw, tiff + 4)[0])
        struct.pack_into(order + "I", block, link, 0)  # IFD0's next-IFD offset
        tags = {struct.unpack_from(order + "H", raw, at)[0]: at for at in entries}
        if upright:
            at = tags.get(EXIF_ORIENTATION)
            _, kind, count, value = struct.unpack_from(order + "HHIH", raw, at) if at is not None else (0, 0, 0, 0)
            if kind != 3 or count != 1:  # not one SHORT held in the entry: re-encode instead
                return None
            struct.pack_into(order + "H", block, at + 8, 1)
            if value in QUARTER_TURNS and EXIF_SUB_IFD in tags:
                _swap_size(raw, block, order, tiff + struct.unpack_from(order + "I", raw, tags[EXIF_SUB_IFD] + 8)[0])
    except (KeyError, struct.error):
        return None
    return bytes(block)


def _ifd(raw: bytes, order: str, ifd: int) -> tuple[list[int], int]:
    """Offsets of an IFD's 12-byte entries and of its next-IFD link; struct.error if outside ``raw``."""
    count = struct.unpack_from(order + "H", raw, ifd)[0]
    link = ifd + 2 + 12 * count
    struct.unpack_from(order + "I", raw, link)
    return [ifd + 2 + 12 * i for i in range(count)], link


def _swap_size(raw: bytes, block: bytearray, order: str, ifd: int) -> None:
    """Swap PixelXDimension and PixelYDimension (each one SHORT or LONG in its entry) in the EXIF sub-IFD."""
    found = {}
    for at in _ifd(raw, order, ifd)[0]:
        tag, kind, count = struct.unpack_from(order + "HHI", raw, at)
        if tag in (PIXEL_X, PIXEL_Y) and kind in (3, 4) and count == 1:
            found[tag] = at
    if len(found) == 2:  # each entry keeps its tag number and takes the other's type and value
        x, y = found[PIXEL_X], found[PIXEL_Y]
        block[x + 2:x + 12], block[y + 2:y + 12] = raw[y + 2:y + 12], raw[x + 2:x + 12]


#: IFD0's resolution tags (RATIONAL, RATIONAL, SHORT) and ResolutionUnit's values for inch and centimetre.
X_RESOLUTION, Y_RESOLUTION, RESOLUTION_UNIT, INCH, CENTIMETRE = 0x011A, 0x011B, 0x0128, 2, 3


def exif_dpi(exif: PILImage.Exif) -> tuple[float, float] | None:
    """The print size that an EXIF IFD0 states (XResolution, YResolution, per inch or cm), as dpi, or None.

    For WebP, which has no resolution field of its own: exiftool and Photoshop keep it there."""
    unit = exif.get(RESOLUTION_UNIT, INCH)
    if unit not in (INCH, CENTIMETRE):
        return None
    dpi = dpi_of((exif.get(X_RESOLUTION), exif.get(Y_RESOLUTION)))
    scale = 2.54 if unit == CENTIMETRE else 1.0
    return None if dpi is None else (dpi[0] * scale, dpi[1] * scale)


def with_resolution(raw: bytes | None, dpi: tuple[float, float]) -> bytes:
    """The EXIF block ``raw`` (or a new one) with IFD0 stating ``dpi`` (per inch): a WebP output's print size.

    ``raw`` keeps its bytes: its IFD0 is copied to the end of the block with the three resolution
    entries set, and the header points there. Every value an entry points to stays where it was
    (offsets count from the block's TIFF header), so text and maker notes are not re-encoded (see
    :func:`exif_block` for why that matters); the next-IFD link (a thumbnail) is dropped, as there.
    """
    def rational(value: float) -> tuple[int, int]:
        fraction = Fraction(value).limit_denominator(10_000)
        return fraction.numerator, fraction.denominator

    if raw and raw.startswith(EXIF_HEADER):
        try:
            tiff = len(EXIF_HEADER)
            order = {b"II": "<", b"MM": ">"}[raw[tiff:tiff + 2]]
            entries, _ = _ifd(raw, order, tiff + struct.unpack_from(order + "I", raw, tiff + 4)[0])
        except (KeyError, struct.error):
            raw = None  # unreadable: a block of its own below
    if not raw or not raw.startswith(EXIF_HEADER):
        exif = PILImage.Exif()
        exif[X_RESOLUTION], exif[Y_RESOLUTION], exif[RESOLUTION_UNIT] = dpi[0], dpi[1], INCH
        return exif.tobytes()
    kept = {struct.unpack_from(order + "H", raw, at)[0]: raw[at:at + 12] for at in entries}
    block = bytearray(raw + bytes(-len(raw) % 2))  # an IFD starts on a word boundary
    ifd = len(block) - tiff
    count = len(kept | {X_RESOLUTION: b"", Y_RESOLUTION: b"", RESOLUTION_UNIT: b""})
    values = ifd + 2 + 12 * count + 4  # the two rationals follow the new IFD
    kept[X_RESOLUTION] = struct.pack(order + "HHII", X_RESOLUTION, 5, 1, values)
    kept[Y_RESOLUTION] = struct.pack(order + "HHII", Y_RESOLUTION, 5, 1, values + 8)
    kept[RESOLUTION_UNIT] = struct.pack(order + "HHIHH", RESOLUTION_UNIT, 3, 1, INCH, 0)
    block += struct.pack(order + "H", count) + b"".join(kept[tag] for tag in sorted(kept)) + bytes(4)
    block += struct.pack(order + "IIII", *rational(dpi[0]), *rational(dpi[1]))
    struct.pack_into(order + "I", block, tiff + 4, ifd)
    return bytes(block)


#: The descriptive TIFF tags a TIFF output carries over (a caption, who scanned it, when, on what):
#: ImageDescription, Make, Model, Software, DateTime, Artist, HostComputer, Copyright, DocumentName.
#: Structural tags are the encoder's; the EXIF sub-IFD (camera settings) is not written into TIFFs.
#: Their text is copied as the file's bytes (the specs say 7-bit ASCII; exiftool and others write
#: UTF-8), never re-encoded.
TIFF_TEXT_TAGS = (270, 271, 272, 305, 306, 315, 316, 33432, 269)


def keep_descriptive_tiff_tags(exif: PILImage.Exif) -> None:
    """Reduce a TIFF's tags (Pillow's ``getexif`` gives all of IFD0) to what an EXIF block should
    carry: the :data:`TIFF_TEXT_TAGS`, orientation and the EXIF / GPS sub-IFDs. Strip offsets, ICC,
    XMP, IPTC, Photoshop layers and the like are the file's structure or travel separately; copied
    into a JPEG's EXIF they would be wrong there (IPTC read as one number) or overflow its 64 KB."""
    for tag in list(exif):
        if tag not in (*TIFF_TEXT_TAGS, 274, 34665, 34853):
            del exif[tag]


def tiff_text_tags(exif: bytes | None) -> dict[int, bytes]:
    """The :data:`TIFF_TEXT_TAGS` present in ``exif`` (IFD0, as read from any format), as bytes."""
    if not exif:
        return {}
    tags = PILImage.Exif()
    try:
        tags.load(exif)
    except Exception:  # noqa: BLE001 - unreadable metadata is dropped, never fatal
        return {}
    text = {}
    for tag in TIFF_TEXT_TAGS:
        value = tags.get(tag)
        if isinstance(value, str):  # Pillow decodes TIFF text as Latin-1: the file's bytes, as they were
            value = _file_bytes(value)
        if isinstance(value, bytes) and value.strip(b"\x00 "):
            text[tag] = value.rstrip(b"\x00")
    return text


def text_items(image: Image) -> list[tuple[str, str]]:
    items = list((image.text or {}).items())
    if image.xmp:
        items.append((PNG_XMP_KEY, image.xmp.decode("utf-8", "replace")))
    return items


def png_text(image: Image) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    for key, value in text_items(image):
        info.add_itxt(key, value)
    if image.iptc:  # compressed Latin-1 text (zTXt), as ImageMagick and exiftool write it
        info.add_text(PNG_IPTC_KEY, raw_profile("iptc", image.iptc), zip=True)
    return info


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png16_metadata(image: Image) -> list[bytes]:
    """The chunks Pillow would write for an 8-bit PNG (pypng writes 16-bit ones without them):
    iCCP, pHYs, eXIf, iTXt (text and XMP), zTXt (IPTC)."""
    chunks = []
    if image.icc_profile:
        chunks.append(png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(image.icc_profile)))
    if image.dpi:
        x, y = (int(round(d / 0.0254)) for d in image.dpi)
        chunks.append(png_chunk(b"pHYs", struct.pack(">IIB", x, y, 1)))
    if image.exif:
        exif = image.exif[6:] if image.exif.startswith(b"Exif\x00\x00") else image.exif
        chunks.append(png_chunk(b"eXIf", exif))
    for key, value in text_items(image):
        keyword = key.encode("latin-1", "replace")[:79]
        chunks.append(png_chunk(b"iTXt", keyword + b"\x00\x00\x00\x00\x00" + value.encode("utf-8")))
    if image.iptc:
        text = raw_profile("iptc", image.iptc).encode("latin-1")
        chunks.append(png_chunk(b"zTXt", PNG_IPTC_KEY.encode("latin-1") + b"\x00\x00" + zlib.compress(text)))
    return chunks


def add_png_chunks(path: Path, chunks: list[bytes]) -> None:
    """Insert ready-made chunks right after a PNG file's IHDR (where every one of them may stand).

    Streamed through a second temporary beside it (named so that ``lock.remove_partials`` finds a
    leftover), so a big 16-bit scan is not held in memory twice.
    """
    if not chunks:
        return
    end_of_ihdr = 8 + 8 + 13 + 4  # signature, IHDR length + type, IHDR data, CRC
    staged = path.with_name(path.name + ".partial")
    try:
        with open(path, "rb") as source, open(staged, "wb") as target:
            target.write(source.read(end_of_ihdr))
            target.write(b"".join(chunks))
            shutil.copyfileobj(source, target, 1 << 20)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
