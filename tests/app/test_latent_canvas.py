"""The latent map drawn in the page: what its server functions send, and how they refuse bad requests.

The page calls these with whatever a browser (or anyone) posts, so every argument is checked.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from vaelab.app import latent_canvas as canvas
from vaelab.app import state

from .conftest import AE2, VAE2, VAE8


def _points(panel: dict) -> np.ndarray:
    """Undo the 16-bit quantisation the page undoes."""
    out = []
    for axis, key in enumerate("xy"):
        q = np.frombuffer(base64.b64decode(panel[key]), "<u2").astype(np.float64)
        out.append(panel["lo"][axis] + q / 65535 * (panel["hi"][axis] - panel["lo"][axis]))
    return np.stack(out, 1)


def test_points_carry_every_test_image_within_quantisation():
    p = canvas.map_points({"model": VAE2, "view": "latent"})
    m = state.load(VAE2)
    coords = m.arrays["coords_model"]
    assert p["n"] == m.n_test and p["pad"] and p["key"] == f"{VAE2}|latent"
    labels = np.frombuffer(base64.b64decode(p["labels"]), np.uint8)
    assert np.array_equal(labels, m.labels)
    left, right = (_points(q) for q in p["panels"])
    span = coords.max(0) - coords.min(0)
    assert np.abs(left - coords).max() <= span.max() / 65535 + 1e-6
    assert np.allclose(right, m.arrays["coords_pca"], atol=(np.ptp(m.arrays["coords_pca"]) / 65535) + 1e-6)
    assert p["panels"][0]["latent"] and not p["panels"][1]["latent"]
    assert p["panels"][0]["axes"] == ["z₁", "z₂"] and "5-NN accuracy here" in p["panels"][0]["title"]


def test_a_higher_dimensional_latent_has_no_pad_and_gets_a_view_that_applies():
    p = canvas.map_points({"model": VAE8, "view": "latent"})  # the stale view of a 2-D model
    assert not p["pad"] and p["key"] in (f"{VAE8}|umap", f"{VAE8}|pca") and not p["panels"][0]["latent"]


def test_thumbnail_is_the_original_image():
    t = canvas.map_thumb({"model": AE2, "index": 5})
    assert t["src"].startswith("data:image/png;base64,") and t["how"] == "original test image"
    from PIL import Image
    import io
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(t["src"].split(",", 1)[1]))))
    m = state.load(AE2)
    expected = (state.test_image(m, 5)[0, 0].numpy() * 255 + 0.5).astype(np.uint8)
    assert np.array_equal(img, expected)


def test_thumbnail_without_the_dataset_is_the_decoded_latent_labelled_as_such(no_data, monkeypatch):
    m = state.load(VAE2)
    from vaelab.app import catalogue
    fake = state.Loaded(catalogue.Card(**{**m.card.__dict__, "dataset": "mnist"}), m.model, m.metrics, m.arrays)
    monkeypatch.setitem(state._MODELS, (str(state.checkpoints_dir()), "fake-mnist"), fake)
    t = canvas.thumbnail("fake-mnist", 4)
    assert t["src"].startswith("data:image/png") and "decoded from the cached latent" in t["how"]


def test_the_latent_pad_decodes_any_point_of_a_2d_latent():
    out = canvas.map_decode({"model": VAE2, "z": [0.5, -1.0]})
    m = state.load(VAE2)
    from PIL import Image
    import io
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(out["src"].split(",", 1)[1])))) / 255
    expected = state.decode(m, np.array([[0.5, -1.0]], np.float32))[0, 0].numpy()
    assert np.abs(img - expected).max() <= 1 / 255 + 1e-6
    a, b = (canvas.map_decode({"model": VAE2, "z": z})["src"] for z in ([0, 0], [2, 2]))
    assert a != b


@pytest.mark.parametrize("request_", [
    {"model": "no-such-model", "z": [0, 0]},
    {"model": ["a", "list"], "z": [0, 0]},
    {"model": VAE2, "z": [float("nan"), 0]},
    {"model": VAE2, "z": [1e30, 0]},
    {"model": VAE2, "z": "zero"},
    {"model": VAE2, "z": [1, 2, 3]},
    {"model": VAE8, "z": [0, 0]},  # not a 2-D latent
    "not a dict",
])
def test_bad_pad_requests_are_refused_with_a_reason(request_):
    with pytest.raises(canvas.MapRequestError):
        canvas.map_decode(request_)


@pytest.mark.parametrize("index", [-1, 10**9, "x", None, 2.5e300])
def test_bad_thumbnail_requests_are_refused(index):
    with pytest.raises(canvas.MapRequestError):
        canvas.map_thumb({"model": AE2, "index": index})


def test_map_value_is_small_and_names_what_to_draw():
    v = canvas.map_value(VAE2, "latent", 7, ellipse={"mu": [0, 0], "sigma": [1, 1]})
    assert len(v) < 400
    d = json.loads(v)
    assert d["pick"] == 7 and d["label"] == int(state.load(VAE2).labels[7]) and d["ellipse"]["sigma"] == [1, 1]
    assert canvas.read_value("{broken") == {} and canvas.read_value(None) == {} and canvas.read_value("[1]") == {}
