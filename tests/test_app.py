"""The app shell: it imports without data or network and answers HTTP."""

import urllib.request

import pytest

from vaelab.registry import list_variants

from .conftest import ROOT


def test_variants_table_lists_the_registry():
    from vaelab.app.tabs.models import variants_table

    table = variants_table()
    for entry in list_variants():
        assert f"`{entry.name}`" in table


def test_status_says_what_data_is_available(monkeypatch, tmp_path):
    from vaelab.app.state import dataset_status

    from vaelab.app.state import host_instructions

    monkeypatch.setenv("VAELAB_DATA", str(tmp_path))
    assert "no copy of MNIST" in dataset_status() and "digits" in dataset_status()
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"")
    assert "no copy of MNIST" in dataset_status()  # the training images are needed too
    from vaelab.app.state import MNIST_FILES
    for f in MNIST_FILES:
        (raw / f).write_bytes(b"")
    assert dataset_status().startswith("The MNIST test images are on this server")
    # visitors see no setting and no server path; the host's instructions have both
    for line in (dataset_status(),):
        assert "VAELAB" not in line and str(tmp_path) not in line and "/" not in line.replace("2-D", "")
    assert "VAELAB_DATA" in host_instructions() and str(tmp_path) in host_instructions()


def test_app_serves_http(app_url):
    assert urllib.request.urlopen(app_url, timeout=30).status == 200


def test_no_umap_or_numba_at_start_up():
    code = "import app, sys; assert 'umap' not in sys.modules and 'numba' not in sys.modules"
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=300)


def _endpoint_args(tmp_path):
    """Arguments for every named endpoint, as a client would send them."""
    import numpy as np
    from PIL import Image

    from vaelab.app.catalogue import scan_checkpoints
    from vaelab.app.state import load
    from vaelab.app.tabs import draw, latent_map, sliders

    canvas = np.full((280, 280), 255, np.uint8)
    canvas[40:240, 120:150] = 0
    import base64
    import io
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="PNG")
    drawing = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()  # what the pad sends
    cards = scan_checkpoints()
    vae = sliders.default_model(cards)
    from vaelab.app.tabs import beta
    series = beta.series_names(cards)
    from vaelab.app.tabs import codebook
    books = [c.name for c in codebook.codebook_models(cards)]
    cell = codebook.show_image(books[0], None, 0)["cells"] if books else ""
    cell = cell.replace('"sel": null', '"sel": [0, 0]')
    from vaelab.app.tabs import gumbel
    gmodels = [c.name for c in gumbel.gumbel_models(cards)]
    z = [0.5] * sliders.MAX_SLIDERS
    from vaelab.app.tabs import regularisers, train
    den, sparse, contr = ([c.name for c in f(cards)] for f in (regularisers.denoising_models, regularisers.sparse_models,
                                                                 regularisers.contractive_models))
    knobs = {**{k.field: train.defaults("ae", "digits").get(k.field) for k in train.KNOBS}, "latent_dim": 2, "epochs": 3}
    knobs = [knobs[k.field] for k in train.KNOBS]
    import zipfile

    from gradio_client import handle_file
    upload = tmp_path / "digits-ae-2d.zip"  # a shipped checkpoint, zipped as a user would
    with zipfile.ZipFile(upload, "w") as archive:
        for f in ("config.json", "model.safetensors"):
            archive.write(ROOT / "checkpoints" / "digits-ae-2d" / f, f"digits-ae-2d/{f}")
    return {
        "/status": [],
        # in this order: a session's projection choices follow the model last shown
        "/init_latent_map": [latent_map.default_model(cards), latent_map.PROJ_LATENT, 0],
        "/latent_map": ["digits-vae-8", latent_map.PROJ_LATENT, 2],
        "/latent_map_details": ["digits-vae-8", latent_map.PROJ_LATENT, 2],
        "/latent_map_projection": ["digits-vae-8", latent_map.PROJ_UMAP, 2],
        "/latent_map_projection_details": ["digits-vae-8", latent_map.PROJ_UMAP, 2],
        "/pick_point": ["digits-vae-8", latent_map.PROJ_UMAP, 7],
        "/pick_row": ["digits-vae-8", 7],
        "/map_clicked": ['{"model": "digits-vae-2d", "view": "latent", "pick": 11}', "digits-vae-2d",
                         latent_map.PROJ_LATENT],
        "/sliders_model": [vae, sliders.START_TEST, 3, 0],
        "/sliders_start": [vae, sliders.START_PRIOR, 3, 0],
        "/sliders_start_image": [vae, sliders.START_TEST, 9, 0],
        "/init_sliders": [vae, sliders.START_TEST, 0, 0],
        "/decode": [vae, 0, sliders.START_PRIOR, 0, *z],
        "/traverse": [vae, 0, sliders.slider_dims(load(vae))[0], sliders.START_TEST, 4, *z],
        "/traverse_dim": [vae, 0, sliders.slider_dims(load(vae))[1], sliders.START_PRIOR, 0, *z],
        "/sample": [vae, 0, 3],
        "/interpolate": [vae, 0, 5, 0],
        "/draw": [drawing, draw.draw_plan().default()],
        **({"/codebook_model": [books[0], "codes", 1], "/codebook_level": [books[0], "codes", 1],
            "/codebook_image": [books[0], "codes", 2],
            "/codebook_epoch": [books[0], 1], "/codebook_edit": [{"value": cell, "code": 3}], "/codebook_sample": [books[0], 1.0, 0],
            "/init_codebook": [books[0], "codes", 0, 1.0, 0]} if books else {}),
        **({"/gumbel_tau": [{"model": gmodels[0], "log_tau": -0.5, "index": 1, "seed": 0}],
            "/gumbel_tau_settled": [gumbel.live_value(gmodels[0], -0.5, 1, 0)], "/gumbel_model": [gmodels[0], "", 1, 0],
            "/gumbel_image": [gmodels[0], gumbel.live_value(gmodels[0], 0.5, 1, 0), 2, 0],
            "/gumbel_seed": [gmodels[0], "", 2, 3], "/init_gumbel": [gmodels[0], "", 0, 0]} if gmodels else {}),
        **({"/beta_select": [series[1], "2nd", 0], "/beta_rank": ["3rd", 0],
            "/beta_start": [series[1], "1st", 5, 0], "/init_beta": [series[1], "1st", 0, 0]} if series else {}),
        "/init_draw": [drawing, [draw.PCA2]],
        # in this order: the session's job is started, replayed, stopped (already finished), resumed
        "/train_variant": ["vae", "digits"], "/train_dataset": ["ae", "digits"], "/train_check": ["ae", "digits", *knobs],
        "/train_start": ["ae", "digits", *knobs], "/train_scrub": [2], "/train_stop": [], "/train_resume": [],
        "/upload_checkpoint": [handle_file(str(upload)), []], "/load_from_hub": ["someone/not-on-this-machine", []],
        **({"/reg_den_model": [den[0], "masking", 0.3, 1, 0], "/reg_noise": [den[0], "gaussian", 0.3, 1, 0],
            "/reg_level": [den[0], "masking", 0.6, 1, 0], "/reg_den_image": [den[0], "masking", 0.3, 2, 0],
            "/reg_den_seed": [den[0], "masking", 0.3, 2, 4], "/init_regularisers_0": [den[0], "masking", 0.3, 0, 0]}
           if den else {}),
        **({"/reg_sparse_model": [sparse[0], 10, 1], "/reg_k": [sparse[0], 5, 1], "/reg_sparse_image": [sparse[0], 5, 3],
            f"/init_regularisers_{int(bool(den))}": [sparse[0], 10, 0]} if sparse else {}),
        **({"/reg_contractive_model": [contr[0], 0.05, 1], "/reg_eps": [contr[0], 0.2, 1],
            "/reg_contractive_image": [contr[0], 0.05, 3],
            f"/init_regularisers_{int(bool(den)) + int(bool(sparse))}": [contr[0], 0.05, 0]} if contr else {}),
    }


