"""The draw tab's handlers and the drawing preprocessing behind them, called as plain functions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vaelab.app import state
from vaelab.app.tabs import draw
from vaelab.preprocess import digits_style, is_blank, mnist_style, preprocess, sketch_to_ink

from .conftest import drawing_of_a_one


def _figures(recons_html: str) -> list[str]:
    """(name, score) of each rebuild in the strip, in order."""
    import re
    assert recons_html.count("<figure>") == recons_html.count("data:image/png;base64,")
    return re.findall("<figcaption><b>(.*?)</b><br>(.*?)</figcaption>", recons_html)


def _unpack(out: dict):
    gallery = _figures(out["recons"])
    return out["seen"], gallery, json.loads(out["map"]) if out["map"] else {}, out["reading"], out["message"]


def test_draw_reconstructs_with_the_default_models():
    seen, gallery, where, reading, msg = _unpack(draw.draw(drawing_of_a_one()))
    plan = draw.draw_plan()
    pca_here = state.pca_for(plan.dataset, 2) is not None
    assert seen.dtype == np.uint8 and len(gallery) == len(plan.default()) - (0 if pca_here else 1) >= 2
    assert all("MSE" in caption for _, caption in gallery)
    assert where["model"] == plan.map_card.name and where["pickable"] is False and where["panels"] == 1
    assert len(where["drawing"]["mu"]) == 2 and all(s >= 0 for s in where["drawing"]["sigma"])
    assert "classifier not available" in reading or "Classifier reads" in reading
    assert "Rebuilt at" in msg


@pytest.mark.parametrize("value", [None, {"background": None, "layers": [], "composite": None},
                                   {"composite": np.full((280, 280), 255, np.uint8)}])
def test_empty_or_cleared_drawing_gives_a_message(value):
    seen, gallery, where, reading, msg = _unpack(draw.draw(value))
    assert gallery == [] and msg == draw.EMPTY_DRAWING
    assert where.get("drawing") is None


def test_classifier_absent_is_said_gracefully(monkeypatch, tmp_path):
    monkeypatch.setenv("VAELAB_CHECKPOINTS", str(tmp_path))
    state._DATA.pop("classifier", None)
    assert draw.classify(torch.zeros(1, 1, 28, 28)).startswith("classifier not available")


def test_mnist_style_fits_20x20_and_centres_by_mass():
    ink = sketch_to_ink(drawing_of_a_one())
    x = mnist_style(ink)
    assert x.shape == (1, 1, 28, 28) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    img = x[0, 0]
    rows = np.flatnonzero(img.max(1) > 0.05)
    assert rows[-1] - rows[0] + 1 in (20, 21)  # the longer side fills the 20-pixel box
    cy = (img.sum(1) * np.arange(28)).sum() / img.sum()
    cx = (img.sum(0) * np.arange(28)).sum() / img.sum()
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1


def test_sketch_to_ink_reads_grey_and_rgba():
    grey = np.full((50, 50), 255, np.uint8)
    grey[10:20, 10:20] = 0
    assert sketch_to_ink(grey)[15, 15] == 1 and sketch_to_ink(grey)[0, 0] == 0
    rgba = np.zeros((50, 50, 4), np.uint8)  # black strokes on transparent black
    rgba[10:20, 10:20, 3] = 255
    ink = sketch_to_ink({"composite": rgba})
    assert ink[15, 15] == 1 and ink[0, 0] == 0
    assert is_blank(sketch_to_ink(None)) and is_blank(sketch_to_ink(np.full((9, 9), 255, np.uint8)))


def test_digits_style_is_8x8_in_unit_range():
    x = digits_style(sketch_to_ink(drawing_of_a_one()))
    assert x.shape == (1, 1, 8, 8) and 0.5 <= x.max() <= 1.0 and x.min() == 0.0
    assert preprocess(sketch_to_ink(drawing_of_a_one()), (1, 8, 8)).shape == (1, 1, 8, 8)
    with pytest.raises(ValueError):
        mnist_style(np.zeros((20, 20)))


def test_the_empty_drawing_help_names_the_pads_buttons():
    from vaelab.app.widgets import asset
    js = asset("draw_pad.js")
    for button in ("Undo", "Clear"):
        assert f"{button}</button>" in js and button in draw.EMPTY_DRAWING


def _data_url(image, fmt="PNG") -> str:
    import base64
    import io
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


def test_the_pads_png_reads_like_the_same_drawing_as_an_array():
    canvas = drawing_of_a_one()["composite"]
    assert np.array_equal(sketch_to_ink(_data_url(canvas)), sketch_to_ink(canvas))
    # strokes on transparent paper (alpha only) are ink too
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[40:240, 120:150, 3] = 255
    assert sketch_to_ink(_data_url(rgba)).sum() == pytest.approx(200 * 30)
    out = draw.draw(_data_url(canvas))
    assert _figures(out["recons"]) and "Rebuilt at" in out["message"]
    assert draw.draw("")["message"] == draw.EMPTY_DRAWING  # Clear sends ""


@pytest.mark.parametrize("bad", [
    "data:image/png;base64,bm90IGEgcG5n",          # base64 of "not a png"
    "data:image/png;base64,@@@",                     # not base64
    "data:text/html;base64,PGI+aGk8L2I+",            # not an image
    "javascript:alert(1)",
    "data:image/png;base64," + "A" * 3_000_000,      # over 2 MB
])
def test_a_drawing_that_cannot_be_read_is_a_clear_error(bad):
    import gradio as gr
    with pytest.raises(gr.Error, match="cannot be read"):
        draw.draw(bad)


def test_a_huge_image_is_refused_before_its_pixels_are_decoded():
    from vaelab.preprocess import DrawingError, decode_data_url
    big = _data_url(np.zeros((1, 5000), np.uint8))  # a tiny file that claims 5000 pixels across
    with pytest.raises(DrawingError, match="at most"):
        decode_data_url(big)


def test_the_default_rebuilds_show_the_bottleneck():
    plan = draw.draw_plan()
    default = plan.default()
    assert default[0] == plan.map_card.name and state.load(default[0]).card.latent_dim == 2
    assert draw.PCA2 in default
    strong = [n for n in default if n not in (plan.map_card.name, draw.PCA2)]
    assert strong and all(state.load(n).card.latent_dim > 2 for n in strong)
    assert set(default) <= set(plan.choices())


def test_the_user_chooses_who_rebuilds(monkeypatch):
    plan = draw.draw_plan()
    two = [c.name for c in plan.candidates][:2]
    seen, gallery, where, reading, msg = _unpack(draw.draw(drawing_of_a_one(), two))
    assert [name for name, _ in gallery] == two
    # PCA-2 without its training images: left out, and the message says why
    monkeypatch.setattr(state, "pca_for", lambda name, dims: None)
    _, gallery, _, _, msg = _unpack(draw.draw(drawing_of_a_one(), [draw.PCA2, two[0]]))
    assert len(gallery) == 1 and "PCA-2 needs" in msg
    _, gallery, _, _, msg = _unpack(draw.draw(drawing_of_a_one(), []))
    assert gallery == [] and "Pick at least one" in msg


def test_a_vae_map_model_places_the_drawing_with_its_posterior():
    plan = draw.draw_plan()
    if plan.map_card is None or not plan.map_card.variational:
        pytest.skip("the draw tab's 2-D model here is not a VAE")
    from vaelab.preprocess import preprocess as prep
    x = torch.from_numpy(prep(sketch_to_ink(drawing_of_a_one()), plan.image_shape))
    lat = state.load(plan.map_card.name).model.encode(x)
    where = _unpack(draw.draw(drawing_of_a_one()))[2]["drawing"]
    assert np.allclose(where["mu"], lat.mean[0].numpy(), atol=1e-5)
    assert np.allclose(where["sigma"], lat.logvar[0].mul(0.5).exp().numpy(), atol=1e-5)
