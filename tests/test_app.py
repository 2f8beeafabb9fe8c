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