def test_every_named_endpoint_answers_through_gradio_client(app_url, tmp_path):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    args = _endpoint_args(tmp_path)
    assert set(named) == set(args), "every endpoint needs a case here"
    for name, values in args.items():
        if name == "/load_from_hub":  # no network here: a clear refusal (tests/test_hub.py loads from a cache)
            with pytest.raises(Exception, match="could not be downloaded"):
                client.predict(*values, api_name=name)
            continue
        result = client.predict(*values, api_name=name)
        assert result is not None, name
    seen, recons, *_ = client.predict(*args["/draw"], api_name="/draw")
    assert recons.count("<figure>") >= 2


def test_switching_between_2d_and_higher_dimensional_maps_never_errors(app_url):
    """A switch can send a request that still carries the previous model's 2-D view; with the
    view's choices following the model, Gradio rejected it and every output showed "Error"."""
    from gradio_client import Client

    from vaelab.app.tabs import latent_map

    client = Client(app_url, verbose=False)
    for name, view in [("digits-vae-8", latent_map.PROJ_PCA), ("digits-vae-2d", latent_map.PROJ_PCA),
                       ("digits-vae-8", latent_map.PROJ_PCA), ("digits-vae-2d", latent_map.PROJ_UMAP),
                       ("digits-vae-8", latent_map.PROJ_LATENT), ("vq-vae", latent_map.PROJ_LATENT)]:
        result = client.predict(name, view, 1, api_name="/latent_map")
        shown = result[1]["value"] if isinstance(result[1], dict) else result[1]  # an update, or a value
        assert shown in (latent_map.PROJ_LATENT, latent_map.PROJ_PCA, latent_map.PROJ_UMAP)
        if name == "digits-vae-2d":
            assert shown == latent_map.PROJ_LATENT  # the view that applies is sent back
        else:
            assert shown != latent_map.PROJ_LATENT


