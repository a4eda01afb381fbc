"""Photo decoding within a memory budget: check, reduce while decoding, strip metadata.

A photo within the pixel limit (40 MP) used to cost about 840 MB to clean (the full
decode plus four full-size copies), and six at once took a worker to 3 GB. Here:

* the pixel count is read from the header before anything is decoded;
* JPEG is decoded already scaled down (libjpeg's DCT scaling via `Image.draft`); PNG and
  WebP cannot be, so they are reduced (`Image.reduce`, a box filter) straight after
  decoding, strip by strip, before any full-size copy; palette images are resized with
  nearest-neighbour;
* the orientation tag is applied to the small image, and the copy without metadata is
  made of the small image;
* decodes in one process share a budget (DECODE_BUDGET_BYTES of estimated pixel memory):
  small photos decode side by side, a large one waits until it fits, and one larger than
  the whole budget decodes alone;
* the decode runs in one of the worker's real threads (hub.offload), so a gevent worker
  keeps answering other requests meanwhile.

Stored photos have at most MAX_EDGE pixels on their longer side.
"""

from __future__ import annotations

import io
import math
import os
import threading
from contextlib import contextmanager

from PIL import Image, UnidentifiedImageError

from hub import offload

PHOTO_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MAX_EDGE = 2560  # px: the longer side of a stored photo (plenty for an officer's screen)
STRIP_ROWS = 128  # output rows reduced at a time
DECODE_BUDGET_BYTES = 200 * 1024 * 1024  # estimated pixel memory decoding at once per process

_ORIENTATION = 0x0112
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}
_READ_ERRORS = (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning,
                OSError, SyntaxError, ValueError, EOFError, KeyError, IndexError, TypeError)


class PhotoRejected(ValueError):
    """The uploaded bytes are not an acceptable image."""


def fit(width: int, height: int, max_edge: int) -> tuple[int, int]:
    """The size of a width x height image scaled to at most max_edge on its longer side."""
    longest = max(width, height)
    if longest <= max_edge:
        return width, height
    scale = max_edge / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def estimate_bytes(fmt: str, width: int, height: int, progressive: bool, max_edge: int) -> int:
    """Pixel memory a decode will need at its peak (bytes; an upper estimate).

    JPEG decodes scaled by 1/2, 1/4 or 1/8, but a progressive JPEG keeps every DCT
    coefficient of the full image (2 bytes each, up to 3 per pixel) while it decodes.
    PNG and WebP decode at full size (up to 4 bytes per pixel) plus the reduced copy.
    """
    if fmt == "JPEG":
        k = 1
        while k < 8 and max(width, height) / (k * 2) >= max_edge:
            k *= 2
        scaled = math.ceil(width / k) * math.ceil(height / k) * 4
        return scaled + (width * height * 6 if progressive else 0)
    reduced = fit(width, height, max_edge)
    return width * height * 4 + reduced[0] * reduced[1] * 4 * 2


