"""The training loop against an earlier version of itself: did a change to vaelab/train.py cost speed?

Loads ``vaelab/train.py`` as it was at git revision ``--rev`` beside the current one and trains
the same MLP VAE (784-512-256-2, batch 256, one epoch of 5,000 MNIST images, or random images of
that size without MNIST) with each, alternating over several rounds; reports the median of the
per-round ratios of training images/second (validation excluded), current / earlier.

    python benchmarks/train_loop_ab.py --rev a183e1e [--rounds 12] [--threads 2]

The earlier loop must accept ``fit(model, data, epochs=..., batch_size=..., progress=False)``
and record ``images_per_second`` per epoch, as every version since the first does.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import vaelab  # noqa: E402
from train_throughput import images  # noqa: E402  (the same images as the throughput benchmark)


def earlier_loop(rev: str):
    source = subprocess.run(["git", "show", f"{rev}:vaelab/train.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "earlier_train.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("earlier_train", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["earlier_train"] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", required=True, help="git revision of the earlier vaelab/train.py")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    earlier = earlier_loop(args.rev)
    data, source = images(args.images)

    def speed(fit) -> float:
        torch.manual_seed(0)
        model = vaelab.create("vae", image_shape=data.image_shape, hidden=(512, 256), latent_dim=2)
        return fit(model, data, epochs=1, batch_size=256, progress=False)["epochs"][0]["images_per_second"]

    speed(vaelab.fit)  # warm-up
    ratios = []
    for r in range(args.rounds):
        before, now = speed(earlier.fit), speed(vaelab.fit)
        ratios.append(now / before)
        print(f"round {r}: {args.rev} {before:,.0f} img/s   now {now:,.0f} img/s   ratio {now / before:.3f}")
    print(f"median ratio now/{args.rev} = {statistics.median(ratios):.3f} ({source})")


if __name__ == "__main__":
    main()
