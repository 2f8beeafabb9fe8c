"""5-NN accuracy of 2-D latent maps: how much it depends on how many training images the k-NN
classifier is fitted on.

``python -m vaelab eval`` fits the k-NN on the first 10,000 training images (``--n-train``) to keep
the evaluation of every model to minutes; published 2-D numbers (e.g. the Parametric UMAP paper)
fit on the whole training set. This script encodes the training set once per checkpoint and
reports both, plus trustworthiness (5 neighbours) on the first 2,000 and on all 10,000 test images.

    VAELAB_DATA=/work/shared/data python benchmarks/knn_2d.py checkpoints/ae-2d checkpoints/vae-2d
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vaelab.checkpoint import load_checkpoint, read_config  # noqa: E402
from vaelab.data import load_dataset  # noqa: E402
from vaelab.metrics import knn_accuracy, trustworthiness  # noqa: E402


@torch.no_grad()
def latents(model, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    model.eval()
    return torch.cat([model.encode(x[i:i + batch_size]).flat() for i in range(0, len(x), batch_size)])


def report(folder: str, data) -> dict:
    model = load_checkpoint(folder)
    if model.info.conditional:
        raise SystemExit(f"{folder}: conditional model; its map depends on the label")
    tr, te = latents(model, data.train_x).numpy(), latents(model, data.test_x).numpy()
    if tr.shape[1] != 2:
        raise SystemExit(f"{folder}: latent has {tr.shape[1]} dimensions, not 2")
    ytr, yte = data.train_y.numpy(), data.test_y.numpy()
    px = data.test_x.flatten(1).numpy()
    out = {"checkpoint": folder}
    for n in (10_000, len(tr)):
        out[f"knn5_fit_on_{n}"] = knn_accuracy(tr[:n], ytr[:n], te, yte, 5)
    for n in (2_000, len(te)):
        out[f"trust5_on_{n}_test"] = trustworthiness(px[:n], te[:n], 5)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()
    dataset = read_config(args.checkpoints[0]).get("dataset", "mnist")
    data = load_dataset(dataset, args.data_dir, download=False)
    for folder in args.checkpoints:
        print(json.dumps(report(folder, data)), flush=True)


if __name__ == "__main__":
    main()
