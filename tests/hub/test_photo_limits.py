"""The hub's photo size limit is its own: it never changes Pillow's process-wide limit."""

import io

import pytest
from PIL import Image

from hub.intake import PhotoRejected, clean_image


def test_size_limit_rejects_without_touching_the_global_limit() -> None:
    before = Image.MAX_IMAGE_PIXELS
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(buf, "PNG")
    with pytest.raises(PhotoRejected):
        clean_image(buf.getvalue(), max_pixels=200)
    assert Image.MAX_IMAGE_PIXELS == before  # noqa: SIM300 - the global is what is checked
    data, mime, width, height = clean_image(buf.getvalue(), max_pixels=10_000)
    assert (mime, width, height) == ("image/png", 40, 30)
    assert Image.MAX_IMAGE_PIXELS == before  # noqa: SIM300 - the global is what is checked
