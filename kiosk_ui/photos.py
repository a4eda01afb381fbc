"""Turn what the kiosk camera page sends into a stored photo: scaled, re-encoded, stripped.

Pure logic on bytes (Pillow, no files): decoding also proves the upload is an image, and
re-encoding drops every piece of metadata (EXIF, GPS) before anything is stored.

Memory: a 0.5 MB PNG can decode to 13000 × 13000 pixels (500 MB and more). The size is read
from the header and checked against `max_pixels` before any pixel is decoded; a JPEG is
decoded already scaled down (Pillow's `draft`, DCT scaling), and every image is converted
and reduced band by band, so the peak stays near one decoded copy of an accepted image
(24 MP RGBA: about 100 MB above the app's own memory).
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
        out = io.BytesIO()
        small.save(out, "JPEG", quality=quality, optimize=True)
    except BadPhoto:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
            Image.DecompressionBombError) as exc:
        raise BadPhoto(f"not a readable image: {exc}") from None
    return Photo(out.getvalue())


_GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
_BAND_PIXELS = 1_000_000  # pixels converted at a time: the only full-width copies made


def _reduce(img: Image.Image, max_px: int) -> Image.Image:
    """An RGB or L copy no larger than max_px on its longer side (EXIF data kept).

    Conversion and the integer box reduction run band by band, so no second full-size copy
    of a large image exists (converting RGBA or reducing it whole doubles the peak memory);
    one LANCZOS resize of the already small result follows.
    """
    mode = "L" if img.mode in _GREY_MODES else "RGB"
    width, height = img.size
    factor = max(1, max(width, height) // max_px)  # the reduced image stays >= max_px
    if factor == 1 and img.mode == mode:
        small = img.copy()
    else:
        band = max(1, _BAND_PIXELS // width) * factor  # a multiple of factor: bands align
        small = Image.new(mode, (-(-width // factor), -(-height // factor)))
        for top in range(0, height, band):
            part = img.crop((0, top, width, min(height, top + band))).convert(mode)
            if factor > 1:
                part = part.reduce(factor)
            small.paste(part, (0, top // factor))
    longer = max(small.size)
    if longer > max_px:
        scale = max_px / longer
        small = small.resize((max(1, round(small.width * scale)), max(1, round(small.height * scale))),
                             Image.Resampling.LANCZOS)
    exif = img.getexif()
    if exif:
        small.info["exif"] = exif.tobytes()
    return small
