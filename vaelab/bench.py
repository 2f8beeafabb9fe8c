"""``python -m vaelab bench [--quick]``: speed figures, each beside a reference measured in the
same run, because shared machines are noisy and only ratios compare across runs.

- training images/s per variant  vs  a bare hand-written PyTorch loop (MLP VAE, same batch);
- encode and decode latency, one image and a batch, p50/p95  vs  a bare MLP forward pass;
- PCA and UMAP of 10k points, cold and from the cache  (cached / cold);
- importing the app module  vs  importing gradio and torch alone;
- app start to HTTP 200  vs  an empty Gradio app that imports torch.

Writes ``bench-<mode>.json`` and ``bench-<mode>.md`` to ``benchmarks/results/``.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vaelab.paths import REPO_ROOT as ROOT  # noqa: E402


def percentiles(samples: list[float]) -> dict:
    a = np.asarray(samples) * 1000
    return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95))}


def timed(fn, reps: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


# --- training --------------------------------------------------------------------------------

def bare_loop_img_s(x: torch.Tensor, bs: int, hidden: tuple[int, ...], latent: int) -> float:
    """A hand-written VAE training epoch, the reference for the library's loop."""
    d = x[0].numel()
    sizes = [d, *hidden]
    enc = nn.Sequential(*[m for a, b in zip(sizes[:-1], sizes[1:]) for m in (nn.Linear(a, b), nn.ReLU())],
                        nn.Linear(sizes[-1], 2 * latent))
    rs = [latent, *reversed(hidden)]
    dec = nn.Sequential(*[m for a, b in zip(rs[:-1], rs[1:]) for m in (nn.Linear(a, b), nn.ReLU())],
                        nn.Linear(rs[-1], d))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    start = time.perf_counter()
    perm = torch.randperm(len(x))
    for i in range(0, len(x), bs):
        xb = x[perm[i:i + bs]].flatten(1)
        mu, logvar = enc(xb).chunk(2, 1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        loss = (F.binary_cross_entropy_with_logits(dec(z), xb, reduction="none").sum(1)
                + 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return len(x) / (time.perf_counter() - start)


def bench_training(data, quick: bool, bs: int) -> dict:
    import vaelab
    from vaelab.registry import list_variants

    overrides = {"image_shape": data.image_shape}
    ref = statistics.median(bare_loop_img_s(data.train_x, bs, (16,) if quick else (512, 256), 2)
                            for _ in range(3))
    rows = {}
    for entry in list_variants():
        torch.manual_seed(0)
        try:
            model = vaelab.create(entry.name, tiny=quick, **overrides)
        except (ValueError, TypeError) as error:
            rows[entry.name] = {"error": str(error)}
            continue
        history = vaelab.fit(model, data, epochs=1, batch_size=bs, progress=False)
        img_s = history["epochs"][-1]["images_per_second"]
        rows[entry.name] = {"train_img_s": img_s, "ratio_to_bare_vae_loop": img_s / ref}
    return {"reference_bare_vae_loop_img_s": ref, "variants": rows}


# --- latency ---------------------------------------------------------------------------------

def bench_latency(data, quick: bool, reps: int) -> dict:
    import vaelab
    from vaelab.registry import list_variants

    one, batch = data.test_x[:1], data.test_x[:256]
    y1, yb = data.test_y[:1], data.test_y[:256]
    ref_net = nn.Sequential(nn.Flatten(), nn.Linear(one[0].numel(), 256), nn.ReLU(), nn.Linear(256, 2)).eval()
    with torch.no_grad():
        ref = {"single": percentiles(timed(lambda: ref_net(one), reps)),
               "batch256": percentiles(timed(lambda: ref_net(batch), reps))}
    rows = {}
    for entry in list_variants():
        torch.manual_seed(0)
        try:
            model = vaelab.create(entry.name, tiny=quick, image_shape=data.image_shape).eval()
        except (ValueError, TypeError) as error:
            rows[entry.name] = {"error": str(error)}
            continue
        with torch.no_grad():
            z1, zb = model.encode(one, y1).z, model.encode(batch, yb).z
            row = {
                "encode_single": percentiles(timed(lambda: model.encode(one, y1), reps)),
                "encode_batch256": percentiles(timed(lambda: model.encode(batch, yb), reps)),
                "decode_single": percentiles(timed(lambda: model.decode(z1, y1), reps)),
                "decode_batch256": percentiles(timed(lambda: model.decode(zb, yb), reps)),
            }
        row["decode_single_ratio_to_ref"] = row["decode_single"]["p50_ms"] / ref["single"]["p50_ms"]
        rows[entry.name] = row
    return {"reference_bare_mlp_forward": ref, "variants": rows}


# --- projections -----------------------------------------------------------------------------

def bench_projections(n: int, with_umap: bool) -> dict:
    from vaelab.projections import _cached, _pca, _umap

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 784)).astype(np.float32)
    train, test = x[: int(n * 0.8)], x[int(n * 0.8):]
    out = {"points": n}
    with tempfile.TemporaryDirectory() as cache:
        kinds = [("pca", _pca)] + ([("umap", _umap)] if with_umap else [])
        for kind, fn in kinds:
            start = time.perf_counter()
            _cached(kind, fn, train, test, cache)
            cold = time.perf_counter() - start
            start = time.perf_counter()
            _cached(kind, fn, train, test, cache)
            warm = time.perf_counter() - start
            out[kind] = {"cold_s": cold, "cached_s": warm, "cached_over_cold": warm / cold}
    return out


