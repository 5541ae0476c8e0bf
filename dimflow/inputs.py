"""Input file bytes in, drawing pages out; bad input is refused early with a reason a person can act on.

The type comes from the magic bytes, never the file name, because uploads are often renamed. Sizes are
checked from headers before anything is decoded or rendered, so a hostile or oversized file costs a few
bytes of parsing, not gigabytes of memory. Plain functions (no Prefect) so the CLI, flows and tests share
the same checks and the same messages.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import struct
import sys
import threading
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageFile, UnidentifiedImageError

from dimflow.settings import Settings, get_settings

SUPPORTED = "PNG, JPEG, TIFF, BMP or PDF"

# PDFium is not thread-safe (flows may run tasks in threads): every call into it holds this lock
_PDFIUM_LOCK = threading.RLock()  # re-entrant: a generator finalized by GC mid-call closes its PDF

_PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "bmp": "BMP"}

# errors Pillow raises for data it cannot decode (its UnidentifiedImageError is an OSError)
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError)

_PNG_SIG = b"\x89PNG\r\n\x1a\n"

_DEFAULTS = Settings.model_fields  # one source for the limits' numbers


class BadInput(ValueError):
    """An input that cannot be processed; .reason is a short machine code, str(exc) a sentence a person can act on."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple[type[BadInput], tuple[str, str]]:
        # the default pickling passes only the message back to __init__; flows ship exceptions between processes
        return (type(self), (self.reason, str(self)))


@dataclass(frozen=True, eq=False)  # eq=False: comparing pages field-wise would compare arrays (ambiguous)
class Page:
    """One drawing sheet as a gray image, with where it came from."""

    number: int  # 1-based page number (1 for raster images)
    n_pages: int  # pages in the file
    gray: np.ndarray  # uint8 2-D array, white paper = 255
    dpi: float | None  # render dpi for PDF pages; the file's dpi for rasters if known, else None

    @property
    def suffix(self) -> str:
        """Output-name suffix that keeps pages apart: "" for page 1, "-p2", "-p3"... after it."""
        return "" if self.number == 1 else f"-p{self.number}"


@dataclass(frozen=True)
class Limits:
    """What one input may cost. The defaults are the settings' embedded ones (an A0 sheet at 300 dpi,
    ~108 MP, with room to spare); `Settings.limits()` gives the configured values."""

    max_bytes: int = _DEFAULTS["max_bytes"].default
    max_pixels: int = _DEFAULTS["max_pixels"].default  # per page, after rendering
    min_side: int = 32  # px
    max_pages: int = _DEFAULTS["max_pages"].default
    pdf_dpi: float = _DEFAULTS["pdf_dpi"].default

    def __post_init__(self) -> None:
        for field in ("max_bytes", "max_pixels", "min_side", "max_pages", "pdf_dpi"):
            if not getattr(self, field) > 0:
                raise ValueError(f"Limits.{field} must be positive, got {getattr(self, field)!r}")


def content_hash(data: bytes) -> str:
    """sha256 hex of the bytes: the cache and dedup key, independent of the file's name."""
    return hashlib.sha256(data).hexdigest()


def sniff(data: bytes, name: str = "input") -> str:
    """The file type from its magic bytes: "png", "jpeg", "tiff", "bmp" or "pdf"; else BadInput("unsupported_type")."""
    if not data:
        raise BadInput("empty", f"{name} is empty (0 bytes); upload the drawing again or re-export it.")
    if data.startswith(_PNG_SIG):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if data.startswith(b"BM"):
        return "bmp"
    if b"%PDF-" in data[:1024]:  # readers accept junk before the header (mail gateways, old scanners)
        return "pdf"
    what, hint = _describe(data)
    raise BadInput(
        "unsupported_type",
        f"{name} looks like {what}, not a supported drawing file; {hint}. Supported types: {SUPPORTED}.",
    )


def sniff_file(path: Path) -> str:
    """`sniff` on a file's first bytes, without reading the rest (to sort a folder's files by content)."""
    with Path(path).open("rb") as f:
        return sniff(f.read(1024), Path(path).name)


def load_pages(data: bytes, name: str = "input", limits: Limits | None = None) -> list[Page]:
    """All pages of one input file, each checked against the limits; BadInput for anything unusable."""
    return list(iter_pages(data, name, limits))


