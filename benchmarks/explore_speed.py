"""How fast ``vaelab.explore`` embeds, against the bare loop it cannot beat, in the same run.

A small diffusers ``AutoencoderKL`` (randomly initialised: speed does not depend on the weights)
embeds 10,000 images of 64×64×3 on the machine's threads:

- **bare**: ``with torch.no_grad()``, the same batches through ``vae.encode(x).latent_dist.mean``
  — the least any tool must do to place every image;
- **vaelab**: :func:`vaelab.external.embed` — the same encoding with its progress bar, plus what
  the app then draws: the held-out fifth rebuilt by the model, PCA of the pixels at the same
  number of numbers, both 2-D maps, k-NN accuracy and trustworthiness.

Each is run ``--reps`` times, alternating; the medians and their ratio are reported (target
≤ 2×). Then the app's handlers answer for the explored model and for a shipped one, timed
alike (the map's points, a pick's image row, a hover's thumbnail): their medians side by side.

    python benchmarks/explore_speed.py [--n 10000] [--reps 3] [--threads 2]

Results go to ``benchmarks/results/explore_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def small_kl():
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
                         up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(32, 64, 64),
                         layers_per_block=1, latent_channels=4, norm_num_groups=16, sample_size=64).eval()


def bare(vae, x: torch.Tensor, batch: int) -> float:
    began = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(x), batch):
            vae.encode(x[i:i + batch] * 2 - 1).latent_dist.mean
    return time.perf_counter() - began


def ours(vae, x: torch.Tensor, labels: torch.Tensor, batch: int):
    from vaelab.external import embed

    began = time.perf_counter()
    e = embed(vae, x, labels=labels, batch_size=batch, max_images=len(x), progress=True)
    return time.perf_counter() - began, e


def handler_times(name: str, reps: int = 15) -> dict[str, float]:
    """Medians (ms) of the latent map's server work for model ``name``."""
    from vaelab.app import latent_canvas, state
    from vaelab.app.tabs import latent_map

    m = state.load(name)
    out = {}
    for label, fn in (("map points (once per model and view)", lambda k: latent_canvas.map_points({"model": name, "view": "pca"})),
                      ("pick: the image row", lambda k: latent_map.pick_row(name, 3 + k)),
                      ("  of which the model's own encode + decode of the image",
                       lambda k: m.model.reconstruct(state.test_image(m, 3 + k))),
                      ("hover: thumbnail", lambda k: latent_canvas.map_thumb({"model": name, "index": 5 + k}))):
        fn(0)  # warm
        times = []
        for k in range(reps):
            torch.set_grad_enabled(False)
            t = time.perf_counter()
            fn(k)
            times.append((time.perf_counter() - t) * 1000)
        out[label] = statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "explore_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.n, 3, 64, 64, generator=g)
    labels = torch.randint(0, 10, (args.n,), generator=g)
    vae = small_kl()
    bare(vae, x[:256], args.batch)  # warm-up
    runs = {"bare": [], "vaelab": []}
    embedding = None
    for r in range(args.reps):
        runs["bare"].append(bare(vae, x, args.batch))
        seconds, embedding = ours(vae, x, labels, args.batch)
        runs["vaelab"].append(seconds)
        print(f"round {r + 1}: bare {runs['bare'][-1]:.1f} s, vaelab {seconds:.1f} s "
              f"({ {k: round(v, 1) for k, v in embedding.seconds.items()} })")
    med = {k: statistics.median(v) for k, v in runs.items()}
    ratio = med["vaelab"] / med["bare"]

    from vaelab.app import explored
    from vaelab.app.catalogue import scan_checkpoints

    card = explored.register(embedding, "speed test")
    shipped = next((c.name for c in scan_checkpoints() if c.name == "digits-vae-8"), None)
    handlers = {"explored (10,000 images of 64×64×3)": handler_times(card.name)}
    if shipped:
        handlers[f"shipped ({shipped})"] = handler_times(shipped)
    result = {"machine": platform.processor() or platform.machine(), "threads": args.threads, "images": args.n,
              "batch": args.batch, "seconds": runs, "median_seconds": med, "ratio_vaelab_to_bare": ratio,
              "target_ratio": 2.0, "embed_parts_last_run": embedding.seconds, "handler_median_ms": handlers}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"\nembedding {args.n:,} images of 64×64×3: bare loop {med['bare']:.1f} s, vaelab.explore's embedding "
          f"{med['vaelab']:.1f} s: {ratio:.2f}× (target ≤ 2×)")
    for who, times in handlers.items():
        print(who + ": " + ", ".join(f"{k} {v:.1f} ms" for k, v in times.items()))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
