"""Image I/O: formats round-trip without loss, and every bad input gives one clear line."""

from __future__ import annotations

import dataclasses
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from restore_cli import decoding, io
from restore_cli.errors import InputError


def _gradient(h: int, w: int, channels: int, depth: int = 8) -> np.ndarray:
    top = (1 << depth) - 1
    y, x = np.mgrid[0:h, 0:w]
    base = (x * 7 + y * 13) % (top + 1)
    planes = [(base + 31 * c) % (top + 1) for c in range(channels)]
    array = np.stack(planes, axis=-1).astype(np.uint16 if depth == 16 else np.uint8)
    return array[:, :, 0] if channels == 1 else array


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height (a decompression bomb's first bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


@pytest.mark.parametrize(
    ("mode", "channels", "depth", "suffix"),
    [
        ("L", 1, 8, ".png"),
        ("RGB", 3, 8, ".png"),
        ("RGBA", 4, 8, ".png"),
        ("LA", 2, 8, ".png"),
        ("L16", 1, 16, ".png"),
        ("RGB16", 3, 16, ".png"),
        ("RGBA16", 4, 16, ".png"),
        ("RGB", 3, 8, ".tif"),
        ("RGB16", 3, 16, ".tif"),
        ("L", 1, 8, ".bmp"),
        ("RGBA", 4, 8, ".webp"),
    ],
)
def test_lossless_round_trip(tmp_path: Path, mode: str, channels: int, depth: int, suffix: str) -> None:
    array = _gradient(21, 34, channels, depth)
    colour, alpha = decoding.split_channels(array)
    image = io.Image(pixels=io.to_float(colour, depth), alpha=alpha, bit_depth=depth)
    path = tmp_path / f"img{suffix}"
    io.write_image(path, image)
    back = io.read_image(path)
    assert back.bit_depth == depth
    assert back.pixels.shape == (21, 34, 1 if channels in (1, 2) else 3)
    assert np.array_equal(io.to_integer(back.pixels, depth), colour if colour.ndim == 3 else colour[:, :, None])
    if alpha is None:
        assert back.alpha is None
    else:
        assert np.array_equal(back.alpha, alpha)


def test_palette_reads_as_rgb_and_keeps_transparency(tmp_path: Path) -> None:
    rgb = PILImage.fromarray(_gradient(16, 16, 3))
    pal = rgb.quantize(colors=16)
    pal.info["transparency"] = 0
    path = tmp_path / "pal.png"
    pal.save(path, transparency=0)
    image = io.read_image(path)
    assert image.channels == 3 and image.alpha is not None
    expected = np.asarray(pal.convert("RGBA"))
    assert np.array_equal(io.to_integer(image.pixels, 8), expected[:, :, :3])
    assert np.array_equal(image.alpha, expected[:, :, 3])


def test_exif_orientation_is_applied_and_reset(tmp_path: Path) -> None:
    array = _gradient(10, 20, 3)
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    PILImage.fromarray(array).save(path, exif=exif.tobytes(), quality=100, subsampling=0)
    image = io.read_image(path)
    assert (image.height, image.width) == (20, 10)
    out = tmp_path / "out.jpg"
    io.write_image(out, image)
    again = io.read_image(out)
    assert (again.height, again.width) == (20, 10)  # orientation tag reset to 1: not rotated twice
    with PILImage.open(out) as im:
        assert im.getexif().get(0x0112) == 1


@pytest.mark.parametrize(("orientation", "size"), [(6, (10, 20)), (3, (20, 10))])
def test_turning_upright_swaps_the_exif_picture_size_on_a_quarter_turn(tmp_path: Path, orientation: int,
                                                                       size: tuple[int, int]) -> None:
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    exif.get_ifd(0x8769).update({0xA002: 20, 0xA003: 10, 0x9003: "2001:02:03 04:05:06"})  # as stored: 20 wide
    path = tmp_path / "scan.jpg"
    PILImage.fromarray(_gradient(10, 20, 3)).save(path, exif=exif.tobytes())
    out = tmp_path / "out.jpg"
    io.write_image(out, io.read_image(path))
    with PILImage.open(out) as im:
        sub = im.getexif().get_ifd(0x8769)
        assert (sub[0xA002], sub[0xA003]) == size == im.size  # the EXIF size matches the upright picture
        assert sub[0x9003] == "2001:02:03 04:05:06"


def test_an_xmp_orientation_is_applied_once(tmp_path: Path) -> None:
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description '
           b'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
    PILImage.fromarray(_gradient(10, 20, 3)).save(tmp_path / "rotated.jpg", xmp=xmp)  # no EXIF orientation
    image = io.read_image(tmp_path / "rotated.jpg")
    assert (image.height, image.width) == (20, 10) and b'tiff:Orientation="1"' in image.xmp
    io.write_image(tmp_path / "out.jpg", image)
    again = io.read_image(tmp_path / "out.jpg")
    assert (again.height, again.width) == (20, 10)  # not turned a second time by its XMP


@pytest.mark.parametrize("compression", ["lzw", "jpeg", "packbits", "deflate"])
def test_compressed_tiff_scans_are_read(tmp_path: Path, compression: str) -> None:
    import tifffile

    y, x = np.mgrid[0:24, 0:40]
    array = np.stack([x * 6, y * 10, x * 3 + y * 4], axis=-1).astype(np.uint8)  # smooth: JPEG stays close
    path = tmp_path / f"scan-{compression}.tif"
    tifffile.imwrite(path, array, photometric="rgb", compression=compression)
    image = io.read_image(path)
    back = io.to_integer(image.pixels, 8)
    if compression == "jpeg":  # lossy: close, not equal
        assert back.shape == array.shape and np.abs(back.astype(int) - array).mean() < 3
    else:
        assert np.array_equal(back, array)


@pytest.mark.parametrize("kind", ["white-is-zero", "palette", "cmyk", "1-bit"])
def test_tiffs_that_need_interpreting_read_as_they_display(tmp_path: Path, kind: str) -> None:
    import tifffile

    rgb = PILImage.fromarray(_gradient(16, 24, 3))
    path = tmp_path / f"{kind}.tif"
    if kind == "white-is-zero":  # stored inverted: 0 is white
        tifffile.imwrite(path, 255 - _gradient(16, 24, 1), photometric="miniswhite")
    else:
        {"palette": rgb.quantize(colors=16), "cmyk": rgb.convert("CMYK"), "1-bit": rgb.convert("1")}[kind].save(path)
    with PILImage.open(path) as im:
        shown = np.asarray(im.convert("L" if kind in ("white-is-zero", "1-bit") else "RGB"))
    image = io.read_image(path)
    assert np.array_equal(io.to_integer(image.pixels, 8).reshape(shown.shape), shown)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".bmp"])