def iter_pages(data: bytes, name: str = "input", limits: Limits | None = None) -> Iterator[Page]:
    """Like load_pages, but decodes one page at a time (a 50-page A0 set need not sit in memory at once).

    Everything that can be checked without decoding (type, size, page count, page sizes) is checked
    before this returns, so a bad file fails here rather than halfway through the iteration.
    """
    data, kind, limits = _admit(data, name, limits)
    if kind == "pdf":
        return _pdf_pages(data, name, limits)
    return _raster_pages(data, kind, name, limits)


def _admit(data: bytes, name: str, limits: Limits | None) -> tuple[bytes, str, Limits]:
    """The first refusals, in one order for every entry point: size before anything is read, then type."""
    limits = limits or get_settings().limits()
    data = bytes(data)
    if len(data) > limits.max_bytes:
        raise too_large(name, len(data), limits)
    return data, sniff(data, name), limits


def check(data: bytes, name: str = "input", limits: Limits | None = None) -> str:
    """Refuse what processing would refuse, before anything is stored (an upload); returns the kind.
    Rasters are decoded (a damaged body shows only then); PDFs are opened and their page tree and page
    sizes checked, not rendered (rendering is the worker's cost)."""
    data, kind, limits = _admit(data, name, limits)
    if kind == "pdf":
        pdf, _, _ = _open_pdf(data, name, limits)
        with _PDFIUM_LOCK:
            pdf.close()
    else:
        for _ in _raster_pages(data, kind, name, limits):
            pass
    return kind


def load_path(path: Path, limits: Limits | None = None) -> list[Page]:
    """load_pages on a file; a missing or oversized file is refused before its bytes are read."""
    limits = limits or get_settings().limits()
    return load_pages(read_file(path, limits), Path(path).name, limits)


def read_file(path: Path, limits: Limits | None = None) -> bytes:
    """A file's bytes; a missing, unreadable or oversized file is refused before its bytes are read."""
    limits = limits or get_settings().limits()
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(str(path))
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise too_large(path.name, size, limits)
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise BadInput(
            "missing", f"{path} does not exist or is not a file; check the path and name the drawing file itself."
        ) from None
    except PermissionError:
        raise BadInput("unreadable", f"{path} cannot be read (permission denied); make the file readable.") from None
    return data


# --- rasters -----------------------------------------------------------------------------------------


def _pil_open(fp: io.BytesIO, formats: list[str]) -> Image.Image:
    """Pillow's own Image.open, also in a process that has imported ultralytics.

    ultralytics replaces PIL.Image.open with a wrapper that, on a file Pillow cannot identify,
    tries to install and import pi-heif; offline that turns a corrupt upload into a
    ModuleNotFoundError (and a retried task) instead of a BadInput.
    """
    opener = Image.open
    module = sys.modules.get(getattr(opener, "__module__", "") or "")
    if module is not None and module.__name__.startswith("ultralytics") and hasattr(module, "_image_open"):
        opener = module._image_open
    return opener(fp, formats=formats)


def _raster_pages(data: bytes, kind: str, name: str, limits: Limits) -> Iterator[Page]:
    if ImageFile.LOAD_TRUNCATED_IMAGES and _looks_cut_off(kind, data):
        # someone turned Pillow's truncation check off process-wide; do not let a cut-off scan through
        raise _decode_error(kind, name, data, OSError("image file is truncated"))
    peek = _peek_size(kind, data, name)
    if peek is not None:  # before Pillow: it rejects 0x0 as "unidentified" and needs no buffer for this
        _check_raster_size(*peek, name=name, limits=limits)
    try:
        with warnings.catch_warnings():
            # our own max_pixels decides; Pillow's warning at ~89 MP would only be noise for a 100 MP scan
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = _pil_open(io.BytesIO(data), formats=[_PIL_FORMAT[kind]])
            n = getattr(im, "n_frames", 1) if kind == "tiff" else 1
    except Image.DecompressionBombError:
        raise _pixel_bomb_error(name, None, limits) from None
    except _DECODE_ERRORS as exc:
        raise _decode_error(kind, name, data, exc) from None
    try:
        if n > limits.max_pages:
            raise _too_many_pages(name, n, limits, "frames")
        if n < 1:
            raise BadInput("no_pages", f"{name} holds no images; re-export the drawing.")
        _check_raster_size(*im.size, name=name, limits=limits)
    except BadInput:
        im.close()
        raise
    return _decode_frames(im, kind, n, name, data, limits)


