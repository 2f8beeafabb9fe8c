"""How fast a model trained in the app becomes worth looking at, and what watching it costs.

Three measurements, on one CPU thread (what a training job gets on a two-core Space):

1. **MNIST, 2-D VAE** (the Train tab's MNIST defaults, latent size 2): the 5-NN accuracy of the
   latent (fit on 10,000 training latents, scored on the 10,000 test images, as ``eval`` does)
   against seconds of training. The clock stops while the accuracy is measured. Target: ≥ 0.70
   within 30 s.
2. **8×8 digits, 2-D VAE** (the tab's digits defaults): the test reconstruction error against
   seconds, and the rebuilt test digits at 10 s written to ``benchmarks/results/live-digits-10s.png``
   next to the originals, to look at.
3. **Streaming overhead**: the same run (MNIST, 2-D VAE, ``--epochs``) trained by the command line
   (``python -m vaelab train``) and by the Train tab's handler while its stream is consumed the
   way the page consumes it; images per second of each, from their own epoch records, in the
   same run. Target: the tab ≥ 0.8× the command line.

    python benchmarks/live_training.py [--data-dir ../shared/data] [--epochs 2]

Results: ``benchmarks/results/live_training.json`` and a summary on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vaelab import metrics  # noqa: E402
from vaelab.data import load_dataset  # noqa: E402
from vaelab.registry import create  # noqa: E402
from vaelab.train import Step, Training, TrainSettings  # noqa: E402


def latents(model, x: torch.Tensor) -> np.ndarray:
    was = model.training
    model.eval()
    with torch.no_grad(), torch.random.fork_rng():
        z = torch.cat([model.encode(x[i:i + 1000]).flat() for i in range(0, len(x), 1000)]).numpy()
    model.train(was)
    return z


def curve(dataset: str, config: dict, train: dict, seconds: float, every: float, score) -> list[dict]:
    """Train until ``seconds`` of training time, scoring with ``score(model, data)`` every
    ``every`` seconds of training (the clock is stopped while it scores)."""
    torch.set_num_threads(1)
    data = load_dataset(dataset, download=False)
    torch.manual_seed(0)
    model = create("vae", image_shape=data.image_shape, **config)
    run = Training(model, data, TrainSettings(**{"epochs": 1000, **train, "progress": False, "threads": 1}))
    points, trained, next_at, last = [], 0.0, 0.0, time.perf_counter()
    for event in run:
        now = time.perf_counter()
        trained += now - last
        if isinstance(event, Step) and trained >= next_at:
            points.append({"seconds": round(trained, 2), "step": event.step, **score(model, data)})
            next_at += every
            if trained >= seconds:
                run.stop()
        last = time.perf_counter()
    return points


def knn_score(model, data) -> dict:
    tr = latents(model, data.train_x[:10000])
    te = latents(model, data.test_x)
    return {"knn5": metrics.knn_accuracy(tr, data.train_y[:10000].numpy(), te, data.test_y.numpy(), 5)}


def recon_score(model, data) -> dict:
    was = model.training
    model.eval()
    with torch.no_grad(), torch.random.fork_rng():
        rec = model.reconstruct(data.test_x).clamp(0, 1)
    model.train(was)
    return {"mse": float(((rec - data.test_x) ** 2).mean())}


def digits_picture(config: dict, train: dict, seconds: float, out: Path) -> None:
    """The digits model after ``seconds`` of training: 16 test digits above their rebuilds."""
    from PIL import Image

    from vaelab import viz

    torch.set_num_threads(1)
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = create("vae", image_shape=data.image_shape, **config)
    run = Training(model, data, TrainSettings(**{"epochs": 1000, **train, "progress": False, "threads": 1}))
    began = time.perf_counter()
    for event in run:
        if isinstance(event, Step) and time.perf_counter() - began >= seconds:
            run.stop()
    model.eval()
    with torch.no_grad():
        rec = model.reconstruct(data.test_x[:16]).clamp(0, 1)
    grid = viz.tile(list(data.test_x[:16]) + list(rec), cols=16)
    Image.fromarray(viz.to_display(grid, pixels=16 * 48)).save(out)


def streaming(data_dir: str | None, epochs: int) -> dict:
    """images/s of the same run from the command line and from the Train tab's stream."""
    from vaelab.app.tabs import train as tab

    env = {**os.environ, **({"VAELAB_DATA": data_dir} if data_dir else {})}
    with tempfile.TemporaryDirectory() as tmp:
        d = tab.defaults("vae", "mnist")
        values = {k.field: d.get(k.field) for k in tab.KNOBS}
        values.update(latent_dim=2, epochs=epochs)
        spec = tab.make_spec("vae", "mnist", values)
        cli = [sys.executable, "-m", "vaelab", "train", "vae", "--dataset", "mnist", "--no-download", "--quiet",
               "--epochs", str(epochs), "--batch-size", str(spec.train["batch_size"]), "--lr", str(spec.train["lr"]),
               "--threads", "1", "--out", f"{tmp}/cli", "--set", "latent_dim=2"]
        subprocess.run(cli, check=True, env=env, cwd=ROOT)
        cli_rate = [e["images_per_second"] for e in json.loads(Path(f"{tmp}/cli/history.json").read_text())["epochs"]]
        os.environ["VAELAB_RUNS"] = f"{tmp}/runs"
        views = 0
        for _ in tab.start_training(SimpleNamespace(session_hash="benchmark"), [], "vae", "mnist",
                                    *[values[k.field] for k in tab.KNOBS]):
            views += 1
        job = next(j for j in tab.JOBS.values() if j.owner == "benchmark")
        tab_rate = [e["record"]["images_per_second"] for e in job.epochs]
    return {"epochs": epochs, "cli_images_per_second": cli_rate, "tab_images_per_second": tab_rate,
            "views_streamed": views, "ratio": statistics.median(tab_rate) / statistics.median(cli_rate)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder holding MNIST/raw/ (default: $VAELAB_DATA)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the streaming comparison")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "live_training.json"))
    args = parser.parse_args()
    if args.data_dir:
        os.environ["VAELAB_DATA"] = args.data_dir
    from vaelab.app.tabs import train as tab

    result = {"when": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "threads": 1}
    d = tab.defaults("vae", "mnist")
    mnist_train = {k: d[k] for k in ("batch_size", "lr")}
    result["mnist_vae_2d"] = {"settings": mnist_train, "curve": curve("mnist", {"latent_dim": 2}, mnist_train, 45, 3,
                                                                      knn_score)}
    g = tab.defaults("vae", "digits")
    digits_train = {k: g[k] for k in ("batch_size", "lr")}
    digits_config = {"latent_dim": 2, **tab.fixed_config("vae", "digits")}
    result["digits_vae_2d"] = {"settings": {**digits_train, **digits_config},
                               "curve": curve("digits", digits_config, digits_train, 12, 1, recon_score)}
    picture = ROOT / "benchmarks" / "results" / "live-digits-10s.png"
    digits_picture(digits_config, digits_train, 10, picture)
    result["digits_vae_2d"]["picture_at_10s"] = str(picture.relative_to(ROOT))
    result["streaming"] = streaming(args.data_dir, args.epochs)
    Path(args.out).write_text(json.dumps(result, indent=1, default=float))

    knn = result["mnist_vae_2d"]["curve"]
    reached = next((p["seconds"] for p in knn if p["knn5"] >= 0.70), None)
    print("MNIST 2-D VAE, 5-NN of the latent against training seconds:")
    print("  " + ", ".join(f"{p['seconds']:.0f}s {p['knn5']:.3f}" for p in knn))
    print(f"  >= 0.70 after {reached} s (target: within 30 s)")
    print("digits 2-D VAE, test MSE against seconds: "
          + ", ".join(f"{p['seconds']:.0f}s {p['mse']:.4f}" for p in result["digits_vae_2d"]["curve"]))
    s = result["streaming"]
    print(f"streaming: command line {statistics.median(s['cli_images_per_second']):.0f} img/s, Train tab "
          f"{statistics.median(s['tab_images_per_second']):.0f} img/s -> {s['ratio']:.2f}x (target >= 0.8x)")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