def test_resolution_survives_a_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"scan{suffix}"
    PILImage.fromarray(_gradient(10, 20, 3)).save(path, dpi=(600, 300))
    image = io.read_image(path)
    assert image.dpi is not None and np.allclose(image.dpi, (600, 300), atol=0.01)
    out = tmp_path / f"out{suffix}"
    io.write_image(out, image)
    with PILImage.open(out) as im:
        assert np.allclose(im.info["dpi"], (600, 300), atol=0.01)
    png = tmp_path / "converted.png"  # a format change keeps it too
    io.write_image(png, image)
    assert np.allclose(io.read_image(png).dpi, (600, 300), atol=0.01)


def test_a_webp_output_states_the_print_size_in_its_exif(tmp_path: Path) -> None:
    caption = "Grand-mère à Brighton".encode()  # UTF-8 EXIF text: its bytes must come through
    exif = PILImage.Exif()
    exif[270], exif[0x011A], exif[0x011B], exif[0x0128] = caption, 72.0, 72.0, 2  # a stale 72 dpi to replace
    PILImage.fromarray(_gradient(10, 20, 3)).save(tmp_path / "scan.jpg", dpi=(600, 300), exif=exif.tobytes())
    image = io.read_image(tmp_path / "scan.jpg")
    io.write_image(tmp_path / "scan.webp", image)
    with PILImage.open(tmp_path / "scan.webp") as im:  # what exiftool and Photoshop read
        written = im.getexif()
        assert (float(written[0x011A]), float(written[0x011B]), written[0x0128]) == (600.0, 300.0, 2)
        assert written[270].encode("latin-1") == caption
    back = io.read_image(tmp_path / "scan.webp")
    assert back.dpi == (600.0, 300.0)
    io.write_image(tmp_path / "again.png", back)  # and on into a format with a field of its own
    assert np.allclose(io.read_image(tmp_path / "again.png").dpi, (600, 300), atol=0.01)
    bare = io.Image(pixels=np.zeros((4, 4, 1), np.float32), dpi=(1200.0, 1200.0))  # no EXIF at all
    io.write_image(tmp_path / "bare.webp", bare)
    assert io.read_image(tmp_path / "bare.webp").dpi == (1200.0, 1200.0)
    centimetres = PILImage.Exif()
    centimetres[0x011A], centimetres[0x011B], centimetres[0x0128] = 100.0, 100.0, 3
    PILImage.fromarray(_gradient(4, 4, 3)).save(tmp_path / "cm.webp", exif=centimetres.tobytes(), lossless=True)
    assert io.read_image(tmp_path / "cm.webp").dpi == pytest.approx((254.0, 254.0))


