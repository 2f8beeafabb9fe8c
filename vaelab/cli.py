"""Command line: ``python -m vaelab list | train | …``.

Subcommands are a table (name -> (add_arguments, run)); later ones (eval, bench, zoo) add rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

COMMANDS: dict[str, tuple] = {}


def command(name: str, help_: str):
    def decorate(fn):
        COMMANDS[name] = (help_, fn)
        return fn
    return decorate


def parse_set(pairs: list[str]) -> dict:
    """``["latent_dim=2", "hidden=[256,128]", "backbone=conv"]`` -> dict; values are JSON when they
    parse as JSON, strings otherwise."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


# --- list ------------------------------------------------------------------------------------

def add_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verbose", "-v", action="store_true", help="also print each variant's config fields")


@command("list", "list the registered model variants")
def run_list(args) -> int:
    import dataclasses

    from vaelab.registry import list_variants

    entries = list_variants()
    width = max(len(e.name) for e in entries)
    for family in dict.fromkeys(e.family for e in entries):
        print(f"{family}:")
        for e in entries:
            if e.family == family:
                print(f"  {e.name:<{width}}  {e.description}")
                if args.verbose:
                    for f in dataclasses.fields(e.config_cls):
                        print(f"  {'':<{width}}    {f.name} = {f.default!r}")
    return 0


# --- train -----------------------------------------------------------------------------------

def add_train(p: argparse.ArgumentParser) -> None:
    from vaelab.data import DATASETS

    p.add_argument("variant", help="a name from `python -m vaelab list`, e.g. vae")
    p.add_argument("--dataset", default="digits", choices=DATASETS,
                   help="training data (default: digits, bundled, needs no files)")
    p.add_argument("--data-dir", default=None,
                   help="folder holding MNIST/raw/… (default: $VAELAB_DATA, else ~/.cache/vaelab/data)")
    p.add_argument("--no-download", action="store_true", help="never try to download the dataset")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    p.add_argument("--batch-size", type=int, default=128, help="images per step (default 128)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine"],
                   help="constant, or cosine: decay to 1%% of --lr by the last step (default constant)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="auto", help="auto (cuda if present, else cpu), cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--binarize", default="none", choices=["none", "dynamic"],
                   help="dynamic: resample each batch as Bernoulli(pixel), the setting of published VAE likelihoods")
    p.add_argument("--grad-clip", type=float, default=None, help="clip gradient norm to this value")
    p.add_argument("--out", required=True, help="checkpoint folder to write (created or replaced atomically)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set latent_dim=2 --set hidden=[256,128]; "
                        "see `python -m vaelab list -v` for the fields")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


@command("train", "train a variant and write its checkpoint folder")
def run_train(args) -> int:
    import torch

    from vaelab.data import DatasetNotFoundError, load_dataset
    from vaelab.registry import create, get_entry
    from vaelab.train import NonFiniteLossError, TrainSettings, fit

    try:
        get_entry(args.variant)
    except KeyError as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2
    try:
        data = load_dataset(args.dataset, args.data_dir, download=False if args.no_download else None)
    except DatasetNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    overrides = {"image_shape": data.image_shape, "num_classes": data.num_classes,
                 **parse_set(args.overrides)}
    torch.manual_seed(args.seed)
    try:
        model = create(args.variant, **overrides)
    except (ValueError, TypeError) as error:
        print(f"error: bad config for {args.variant}: {error}", file=sys.stderr)
        return 2
    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                             device=args.device, threads=args.threads, binarize=args.binarize,
                             grad_clip=args.grad_clip, lr_schedule=args.lr_schedule, progress=not args.quiet)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"training {args.variant} ({n_params:,} parameters) on {data.source}, "
          f"{len(data.train_x):,} train / {len(data.test_x):,} test images")
    try:
        history = fit(model, data, settings, out_dir=args.out)
    except NonFiniteLossError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    last = history["epochs"][-1]
    total_s = sum(e["seconds"] for e in history["epochs"])
    print(f"done in {total_s:.1f}s: val loss {last['val']['total']:.4f}; checkpoint in {Path(args.out)}")
    return 0


# --- eval ------------------------------------------------------------------------------------

def add_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a checkpoint folder (config.json + model.safetensors)")
    p.add_argument("--dataset", default=None, help="dataset to score on (default: the one it was trained on)")
    p.add_argument("--data-dir", default=None, help="folder holding MNIST/raw/… (default: $VAELAB_DATA)")
    p.add_argument("--iw-samples", type=int, default=1000, help="k of the IWAE bound (default 1000)")
    p.add_argument("--iw-images", type=int, default=None, help="test images for the IWAE bound (default all)")
    p.add_argument("--n-train", type=int, default=10000, help="train images for k-NN/PCA/UMAP fits (default 10000)")
    p.add_argument("--no-umap", action="store_true", help="skip UMAP (slow the first time on a dataset)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")


