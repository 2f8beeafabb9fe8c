"""Bad input through the running app, as a visitor's browser or a script would send it: each case
is answered with a clear message (never a traceback), the server keeps serving, and the battery as
a whole raises the server's peak memory by less than a stated bound."""

from __future__ import annotations

import base64
import io
import struct
import urllib.request
import zlib

import pytest
from PIL import Image

from .conftest import post

MEMORY_BOUND_MB = 300
UPLOAD_WORDS = {"not a zip": "not a zip", "traversal": "points outside", "pickle": "nothing executable or pickled",
                "bomb": "more than a checkpoint file", "empty": "is empty", "huge latent": "latent_dim"}


def handle(path: str):
    from gradio_client import handle_file

    return handle_file(path)


def png_claiming(width: int, height: int) -> str:
    """A small PNG whose header claims ``width``×``height`` (a decompression bomb's shape)."""
    raw = b"\x00" + b"\x00" * width  # one row; the rest would decode to zeros
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw * 8)) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(data).decode()


def tiny_png() -> str:
    buf = io.BytesIO()
    Image.new("L", (10, 10), 255).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _status_mb(field: str) -> float | None:
    try:
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Start measuring the peak resident memory afresh (Linux: ``clear_refs`` 5 resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def bad_zips(folder) -> dict:
    """Checkpoint uploads a visitor might send by mistake or on purpose, written into ``folder``."""
    import json
    import zipfile

    from .conftest import ROOT

    good = ROOT / "checkpoints" / "digits-ae-2d"
    made = {}

    def archive(name, entries, compression=zipfile.ZIP_STORED):
        path = folder / f"{name}.zip"
        with zipfile.ZipFile(path, "w", compression=compression) as z:
            for arcname, data in entries:
                z.writestr(arcname, data)
        made[name] = str(path)

    config, weights = (good / "config.json").read_text(), (good / "model.safetensors").read_bytes()
    (folder / "notes.zip").write_text("these are my notes, not a zip")
    made["not a zip"] = str(folder / "notes.zip")
    archive("traversal", [("x/config.json", config), ("x/model.safetensors", weights), ("../../evil.json", "{}")])
    archive("pickle", [("x/config.json", config), ("x/model.safetensors", weights), ("x/model.pt", b"\x80\x04K.")])
    archive("bomb", [("x/config.json", config), ("x/model.safetensors", bytes(130 << 20))], zipfile.ZIP_DEFLATED)
    archive("empty", [])
    archive("huge latent", [("x/config.json", json.dumps({**json.loads(config), "config": {
        **json.loads(config)["config"], "latent_dim": 10**7}})), ("x/model.safetensors", weights)])
    return made


def cases(folder=None):
    from vaelab.app.tabs import sliders, train

    z = [0.0] * sliders.MAX_SLIDERS
    knobs = {k.field: train.defaults("ae", "digits").get(k.field) for k in train.KNOBS}
    bad_knobs = lambda **kw: [{**knobs, **kw}[k.field] for k in train.KNOBS]  # noqa: E731
    return [
        # (endpoint, arguments, words the answer must contain)
        ("/pick_row", ["no-such-model", 3], "model"),
        ("/pick_row", ["digits-vae-2d", "seven"], "float"),
        ("/pick_row", ["../../etc/passwd", 0], "not in the list of choices"),
        ("/latent_map", ["digits-vae-2d", "a view that is not offered", 0], None),
        # (NaN and ∞ cannot leave a client as JSON; the handlers' own tests send them directly)
        ("/decode", ["digits-vae-8", 0, sliders.START_PRIOR, 0, *(["nan"] + z[1:])], "float"),
        ("/decode", ["digits-vae-8", 0, sliders.START_PRIOR, 0, *([1e30] + z[1:])], "maximum"),
        ("/traverse", ["digits-vae-8", 0, 10**9, sliders.START_PRIOR, 0, *z], "dimension"),
        ("/traverse", ["digits-vae-8", 0, -1, sliders.START_PRIOR, 0, *z], "dimension"),
        ("/sample", ["digits-vae-8", 0, "lots"], "float"),
        ("/interpolate", ["digits-vae-8", -5, 10**12, 0], None),
        ("/draw", [png_claiming(20_000, 20_000), []], "2048"),
        ("/draw", [png_claiming(3_000, 100), []], "2048"),
        ("/draw", ["data:image/png;base64," + "A" * 3_000_000, []], "MB"),
        ("/draw", ["data:image/png;base64,AAAA", []], "drawing"),
        ("/draw", ["not a data url", []], "drawing"),
        ("/draw", [tiny_png(), ["no-such-model"]], None),
        ("/codebook_edit", [{"value": "{}", "code": 3}], "Click a cell"),
        ("/codebook_edit", [{"value": '{"model": "vq-vae", "sel": [0, 0], "maps": [[[1e9]]]}', "code": 1}], "code map"),
        ("/codebook_sample", ["vq-vae", "warm", 0], "float"),
        ("/codebook_sample", ["vq-vae", 1e9, 0], "maximum"),
        ("/gumbel_tau", [{"model": "dvae", "log_tau": "hot", "index": 0, "seed": 0}], "log scale"),
        ("/gumbel_tau", [{"model": "nope", "log_tau": 0, "index": 0, "seed": 0}], "not available"),
        ("/gumbel_tau", [{"model": "dvae", "log_tau": 0, "index": 0, "seed": "x"}], "whole number"),
        ("/beta_select", ["nope", "1st", 0], None),
        ("/reg_noise", ["denoising-ae", "lava", 0.3, 1, 0], None),
        ("/reg_noise", ["denoising-ae", "gaussian", 55.0, 1, 0], "maximum"),
        ("/reg_k", ["k-sparse-ae", -4, 1], "minimum"),
        ("/reg_eps", ["contractive-ae", "tiny", 1], "float"),
        ("/train_check", ["no-such-variant", "digits", *bad_knobs()], "variant"),
        ("/train_check", ["ae", "imagenet", *bad_knobs()], "not in the list of choices"),
        ("/train_check", ["ae", "digits", *bad_knobs(epochs=10**9)], "maximum"),
        ("/train_check", ["ae", "digits", *bad_knobs(latent_dim=-2)], "minimum"),
        ("/train_check", ["ae", "digits", *bad_knobs(epochs=2.5)], None),
        ("/load_from_hub", ["../../../etc", []], "owner/name"),
        ("/load_from_hub", ["a" * 500, []], "owner/name"),
        ("/map_clicked", ['{"model": 5, "pick": "x"', "digits-vae-2d", "the latent (2-D)"], None),
        ("/pick_row", ["digits-vae-2d", -1], None),
        ("/pick_row", ["digits-vae-2d", 10**12], None),
        ("/decode", ["digits-vae-8", 0, sliders.START_PRIOR, 0, *([[1, 2]] + z[1:])], "float"),
        ("/latent_map", ["", "PCA", 0], None),
        ("/train_check", ["ae", "digits", *bad_knobs(lr=-1)], "minimum"),
    ] + ([("/upload_checkpoint", [handle(path), []], UPLOAD_WORDS[name]) for name, path in bad_zips(folder).items()]
         if folder is not None else [])


def test_every_bad_input_gets_a_clear_answer_and_the_server_keeps_serving(app_url, tmp_path):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    named = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    before = _status_mb("VmRSS")  # MB; the app runs in this process
    measured = before is not None and reset_peak()
    tried = 0
    for endpoint, args, words in cases(tmp_path):
        if endpoint not in named:
            continue  # a tab without its models here (e.g. no β series in this checkout)
        tried += 1
        try:
            out = client.submit(*args, api_name=endpoint).result(timeout=120)  # a hang fails, naming the case
        except Exception as error:  # a gr.Error reaches the client as its message
            text = str(error)
            assert "Traceback" not in text and 'File "' not in text, (endpoint, text[:300])
            if words:
                assert words.lower() in text.lower(), (endpoint, args[:3], text[:300])
        else:  # answered without an error: then it is a value, or a message saying what was wrong
            text = str(out)
            assert "Traceback" not in text, endpoint
            if words:
                assert words.lower() in text.lower(), (endpoint, args[:3], text[:300])
        assert urllib.request.urlopen(app_url, timeout=30).status == 200  # still serving
    assert tried >= 45
    if not measured:
        print(f"{tried} bad inputs answered; memory not measured (no /proc/self on this system)")
        return
    peak = _status_mb("VmHWM")
    print(f"{tried} bad inputs answered; the server's peak memory during them was {peak - before:+.0f} MB over "
          f"its resident memory before (bound {MEMORY_BOUND_MB} MB)")
    assert peak - before < MEMORY_BOUND_MB


def test_one_visitors_upload_is_refused_to_another_visitor(app_url, tmp_path):
    """The uploaded model's name is only in the uploader's session: another session naming it
    (even knowing it, which the page never tells) is refused by its own picker's choices."""
    import zipfile

    from gradio_client import Client, handle_file

    from vaelab.app import catalogue

    from .conftest import ROOT

    archive = tmp_path / "mine.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in ("config.json", "model.safetensors"):
            z.write(ROOT / "checkpoints" / "digits-ae-2d" / f, f"mine/{f}")
    before = set(catalogue._TRAINED)
    uploader, other = Client(app_url, verbose=False), Client(app_url, verbose=False)
    status = uploader.predict(handle_file(str(archive)), [], api_name="/upload_checkpoint")
    assert "Loaded" in str(status)
    (name,) = set(catalogue._TRAINED) - before
    assert name not in str(status)  # the page shows a title; the name is not guessable
    with pytest.raises(Exception, match="not in the list of choices"):
        other.predict(name, 3, api_name="/pick_row")


def test_raw_requests_the_page_never_sends_are_refused_cleanly(app_url):
    """Requests a script could send past the page: bodies over their limit (refused as they arrive,
    before anything is parsed), a component function the app does not have (the image editor's
    blob upload), and the page's server functions called with nonsense."""
    import json

    from vaelab.app import launch_options, serving

    config = json.loads(urllib.request.urlopen(app_url + "config", timeout=30).read())
    prefix = config.get("api_prefix", "/gradio_api").rstrip("/")
    ids = {c["props"].get("elem_id"): c["id"] for c in config["components"] if c.get("props", {}).get("elem_id")}

    def server_function(elem_id, fn, data):
        body = json.dumps({"session_hash": "battery", "component_id": ids[elem_id], "fn_name": fn, "data": data})
        return post(app_url, prefix + "/component_server", body.encode())

    before = _status_mb("VmRSS")
    measured = before is not None and reset_peak()
    join = {"data": ["x" * (serving.BODY_BYTES + 1)], "fn_index": 0, "session_hash": "battery"}
    answers = [
        ("a 9 MB event", post(app_url, prefix + "/queue/join", json.dumps(join).encode()), 413, None),
        ("a file over the upload limit", post(app_url, prefix + "/upload", bytes(launch_options()["max_file_size"] + (2 << 20)),
                                               "multipart/form-data; boundary=x"), 413, None),
        ("the image editor's blob function", server_function("map-canvas", "accept_blobs", {"layer": 10**9}), 404, "not found"),
        ("a function the component does not offer", server_function("map-canvas", "__init__", {}), 404, "not found"),
        ("a map's points asked with a list", server_function("map-canvas", "map_points", [1, 2, 3]), 400, "named by a string"),
        ("a thumbnail of an index far outside", server_function("map-canvas", "map_thumb", {"model": "digits-vae-2d", "index": 10**15}), 400, "there is no #"),
        ("a decode at an absurd point", server_function("map-canvas", "map_decode", {"model": "digits-vae-2d", "z": [1e308, "x"]}), 400, "two numbers"),
        ("a truncated JSON body", post(app_url, prefix + "/queue/join", b'{"data": [1, 2'), 422, None),
    ]
    # JSON itself has no NaN, but Python's parser takes the literal: sent raw to the REST route
    from vaelab.app.tabs import sliders

    z = ", ".join(["NaN"] + ["0"] * (sliders.MAX_SLIDERS - 1))
    status, text = post(app_url, prefix + "/call/decode", f'{{"data": ["digits-vae-8", 0, "{sliders.START_PRIOR}", 0, {z}]}}'.encode())
    if status == 200:
        event = json.loads(text)["event_id"]
        text = urllib.request.urlopen(f"{app_url.rstrip('/')}{prefix}/call/decode/{event}", timeout=60).read().decode()
    answers.append(("a NaN latent sent as a JSON literal", (status, text), 200, "each latent slider takes a number"))
    for what, (status, text), expected, words in answers:
        assert status == expected, (what, status, text[:300])
        assert "Traceback" not in text and 'File "' not in text, (what, text[:300])
        if words:
            assert words in text.lower(), (what, text[:300])
        assert urllib.request.urlopen(app_url, timeout=30).status == 200  # still serving
    if measured:
        grew = _status_mb("VmHWM") - before
        print(f"{len(answers)} raw requests refused or answered; the server's peak memory rose {grew:+.0f} MB "
              f"(bound {MEMORY_BOUND_MB} MB)")
        assert grew < MEMORY_BOUND_MB


def test_the_largest_upload_allowed_stays_within_the_memory_bound(tmp_path, monkeypatch):
    """A checkpoint just under the upload's parameter limit (19 million, a 74 MB zip) is checked,
    loaded and scored with the server's peak memory rising less than the bound."""
    import gc
    import zipfile

    import torch

    import vaelab
    from vaelab.app import upload
    from vaelab.app.tabs import models
    from vaelab.checkpoint import save_checkpoint

    hidden = (5200, 1800)
    model = vaelab.create("ae", image_shape=(1, 8, 8), latent_dim=2, hidden=hidden)
    n = sum(p.numel() for p in model.parameters())
    assert 0.9 * upload.MAX_PARAMETERS < n <= upload.MAX_PARAMETERS
    save_checkpoint(model, tmp_path / "big")
    del model
    gc.collect()
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in (tmp_path / "big").iterdir():
            z.write(f, f"big/{f.name}")
    monkeypatch.setenv("VAELAB_RUNS", str(tmp_path / "runs"))
    before = _status_mb("VmRSS")
    if before is None or not reset_peak():
        pytest.skip("no /proc/self on this system: memory cannot be measured")
    with torch.no_grad():
        out = models.load_upload(str(archive), [], progress=lambda *a, **k: None)
    grew = _status_mb("VmHWM") - before
    print(f"an upload of {n:,} parameters ({archive.stat().st_size / 2**20:.0f} MB zipped): peak memory "
          f"{grew:+.0f} MB (bound {MEMORY_BOUND_MB} MB)")
    assert "Loaded" in out["upload_status"]
    assert grew < MEMORY_BOUND_MB