def test_a_fresh_client_can_traverse(app_url):
    """The dimension picker gets its choices when the page loads; a client that never loaded
    the page can still ask for a traversal."""
    from gradio_client import Client

    from vaelab.app.tabs import sliders

    client = Client(app_url, verbose=False)
    strip = client.predict("digits-vae-8", 0, 1, sliders.START_PRIOR, 0, *([0.0] * sliders.MAX_SLIDERS), api_name="/traverse")
    assert strip is not None


def test_a_click_in_the_map_from_a_fresh_client_fills_the_image_row(app_url):
    import json

    from gradio_client import Client

    from vaelab.app.tabs import latent_map

    client = Client(app_url, verbose=False)
    out = client.predict(json.dumps({"model": "digits-vae-2d", "view": "latent", "pick": 11}), "digits-vae-2d",
                         latent_map.PROJ_LATENT, api_name="/map_clicked")
    texts = [o for o in out if isinstance(o, str)]
    assert any("Test image #11" in t for t in texts)


def _component_server(app_url: str, elem_id: str, fn: str, data) -> tuple[int, object]:
    """Call one of a component's server functions as the page does, with no session behind it."""
    import json

    config = json.loads(urllib.request.urlopen(app_url + "config", timeout=30).read())
    comp = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)
    body = json.dumps({"session_hash": "fresh-client", "component_id": comp["id"], "fn_name": fn,
                       "data": data}).encode()
    prefix = config.get("api_prefix", "/gradio_api").rstrip("/")
    request = urllib.request.Request(app_url.rstrip("/") + prefix + "/component_server", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def test_the_maps_server_functions_answer_a_fresh_client(app_url):
    import urllib.error  # noqa: F401  (used by _component_server)

    status, points = _component_server(app_url, "map-canvas", "map_points", {"model": "digits-vae-2d", "view": "latent"})
    assert status == 200 and points["n"] > 100 and len(points["panels"]) == 2
    status, thumb = _component_server(app_url, "map-canvas", "map_thumb", {"model": "digits-vae-2d", "index": 3})
    assert status == 200 and thumb["src"].startswith("data:image/png;base64,")
    status, pad = _component_server(app_url, "draw-map", "map_decode", {"model": "digits-vae-2d", "z": [0.1, 0.2]})
    assert status == 200 and pad["src"].startswith("data:image/png;base64,")
    # a request for something that is not there is refused, and the server stays up
    status, _ = _component_server(app_url, "map-canvas", "map_decode", {"model": "../../etc", "z": [0, 0]})
    assert status >= 400
    status, _ = _component_server(app_url, "map-canvas", "map_points", {"model": "digits-vae-2d", "view": "latent"})
    assert status == 200


def test_a_drawing_that_is_not_an_image_is_refused_with_a_reason(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    import pytest
    with pytest.raises(Exception, match="cannot be read"):
        client.predict("data:image/png;base64,bm90IGEgcG5n", [], api_name="/draw")
    seen, recons, *_ = client.predict("", [], api_name="/draw")  # cleared: a message, no error
    assert "<figure>" not in recons


def test_training_streams_to_its_session_and_no_other(app_url):
    from gradio_client import Client

    from vaelab.app.tabs import train

    knobs = {**{k.field: train.defaults("vae", "digits").get(k.field) for k in train.KNOBS}, "latent_dim": 2,
             "epochs": 30}
    mine, other = Client(app_url, verbose=False), Client(app_url, verbose=False)
    job = mine.submit("vae", "digits", *[knobs[k.field] for k in train.KNOBS], api_name="/train_start")
    updates = list(job)  # every streamed view, the last one included
    status = [u[0] for u in updates]
    assert len(updates) >= 3 and "Finished" in status[-1], status
    assert any("Training" in s or "Starting" in s or "Waiting" in s for s in status[:-1])
    assert mine.predict(5, api_name="/train_scrub") is not None
    with pytest.raises(Exception, match="no training job of yours"):
        other.predict(2, api_name="/train_scrub")
    # another session cannot pick it: Gradio checks a choice against that session's picker (the
    # trained model joins the pickers of the page that trained it: tests/test_browser.py)
    from vaelab.app.tabs import latent_map

    name = f"trained-{next(j.id for j in train.JOBS.values() if j.owner == mine.session_hash)}"
    with pytest.raises(Exception, match="not in the list of choices"):
        other.predict(name, latent_map.PROJ_LATENT, 0, api_name="/latent_map")


def test_with_no_checkpoints_each_tab_says_what_it_would_need(tmp_path, monkeypatch):
    from vaelab.app import build, state

    monkeypatch.setenv("VAELAB_CHECKPOINTS", str(tmp_path))
    state.clear_caches()
    config = build().get_config_file()
    shown = [c["props"].get("value") for c in config["components"] if c.get("type") == "markdown"]
    for words in ("No β series is shipped", "No model with a codebook", "No model with Gumbel-softmax codes",
                  "No regularised autoencoder"):
        assert any(isinstance(t, str) and t.startswith(words) for t in shown), words