class _Budget:
    """A counting budget of bytes; a request larger than the whole budget runs alone."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self.cond = threading.Condition()  # gevent-aware once the worker is patched

    @contextmanager
    def reserve(self, amount: int):
        amount = max(1, amount)
        with self.cond:
            while self.used and self.used + amount > self.total:
                self.cond.wait()
            self.used += amount
        try:
            yield
        finally:
            with self.cond:
                self.used -= amount
                self.cond.notify_all()


_budgets: dict[int, _Budget] = {}


def _budget() -> _Budget:
    # Made lazily in each process: a lock made before gevent patched the worker would
    # block the whole worker instead of one greenlet.
    pid = os.getpid()
    budget = _budgets.get(pid)
    if budget is None:
        budget = _budgets[pid] = _Budget(DECODE_BUDGET_BYTES)
    return budget


def clean_image(data: bytes, max_pixels: int, max_edge: int = MAX_EDGE) -> tuple[bytes, str, int, int]:
    """Decode JPEG/PNG/WebP, scale it to at most max_edge px and re-encode it with no
    metadata (EXIF, GPS, XMP, text chunks).

    Returns (bytes, mime, width, height). Raises PhotoRejected for anything else, or for
    more than max_pixels pixels (read from the header, before decoding).
    """
    # Pillow's global MAX_IMAGE_PIXELS is left alone so other code keeps its own limits.
    try:
        with Image.open(io.BytesIO(data), formats=list(PHOTO_FORMATS)) as img:
            fmt, (width, height) = img.format, img.size
            progressive = bool(img.info.get("progressive") or img.info.get("progression"))
    except _READ_ERRORS as exc:
        raise PhotoRejected(f"not a readable JPEG, PNG or WebP image ({type(exc).__name__})") from None
    if width * height > max_pixels:
        raise PhotoRejected(f"image is larger than {max_pixels} pixels")
    with _budget().reserve(estimate_bytes(fmt, width, height, progressive, max_edge)):
        return offload.run(_decode, data, fmt, max_edge)


def _decode(data: bytes, fmt: str, max_edge: int) -> tuple[bytes, str, int, int]:
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as img:
            target = fit(img.width, img.height, max_edge)
            if fmt == "JPEG" and img.mode in ("RGB", "L"):
                img.draft(img.mode, target)  # decoded at 1/2, 1/4 or 1/8 where that fits
            img.load()
            orientation = img.getexif().get(_ORIENTATION, 1)  # a PNG's eXIf may follow the pixels
            small = _reduce(img, target)
    except PhotoRejected:
        raise
    except _READ_ERRORS as exc:
        raise PhotoRejected(f"not a readable JPEG, PNG or WebP image ({type(exc).__name__})") from None
    if orientation in _TRANSPOSE:
        small = small.transpose(_TRANSPOSE[orientation])
    if fmt == "JPEG":
        mode = "L" if small.mode in ("L", "1") else "RGB"
    else:
        mode = "RGBA" if small.mode in ("RGBA", "LA", "P", "PA") else ("L" if small.mode == "L" else "RGB")
    try:
        converted = small if small.mode == mode else small.convert(mode)
    except ValueError as exc:
        raise PhotoRejected(f"unsupported image mode ({exc})") from None
    # A fresh image from raw pixels carries no info dict: nothing of the original metadata.
    bare = Image.frombytes(converted.mode, converted.size, converted.tobytes())
    out = io.BytesIO()
    if fmt == "JPEG":
        bare.save(out, "JPEG", quality=90, optimize=False)
    elif fmt == "PNG":
        bare.save(out, "PNG", optimize=False)
    else:
        bare.save(out, "WEBP", quality=90)
    return out.getvalue(), PHOTO_FORMATS[fmt], bare.width, bare.height


def _reduce(img: Image.Image, target: tuple[int, int]) -> Image.Image:
    """The decoded image at most `target` in size, without a second full-size copy."""
    if img.size[0] <= target[0] and img.size[1] <= target[1]:
        return img.copy()
    if img.mode in ("P", "PA", "1"):  # reduce() has no palette mode: pick pixels instead
        return img.resize(target, Image.Resampling.NEAREST)
    factor = math.ceil(max(img.width / target[0], img.height / target[1]))
    # Strip by strip: reduce() (and resize()) of an image with alpha first makes a
    # premultiplied copy of the whole image, 160 MB more at 40 MP; a strip's copy is small.
    out = None
    step = factor * STRIP_ROWS
    try:
        for top in range(0, img.height, step):
            part = img.crop((0, top, img.width, min(img.height, top + step))).reduce(factor)
            if out is None:
                out = Image.new(part.mode, (math.ceil(img.width / factor),
                                            math.ceil(img.height / factor)))
            out.paste(part, (0, top // factor))
    except ValueError:  # a mode reduce() lacks (e.g. I;16): a resize works on any mode
        return img.resize(target, Image.Resampling.BOX)
    return out