def test_rotating_orientation_swaps_the_resolution(tmp_path: Path) -> None:
    exif = PILImage.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    PILImage.fromarray(_gradient(10, 20, 3)).save(path, exif=exif.tobytes(), dpi=(600, 300))
    image = io.read_image(path)
    assert (image.height, image.width) == (20, 10) and image.dpi == (300, 600)


@pytest.mark.parametrize("source", [".tif", ".jpg"])
def test_a_tiff_output_keeps_the_caption_and_credits(tmp_path: Path, source: str) -> None:
    tags = {270: "Grandma, Brighton 1931", 315: "J. Smith", 33432: "(c) Smith family", 305: "ScanSoft 2"}
    exif = PILImage.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    path = tmp_path / f"scan{source}"
    PILImage.fromarray(_gradient(8, 12, 3)).save(path, exif=exif.tobytes())
    out = tmp_path / "out.tif"
    io.write_image(out, io.read_image(path))
    with PILImage.open(out) as im:
        assert {tag: im.getexif().get(tag) for tag in tags} == tags  # not tifffile's JSON shape or name


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description dc:title="Anna, 1931"/></rdf:RDF></x:xmpmeta>'


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".webp"])
def test_xmp_captions_survive(tmp_path: Path, suffix: str) -> None:
    image = io.Image(pixels=io.to_float(_gradient(8, 12, 3)[:, :, :3], 8), xmp=XMP)
    io.write_image(tmp_path / f"in{suffix}", image)
    assert io.read_image(tmp_path / f"in{suffix}").xmp == XMP
    io.write_image(tmp_path / "out.png", io.read_image(tmp_path / f"in{suffix}"))  # through a conversion too
    assert io.read_image(tmp_path / "out.png").xmp == XMP


def _iim(record: int, value: str) -> bytes:
    data = value.encode("utf-8")
    return b"\x1c\x02" + bytes([record]) + struct.pack(">H", len(data)) + data


IPTC = _iim(120, "Anna, Brighton 1931") + _iim(80, "J. Smith") + _iim(25, "wedding")


def _photoshop_jpeg(path: Path) -> None:
    """A JPEG shaped like Photoshop's: APP13 with a resolution resource before the IPTC one (odd length, padded)."""
    resources = b"8BIM\x03\xed\x00\x00" + struct.pack(">I", 16) + bytes(16)
    resources += b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(IPTC)) + IPTC + b"\x00" * (len(IPTC) & 1)
    body = b"Photoshop 3.0\x00" + resources
    PILImage.fromarray(_gradient(8, 12, 3)).save(path, extra=b"\xff\xed" + struct.pack(">H", len(body) + 2) + body)