# --- app start-up ----------------------------------------------------------------------------

EMPTY_APP = "import torch, gradio as gr\nwith gr.Blocks() as demo:\n    gr.Markdown('empty')\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _time_import(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def _time_to_http(script: str, timeout: float = 180) -> float:
    import urllib.request

    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
           "GRADIO_SERVER_NAME": "127.0.0.1"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < timeout:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).status == 200:
                    return time.perf_counter() - start
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"no HTTP 200 within {timeout}s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bench_app(rounds: int) -> dict:
    imports_app, imports_ref, http_app, http_ref = [], [], [], []
    for _ in range(rounds):  # alternate so noise hits both alike
        imports_ref.append(_time_import("import torch, gradio"))
        imports_app.append(_time_import("import app"))
        http_ref.append(_time_to_http(EMPTY_APP + "demo.launch()"))
        http_app.append(_time_to_http("import app; app.demo.launch()"))
    med = statistics.median
    return {"rounds": rounds,
            "import_app_s": med(imports_app), "import_torch_gradio_s": med(imports_ref),
            "import_ratio": med(a / b for a, b in zip(imports_app, imports_ref)),
            "http_200_app_s": med(http_app), "http_200_empty_app_s": med(http_ref),
            "http_ratio": med(a / b for a, b in zip(http_app, http_ref))}


# --- driver ----------------------------------------------------------------------------------

def markdown(result: dict) -> str:
    lines = [f"# vaelab bench ({result['mode']})", "", f"Command: `{result['command']}`  ",
             f"torch {result['torch']}, python {result['python']}, {result['threads']} threads, "
             f"data: {result['data']}", "", "## Training throughput", "",
             f"Reference (bare PyTorch VAE loop): {result['training']['reference_bare_vae_loop_img_s']:,.0f} img/s", "",
             "| variant | img/s | ratio to bare loop |", "| --- | ---: | ---: |"]
    for name, row in result["training"]["variants"].items():
        if "error" in row:
            lines.append(f"| {name} | error | {row['error']} |")
        else:
            lines.append(f"| {name} | {row['train_img_s']:,.0f} | {row['ratio_to_bare_vae_loop']:.2f} |")
    ref = result["latency"]["reference_bare_mlp_forward"]
    lines += ["", "## Latency (ms, p50 / p95)", "",
              f"Reference (bare MLP forward): single {ref['single']['p50_ms']:.3f} / {ref['single']['p95_ms']:.3f}, "
              f"batch 256 {ref['batch256']['p50_ms']:.3f} / {ref['batch256']['p95_ms']:.3f}", "",
              "| variant | encode 1 | encode 256 | decode 1 | decode 256 |", "| --- | --- | --- | --- | --- |"]
    for name, row in result["latency"]["variants"].items():
        if "error" in row:
            continue
        cells = [f"{row[k]['p50_ms']:.2f} / {row[k]['p95_ms']:.2f}"
                 for k in ("encode_single", "encode_batch256", "decode_single", "decode_batch256")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    p = result["projections"]
    lines += ["", f"## Projections ({p['points']:,} points × 784)", "", "| method | cold s | cached s | cached/cold |",
              "| --- | ---: | ---: | ---: |"]
    for kind in ("pca", "umap"):
        if kind in p:
            lines.append(f"| {kind} | {p[kind]['cold_s']:.2f} | {p[kind]['cached_s']:.3f} | {p[kind]['cached_over_cold']:.3f} |")
    if "app" in result:
        a = result["app"]
        lines += ["", "## App start-up (medians)", "", "| measure | app | reference | ratio |", "| --- | ---: | ---: | ---: |",
                  f"| import (s) | {a['import_app_s']:.2f} | {a['import_torch_gradio_s']:.2f} (torch+gradio) | {a['import_ratio']:.2f} |",
                  f"| start to HTTP 200 (s) | {a['http_200_app_s']:.2f} | {a['http_200_empty_app_s']:.2f} (empty app) | {a['http_ratio']:.2f} |"]
    return "\n".join(lines) + "\n"


def run(quick: bool, out_dir: Path, threads: int | None = None, with_app: bool = True) -> dict:
    from vaelab.data import find_dataset, load_digits

    if threads:
        torch.set_num_threads(threads)
    data = load_digits() if quick else find_dataset("mnist")
    if not quick:
        data = data.subset(20000, 1000)
    start = time.perf_counter()
    result = {
        "mode": "quick" if quick else "full",
        "command": "python -m vaelab " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"]
                   else "python -m vaelab bench" + (" --quick" if quick else ""),
        "torch": torch.__version__, "python": platform.python_version(),
        "threads": torch.get_num_threads(), "data": data.source,
        "training": bench_training(data, quick, 128 if quick else 256),
        "latency": bench_latency(data, quick, 20 if quick else 200),
        "projections": bench_projections(2000 if quick else 10000, with_umap=not quick),
    }
    if with_app:
        result["app"] = bench_app(1 if quick else 3)
    result["seconds"] = time.perf_counter() - start
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"bench-{result['mode']}.json").write_text(json.dumps(result, indent=2))
    (out_dir / f"bench-{result['mode']}.md").write_text(markdown(result))
    return result