@command("eval", "score a checkpoint; writes metrics.json and the app's cached artifacts into it")
def run_eval(args) -> int:
    import torch

    from vaelab.checkpoint import CheckpointError, read_config
    from vaelab.data import DatasetNotFoundError, load_dataset
    from vaelab.evaluate import EvalSettings, evaluate, summary_rows

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        meta = read_config(args.checkpoint)
        data = load_dataset(args.dataset or meta.get("dataset") or "digits", args.data_dir)
    except (CheckpointError, DatasetNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = EvalSettings(iw_samples=args.iw_samples, iw_images=args.iw_images,
                            n_train=args.n_train, umap=not args.no_umap)
    print(f"evaluating {args.checkpoint} ({meta['variant']}) on {data.source}")
    results = evaluate(args.checkpoint, data, settings)
    rows = summary_rows(results)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print(f"wrote {Path(args.checkpoint) / 'metrics.json'} and artifacts.safetensors")
    return 0


# --- bench -----------------------------------------------------------------------------------

def add_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="tiny models on digits, few repeats (CI, ~1 minute)")
    p.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--no-app", action="store_true", help="skip the app start-up timings")


@command("bench", "measure training, latency, projection and app start-up speed against references")
def run_bench(args) -> int:
    from vaelab.bench import ROOT, run

    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results"
    result = run(args.quick, out, args.threads, with_app=not args.no_app)
    print((out / f"bench-{result['mode']}.md").read_text())
    print(f"({result['seconds']:.0f}s) written to {out}")
    return 0


# --- zoo -------------------------------------------------------------------------------------

def add_zoo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", nargs="*", default=None, metavar="NAME", help="train only these recipes")
    p.add_argument("--resume", action="store_true", help="skip finished models, continue interrupted ones")
    p.add_argument("--no-eval", action="store_true", help="train only; do not write metrics")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--data-dir", default=None, help="folder holding MNIST/raw/… (default: $VAELAB_DATA)")
    p.add_argument("--list", action="store_true", help="print the recipes and exit")


@command("zoo", "train and evaluate the shipped checkpoints (resumable)")
def run_zoo(args) -> int:
    from vaelab import zoo
    from vaelab.data import DatasetNotFoundError

    if args.list:
        for r in zoo.recipes():
            print(f"{r.name:<20} {r.variant:<14} {r.dataset:<7} {r.epochs:>4} epochs  {r.purpose}")
        return 0
    try:
        zoo.run(args.only, args.resume, not args.no_eval, args.threads, args.data_dir)
    except (KeyError, DatasetNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


@command("results", "rebuild the README's results table from the checkpoints' metrics.json")
def run_results(args) -> int:
    from vaelab.results import write

    print(write())
    return 0


# --- train-classifier ------------------------------------------------------------------------

def add_train_classifier(p: argparse.ArgumentParser) -> None:
    from vaelab.data import DATASETS

    p.add_argument("--dataset", default="mnist", choices=DATASETS, help="training data (default: mnist)")
    p.add_argument("--data-dir", default=None,
                   help="folder holding MNIST/raw/… (default: $VAELAB_DATA, else ~/.cache/vaelab/data)")
    p.add_argument("--no-download", action="store_true", help="never try to download the dataset")
    p.add_argument("--epochs", type=int, default=8, help="training epochs (default 8)")
    p.add_argument("--batch-size", type=int, default=128, help="images per step (default 128)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate (default 2e-3)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--out", required=True, help="classifier folder to write (created or replaced atomically)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a ClassifierConfig field, e.g. --set feature_dim=64")


@command("train-classifier", "train the CNN digit classifier used by metrics; write its folder")
def run_train_classifier(args) -> int:
    from vaelab.classifier import train_classifier
    from vaelab.data import DatasetNotFoundError, load_dataset

    try:
        data = load_dataset(args.dataset, args.data_dir, download=False if args.no_download else None)
    except DatasetNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"training the classifier on {data.source}, "
          f"{len(data.train_x):,} train / {len(data.test_x):,} test images")
    try:
        model = train_classifier(data, args.epochs, batch_size=args.batch_size, lr=args.lr,
                                 seed=args.seed, threads=args.threads, out=args.out,
                                 **parse_set(args.overrides))
    except (ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"test accuracy {model.metrics['test_accuracy']:.4f}; classifier in {Path(args.out)}")
    return 0


# --- train-prior -----------------------------------------------------------------------------