@pytest.mark.parametrize("source", ["photoshop.jpg", "long-tag.tif"])
@pytest.mark.parametrize("suffix", [".jpg", ".tif"])
def test_iptc_captions_survive(tmp_path: Path, source: str, suffix: str) -> None:
    from PIL import IptcImagePlugin

    path = tmp_path / source
    if source.endswith(".jpg"):
        _photoshop_jpeg(path)
    else:  # as Photoshop tags it: 32-bit integers, padded
        padded = IPTC + b"\x00" * (-len(IPTC) % 4)
        tifffile.imwrite(path, _gradient(8, 12, 3), extratags=[(33723, "I", len(padded) // 4,
                         struct.unpack(f"<{len(padded) // 4}I", padded), True)])
    image = io.read_image(path)
    assert image.iptc is not None and image.iptc.rstrip(b"\x00") == IPTC
    io.write_image(tmp_path / f"out{suffix}", image)
    with PILImage.open(tmp_path / f"out{suffix}") as im:  # read by another reader than ours
        info = IptcImagePlugin.getiptcinfo(im)
        if suffix == ".jpg":  # and the TIFF's structure (strips, the tag read as one number) is not in its EXIF
            assert not set(im.getexif()) & {273, 279, 33723}
    assert info[(2, 120)] == "Anna, Brighton 1931".encode() and info[(2, 80)] == b"J. Smith" and info[(2, 25)] == b"wedding"


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_iptc_goes_through_a_png_as_imagemagick_stores_it(tmp_path: Path, bit_depth: int) -> None:
    from PIL import IptcImagePlugin

    _photoshop_jpeg(tmp_path / "photoshop.jpg")
    image = io.read_image(tmp_path / "photoshop.jpg")
    image.bit_depth = bit_depth
    io.write_image(tmp_path / "out.png", image)
    with PILImage.open(tmp_path / "out.png") as im:  # a "Raw profile type iptc" text: kind, length, hex lines
        kind, length, *lines = im.info["Raw profile type iptc"].split()
    assert (kind, int(length), bytes.fromhex("".join(lines))) == ("iptc", len(IPTC), IPTC)
    again = io.read_image(tmp_path / "out.png")
    assert again.iptc == IPTC and not again.text  # read back as IPTC, not as a text chunk to copy
    again.bit_depth = 8  # JPEG holds 8 bits
    io.write_image(tmp_path / "back.jpg", again)
    with PILImage.open(tmp_path / "back.jpg") as im:
        assert IptcImagePlugin.getiptcinfo(im)[(2, 120)] == "Anna, Brighton 1931".encode()


@pytest.mark.parametrize(("source", "expected"), [("a.jpg", 2), ("a.png", 0)])
def test_a_jpeg_output_keeps_the_input_jpegs_chroma_resolution(tmp_path: Path, source: str, expected: int) -> None:
    from PIL import JpegImagePlugin

    PILImage.fromarray(_gradient(32, 48, 3)).save(tmp_path / source, **({"subsampling": 2} if source.endswith(".jpg") else {}))
    io.write_image(tmp_path / "out.jpg", io.read_image(tmp_path / source))
    with PILImage.open(tmp_path / "out.jpg") as im:
        assert JpegImagePlugin.get_sampling(im) == expected  # 4:2:0 stays 4:2:0; other inputs get full chroma


def _icc_header(space: bytes) -> bytes:
    header = bytearray(128)
    header[16:20], header[36:40] = space, b"acsp"
    return bytes(header)


def test_a_colour_profile_is_kept_only_where_it_describes_the_pixels(tmp_path: Path, caplog) -> None:
    cmyk = PILImage.fromarray(np.full((8, 12, 4), 60, np.uint8), "CMYK")
    cmyk.save(tmp_path / "print.jpg", icc_profile=_icc_header(b"CMYK"))
    image = io.read_image(tmp_path / "print.jpg")  # read as RGB: a CMYK profile on it would mislead viewers
    assert image.channels == 3 and image.icc_profile is None
    assert "print.jpg: its CMYK colour profile does not describe the RGB pixels" in caplog.text
    cmyk.save(tmp_path / "bare.jpg")  # no profile at all: the plain formula, and the user is told
    assert io.read_image(tmp_path / "bare.jpg").channels == 3
    assert "bare.jpg: a CMYK file without a colour profile" in caplog.text
    PILImage.fromarray(_gradient(8, 12, 1)).save(tmp_path / "grey.png", icc_profile=_icc_header(b"GRAY"))
    assert io.read_image(tmp_path / "grey.png").icc_profile == _icc_header(b"GRAY")


#: Lab colours of a made-up press for the hand-made profile below: paper, each ink alone, all four.
_PAPER, _CYAN, _BLACK_INK, _ALL_INKS = (100.0, 0.0, 0.0), (55.0, -37.0, -50.0), (20.0, 0.0, 0.0), (0.0, 0.0, 0.0)


