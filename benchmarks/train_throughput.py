"""Training-loop throughput: vaelab's `fit` against a bare hand-written PyTorch loop.

Both train the same MLP VAE (784-512-256-2, Bernoulli decoder) with Adam at batch 256 on the same
in-memory images, one epoch per measurement, alternating A/B over several rounds so that machine
noise hits both alike. Reports images/second of the training pass (validation excluded for both)
and the median of the per-round ratios vaelab / bare.

    python benchmarks/train_throughput.py [--rounds 15] [--images 5000] [--threads 2]

Many short alternating rounds and the median of per-round ratios keep a noisy machine's bursts
from landing on one side only.

Images are MNIST's when $VAELAB_DATA (or ../shared/data) holds it, else random ones of the same
size: throughput does not depend on the pixel values.
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
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import vaelab  # noqa: E402
from vaelab.data import Dataset, DatasetNotFoundError, load_dataset  # noqa: E402


def images(n: int) -> tuple[Dataset, str]:
    for where in (None, ROOT.parent / "shared" / "data"):
        try:
            d = load_dataset("mnist", where, download=False)
            return d.subset(n, 1000), "MNIST"
        except DatasetNotFoundError:
            continue
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n + 1000, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n + 1000,), generator=g)
    return Dataset("random", x[:n], y[:n], x[n:], y[n:], "random"), "random"


class BareVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                                 nn.Linear(256, 4))
        self.dec = nn.Sequential(nn.Linear(2, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(),
                                 nn.Linear(512, 784))

    def forward(self, x):
        mu, logvar = self.enc(x.flatten(1)).chunk(2, 1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.dec(z)
        recon = F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="none").sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        return (recon + kl).mean()


def bare_epoch(model, opt, x, bs) -> float:
    start = time.perf_counter()
    perm = torch.randperm(len(x))
    for i in range(0, len(x), bs):
        loss = model(x[perm[i:i + bs]])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return len(x) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train_throughput.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data, source = images(args.images)
    torch.manual_seed(0)
    ours = vaelab.create("vae", hidden=(512, 256), latent_dim=2)
    bare = BareVAE()
    bare_opt = torch.optim.Adam(bare.parameters(), lr=1e-3)
    x = data.train_x
    # warm-up both (allocator, kernels)
    bare_epoch(bare, bare_opt, x[:2048], args.batch_size)
    vaelab.fit(ours, data.subset(2048, 100), epochs=1, batch_size=args.batch_size, progress=False)
    rows = []
    for r in range(args.rounds):
        b = bare_epoch(bare, bare_opt, x, args.batch_size)
        h = vaelab.fit(ours, data, epochs=1, batch_size=args.batch_size, seed=r, progress=True,
                       threads=args.threads)
        v = h["epochs"][0]["images_per_second"]
        rows.append({"round": r, "bare_img_s": b, "vaelab_img_s": v, "ratio": v / b})
        print(f"round {r}: bare {b:,.0f} img/s   vaelab {v:,.0f} img/s   ratio {v / b:.3f}")
    result = {
        "command": "python benchmarks/train_throughput.py " + " ".join(sys.argv[1:]),
        "model": "MLP VAE 784-512-256-2, Bernoulli decoder, Adam, batch %d" % args.batch_size,
        "images": len(x), "data": source, "threads": args.threads,
        "torch": torch.__version__, "python": platform.python_version(),
        "rounds": rows,
        "median_bare_img_s": statistics.median(r["bare_img_s"] for r in rows),
        "median_vaelab_img_s": statistics.median(r["vaelab_img_s"] for r in rows),
        "median_ratio": statistics.median(r["ratio"] for r in rows),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"median ratio vaelab/bare = {result['median_ratio']:.3f} "
          f"(target >= 0.95); written to {args.out}")


if __name__ == "__main__":
    main()
