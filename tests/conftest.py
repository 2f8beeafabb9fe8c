import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# the app fetches MNIST in the background when it is missing; the suite never downloads
# (tests/app/test_fetch.py turns it on against a loopback server)
os.environ.setdefault("VAELAB_FETCH", "0")
torch.set_num_threads(1)  # tiny models gain nothing from more; CI machines have 2 cores

SHARED_DATA = ROOT.parent / "shared" / "data"


def mnist_dir() -> Path | None:
    """The folder holding MNIST/raw/ if this machine has one ($VAELAB_DATA or ../shared/data)."""
    for candidate in (os.environ.get("VAELAB_DATA"), SHARED_DATA):
        if candidate and (Path(candidate) / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def digits():
    from vaelab.data import load_digits
    return load_digits().with_validation()


@pytest.fixture(scope="session")
def mnist():
    where = mnist_dir()
    if where is None:
        pytest.skip("MNIST not available: set VAELAB_DATA to a folder holding MNIST/raw/ "
                    "(on the project's machines, ../shared/data)")
    from vaelab.data import load_dataset
    return load_dataset("mnist", where, download=False)


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """The app served once per test session (gradio_client and browser tests share it); models
    trained in its Train tab go to a temporary folder."""
    os.environ["VAELAB_RUNS"] = str(tmp_path_factory.mktemp("runs"))
    import app

    app.demo.launch(prevent_thread_lock=True, quiet=True, **app.launch_options())
    yield app.demo.local_url
    app.demo.close()


def assert_objectives_reach_only_their_group(model, out, groups: dict) -> None:
    """Each optimizer group's objective has non-zero, finite gradients on that group's parameters
    and none on any other parameter (adversarial models: generator vs discriminator)."""
    everything = list(model.parameters())
    for objective, params in groups.items():
        own = {id(p) for p in params}
        grads = torch.autograd.grad(out.objectives[objective], everything, retain_graph=True,
                                    allow_unused=True)
        for p, g in zip(everything, grads):
            if id(p) in own:
                assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, objective
            else:
                assert g is None or not g.any(), f"the {objective} objective reaches a foreign parameter"


def post(url: str, path: str, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    """POST ``body`` to the server at ``url`` a megabyte at a time (the server may answer and stop
    reading before the end, as it does to a body over its limit); the answer's status and text."""
    import http.client
    from urllib.parse import urlparse

    u = urlparse(url)
    connection = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    connection.putrequest("POST", path)
    connection.putheader("Content-Type", content_type)
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders()
    try:
        for start in range(0, len(body), 1 << 20):
            connection.send(body[start:start + (1 << 20)])
    except OSError:  # the server answered already and closed its side
        pass
    response = connection.getresponse()
    return response.status, response.read().decode(errors="replace")