def _decode_frames(im: Image.Image, kind: str, n: int, name: str, data: bytes, limits: Limits) -> Iterator[Page]:
    with im:
        for i in range(n):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    if i:
                        im.seek(i)
                        _check_raster_size(*im.size, name=f"{name} frame {i + 1}", limits=limits)
                    im.load()
                    gray = _orient(_to_gray(im), im)
            except BadInput:
                raise
            except Image.DecompressionBombError:
                raise _pixel_bomb_error(name, None, limits) from None
            except _DECODE_ERRORS as exc:
                raise _decode_error(kind, name, data, exc) from None
            yield Page(number=i + 1, n_pages=n, gray=gray, dpi=_raster_dpi(im))


def _peek_size(kind: str, data: bytes, name: str) -> tuple[int, int] | None:
    """Width and height straight from a PNG or BMP header (where they sit at fixed offsets)."""
    try:
        if kind == "png":
            if len(data) < 24:
                raise struct.error("short header")
            if data[12:16] != b"IHDR":
                raise BadInput("corrupt", f"{name} is a damaged PNG (no IHDR header); re-export the drawing.")
            w, h = struct.unpack(">II", data[16:24])
            return w, h
        if kind == "bmp":
            (dib,) = struct.unpack("<I", data[14:18])
            if dib == 12:  # OS/2 BITMAPCOREHEADER
                w, h = struct.unpack("<HH", data[18:22])
            else:
                w, h = struct.unpack("<ii", data[18:26])  # height < 0 means top-down rows
            return abs(w), abs(h)
    except struct.error:
        raise BadInput(
            "truncated", f"{name} is cut off inside its {kind.upper()} header; upload the file again or re-export it."
        ) from None
    return None


def _check_raster_size(w: int, h: int, *, name: str, limits: Limits) -> None:
    if w * h > limits.max_pixels:
        raise _pixel_bomb_error(name, (w, h), limits)
    if min(w, h) < limits.min_side:
        raise BadInput(
            "too_small",
            f"{name} is {w}x{h} px, too small to hold a readable drawing (each side needs at least "
            f"{limits.min_side} px); send the full sheet, scanned or exported at 200-300 dpi.",
        )


