"""Codebook health of a trained vector-quantised checkpoint over a whole test set.

Encodes every test image, counts how often each code is chosen (per level), and prints the
fraction of codes used at least once, the perplexity ``exp(H(usage))`` of those counts (K when
all K codes are used equally) and the mean reconstruction loss (nats per image under the
model's likelihood). Everything is computed over the full test set, not one batch.

    VAELAB_DATA=/work/shared/data python benchmarks/vq_usage.py /tmp/vq-restart [--dataset mnist]
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
from vaelab.nn.quantize import code_counts, perplexity  # noqa: E402


@torch.no_grad()
def codebook_report(model, x: torch.Tensor, batch_size: int = 1000) -> dict:
    """Usage fraction, perplexity and code counts per level, and mean reconstruction loss."""
    model.eval()
    k = model.info.codebook_size
    counts = [torch.zeros(k, dtype=torch.long) for _ in range(model.info.levels)]
    recon_sum = 0.0
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        latent = model.encode(xb)
        indices = latent.indices if isinstance(latent.indices, tuple) else (latent.indices,)
        for level, idx in enumerate(indices):
            counts[level] += code_counts(idx, k)
        recon_sum += float(model.recon_nll(model.decode_params(latent.z), xb).sum())
    names = ["bottom", "top"] if len(counts) == 2 else [f"level{i}" for i in range(len(counts))]
    if len(counts) == 1:
        names = ["codes"]
    return {
        "images": len(x),
        "recon": recon_sum / len(x),
        "levels": {name: {"codebook_size": k,
                          "codes_used": int((c > 0).sum()),
                          "usage_fraction": float((c > 0).float().mean()),
                          "perplexity": float(perplexity(c)),
                          "assignments": int(c.sum())}
                   for name, c in zip(names, counts)},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", help="checkpoint folder(s) of vq-vae / vq-vae-2 models")
    p.add_argument("--dataset", default=None, help="default: the dataset the checkpoint was trained on")
    p.add_argument("--data-dir", default=None, help="folder holding MNIST/raw/ (default $VAELAB_DATA)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    for folder in args.checkpoints:
        dataset = args.dataset or read_config(folder).get("dataset") or "digits"
        data = load_dataset(dataset, args.data_dir, download=False)
        model = load_checkpoint(folder)
        report = codebook_report(model, data.test_x)
        print(json.dumps({"checkpoint": str(folder), "dataset": dataset, **report}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
