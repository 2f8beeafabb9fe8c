"""An installed copy runs the app: ``pip install .`` into a fresh virtual environment, then, from
another folder, ``vaelab app`` serves the whole app over the shipped checkpoints (found through
``VAELAB_CHECKPOINTS``) and ``vaelab explore`` explores one; importing the installed package
writes nothing into it.

The environment sees this machine's packages (``--system-site-packages``: torch and the rest are
not downloaded again) and gets vaelab itself from the checkout, built as a wheel is."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.skipif(not (ROOT / "checkpoints" / "digits-vae-2d" / "config.json").is_file(),
                                reason="the shipped checkpoints are not in this checkout")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A virtual environment with vaelab installed from the checkout (not editable)."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    wheels = tmp_path_factory.mktemp("wheels")
    # the wheel is built by this interpreter's setuptools (the checkout asks for a recent one; a
    # fresh venv ships an older one) and installed into the environment as a user would install it
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                          "-q", "-w", str(wheels), str(ROOT)], capture_output=True, text=True, timeout=600, cwd=wheels)
    assert run.returncode == 0, run.stderr[-2000:]
    [wheel] = wheels.glob("vaelab-*.whl")
    run = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                         capture_output=True, text=True, timeout=600, cwd=wheels)
    assert run.returncode == 0, run.stderr[-2000:]
    return venv


def _env(venv, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VAELAB_CHECKPOINTS")}
    env.update({"VAELAB_CHECKPOINTS": str(ROOT / "checkpoints"), "VAELAB_FETCH": "0", "GRADIO_ANALYTICS_ENABLED": "False",
                "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", **extra})
    return env


def test_the_installed_package_is_the_one_imported_and_writes_nothing_into_itself(installed, tmp_path):
    python = installed / "bin" / "python"
    out = subprocess.run([str(python), "-c", "import vaelab, vaelab.app, vaelab.app.pixel_image; print(vaelab.__file__)"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, env=_env(installed))
    assert out.returncode == 0, out.stderr[-2000:]
    package = os.path.dirname(out.stdout.strip())
    assert str(installed) in package and str(ROOT) not in package
    stubs = [os.path.join(d, f) for d, _, files in os.walk(package) for f in files if f.endswith(".pyi")]
    assert stubs == []


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_vaelab_app_serves_the_whole_app_from_another_folder(installed, tmp_path):
    port = _port()
    proc = subprocess.Popen([str(installed / "bin" / "vaelab"), "app", "--port", str(port)], cwd=tmp_path,
                            env=_env(installed), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        config = None
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            try:
                config = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5).read())
                break
            except OSError:
                time.sleep(1)
        assert config is not None, proc.stdout.read() if proc.poll() is not None else "no answer within 240 s"
        tabs = {c["props"].get("label") for c in config["components"] if c.get("type") == "tabitem"}
        assert {"Latent map", "Latent sliders", "Draw", "Models", "Train"} <= tabs
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30).read().decode()
        assert "vaelab" in page
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_vaelab_explore_works_from_the_installed_copy(installed, tmp_path):
    run = subprocess.run([str(installed / "bin" / "vaelab"), "explore", str(ROOT / "checkpoints" / "digits-vae-2d"),
                          "--no-launch"], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=_env(installed))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "digits-vae-2d" in run.stdout and "reconstruction error" in run.stdout


def test_vaelab_app_without_checkpoints_says_where_to_point_it(installed, tmp_path):
    empty = tmp_path / "none"
    empty.mkdir()
    run = subprocess.run([str(installed / "bin" / "vaelab"), "app", "--checkpoints", str(empty), "--no-launch"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, env=_env(installed))
    assert run.returncode == 2 and "no checkpoints in" in run.stderr and "Traceback" not in run.stderr
