"""Turn what the kiosk camera page sends into a stored photo: scaled, re-encoded, stripped.

Pure logic on bytes (Pillow, no files): decoding also proves the upload is an image, and
re-encoding drops every piece of metadata (EXIF, GPS) before anything is stored.

Memory: a 0.5 MB PNG can decode to 13000 × 13000 pixels (500 MB and more). The size is read
from the header and checked against `max_pixels` before any pixel is decoded; a JPEG is
decoded already scaled down (Pillow's `draft`, DCT scaling), and every image is reduced to
the stored size before it is converted, so the peak stays near one decoded copy of an
accepted image.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

from kiosk_ui.outbox import Photo
from posko.errors import PoskoError

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
DEFAULT_MAX_PIXELS = 24_000_000
# Decoded bytes per pixel of the widest modes Pillow gives these formats (RGBA, I, F).
_WIDEST_PIXEL = 4


class BadPhoto(PoskoError, ValueError):
    """The upload is not a JPEG, PNG or WebP image the kiosk can read."""


class PhotoTooLarge(BadPhoto):
    """The image has more pixels than the kiosk decodes."""


def prepare_photo(data: bytes, max_px: int = 1600, quality: int = 85,
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Decode, orient, scale so the longer side is <= max_px, and re-encode as JPEG.

    Raises BadPhoto for empty, unreadable or unsupported data and PhotoTooLarge when the
    header announces more than `max_pixels` pixels (nothing is decoded then).
    """
    if not data:
        raise BadPhoto("empty photo")
    try:
        # formats=: only these decoders are tried (no exotic plug-in parses the upload).
        with Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS)) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise PhotoTooLarge(f"image is {width}x{height}, more than {max_pixels} pixels")
            if img.format == "JPEG":
                # Decode at 1/2, 1/4 or 1/8 scale straight from the DCT, never below max_px.
                img.draft("RGB", (max_px, max_px))
            img.load()
            small = _reduce(img, max_px)
        small = ImageOps.exif_transpose(small)
        if small.mode not in ("RGB", "L"):
            small = small.convert("RGB")
        out = io.BytesIO()
        small.save(out, "JPEG", quality=quality, optimize=True)
    except BadPhoto:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
            Image.DecompressionBombError) as exc:
        raise BadPhoto(f"not a readable image: {exc}") from None
    return Photo(out.getvalue())


def _reduce(img: Image.Image, max_px: int) -> Image.Image:
    """A copy no larger than max_px on its longer side (the EXIF data goes along)."""
    longer = max(img.size)
    if longer <= max_px:
        return img.copy()
    # reduce() first (cheap box filter by an integer factor), then one LANCZOS resize.
    factor = max(1, longer // (max_px * 2))
    work = img.reduce(factor) if factor > 1 else img
    scale = max_px / max(work.size)
    size = (max(1, round(work.width * scale)), max(1, round(work.height * scale)))
    if work.mode not in ("RGB", "RGBA", "L", "LA"):
        work = work.convert("RGBA" if "A" in work.mode or work.mode == "P" else "RGB")
    small = work.resize(size, Image.Resampling.LANCZOS)
    small.info = dict(img.info)
    exif = img.getexif()
    if exif:
        small.info["exif"] = exif.tobytes()
    return small
