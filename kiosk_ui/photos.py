"""Turn what the kiosk camera page sends into a stored photo: scaled, re-encoded, stripped.

Pure logic on bytes (Pillow, no files): decoding also proves the upload is an image, and
re-encoding drops every piece of metadata (EXIF, GPS) before anything is stored.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

from kiosk_ui.outbox import Photo
from posko.errors import PoskoError

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")


class BadPhoto(PoskoError, ValueError):
    """The upload is not a JPEG, PNG or WebP image the kiosk can read."""


def prepare_photo(data: bytes, max_px: int = 1600, quality: int = 85) -> Photo:
    """Decode, orient, scale so the longer side is <= max_px, and re-encode as JPEG.

    Raises BadPhoto for empty, unreadable or unsupported data.
    """
    if not data:
        raise BadPhoto("empty photo")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in ACCEPTED_FORMATS:
                raise BadPhoto(f"unsupported image format {img.format}")
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode not in ("RGB", "L"):
                img = img.convert("RGB")
            img.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            img.save(out, "JPEG", quality=quality, optimize=True)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise BadPhoto(f"not a readable image: {exc}") from None
    return Photo(out.getvalue())