def _cmyk_press_profile() -> bytes:
    """A minimal ICC v2 CMYK profile (a lut8 A2B0 with 2 grid points per ink, Lab PCS, D50 white).

    Corners: no ink = paper (L* 100), cyan alone = :data:`_CYAN`, black alone = L* 20 (a press's dull
    black, where Pillow's plain conversion gives 0), all four inks = L* 0 (so black point compensation
    changes nothing); the other mixes multiply lightness, enough for a valid table.
    """
    def lab8(lab):
        return bytes([round(lab[0] * 255 / 100), round(lab[1] + 128), round(lab[2] + 128)])

    inks = {(1, 0, 0, 0): _CYAN, (0, 1, 0, 0): (48.0, 74.0, -3.0), (0, 0, 1, 0): (89.0, -5.0, 93.0),
            (0, 0, 0, 1): _BLACK_INK}
    grid = b""
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    on = (c, m, y, k)
                    if sum(on) == 0:
                        lab = _PAPER
                    elif sum(on) == 4:
                        lab = _ALL_INKS
                    elif sum(on) == 1:
                        lab = inks[on]
                    else:
                        lab = (100.0 * np.prod([inks[i][0] / 100 for i in inks if all(a >= b for a, b in zip(on, i))]), 0, 0)
                    grid += lab8(lab)
    identity = bytes(range(256))
    fixed = lambda v: struct.pack(">i", round(v * 65536))  # noqa: E731 - s15Fixed16Number
    matrix = b"".join(fixed(1.0 if i in (0, 4, 8) else 0.0) for i in range(9))
    a2b0 = b"mft1" + bytes(4) + bytes([4, 3, 2, 0]) + matrix + identity * 4 + grid + identity * 3
    wtpt = b"XYZ " + bytes(4) + fixed(0.9642) + fixed(1.0) + fixed(0.8249)
    name = b"test press\x00"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(name)) + name + bytes(8) + bytes(3) + bytes(67)
    tags = [(b"desc", desc), (b"wtpt", wtpt), (b"A2B0", a2b0)]
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for sig, data in tags:
        data += bytes(-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = bytearray(128)
    struct.pack_into(">I", header, 0, 128 + 4 + len(table) + len(body))
    header[8:12], header[12:16], header[16:20], header[20:24] = b"\x02\x10\x00\x00", b"prtr", b"CMYK", b"Lab "
    header[36:40], header[68:80] = b"acsp", fixed(0.9642) + fixed(1.0) + fixed(0.8249)
    return bytes(header) + struct.pack(">I", len(tags)) + table + body


def _lab_d50_to_srgb8(lab: tuple[float, float, float]) -> np.ndarray:
    """CIE Lab (D50, the ICC connection space) -> 8-bit sRGB through the D50-adapted sRGB matrix."""
    lightness, a, b = lab
    fy = (lightness + 16) / 116
    f = np.array([fy + a / 500, fy, fy - b / 200])
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * np.array([0.9642, 1.0, 0.8249])
    to_xyz = np.array([[0.4360747, 0.3850649, 0.1430804], [0.2225045, 0.7168786, 0.0606169],
                       [0.0139322, 0.0971045, 0.7141733]])
    linear = np.clip(np.linalg.solve(to_xyz, xyz), 0, 1)
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.round(encoded * 255)


@pytest.mark.parametrize("suffix", [".jpg", ".tif"])
def test_a_cmyk_file_is_converted_with_its_own_profile(tmp_path: Path, suffix: str, caplog) -> None:
    profile = _cmyk_press_profile()
    patches = np.zeros((4, 8, 4), np.uint8)  # paper, cyan alone, black alone, all four inks: 2 px each
    patches[:, 2:4, 0] = 255
    patches[:, 4:6, 3] = 255
    patches[:, 6:8] = 255
    PILImage.fromarray(patches, "CMYK").save(tmp_path / f"press{suffix}", icc_profile=profile,
                                             **({"quality": 100} if suffix == ".jpg" else {}))
    image = io.read_image(tmp_path / f"press{suffix}")
    got = io.to_integer(image.pixels, 8)[0, ::2].astype(int)
    expected = np.array([_lab_d50_to_srgb8(lab) for lab in (_PAPER, _CYAN, _BLACK_INK, _ALL_INKS)])
    assert np.abs(got - expected).max() <= 3, (got, expected)
    plain = np.asarray(PILImage.fromarray(patches, "CMYK").convert("RGB"))[0, 4]
    assert plain.max() == 0 and got[2].min() > 40  # the press's black is a dark grey, not Pillow's 0
    assert image.icc_profile is not None and image.icc_profile[16:20] == b"RGB "  # the output says sRGB
    assert "colour profile" not in caplog.text


def _exif_with_thumbnail_link(tags: dict) -> bytes:
    """An EXIF block with ``tags`` in IFD0 and an IFD1 (where a thumbnail is described)."""
    exif = PILImage.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    raw = bytearray(exif.tobytes())
    order = "<" if raw[6:8] == b"II" else ">"
    ifd0 = 6 + struct.unpack_from(order + "I", raw, 10)[0]
    next_link = ifd0 + 2 + 12 * struct.unpack_from(order + "H", raw, ifd0)[0]
    struct.pack_into(order + "I", raw, next_link, len(raw) - 6)
    return bytes(raw + struct.pack(order + "HHHIHHI", 1, 0x0103, 3, 1, 6, 0, 0))  # IFD1: Compression = JPEG


@pytest.mark.parametrize("suffix", [".jpg", ".tif", ".png"])
def test_exif_text_is_kept_byte_for_byte(tmp_path: Path, suffix: str) -> None:
    from PIL import ExifTags

    caption = "Grand-mère à Brighton, 1931".encode()  # UTF-8, as exiftool writes it (Pillow would write '?')
    raw = _exif_with_thumbnail_link({270: caption, 315: b"Jos\xc3\xa9", 274: 6})
    PILImage.fromarray(_gradient(8, 12, 3)).save(tmp_path / "scan.jpg", exif=raw)
    image = io.read_image(tmp_path / "scan.jpg")
    assert (image.height, image.width) == (12, 8)  # turned upright
    io.write_image(tmp_path / f"out{suffix}", image)
    with PILImage.open(tmp_path / f"out{suffix}") as im:
        exif = im.getexif()
        assert exif.get(270).encode("latin-1") == caption and exif.get(315).encode("latin-1") == b"Jos\xc3\xa9"
        assert exif.get(274, 1) == 1 and not exif.get_ifd(ExifTags.IFD.IFD1)  # no stale thumbnail of the damage


def test_metadata_too_big_for_a_jpeg_is_dropped_with_a_warning(tmp_path: Path, caplog) -> None:
    big = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + b" " * 70_000 + b"</x:xmpmeta>"
    image = io.Image(pixels=io.to_float(_gradient(8, 12, 3), 8), xmp=big, text={"Comment": "c" * 70_000})
    io.write_image(tmp_path / "out.jpg", image)  # written, not failed
    back = io.read_image(tmp_path / "out.jpg")
    assert back.xmp is None and back.text is None
    assert f"its XMP ({len(big)} bytes) does not fit" in caplog.text and "its comment (70000 bytes)" in caplog.text
    io.write_image(tmp_path / "out.png", image)
    assert io.read_image(tmp_path / "out.png").xmp == big


def test_png_text_and_jpeg_comments_survive(tmp_path: Path) -> None:
    text = {"Title": "Wedding", "Description": "Grand-mère à Brighton"}
    image = io.Image(pixels=io.to_float(_gradient(8, 12, 3), 8), text=text)
    io.write_image(tmp_path / "a.png", image)
    assert io.read_image(tmp_path / "a.png").text == text
    PILImage.fromarray(_gradient(8, 12, 3)).save(tmp_path / "b.jpg", comment=b"album page 3")
    io.write_image(tmp_path / "c.jpg", io.read_image(tmp_path / "b.jpg"))
    assert io.read_image(tmp_path / "c.jpg").text == {"Comment": "album page 3"}


def test_a_16_bit_png_keeps_what_an_8_bit_one_keeps(tmp_path: Path) -> None:
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = PILImage.Exif()
    exif[315] = "J. Smith"
    image = io.Image(pixels=io.to_float(_gradient(8, 12, 3, 16), 16), bit_depth=16, exif=exif.tobytes(),
                     icc_profile=icc, dpi=(600.0, 600.0), xmp=XMP, text={"Title": "Wedding"})
    io.write_image(tmp_path / "deep.png", image)
    back = io.read_image(tmp_path / "deep.png")
    assert back.bit_depth == 16 and np.array_equal(back.pixels, image.pixels)
    assert back.icc_profile == icc and np.allclose(back.dpi, (600, 600), atol=0.01)
    assert back.xmp == XMP and back.text == {"Title": "Wedding"}
    with PILImage.open(tmp_path / "deep.png") as im:
        assert im.getexif().get(315) == "J. Smith"


def test_files_with_several_images_are_read_as_the_first(tmp_path: Path) -> None:
    first, second = _gradient(12, 16, 3), _gradient(6, 8, 3)
    path = tmp_path / "pages.tif"
    PILImage.fromarray(first).save(path, save_all=True, append_images=[PILImage.fromarray(second)])
    image = io.read_image(path)
    assert image.frames == 2 and np.array_equal(io.to_integer(image.pixels, 8), first)
    assert io.read_image(_write_png(tmp_path / "one.png")).frames == 1


def _write_png(path: Path) -> Path:
    PILImage.fromarray(_gradient(4, 4, 1)).save(path)
    return path


def test_unsupported_pictures_in_a_folder_are_named_as_such(tmp_path: Path, caplog) -> None:
    PILImage.fromarray(_gradient(8, 8, 1)).save(tmp_path / "a.png")
    PILImage.fromarray(_gradient(8, 8, 1)).save(tmp_path / "b.gif")
    (tmp_path / "notes.txt").write_text("captions")
    assert io.list_images(tmp_path) == [tmp_path / "a.png"]
    assert "b.gif: skipped (.gif pictures are not read: convert to PNG" in caplog.text
    assert "notes.txt: skipped (not an image file name)" in caplog.text


def test_training_folders_leave_out_unreadable_files_by_name(tmp_path: Path, caplog) -> None:
    PILImage.fromarray(_gradient(8, 8, 1)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"not an image")
    PILImage.fromarray(_gradient(30, 30, 1)).save(tmp_path / "c.png")  # over the pixel limit below
    tifffile.imwrite(tmp_path / "d.tif", np.zeros((8, 8, 5), np.uint8), photometric="rgb",
                     extrasamples=("unspecified", "unspecified"))  # a sound header over pixels not read
    kept = io.usable_images(io.list_images(tmp_path), max_pixels=100)
    assert kept == [tmp_path / "a.png"]
    assert "b.png: skipped (not a recognised image file" in caplog.text and "c.png: skipped (image too large" in caplog.text
    assert "d.tif: skipped (unsupported image: 5 channels" in caplog.text


def test_write_refuses_to_drop_data(tmp_path: Path) -> None:
    image16 = io.Image(pixels=np.zeros((4, 4, 1), np.float32), bit_depth=16)
    with pytest.raises(InputError, match="16-bit"):
        io.write_image(tmp_path / "x.jpg", image16)
    with_alpha = io.Image(pixels=np.zeros((4, 4, 3), np.float32), alpha=np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match="alpha"):
        io.write_image(tmp_path / "x.jpg", with_alpha)
    grey_alpha = dataclasses.replace(with_alpha, pixels=np.zeros((4, 4, 1), np.float32))
    for image in (with_alpha, grey_alpha):  # a 32-bit BMP would be read back without its alpha
        with pytest.raises(InputError, match="BMP cannot store an alpha channel"):
            io.write_image(tmp_path / "x.bmp", image)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_atomic_write_leaves_old_file_when_encoding_fails(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "keep.png"
    io.write_gray8(target, np.full((8, 8), 0.5, np.float32))
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(PILImage.Image, "save", boom)
    with pytest.raises(RuntimeError):
        io.write_gray8(target, np.zeros((8, 8), np.float32))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]  # no temporary left behind


def bad_corpus(folder: Path) -> dict[str, str]:
    """Write one file per kind of bad input; return {file name: expected reason fragment}."""
    folder.mkdir(parents=True, exist_ok=True)
    good = _gradient(24, 24, 1)
    PILImage.fromarray(good).save(folder / "good.png")
    (folder / "empty.png").write_bytes(b"")
    full = (folder / "good.png").read_bytes()
    (folder / "truncated.png").write_bytes(full[: len(full) // 2])
    buf = folder / "tmp.jpg"
    PILImage.fromarray(_gradient(64, 64, 3)).save(buf, quality=90)
    (folder / "truncated.jpg").write_bytes(buf.read_bytes()[:400])
    buf.unlink()
    (folder / "notes.png").write_text("this is a text file, not a picture\n")
    (folder / "x.jpg").mkdir()
    _png_header_only(folder / "bomb.png", 100_000, 100_000)
    bad_name = os.fsdecode(b"caf\xe9-bad.png")  # Latin-1 bytes: not valid UTF-8
    (folder / bad_name).write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    tifffile.imwrite(folder / "float-grey.tif", np.zeros((8, 8), np.float32))  # Pillow reads it, as mode F
    tifffile.imwrite(folder / "float-rgb.tif", np.zeros((8, 8, 3), np.float32), photometric="rgb")  # Pillow cannot
    tifffile.imwrite(folder / "five.tif", np.zeros((8, 8, 5), np.uint8), photometric="rgb",
                     extrasamples=("unspecified", "unspecified"))
    os.mkfifo(folder / "pipe.png")  # opening it to read would wait for a writer forever
    return {
        "pipe.png": "not a regular file",
        "float-grey.tif": "unsupported image: 32-bit floating-point",
        "float-rgb.tif": "unsupported image: 32-bit floating-point",
        "five.tif": "unsupported image: 5 channels",
        "empty.png": "empty file",
        "truncated.png": "corrupt",
        "truncated.jpg": "truncated",
        "notes.png": "not a recognised image",
        "x.jpg": "is a directory",
        "bomb.png": "image too large",
        "caf\\xe9-bad.png": "corrupt",
    }


def test_every_bad_input_gives_one_clear_reason(tmp_path: Path) -> None:
    expected = bad_corpus(tmp_path / "corpus")
    paths = io.list_images(tmp_path / "corpus")
    seen = {}
    for path in paths:
        try:
            io.read_image(path)
        except InputError as exc:
            message = str(exc)
            assert "\n" not in message
            seen[io.display_path(path.name)] = message
    assert set(seen) == set(expected)
    for name, fragment in expected.items():
        assert name in seen[name] and fragment in seen[name], seen[name]


def test_headers_of_bad_inputs_are_none_without_blocking(tmp_path: Path) -> None:
    bad_corpus(tmp_path / "corpus")
    headers = {p.name: io.read_header(p) for p in io.list_images(tmp_path / "corpus")}
    assert headers["pipe.png"] is None and headers["x.jpg"] is None and headers["notes.png"] is None
    assert headers["good.png"] == io.Header(24, 24, 1)
    kept = io.usable_images(sorted((tmp_path / "corpus").glob("*.png")), max_pixels=10**6)
    assert kept == [tmp_path / "corpus" / "good.png"]  # truncated.png's header is sound: it fails decoding


def test_sixteen_bit_grey_with_alpha_tiffs_are_read(tmp_path: Path) -> None:
    grey = (np.arange(6 * 4).reshape(4, 6) * 2000).astype(np.uint16)
    alpha = (65535 - grey).astype(np.uint16)
    for order, extra in (("<", "unassalpha"), (">", "assocalpha"), ("<", "unspecified")):
        path = tmp_path / f"la16-{extra}.tif"
        tifffile.imwrite(path, np.dstack([grey, alpha]).astype(order + "u2"), photometric="minisblack",
                         extrasamples=(extra,), byteorder=order, resolution=(300, 300), resolutionunit="INCH",
                         extratags=[(274, "H", 1, 6, True)], metadata=None)  # orientation 6: a quarter turn
        image = io.read_image(path)
        assert image.bit_depth == 16 and image.dpi == (300.0, 300.0), path.name
        assert np.array_equal(io.to_integer(image.pixels[:, :, 0], 16), np.rot90(grey, -1)), path.name
        assert np.array_equal(image.alpha, np.rot90(alpha, -1)), path.name
        header = io.read_header(path)
        assert header is not None and header.width * header.height == 24 and header.frames == 1
        io.write_image(tmp_path / "again.tif", image)  # what the tool writes, it reads back
        again = io.read_image(tmp_path / "again.tif")
        assert np.array_equal(again.pixels, image.pixels) and np.array_equal(again.alpha, image.alpha)


def test_permission_denied_is_reported(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "secret.png"
    io.write_gray8(path, np.zeros((4, 4), np.float32))
    # Tests run as root in CI, where chmod 000 does not stop reading: simulate the OS refusal.
    monkeypatch.setattr(io.os, "access", lambda *_: False)
    with pytest.raises(InputError, match="secret.png: permission denied"):
        io.read_image(path)


def test_pixel_limit_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    io.write_gray8(path, np.zeros((100, 100), np.float32))
    with pytest.raises(InputError, match="--max-pixels"):
        io.read_image(path, max_pixels=5_000)
    assert io.read_image(path, max_pixels=10_000).pixels.shape == (100, 100, 1)


def test_a_png_colour_key_is_read_as_alpha(tmp_path) -> None:
    """An RGB or grey PNG with a tRNS colour key is transparent where that colour is: before, the
    key was dropped and the restored copy was opaque everywhere."""
    from PIL import Image as PILImage

    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[1, 2] = (1, 2, 3)
    PILImage.fromarray(rgb).save(tmp_path / "key.png", transparency=(1, 2, 3))
    grey = np.full((4, 5), 9, np.uint8)
    grey[0, 0] = 7
    PILImage.fromarray(grey).save(tmp_path / "grey_key.png", transparency=7)
    for name, hole in (("key.png", (1, 2)), ("grey_key.png", (0, 0))):
        image = io.read_image(tmp_path / name)
        expected = np.full((4, 5), 255, np.uint8)
        expected[hole] = 0
        assert image.alpha is not None and np.array_equal(image.alpha, expected), name
