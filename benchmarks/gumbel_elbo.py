"""Test-set numbers for a trained Gumbel-softmax checkpoint (gumbel-vae or dvae).

Reports, in nats per image on the test set (binarized with the same fixed noise as the trainer's
validation pass when ``--binarize dynamic``):

- ``neg_elbo (discrete sample)``: the true −ELBO, one exact categorical sample per image — what
  the trainer logs as the validation ``neg_elbo``;
- ``neg_elbo (relaxed, tau)``: the relaxed objective the model is trained on, at the final τ
  (a Gumbel-softmax sample fed to the decoder; not a bound on the discrete model's likelihood);
- ``recon at argmax + KL``: the deterministic reconstruction's loss (optimistic, not a bound);
- code-usage perplexity of the argmax codes over the whole test set.

With ``--png`` it writes a grid: test images, their reconstructions, and prior samples.

    python benchmarks/gumbel_elbo.py /tmp/gumbel --data-dir /work/shared/data --binarize dynamic --png /tmp/g.png
"""

from __future__ import annotations

import argparse

import torch
from torchvision.utils import save_image

import vaelab
from vaelab.nn.gumbel import code_perplexity, one_hot


def binarized_test_set(x: torch.Tensor, mode: str, seed: int, batch: int) -> torch.Tensor:
    """The test images as the trainer's ``evaluate_loss`` sees them (same generator, same batches)."""
    if mode == "none":
        return x
    gen = torch.Generator().manual_seed(seed + 1)
    return torch.cat([torch.bernoulli(x[i:i + batch], generator=gen) for i in range(0, len(x), batch)])


@torch.no_grad()
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--binarize", default="none", choices=["none", "dynamic"])
    p.add_argument("--seed", type=int, default=0, help="the training seed (fixes the test binarization)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--png", default=None, help="write originals / reconstructions / samples here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    model = vaelab.load_checkpoint(args.checkpoint).eval()
    data = vaelab.load_dataset("mnist", args.data_dir, download=False)
    batch = 1000
    x = binarized_test_set(data.test_x, args.binarize, args.seed, batch)
    last_step = 10 ** 9  # the schedule's final temperature
    tau = model.temperature(last_step)

    sums = {"discrete": 0.0, "relaxed": 0.0, "argmax": 0.0, "recon_discrete": 0.0, "kl": 0.0}
    usage = []
    torch.manual_seed(0)
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        n = len(xb)
        model.eval()
        out = model.loss(xb, step=last_step)
        sums["discrete"] += float(out.terms["neg_elbo"]) * n
        sums["recon_discrete"] += float(out.terms["recon"]) * n
        sums["kl"] += float(out.terms["kl"]) * n
        latent = model.encode(xb)
        sums["argmax"] += float(model.recon_nll(model.decode_params(latent.z), xb).mean()
                                + out.terms["kl"]) * n
        usage.append(one_hot(latent.indices, model.config.codebook_size))
        model.train()  # the relaxed sample, at the final temperature
        sums["relaxed"] += float(model.loss(xb, step=last_step).terms["neg_elbo"]) * n
    model.eval()
    total = len(x)
    codes = torch.cat(usage)  # (n, N, K) or (n, h, w, K)
    pooled = (0,) if codes.dim() == 3 else (0, 1, 2)
    print(f"checkpoint {args.checkpoint} ({model.variant}), test set {total} images, "
          f"binarize={args.binarize}")
    print(f"  neg_elbo (discrete sample): {sums['discrete'] / total:.2f} nats "
          f"(recon {sums['recon_discrete'] / total:.2f} + KL {sums['kl'] / total:.2f})")
    print(f"  neg_elbo (relaxed, tau={tau:.3g}): {sums['relaxed'] / total:.2f} nats")
    print(f"  recon at argmax + KL: {sums['argmax'] / total:.2f} nats")
    print(f"  code usage perplexity (argmax codes, whole test set): "
          f"{float(code_perplexity(codes, -1, pooled)):.2f} of K={model.config.codebook_size}")

    if args.png:
        originals = data.test_x[:16]
        recon = model.reconstruct(originals)
        samples = model.sample(16, generator=torch.Generator().manual_seed(0))
        save_image(torch.cat([originals, recon, samples]), args.png, nrow=16, pad_value=0.5)
        print(f"  wrote {args.png}: row 1 test images, row 2 reconstructions, row 3 prior samples")


if __name__ == "__main__":
    main()
