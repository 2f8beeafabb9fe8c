"""Explored models in the app: a test's own module served and answering, diffusers and pythae
models in the tabs that apply (colour images at their size), and the checkpoint upload."""

from __future__ import annotations

import json
import zipfile

import gradio as gr
import numpy as np
import pytest
import torch
from torch import nn

from vaelab import external as ex
from vaelab.app import build, explored, latent_canvas, state
from vaelab import viz
from vaelab.app.tabs import codebook, draw, latent_map, models, sliders

from ..test_external import TinyVAE, blobs, diffusers_kl, diffusers_vq, pythae_vae


def tab_names(demo) -> list[str]:
    return [b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)]


@pytest.fixture(scope="module")
def kl_card():
    x, y = blobs()
    return explored.register(ex.embed(diffusers_kl(), x, labels=y, progress=False), "tiny kl")


@pytest.fixture(scope="module")
def vq_card():
    x, y = blobs()
    return explored.register(ex.embed(diffusers_vq(), x, labels=y, progress=False), "tiny vq")


def test_a_module_defined_here_is_explored_and_its_endpoints_answer():
    from gradio_client import Client

    class Mine(nn.Module):  # defined in the test itself
        def __init__(self):
            super().__init__()
            self.e, self.d = nn.Linear(3 * 16 * 16, 2), nn.Linear(2, 3 * 16 * 16)

        def encode(self, x):
            return self.e(x.flatten(1))

        def decode(self, z):
            return torch.sigmoid(self.d(z)).reshape(-1, 3, 16, 16)

    x, y = blobs(80)
    demo = explored.explore(Mine(), x, labels=y, name="mine", launch=False, progress=False)
    assert tab_names(demo) == ["Latent map", "Draw", "Models"]  # a 2-D plain AE: no sliders, no codes
    demo.launch(prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        name = explored.catalogue.explored_cards()[-1].name
        out = client.predict(name, 5, api_name="/pick_row")
        assert any("Test image #5" in str(v) for v in out)
        assert "mine" in client.predict(api_name="/status")
    finally:
        demo.close()
    m = state.load(name)
    # a 2-D latent: the map is the latent itself and the pad decodes any z, in colour
    payload = latent_canvas.map_points({"model": name, "view": "latent"})
    assert payload["n"] == 80 and payload["classes"] == ["0", "1", "2", "3"] and payload["noun"] == "class"
    decoded = latent_canvas.map_decode({"model": name, "z": [0.1, -0.2]})
    assert decoded["src"].startswith("data:image/png")
    assert m.info.latent_dim == 2


def test_a_diffusers_kl_model_fills_the_map_and_the_sliders_in_colour(kl_card):
    name = kl_card.name
    out = latent_map.pick(name, 3)
    assert out["original"].ndim == 3 and out["original"].shape[2] == 3  # shown in colour
    assert out["model_recon"].shape == out["original"].shape
    assert "class" in out["caption"] and "PCA with" in out["caption"]
    m = state.load(name)
    # the model's rebuild shown is the model's, recomputed here
    x = state.test_image(m, 3)
    rec = torch.as_tensor(out["model_recon"][::out["model_recon"].shape[0] // 16, ::out["model_recon"].shape[1] // 16])
    assert torch.allclose(rec.float() / 255, m.model.reconstruct(x)[0].permute(1, 2, 0), atol=1 / 255 + 1e-6)
    setup = sliders.setup_sliders(name, sliders.START_TEST, 2, 0)
    assert isinstance(setup, dict) and setup
    strip = sliders.traverse(name, 0, sliders.slider_dims(m)[0], sliders.START_PRIOR, 0, *([0.0] * sliders.MAX_SLIDERS))
    assert strip.ndim == 3 and strip.shape[2] == 3
    assert tab_names(build([kl_card], explored=True)) == ["Latent map", "Latent sliders", "Draw", "Models"]


def test_a_diffusers_vq_model_fills_the_codebook_tab(vq_card):
    name = vq_card.name
    out = codebook.select_model(name, None, 0, [name])
    assert "codes used" in out["stats"] and out["atlas"].shape[2] == 3
    v = json.loads(out["cells"])
    assert np.asarray(v["maps"][0]).shape == (8, 8)
    v["sel"] = [2, 3]
    edited = json.loads(codebook.edit_cell({"value": json.dumps(v), "code": (v["maps"][0][2][3] + 1) % 16})["value"])
    assert edited["edited"] == [[2, 3]] and edited["decoded"] != v["decoded"]
    assert tab_names(build([vq_card], explored=True)) == ["Latent map", "Draw", "Codebook", "Models"]


def test_a_pythae_model_is_explored_on_grey_images():
    x = torch.rand(60, 1, 28, 28)
    card = explored.register(ex.embed(pythae_vae(), x, progress=False), "tiny pythae")
    out = latent_map.pick(card.name, 1)
    assert out["original"].ndim == 2  # grey stays grey
    assert sliders.decode_sliders(card.name, 0, sliders.START_PRIOR, 0, *([0.0] * sliders.MAX_SLIDERS)).ndim == 2


def test_explored_names_are_unique():
    a = explored.register(ex.embed(TinyVAE(), torch.rand(20, 1, 8, 8), image_shape=(1, 8, 8), progress=False), "same")
    b = explored.register(ex.embed(TinyVAE(), torch.rand(20, 1, 8, 8), image_shape=(1, 8, 8), progress=False), "same")
    assert a.name != b.name and state.load(a.name).model is not state.load(b.name).model


# --- the upload -------------------------------------------------------------------------------------

def _zip(folder, path, extra=None, prefix="ck"):
    with zipfile.ZipFile(path, "w") as z:
        for p in folder.rglob("*"):
            if p.is_file():
                z.write(p, f"{prefix}/{p.relative_to(folder)}")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits):
    import vaelab

    folder = tmp_path_factory.mktemp("ck") / "ck"
    torch.manual_seed(0)
    model = vaelab.create("vae", image_shape=digits.image_shape, latent_dim=2, hidden=(32,))
    vaelab.fit(model, digits.subset(300, 100), epochs=1, out_dir=folder)
    return folder


def test_a_valid_checkpoint_zip_loads_through_the_upload(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("VAELAB_RUNS", str(tmp_path / "runs"))
    # a metrics.json in the zip is not trusted: the server scores the model itself
    z = _zip(trained, tmp_path / "mine.zip", {"ck/metrics.json": '{"reconstruction": {"mse": 0.0}}'})
    out = models.load_upload(str(z), [], progress=lambda *a, **k: None)
    (name,) = out["mine"]
    assert "Loaded" in out["upload_status"] and "your vae" in out["upload_status"]
    m = state.load(name)
    assert m.metrics["reconstruction"]["mse"] > 0
    assert latent_map.pick(name, 0)["caption"].startswith("**Test image #0**")


@pytest.mark.parametrize("case, message", [
    ("not a zip", "not a zip"), ("traversal", "points outside"), ("pickle", "nothing executable or pickled"),
    ("no weights", "no model.safetensors"), ("two", "one checkpoint folder"), ("huge config", "latent_dim"), ("wide config", "parameters"),
    ("wrong weights", "but the config gives"), ("unknown variant", "unknown variant"), ("bomb", "more than a checkpoint file"),
])
def test_an_invalid_zip_is_refused_with_a_message(case, message, trained, tmp_path, monkeypatch):
    monkeypatch.setenv("VAELAB_RUNS", str(tmp_path / "runs"))
    config = json.loads((trained / "config.json").read_text())
    z = tmp_path / "bad.zip"
    if case == "not a zip":
        z.write_text("hello")
    elif case == "traversal":
        _zip(trained, z, {"../../evil.json": "{}"})
    elif case == "pickle":
        _zip(trained, z, {"ck/extra.pt": b"\x80\x04"})
    elif case == "no weights":
        with zipfile.ZipFile(z, "w") as f:
            f.writestr("ck/config.json", json.dumps(config))
    elif case == "two":
        _zip(trained, z, {"other/config.json": "{}", "other/model.safetensors": b""})
    elif case in ("huge config", "unknown variant", "wide config"):
        bad = (dict(config, config={**config["config"], "latent_dim": 10**9}) if case == "huge config" else
               dict(config, config={**config["config"], "hidden": [60_000, 60_000]}) if case == "wide config" else
               dict(config, variant="no-such-thing"))
        with zipfile.ZipFile(z, "w") as f:
            f.writestr("x/config.json", json.dumps(bad))
            f.writestr("x/model.safetensors", (trained / "model.safetensors").read_bytes())
    elif case == "wrong weights":
        bad = dict(config, config={**config["config"], "latent_dim": 5})
        with zipfile.ZipFile(z, "w") as f:
            f.writestr("x/config.json", json.dumps(bad))
            f.writestr("x/model.safetensors", (trained / "model.safetensors").read_bytes())
    elif case == "bomb":
        with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as f:
            f.writestr("x/config.json", json.dumps(config))
            f.writestr("x/model.safetensors", b"\0" * (130 * 2**20))
    with pytest.raises(gr.Error, match=message):
        models.load_upload(str(z), [], progress=lambda *a, **k: None)
    runs = tmp_path / "runs" / "uploads"
    assert not runs.exists() or not any(runs.iterdir())  # nothing half-unpacked is left behind


def test_sliders_on_a_large_spatial_latent_start_from_the_images_whole_latent(kl_card):
    """256 numbers, 32 sliders: the start is the test image's full posterior mean, unclipped; a
    moved slider changes its number only, the 224 numbers without a slider keep the image's."""
    name = kl_card.name
    m = state.load(name)
    assert m.card.latent_dim > sliders.MAX_SLIDERS
    i = 2
    full = m.arrays["latent_test"][i]
    out = sliders.setup_sliders(name, sliders.START_TEST, i, 0)
    values = [out[f"z_{j}"]["value"] for j in range(sliders.MAX_SLIDERS)]
    want = viz.to_display(state.decode(m, full[None])[0])
    assert np.array_equal(out["decoded"], want)  # the image's own latent, every number as it is
    assert np.array_equal(sliders.decode_sliders(name, 0, sliders.START_TEST, i, *values), want)
    d0 = sliders.slider_dims(m)[0]
    moved = list(values)
    moved[0] = 2.5 if abs(values[0] - 2.5) > 0.1 else -2.5
    z = full.copy()
    z[d0] = moved[0]
    got = sliders.decode_sliders(name, 0, sliders.START_TEST, i, *moved)
    assert np.array_equal(got, viz.to_display(state.decode(m, z[None])[0]))
    assert "the other 224 keep the test image's values" in out["explanation"]


class GreyAE(torch.nn.Module):
    """A linear encoder and a sigmoid decoder over grey ``side``×``side`` images, ``code`` numbers."""

    def __init__(self, side: int, code: int):
        super().__init__()
        self.side = side
        self.e, self.d = torch.nn.Linear(side * side, code), torch.nn.Linear(code, side * side)

    def encode(self, x):
        return self.e(x.flatten(1))

    def decode(self, z):
        return torch.sigmoid(self.d(z)).reshape(-1, 1, self.side, self.side)


def test_a_one_number_latent_is_mapped_across_with_a_random_spread():
    x = torch.rand(40, 1, 8, 8)
    net = GreyAE(side=8, code=1)
    card = explored.register(ex.embed(net, x, labels=torch.arange(40) % 2, progress=False), "one number")
    payload = latent_canvas.map_points({"model": card.name, "view": "pca"})
    assert payload["n"] == 40 and payload["panels"][0]["axes"][1].startswith("random spread")
    across = state.load(card.name).arrays["coords_model"][:, 0]
    assert np.allclose(across, net.encode(x).detach().numpy()[:, 0], atol=1e-5)  # the number itself, across


def test_the_codebook_tab_says_a_model_without_a_prior_has_nothing_to_sample(vq_card):
    out = codebook.sample_prior(vq_card.name, 1.0, 0)
    assert "no prior over its code maps" in out["samples_note"] and "unexpected keyword" not in out["samples_note"]


def test_an_explored_grey_digit_model_can_be_drawn_for():
    card = explored.register(ex.embed(GreyAE(side=28, code=2), torch.rand(30, 1, 28, 28), progress=False), "my digits")
    assert draw.drawable([card]) == [card]
    plan = draw.draw_plan([card])
    assert plan.candidates == [card] and plan.map_card == card
    ink = np.zeros((280, 280), np.uint8)
    ink[60:220, 130:150] = 255
    from PIL import Image
    import base64
    import io
    buf = io.BytesIO()
    Image.fromarray(255 - ink).save(buf, "PNG")
    out = draw.draw("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(), [card.name], plan)
    assert "my digits" in out["recons"] and out["seen"].shape[0] == out["seen"].shape[1]
    assert "Draw" in tab_names(build([card], explored=True))


def test_the_map_says_how_a_spatial_latent_became_a_point(kl_card):
    payload = latent_canvas.map_points({"model": kl_card.name, "view": "pca"})
    assert "flattened latent (4×8×8 = 256 numbers)" in payload["note"] or "averaged over" in payload["note"]
