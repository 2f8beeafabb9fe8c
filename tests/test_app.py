"""The app shell: it imports without data or network and answers HTTP."""

import urllib.request

import pytest

from vaelab.registry import list_variants


@pytest.fixture(scope="module")
def app_module():
    import app
    return app


def test_variants_table_lists_the_registry(app_module):
    table = app_module.variants_table()
    for entry in list_variants():
        assert f"`{entry.name}`" in table


def test_status_says_what_data_is_available(app_module, monkeypatch, tmp_path):
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path))
    assert "not found" in app_module.dataset_status() and "digits" in app_module.dataset_status()
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"")
    assert app_module.dataset_status().startswith("MNIST found")


def test_app_serves_http(app_url):
    assert urllib.request.urlopen(app_url, timeout=30).status == 200


def test_no_umap_or_numba_at_start_up():
    code = "import app, sys; assert 'umap' not in sys.modules and 'numba' not in sys.modules"
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=300)


def _endpoint_args(app_module, tmp_path):
    """Arguments for every named endpoint, as a client would send them."""
    import numpy as np
    from gradio_client import handle_file
    from PIL import Image

    from vaelab import explorer as ex

    canvas = np.full((280, 280), 255, np.uint8)
    canvas[40:240, 120:150] = 0
    path = tmp_path / "one.png"
    Image.fromarray(canvas).save(path)
    drawing = {"background": handle_file(str(path)), "layers": [], "composite": handle_file(str(path))}
    vae = app_module.SLIDER_DEFAULT
    z = [0.5] * ex.MAX_SLIDERS
    return {
        "/status": [],
        # in this order: a session's projection choices follow the model last shown
        "/init_latent_map": [app_module.MAP_DEFAULT, ex.PROJ_LATENT, 0],
        "/latent_map": ["digits-vae-8", ex.PROJ_LATENT, 2],
        "/latent_map_projection": ["digits-vae-8", ex.PROJ_UMAP, 2],
        "/pick_point": ["digits-vae-8", ex.PROJ_UMAP, 7],
        "/sliders_model": [vae, ex.START_TEST, 3, 0],
        "/sliders_start": [vae, ex.START_PRIOR, 3, 0],
        "/sliders_start_image": [vae, ex.START_TEST, 9, 0],
        "/init_sliders": [vae, ex.START_TEST, 0, 0],
        "/decode": [vae, 0, *z],
        "/traverse": [vae, 0, ex.slider_dims(ex.load(vae))[0], *z],
        "/traverse_dim": [vae, 0, ex.slider_dims(ex.load(vae))[1], *z],
        "/sample": [vae, 0, 3],
        "/interpolate": [vae, 0, 5, 0],
        "/draw": [drawing],
        "/init_draw": [drawing],
    }


def test_every_named_endpoint_answers_through_gradio_client(app_module, app_url, tmp_path):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    args = _endpoint_args(app_module, tmp_path)
    assert set(named) == set(args), "every endpoint needs a case here"
    for name, values in args.items():
        result = client.predict(*values, api_name=name)
        assert result is not None, name
    seen, gallery, *_ = client.predict(*args["/draw"], api_name="/draw")
    assert len(gallery) >= 2