def add_train_prior(p: argparse.ArgumentParser) -> None:
    from vaelab.prior import PriorConfig, PriorSettings

    arch, run = PriorConfig(), PriorSettings()
    p.add_argument("--base", required=True, help="checkpoint folder of a discrete model (vq-vae, vq-vae-2, dvae, gumbel-vae)")
    p.add_argument("--epochs", type=int, default=run.epochs, help=f"passes over the code maps (default {run.epochs})")
    p.add_argument("--batch-size", type=int, default=run.batch_size, help=f"code maps per step (default {run.batch_size})")
    p.add_argument("--lr", type=float, default=run.lr, help=f"Adam learning rate (default {run.lr})")
    p.add_argument("--seed", type=int, default=run.seed, help="random seed (default 0)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--channels", type=int, default=arch.channels, help=f"PixelCNN channels (default {arch.channels})")
    p.add_argument("--layers", type=int, default=arch.layers, help=f"gated layers (default {arch.layers})")
    p.add_argument("--kernel-size", type=int, default=arch.kernel_size,
                   help=f"odd kernel size of the masked convolutions (default {arch.kernel_size})")
    p.add_argument("--dataset", default=None, help="codes of which dataset (default: the base model's)")
    p.add_argument("--data-dir", default=None, help="folder holding MNIST/raw/… (default: $VAELAB_DATA)")
    p.add_argument("--preview", default=None, metavar="PNG", help="also write a grid of samples to this PNG")
    p.add_argument("--n", type=int, default=64, help="images in the preview grid (default 64)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="sampling temperature of the preview (logits / T; 0 = argmax; default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


@command("train-prior", "fit a gated PixelCNN prior to a discrete model's codes; saved in CHECKPOINT/prior/")
def run_train_prior(args) -> int:
    from vaelab.checkpoint import CheckpointError, load_checkpoint, read_config
    from vaelab.data import DatasetNotFoundError, load_dataset
    from vaelab.prior import PriorConfig, PriorSettings, train_prior

    try:
        meta = read_config(args.base)
        model = load_checkpoint(args.base)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not hasattr(model, "attach_prior"):
        print(f"error: {meta['variant']} has no discrete codes to fit a prior to "
              f"(it is {model.info.latent}); use a discrete model such as vq-vae", file=sys.stderr)
        return 2
    try:
        data = load_dataset(args.dataset or meta.get("dataset") or "digits", args.data_dir)
    except DatasetNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        config = PriorConfig(channels=args.channels, layers=args.layers, kernel_size=args.kernel_size)
        settings = PriorSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                 threads=args.threads, progress=not args.quiet)
        info = model.info
        print(f"fitting a gated PixelCNN to {meta['variant']} codes (K={info.codebook_size}, "
              f"index shapes {list(info.index_shapes)}) of {data.source}")
        prior, history = train_prior(model, data, config, settings, out_dir=args.base)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    last = history["epochs"][-1]
    seconds = history["encode_seconds"] + sum(e["seconds"] for e in history["epochs"])
    levels = "  ".join(f"{k} {v:.2f}" for k, v in last["val"].items() if k != "total")
    n_params = sum(p.numel() for p in prior.parameters())
    print(f"done in {seconds:.1f}s ({n_params:,} parameters): test cross-entropy "
          f"{last['val']['total']:.3f} nats per code map ({levels}); prior in {Path(args.base) / 'prior'}")
    if args.preview:
        model.attach_prior(prior)
        _write_grid(model, args.n, args.preview, args.temperature, args.seed)
    return 0


# --- sample ----------------------------------------------------------------------------------

def add_sample(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a checkpoint folder of a model that can sample")
    p.add_argument("--n", type=int, default=64, help="number of images (default 64)")
    p.add_argument("--out", required=True, help="PNG file for the grid")
    p.add_argument("--temperature", type=float, default=None,
                   help="code priors only: sampling temperature (logits / T; 0 = argmax; default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")


def _write_grid(model, n: int, out: str, temperature: float | None, seed: int) -> None:
    import torch
    from torchvision.utils import save_image

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    y = torch.arange(n) % model.config.num_classes if model.info.conditional else None
    kwargs = {} if temperature is None else {"temperature": temperature}
    with torch.no_grad():
        images = model.sample(n, y, generator=generator, **kwargs).clamp(0, 1)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_image(images, out, nrow=max(1, int(round(n ** 0.5))), padding=2, pad_value=0.5)
    print(f"wrote {n} samples to {out}")


@command("sample", "draw images from a model that can sample (a VAE, or a discrete model with a prior) into a PNG grid")
def run_sample(args) -> int:
    import torch

    from vaelab.checkpoint import CheckpointError, load_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model = load_checkpoint(args.checkpoint)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    info = model.info
    if not info.can_sample:
        hint = (" Train a prior first: python -m vaelab train-prior --base CHECKPOINT"
                if info.latent == "discrete" else "")
        print(f"error: this {model.variant} cannot sample.{hint}", file=sys.stderr)
        return 2
    if args.temperature is not None and not info.has_prior:
        print("error: --temperature applies to models with a code prior", file=sys.stderr)
        return 2
    _write_grid(model, args.n, args.out, args.temperature, args.seed)
    return 0


SETUP = {"list": add_list, "train": add_train, "eval": add_eval, "bench": add_bench, "zoo": add_zoo,
         "train-classifier": add_train_classifier, "train-prior": add_train_prior, "sample": add_sample}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vaelab",
        description="Train, load and inspect autoencoders: every variant behind one interface.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent("""\
            examples:
              python -m vaelab list
              python -m vaelab train vae --dataset digits --epochs 20 --out runs/vae-digits
              python -m vaelab train vae --dataset mnist --epochs 30 --set latent_dim=2 --out runs/vae2d
              python -m vaelab train-classifier --dataset mnist --epochs 8 --out checkpoints/classifier
              python -m vaelab train-prior --base runs/vq --epochs 2
              python -m vaelab sample runs/vq --n 64 --out grid.png --temperature 1.0
            """))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        SETUP.get(name, lambda _p: None)(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command][1](args)
