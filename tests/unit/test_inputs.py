"""dimflow.inputs: every input is built from Pillow, pypdfium2 or raw bytes here, so the tests need no files."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import pickle
import struct
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageFile, ImageOps

from dimflow.inputs import BadInput, Limits, Page, content_hash, iter_pages, load_pages, load_path, sniff

# --- builders ----------------------------------------------------------------------------------------


def _sheet(w: int = 160, h: int = 120) -> Image.Image:
    """A small "drawing": white paper, a black frame and an asymmetric black block (orientation shows)."""
    im = Image.new("L", (w, h), 255)
    px = np.array(im)
    px[[0, -1], :] = 0
    px[:, [0, -1]] = 0
    px[10:30, 10:50] = 0
    return Image.fromarray(px)


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header_only(w: int, h: int) -> bytes:
    """A PNG whose IHDR (with a valid CRC) claims w x h, followed by a token IDAT: no real pixel data."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit gray
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0\0")) + _chunk(b"IEND", b"")


def _pdf_objects(objs: list[bytes], trailer: bytes = b"") -> bytes:
    """A PDF from numbered object bodies, with a correct xref table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, trailer, xref)
    return bytes(out)


def _pdf_with_squares(n: int, w_pt: int = 144, h_pt: int = 216) -> bytes:
    """n pages of w_pt x h_pt points; page k has a black square (k * 10 pt wide) at its top left."""
    kids = b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(n))
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, n)]
    for k in range(1, n + 1):
        content = b"0 g 0 %d %d %d re f" % (h_pt - 10 * k, 10 * k, 10 * k)
        objs.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R >>" % (w_pt, h_pt, 4 + 2 * (k - 1))
        )
        objs.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
    return _pdf_objects(objs)


def _blank_pdf(n: int, w_pt: float = 595, h_pt: float = 842) -> bytes:
    pdf = pdfium.PdfDocument.new()
    for _ in range(n):
        pdf.new_page(w_pt, h_pt)
    buf = io.BytesIO()
    pdf.save(buf)
    pdf.close()
    return buf.getvalue()


@functools.lru_cache(maxsize=1)
def _bomb_pdf() -> bytes:
    """A one-page PDF of ~0.5 MB whose page content inflates to 512 MB of spaces."""
    z = zlib.compressobj(9)
    packed = b"".join(z.compress(b" " * 2**24) for _ in range(32)) + z.flush()
    objs = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
            b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Contents 4 0 R>>",
            b"<</Length %d/Filter/FlateDecode>>stream\n" % len(packed) + packed + b"\nendstream"]  # fmt: skip
    out = b"%PDF-1.7\n"
    for i, o in enumerate(objs, 1):
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    return out + b"trailer\n<</Root 1 0 R/Size 5>>\n%%EOF\n"


_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def _encrypted_pdf(user: bytes = b"secret", owner: bytes = b"owner") -> bytes:
    """One page, Standard security handler R2 (40-bit RC4, PDF 1.4 spec algorithms 3.1-3.4), content encrypted."""
    file_id = bytes(range(16))
    perms = -4
    o_entry = _rc4(hashlib.md5((owner + _PAD)[:32]).digest()[:5], (user + _PAD)[:32])
    key = hashlib.md5((user + _PAD)[:32] + o_entry + struct.pack("<i", perms) + file_id).digest()[:5]
    u_entry = _rc4(key, _PAD)
    content = b"0 g 10 10 100 100 re f"
    stream = _rc4(hashlib.md5(key + struct.pack("<I", 4)[:3] + b"\0\0").digest()[:10], content)  # object 4, gen 0
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >>"
        % (o_entry.hex().encode(), u_entry.hex().encode(), perms),
    ]
    ids = file_id.hex().encode()
    return _pdf_objects(objs, b"/Encrypt 5 0 R /ID [<%s> <%s>]" % (ids, ids))


def _docx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


def _one(data: bytes, name: str = "sheet", limits: Limits | None = None) -> Page:
    pages = load_pages(data, name, limits)
    assert len(pages) == 1
    return pages[0]


# --- good inputs -------------------------------------------------------------------------------------


def _check_sheet(page: Page, w: int = 160, h: int = 120) -> None:
    assert (page.number, page.n_pages, page.suffix) == (1, 1, "")
    assert page.gray.dtype == np.uint8 and page.gray.shape == (h, w)
    assert page.gray[60, 100] > 240 and page.gray[0, 80] < 15 and page.gray[20, 20] < 15


def test_png_keeps_pixels_and_dpi() -> None:
    page = _one(_encode(_sheet(), "PNG", dpi=(300, 300)))
    _check_sheet(page)
    np.testing.assert_array_equal(page.gray, np.asarray(_sheet()))
    assert page.dpi == pytest.approx(300, abs=0.1)
    page.gray[0, 0] = 7  # callers may work in place


def test_jpeg_rgb_becomes_gray() -> None:
    page = _one(_encode(_sheet().convert("RGB"), "JPEG", quality=95, dpi=(200, 200)))
    _check_sheet(page)
    assert page.dpi == pytest.approx(200)


def test_tiff_and_bmp() -> None:
    _check_sheet(_one(_encode(_sheet(), "TIFF", compression="tiff_lzw")))
    _check_sheet(_one(_encode(_sheet().convert("RGB"), "BMP")))


def test_png_without_dpi_has_none() -> None:
    assert _one(_encode(_sheet(), "PNG")).dpi is None


def test_rgba_on_transparent_background_is_composited_on_white() -> None:
    rgba = np.zeros((120, 160, 4), np.uint8)  # fully transparent black: must read as paper
    rgba[20:40, 20:60] = (0, 0, 0, 255)  # opaque black ink
    rgba[60:80, 20:60] = (0, 0, 0, 128)  # half-transparent ink: mid gray
    gray = _one(_encode(Image.fromarray(rgba, "RGBA"), "PNG")).gray
    assert gray[100, 100] == 255 and gray[30, 30] == 0
    assert 120 <= gray[70, 30] <= 135


def test_16_bit_png_is_scaled_not_clipped() -> None:
    a = np.full((64, 64), 65535, np.uint16)
    a[:, :16] = 0
    a[:, 16:32] = 32896  # mid gray; a plain convert("L") would clip it to white
    im = Image.fromarray(a)
    assert im.mode == "I;16"
    gray = _one(_encode(im, "PNG")).gray
    assert (gray[0, 0], gray[0, 20], gray[0, 40]) == (0, 128, 255)


@pytest.mark.parametrize("mode", ["1", "P", "CMYK", "LA", "I", "F"])
def test_other_modes_become_uint8_gray(mode: str) -> None:
    im = _sheet().convert(mode)
    fmt = "TIFF" if mode in ("CMYK", "I", "F") else "PNG"
    gray = _one(_encode(im, fmt)).gray
    assert gray.dtype == np.uint8 and gray.shape == (120, 160)
    assert gray[60, 100] > 240 and gray[20, 20] < 15


def test_palette_png_with_transparency_reads_as_paper() -> None:
    px = np.array(_sheet())
    px[px == 255] = 128  # gray paper, made transparent below: it must come out white, not gray
    im = Image.fromarray(px).convert("P")
    data = _encode(im, "PNG", transparency=im.getpixel((80, 60)))
    gray = _one(data).gray
    assert gray[60, 100] == 255 and gray[20, 20] == 0


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_viewers_do(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(_sheet(), "PNG", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("L"))
    np.testing.assert_array_equal(_one(data).gray, expected)


def test_png_named_jpg_loads_by_content(tmp_path: Path) -> None:
    path = tmp_path / "drawing.jpg"
    path.write_bytes(_encode(_sheet(), "PNG"))
    [page] = load_path(path)
    np.testing.assert_array_equal(page.gray, np.asarray(_sheet()))


def test_three_page_pdf_pages_in_order(tmp_path: Path) -> None:
    path = tmp_path / "set.pdf"
    path.write_bytes(_pdf_with_squares(3))
    pages = load_path(path)
    assert [p.number for p in pages] == [1, 2, 3]
    assert [p.n_pages for p in pages] == [3, 3, 3]
    assert [p.suffix for p in pages] == ["", "-p2", "-p3"]
    scale = 200 / 72
    for k, p in enumerate(pages, 1):
        assert p.dpi == 200.0 and p.gray.dtype == np.uint8
        assert p.gray.shape == (round(216 * scale), round(144 * scale))
        side = round(10 * k * scale)  # page k's square is 10k pt: proves page order and scale
        assert p.gray[side - 3, side - 3] < 15 and p.gray[side + 3, side + 3] > 240


def test_pdf_dpi_follows_limits() -> None:
    page = _one(_pdf_with_squares(1), limits=Limits(pdf_dpi=72))
    assert page.gray.shape == (216, 144) and page.dpi == 72.0


def test_multi_frame_tiff_gives_one_page_per_frame() -> None:
    frames = [_sheet(), _sheet().transpose(Image.Transpose.FLIP_LEFT_RIGHT), _sheet(80, 60)]
    data = _encode(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    pages = load_pages(data, "scan.tif")
    assert [(p.number, p.n_pages, p.suffix) for p in pages] == [(1, 3, ""), (2, 3, "-p2"), (3, 3, "-p3")]
    for page, frame in zip(pages, frames, strict=True):
        np.testing.assert_array_equal(page.gray, np.asarray(frame))
    with pytest.raises(BadInput) as err:
        load_pages(data, "scan.tif", Limits(max_pages=2))
    assert err.value.reason == "too_many_pages"


def test_iter_pages_checks_before_the_first_page() -> None:
    with pytest.raises(BadInput):
        iter_pages(_blank_pdf(3), "x.pdf", Limits(max_pages=2))  # no next() needed
    pages = iter_pages(_pdf_with_squares(2), "x.pdf")
    assert next(pages).number == 1 and next(pages).number == 2


# --- bad inputs --------------------------------------------------------------------------------------


def _truncated_png() -> bytes:
    data = _encode(Image.effect_noise((200, 200), 60), "PNG")
    return data[: len(data) // 2]


def _corrupt_jpeg() -> bytes:
    data = _encode(_sheet().convert("RGB"), "JPEG")
    return data[:2] + b"\xff\xc0\x00\x02" + data[2:]  # a frame header too short to hold its own fields


def _truncated_jpeg() -> bytes:
    data = _encode(Image.effect_noise((200, 200), 60).convert("RGB"), "JPEG")
    return data[: len(data) // 2]


# file name (extension chosen to mislead where it matters), bytes, limits, expected reason
BAD: dict[str, tuple[str, Callable[[], bytes], Limits | None, str]] = {
    "zero_bytes": ("empty.png", lambda: b"", None, "empty"),
    "pdf_decompression_bomb": ("bomb.pdf", _bomb_pdf, None, "decompression_bomb"),
    "truncated_png": ("cut.png", _truncated_png, None, "truncated"),
    "truncated_jpeg": ("cut.jpg", _truncated_jpeg, None, "truncated"),
    "text_named_png": ("notes.png", lambda: b"Dimensions: 40 mm x 25 mm\nsee sheet 2\n", None, "unsupported_type"),
    "docx_named_png": ("report.png", _docx, None, "unsupported_type"),
    "gif": ("anim.gif", lambda: _encode(_sheet(), "GIF"), None, "unsupported_type"),
    "pixel_bomb_png": ("bomb.png", lambda: _png_header_only(100_000, 100_000), None, "pixel_bomb"),
    "jpeg_over_max_pixels": (
        "big.jpg",
        lambda: _encode(_sheet().convert("RGB"), "JPEG"),
        Limits(max_pixels=10_000),
        "pixel_bomb",
    ),
    "png_0x0": ("zero.png", lambda: _png_header_only(0, 0), None, "too_small"),
    "png_1x1": ("dot.png", lambda: _encode(Image.new("L", (1, 1), 255), "PNG"), None, "too_small"),
    "bmp_20x20": ("icon.bmp", lambda: _encode(Image.new("L", (20, 20), 255), "BMP"), None, "too_small"),
    "corrupt_jpeg": ("broken.jpg", _corrupt_jpeg, None, "corrupt"),
    "bad_crc_png": (
        "crc.png",
        lambda: _png_header_only(100, 100)[:29] + b"\0\0\0\0" + _png_header_only(100, 100)[33:],
        None,
        "corrupt",
    ),
    "encrypted_pdf": ("locked.pdf", _encrypted_pdf, None, "encrypted"),
    "pdf_500_pages": ("book.pdf", lambda: _blank_pdf(500), None, "too_many_pages"),
    "pdf_0_pages": ("empty.pdf", lambda: _blank_pdf(0), None, "no_pages"),
    "pdf_a0_at_2000_dpi": ("a0.pdf", lambda: _blank_pdf(1, 2384, 3370), Limits(pdf_dpi=2000), "page_too_large"),
    "pdf_tiny_page": ("stamp.pdf", lambda: _blank_pdf(1, 10, 10), None, "too_small"),
    "pdf_garbage": ("junk.pdf", lambda: b"%PDF-1.4\n" + b"\x00garbage" * 40 + b"\n%%EOF\n", None, "corrupt"),
    "pdf_cut_off": ("cut.pdf", lambda: _pdf_with_squares(3)[:300], None, "truncated"),
    "over_max_bytes": ("huge.png", lambda: _encode(_sheet(), "PNG"), Limits(max_bytes=100), "too_large"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_reason_and_message(case: str, tmp_path: Path) -> None:
    filename, build, limits, reason = BAD[case]
    path = tmp_path / filename
    path.write_bytes(build())
    with pytest.raises(BadInput) as err:
        load_path(path, limits)
    assert err.value.reason == reason
    assert filename in str(err.value)  # a person must know which upload to fix
    assert err.value.reason != str(err.value) and len(str(err.value)) > 40
    with pytest.raises(BadInput) as err_bytes:  # the bytes API says the same
        load_pages(path.read_bytes(), filename, limits)
    assert err_bytes.value.reason == reason


def test_messages_say_what_to_do() -> None:
    def message(data: bytes, limits: Limits | None = None) -> str:
        with pytest.raises(BadInput) as err:
            load_pages(data, "A-101.pdf", limits)
        assert str(err.value).startswith("A-101.pdf")
        return str(err.value)

    assert "remove the password" in message(_encrypted_pdf())
    assert "split" in message(_blank_pdf(60))
    assert "300 dpi or less" in message(_png_header_only(100_000, 100_000))
    assert "dpi or less" in message(_blank_pdf(1, 2384, 3370), Limits(pdf_dpi=2000))
    assert "Word document" in message(_docx()) and "PNG, JPEG, TIFF, BMP or PDF" in message(_docx())
    assert "GIF" in message(_encode(_sheet(), "GIF"))
    assert "plain text" in message(b"hello\n")


def test_encrypted_pdf_is_refused_only_for_its_password() -> None:
    data = _encrypted_pdf()
    with pytest.raises(pdfium.PdfiumError) as err:
        pdfium.PdfDocument(data)
    assert err.value.err_code == pdfium.raw.FPDF_ERR_PASSWORD
    pdf = pdfium.PdfDocument(data, password="secret")  # well formed: with the password it opens and renders
    assert len(pdf) == 1 and pdf[0].render(grayscale=True).to_numpy()[150, 50] == 0
    pdf.close()


def test_pixel_bomb_fails_from_the_header_alone() -> None:
    data = _png_header_only(100_000, 100_000)  # 10 GP claimed, ~60 bytes present
    tracemalloc.start()
    with pytest.raises(BadInput) as err:
        load_pages(data, "bomb.png")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert err.value.reason == "pixel_bomb" and "100000x100000" in str(err.value)
    assert peak < 5 * 2**20  # decoding even a row of it would take 100 kB; the whole image 10 GB


def test_big_pdfs_fail_without_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_render(*_: object, **__: object) -> None:
        raise AssertionError("rendered a page of a PDF that should have been refused")

    monkeypatch.setattr(pdfium.PdfPage, "render", no_render)
    monkeypatch.setattr(pdfium.PdfDocument, "get_page", no_render)  # not even loaded
    data = _blank_pdf(500)
    with pytest.raises(BadInput) as err:
        load_pages(data, "book.pdf")
    assert err.value.reason == "too_many_pages" and "500" in str(err.value)
    with pytest.raises(BadInput) as err:
        load_pages(_blank_pdf(1, 2384, 3370), "a0.pdf", Limits(pdf_dpi=2000))
    assert err.value.reason == "page_too_large"


def test_oversized_file_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "huge.tif"
    path.write_bytes(b"II*\x00" + bytes(5000))

    def no_read(*_: object) -> bytes:
        raise AssertionError("read a file that is over the limit")

    monkeypatch.setattr(Path, "read_bytes", no_read)
    with pytest.raises(BadInput) as err:
        load_path(path, Limits(max_bytes=1000))
    assert err.value.reason == "too_large" and "huge.tif" in str(err.value)


@pytest.mark.parametrize("where", ["missing.png", "."])
def test_missing_path_or_directory(tmp_path: Path, where: str) -> None:
    with pytest.raises(BadInput) as err:
        load_path(tmp_path / where)
    assert err.value.reason == "missing"


# --- sniffing, hashing, plumbing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n....", "png"),
        (b"\xff\xd8\xff\xe0....", "jpeg"),
        (b"II*\x00....", "tiff"),
        (b"MM\x00*....", "tiff"),
        (b"BM......", "bmp"),
        (b"%PDF-1.7\n", "pdf"),
        (b"\r\n%PDF-1.4\n", "pdf"),  # junk before the header, as readers allow
    ],
)
def test_sniff_by_magic(data: bytes, kind: str) -> None:
    assert sniff(data) == kind


@pytest.mark.parametrize(
    ("data", "looks_like"),
    [
        (b"GIF89a....", "GIF"),
        (b"PK\x03\x04rest", "ZIP"),
        (b"AC1032\x00\x00", "DWG"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WebP"),
        (b"\x00\x00\x00\x18ftypheic", "HEIC"),
        (b"<?xml version='1.0'?><svg xmlns='x'/>", "SVG"),
        (b"  0\nSECTION\n  2\nHEADER\n", "DXF"),
        (b"ISO-10303-21;\nHEADER;", "STEP"),
        (b"\x00\x01\x02\x03\xfe\xfd", "unknown binary"),
    ],
)
def test_sniff_names_what_unsupported_bytes_look_like(data: bytes, looks_like: str) -> None:
    with pytest.raises(BadInput) as err:
        sniff(data, "up.png")
    assert err.value.reason == "unsupported_type"
    assert looks_like in str(err.value) and "up.png" in str(err.value)


def test_content_hash_is_sha256_of_bytes() -> None:
    assert content_hash(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2
    assert content_hash(b"abc") != content_hash(b"abd")


def test_bad_input_survives_pickling() -> None:
    exc = pickle.loads(pickle.dumps(BadInput("encrypted", "x.pdf is password-protected")))  # noqa: S301 - its own bytes
    assert isinstance(exc, ValueError) and exc.reason == "encrypted" and str(exc) == "x.pdf is password-protected"


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Limits(max_pages=0)


def test_global_pillow_state_is_left_alone() -> None:
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES, list(warnings.filters))
    for data in (_encode(_sheet(), "PNG"), _png_header_only(100_000, 100_000), _truncated_png()):
        with contextlib.suppress(BadInput):
            load_pages(data)
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES, list(warnings.filters)) == before


def test_large_scan_within_limits_loads_without_pillow_warning(recwarn: pytest.WarningsRecorder) -> None:
    # Pillow warns above ~89 MP; ours allows 120 MP, so a claimed size between them must pass the size checks
    limits = Limits(max_pixels=120_000_000)
    data = _png_header_only(10_000, 9_500)  # 95 MP claimed, no pixel data: fails later, at decoding
    with pytest.raises(BadInput) as err:
        load_pages(data, "scan.png", limits)
    assert err.value.reason in ("truncated", "corrupt")
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


@pytest.mark.parametrize("case", ["corrupt_jpeg", "bad_crc_png", "text_named_png"])
def test_reasons_hold_after_ultralytics_patched_pillow(case: str, tmp_path: Path) -> None:
    """ultralytics swaps PIL.Image.open for a wrapper that reaches for pi-heif on unknown files."""
    from dimflow.detect.yolo_env import offline

    offline()
    import ultralytics.utils.patches  # noqa: F401  (the import applies the patch)

    assert Image.open.__module__.startswith("ultralytics")
    filename, build, limits, reason = BAD[case]
    (tmp_path / filename).write_bytes(build())
    with pytest.raises(BadInput) as err:
        load_path(tmp_path / filename, limits)
    assert err.value.reason == reason