def _to_gray(im: Image.Image) -> np.ndarray:
    """Any Pillow mode as uint8 gray on white paper (transparent areas become paper, not black)."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(im)
        if a.dtype != np.uint16:  # "I" is 32-bit: 16-bit samples from old TIFFs, or plain 0..255 values
            a = np.clip(a, 0, 65535)
            if a.size and a.max() <= 255:
                return a.astype(np.uint8)
        return (a >> 8).astype(np.uint8)
    if mode == "F":
        a = np.nan_to_num(np.asarray(im, dtype=np.float32), nan=255.0, posinf=255.0, neginf=0.0)
        if a.size and a.max() <= 1.0:  # float images are usually 0..1
            a = a * 255.0
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    if im.has_transparency_data:  # alpha band, or a transparent colour key (palette or RGB)
        la = np.asarray((im if mode in ("RGBA", "LA") else im.convert("RGBA")).convert("LA"))
        ink = (255 - la[..., 0]).astype(np.uint16) * la[..., 1]  # composite on white: 255 - (255 - L) * alpha
        return (255 - (ink + 127) // 255).astype(np.uint8)
    if mode == "LAB":
        return np.array(im.getchannel("L"))
    if mode == "L":
        return np.array(im)
    try:
        return np.array(im.convert("L"))
    except ValueError:  # modes without a direct path to L (CMYK, YCbCr, HSV on some builds)
        return np.array(im.convert("RGB").convert("L"))


def _orient(gray: np.ndarray, im: Image.Image) -> np.ndarray:
    """Apply the EXIF/TIFF orientation tag, so the sheet reads as every viewer shows it."""
    try:
        orientation = im.getexif().get(0x0112, 1)
    except _DECODE_ERRORS:
        orientation = 1
    turned = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1, :],
        5: lambda a: a.T,
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].T,
        8: lambda a: np.rot90(a, 1),
    }.get(orientation)
    out = gray if turned is None else turned(gray)
    out = np.ascontiguousarray(out, dtype=np.uint8)
    if not out.flags.writeable:
        out = out.copy()
    return out


def _raster_dpi(im: Image.Image) -> float | None:
    dpi = im.info.get("dpi")
    try:
        x = float(dpi[0]) if dpi else 0.0
    except (TypeError, ValueError, IndexError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def _looks_cut_off(kind: str, data: bytes) -> bool:
    """Whether the file ends before its format says it should (tells "truncated" from "corrupt")."""
    tail = data[-4096:]
    if kind == "png":
        return b"IEND" not in tail
    if kind == "jpeg":
        return b"\xff\xd9" not in tail
    if kind == "bmp" and len(data) >= 6:
        return struct.unpack("<I", data[2:6])[0] > len(data)
    if kind == "pdf":
        return b"%%EOF" not in data[-2048:]
    return False


def _decode_error(kind: str, name: str, data: bytes, exc: BaseException) -> BadInput:
    label = kind.upper()
    if "truncat" in str(exc).lower() or isinstance(exc, EOFError) or _looks_cut_off(kind, data):
        return BadInput(
            "truncated",
            f"{name} is cut off: the {label} data ends early (interrupted upload or copy); "
            "upload the complete file again or re-export it.",
        )
    detail = f"its {label} header is invalid" if isinstance(exc, UnidentifiedImageError) else f"{exc}"
    return BadInput(
        "corrupt",
        f"{name} is a damaged {label} file that cannot be decoded ({detail}); "
        "re-export the drawing from its source, or open and re-save it in an image editor.",
    )


def _pixel_bomb_error(name: str, size: tuple[int, int] | None, limits: Limits) -> BadInput:
    if size is None:  # Pillow's own ceiling (2 x Image.MAX_IMAGE_PIXELS) refused it before we saw the size
        what = "is larger than the image decoder accepts"
    else:
        what = f"is {size[0]}x{size[1]} px ({size[0] * size[1] / 1e6:,.0f} MP)"
    return BadInput(
        "pixel_bomb",
        f"{name} {what}, over the {limits.max_pixels / 1e6:,.0f} MP limit per sheet; export the sheet at 300 dpi "
        "or less (an A0 sheet at 300 dpi is about 108 MP).",
    )


def too_large(name: str, n_bytes: int, limits: Limits) -> BadInput:
    """The refusal of an input over the size limit (public: storage inputs learn their size before fetching)."""
    return BadInput(
        "too_large",
        f"{name} is {n_bytes / 2**20:,.1f} MiB, over the {limits.max_bytes / 2**20:,.1f} MiB limit; "
        "export it at 300 dpi or less, compress it (PNG, or PDF with compressed images), or split it into several "
        "files.",
    )


def _too_many_pages(name: str, n: int, limits: Limits, unit: str = "pages") -> BadInput:
    return BadInput(
        "too_many_pages",
        f"{name} has {n} {unit}, more than the {limits.max_pages} allowed per file; "
        f"split it into files of at most {limits.max_pages} {unit}.",
    )


def _describe(data: bytes) -> tuple[str, str]:
    """What unsupported bytes look like, and what to do about it."""
    head = data[:4096]
    export = "export or save the drawing as PDF or PNG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image", "convert it to PNG (GIF is limited to 256 colours and often too coarse)"
    if head.startswith(b"PK\x03\x04"):
        if b"word/" in head:
            return "a Word document (.docx)", "export the drawing from it as PDF"
        if b"xl/" in head:
            return "an Excel workbook (.xlsx)", "export the drawing from it as PDF"
        return "a ZIP archive (or an Office document)", "unpack it and upload the drawing files one by one"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "an old Microsoft Office file (.doc/.xls)", "export the drawing from it as PDF"
    if head.startswith(b"AC10"):
        return "an AutoCAD DWG file", "plot or export the sheet to PDF from the CAD tool"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "a WebP image", "convert it to PNG"
    if head[4:8] == b"ftyp":
        return "a HEIC/AVIF photo or a video", "convert it to JPEG or PNG (most phones can share as JPEG)"
    if head.startswith(b"\x00\x00\x00\x0cjP  "):
        return "a JPEG 2000 image", "convert it to PNG or TIFF"
    if head.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")):
        return "a PostScript/EPS file", "convert it to PDF"
    if head.startswith((b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!")):
        return "a compressed archive", "unpack it and upload the drawing files one by one"
    text = _as_text(head)
    if text is not None:
        low = text.lstrip().lower()
        if low.startswith("iso-10303-21"):
            return "a STEP 3D model", "upload the 2-D drawing sheet (PDF) instead of the model"
        if low.startswith(("0\nsection", "0\r\nsection", "  0\nsection", "  0\r\nsection", "999\n", "999\r\n")):
            return "a DXF CAD file", "plot or export the sheet to PDF from the CAD tool"
        if "<svg" in low[:1000]:
            return "an SVG vector image", "export it to PDF or PNG"
        if low.startswith(("<!doctype html", "<html")):
            return "an HTML page (a download link saved instead of the file?)", "download the drawing file itself"
        if low.startswith("<?xml"):
            return "an XML document", export
        return "plain text", export
    return "an unknown binary format", export


def _as_text(head: bytes) -> str | None:
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:  # a cut-off multi-byte character at the end of the sample is still text
            text = head[:-3].decode("utf-8-sig")
        except UnicodeDecodeError:
            return None
    printable = sum(c.isprintable() or c in "\r\n\t" for c in text)
    return text if text and printable >= 0.95 * len(text) else None


# --- PDF ---------------------------------------------------------------------------------------------


def _pdf_pages(data: bytes, name: str, limits: Limits) -> Iterator[Page]:
    pdf, n, scale = _open_pdf(data, name, limits)
    return _render_pdf(pdf, data, n, scale, name, limits)


_STREAM_START = re.compile(rb"(?<!end)stream\r?\n")
_INFLATE_STEP = 1 << 20


def _inflated_size(buf: memoryview, cap: int) -> int:
    """What a Flate stream starting at buf[0] inflates to, counted in bounded steps and given up past
    `cap`; 0 for a stream that is not Flate (images in DCT, raw data: PDFium decides about those)."""
    d = zlib.decompressobj()
    total = pos = 0
    try:
        while pos < len(buf) and not d.eof and total <= cap:
            total += len(d.decompress(buf[pos : pos + 65536], _INFLATE_STEP))
            pos += 65536
            while d.unconsumed_tail and total <= cap:
                total += len(d.decompress(d.unconsumed_tail, _INFLATE_STEP))
    except zlib.error:
        pass
    return total


def _check_pdf_streams(data: bytes, name: str, limits: Limits) -> None:
    """Refuse a decompression bomb before PDFium inflates it: a few kB of Flate data can hold gigabytes
    (of whitespace in a page's content, say) that PDFium would decode whole into memory. No stream may
    inflate past what the largest page would hold as RGBA pixels (at least 64 MB), nor all together
    past four times that; counting costs ~1 s a GB, and stops at the cap."""
    cap = max(limits.max_pixels * 4, 64 * 2**20)
    view, total = memoryview(data), 0
    for m in _STREAM_START.finditer(data):
        size = _inflated_size(view[m.end() :], cap)
        total += size
        if size > cap or total > 4 * cap:
            raise BadInput(
                "decompression_bomb",
                f"{name} holds a compressed stream that expands past {cap / 2**20:,.0f} MB (a decompression "
                "bomb, or a PDF far larger than a drawing); re-export the drawing.",
            )


def _open_pdf(data: bytes, name: str, limits: Limits) -> tuple[pdfium.PdfDocument, int, float]:
    """Open a PDF and check its streams' inflated sizes, page tree and page sizes, rendering nothing;
    the caller closes it."""
    _check_pdf_streams(data, name, limits)
    with _PDFIUM_LOCK:
        # raw load rather than PdfDocument(data): that one leaks the handle of a 0-page file it refuses
        raw = pdfium_c.FPDF_LoadMemDocument64(data, len(data), None)
        if not raw:
            raise _pdf_open_error(pdfium_c.FPDF_GetLastError(), name, data)
        pdf = pdfium.PdfDocument(raw)  # owns raw from here on; `data` must outlive it (passed to the renderer)
        try:
            n = len(pdf)
            if n < 1:
                raise BadInput(
                    "no_pages", f"{name} is a PDF with no pages (or an empty page tree); re-export the drawing."
                )
            if n > limits.max_pages:  # the count is in the page tree: nothing rendered yet
                raise _too_many_pages(name, n, limits)
            scale = limits.pdf_dpi / 72.0
            for i in range(n):
                w_pt, h_pt = pdf.get_page_size(i)
                _check_pdf_page_size(w_pt, h_pt, i + 1, n, scale, name, limits)
            pdf.init_forms()  # title blocks are often form fields; must happen before any page is loaded
        except pdfium.PdfiumError as exc:
            pdf.close()
            raise BadInput("corrupt", f"{name} is a damaged PDF ({exc}); re-export or print it to a new PDF.") from None
        except BaseException:
            pdf.close()
            raise
    return pdf, n, scale


def _render_pdf(
    pdf: pdfium.PdfDocument, data: bytes, n: int, scale: float, name: str, limits: Limits
) -> Iterator[Page]:
    """Render pages one by one; holds `data` because PDFium reads the document from that buffer."""
    try:
        for i in range(n):
            with _PDFIUM_LOCK:
                try:
                    page = pdf[i]
                    bitmap = page.render(scale=scale, grayscale=True, fill_color=(255, 255, 255, 255))
                    gray = np.array(bitmap.to_numpy(), dtype=np.uint8, copy=True)  # the bitmap buffer is freed below
                    bitmap.close()
                    page.close()
                except (pdfium.PdfiumError, ValueError) as exc:
                    raise BadInput(
                        "corrupt",
                        f"{name} page {i + 1} cannot be rendered ({exc}); re-export or print the PDF to a new file.",
                    ) from None
            yield Page(number=i + 1, n_pages=n, gray=gray, dpi=limits.pdf_dpi)
    finally:
        with _PDFIUM_LOCK:
            pdf.close()


def _check_pdf_page_size(
    w_pt: float, h_pt: float, number: int, n: int, scale: float, name: str, limits: Limits
) -> None:
    where = f"{name} page {number} of {n}" if n > 1 else name
    w, h = math.ceil(w_pt * scale), math.ceil(h_pt * scale)  # as pypdfium2 sizes the bitmap
    dpi = limits.pdf_dpi
    mm = f"{w_pt / 72 * 25.4:,.0f}x{h_pt / 72 * 25.4:,.0f} mm"
    if w * h > limits.max_pixels:
        fits = math.floor(dpi * math.sqrt(limits.max_pixels / (w * h)))
        raise BadInput(
            "page_too_large",
            f"{where} is {mm}; at {dpi:g} dpi that is {w}x{h} px ({w * h / 1e6:,.0f} MP), over the "
            f"{limits.max_pixels / 1e6:,.0f} MP limit; render it at {fits} dpi or less, or split the sheet.",
        )
    if min(w, h) < limits.min_side:
        raise BadInput(
            "too_small",
            f"{where} is {mm}, only {w}x{h} px at {dpi:g} dpi (each side needs at least {limits.min_side} px); "
            "check the page size (MediaBox/CropBox) and re-export the sheet.",
        )


def _pdf_open_error(code: int, name: str, data: bytes) -> BadInput:
    if code == pdfium_c.FPDF_ERR_PASSWORD:
        return BadInput(
            "encrypted",
            f"{name} is password-protected; remove the password (save or print an unprotected copy) and upload that.",
        )
    if code == pdfium_c.FPDF_ERR_SECURITY:
        return BadInput(
            "encrypted",
            f"{name} uses an unsupported encryption or DRM scheme; remove the protection "
            "(save or print an unprotected copy) and upload that.",
        )
    if _looks_cut_off("pdf", data):
        return BadInput(
            "truncated",
            f"{name} is cut off: the PDF has no end marker (interrupted upload or copy); "
            "upload the complete file again or re-export it.",
        )
    what = {pdfium_c.FPDF_ERR_FORMAT: "not a valid PDF structure"}.get(code, f"PDFium error {code}")
    return BadInput(
        "corrupt", f"{name} is a damaged PDF that cannot be opened ({what}); re-export or print it to a new PDF."
    )
