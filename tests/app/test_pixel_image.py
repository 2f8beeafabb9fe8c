"""The inline image component: the PNG inside the HTML holds exactly the handler's pixels."""

import base64
import io
import re

import numpy as np
from PIL import Image

from vaelab.app.pixel_image import PixelImage


def _decode(html: str) -> np.ndarray:
    src = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src))))


def test_grey_and_colour_arrays_round_trip_exactly():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (30, 41), dtype=np.uint8)
    colour = rng.integers(0, 256, (12, 7, 3), dtype=np.uint8)
    comp = PixelImage(alt="a <test>", width=150)
    assert np.array_equal(_decode(comp.postprocess(grey)), grey)
    assert np.array_equal(_decode(comp.postprocess(colour)), colour)
    html = comp.postprocess(grey)
    assert 'alt="a &lt;test&gt;"' in html and "width:150px" in html and 'width="41" height="30"' in html


def test_float_images_are_scaled_and_clipped():
    comp = PixelImage()
    out = _decode(comp.postprocess(np.array([[0.0, 0.5, 1.0, 2.0, -1.0]], np.float32)))
    assert out.tolist() == [[0, 128, 255, 255, 0]]


def test_nothing_shows_the_empty_text_and_a_string_passes_through():
    comp = PixelImage(empty="Pick an image")
    assert "Pick an image" in comp.postprocess(None)
    assert comp.postprocess("<b>x</b>") == "<b>x</b>"
    assert PixelImage().postprocess(None) == ""


def test_the_initial_value_is_rendered_in_the_page_config():
    comp = PixelImage(np.zeros((4, 4), np.uint8), height=100)
    assert comp.value.startswith('<img class="vl-px" src="data:image/png;base64,') and "height:100px" in comp.value
