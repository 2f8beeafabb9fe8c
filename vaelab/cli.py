"""Command line: ``python -m vaelab list | train | …`` (installed: ``vaelab list | train | …``).

Subcommands are a table (name -> (add_arguments, run)); later ones (eval, bench, zoo) add rows.

Mistakes get messages a newcomer can act on rather than tracebacks: a mistyped option,
subcommand or choice is answered with the nearest valid one (:class:`Parser`), a ``--set`` value
of the wrong type names the field and the type it takes (:func:`check_overrides`), and ``sample``
on a model that cannot sample names the shipped checkpoints that can.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import re
import sys
import textwrap
import types
import typing
from pathlib import Path

COMMANDS: dict[str, tuple] = {}


def command(name: str, help_: str):
    def decorate(fn):
        COMMANDS[name] = (help_, fn)
        return fn
    return decorate


class Parser(argparse.ArgumentParser):
    """argparse whose errors suggest the nearest option, subcommand or choice ("did you mean
    --epochs?"). Options must be spelled out: argparse's prefix matching would otherwise take
    ``--epoch`` for ``--epochs`` silently, and ``--lr`` would become ambiguous as options grow."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.seen: list[str] = []  # the arguments this parser was last given, for error()

    def parse_known_args(self, args=None, namespace=None):
        self.seen = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def subcommand(self, name: str) -> Parser:
        """The parser of subcommand ``name``."""
        action = next(a for a in self._actions if isinstance(a, argparse._SubParsersAction))
        return action.choices[name]

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}{''.join(self.hints(message))}\n")

    def hints(self, message: str) -> list[str]:
        """One line per mistyped option among :attr:`seen`, and one for an invalid choice."""
        out = []
        if not any(isinstance(a, argparse._SubParsersAction) for a in self._actions):
            # a subcommand's parser: its options are all the options there are
            known = [flag for a in self._actions for flag in a.option_strings]
            for token in self.seen:
                flag = token.split("=", 1)[0]
                if flag.startswith("-") and flag != "--" and flag not in known and not _is_number(flag):
                    near = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
                    out.append(f"\n  {flag}: did you mean {near[0]}?" if near else
                               f"\n  {flag}: no such option; see {self.prog} --help")
        bad = re.search(r"invalid choice: '?([^' ]+)", message)
        if bad:
            choices = [str(c) for a in self._actions if a.choices for c in a.choices]
            near = difflib.get_close_matches(bad.group(1), choices, n=1, cutoff=0.6)
            if near:
                out.append(f"\n  did you mean {near[0]}?")
        return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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


def describe_type(annotation) -> str:
    """``int`` -> "int", ``tuple[int, ...]`` -> "a JSON list of int", ``float | None`` -> "float or null"."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in args)
    if annotation is type(None):
        return "null"
    if annotation is bool:
        return "bool (true or false)"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a JSON list of {describe_type(args[0])}"
        return f"a JSON list of {len(args)} {' and '.join(dict.fromkeys(describe_type(a) for a in args))}"
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    return getattr(annotation, "__name__", str(annotation))


def value_fits(value, annotation) -> bool:
    """Whether a ``--set`` value (parsed as JSON, else a string) can fill a field of this type;
    types this check does not know are let through to the config's own validation."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(value_fits(value, a) for a in args)
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(value_fits(v, args[0]) for v in value)
        return len(value) == len(args) and all(value_fits(v, a) for v, a in zip(value, args))
    if origin is typing.Literal:
        return value in args
    return True


def check_overrides(config_cls: type, overrides: dict, what: str) -> str | None:
    """The first problem with ``--set`` overrides of ``config_cls`` as a message, or None: an
    unknown field (with the nearest names), or a value of the wrong type (with the type wanted)."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    for key, value in overrides.items():
        if key not in fields:
            near = difflib.get_close_matches(key, fields, n=3, cutoff=0.5)
            guess = f"; did you mean {' or '.join(near)}?" if near else ""
            return (f"{what} has no field {key!r}{guess}\n  its fields: {', '.join(fields)} "
                    f"(with their defaults: python -m vaelab list -v)")
        if not value_fits(value, hints[key]):
            shown = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            field = fields[key]
            if field.default is not dataclasses.MISSING:
                default = field.default
            elif field.default_factory is not dataclasses.MISSING:
                default = field.default_factory()
            else:
                return f"--set {key}={shown}: {key} takes {describe_type(hints[key])}"
            example = json.dumps(list(default) if isinstance(default, tuple) else default,
                                 separators=(",", ":"), default=str)
            return (f"--set {key}={shown}: {key} takes {describe_type(hints[key])}, "
                    f"e.g. --set {key}={example} (its default)")
    return None


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
    p.add_argument("--resume", action="store_true",
                   help="continue the run saved in --out exactly (same settings; --epochs is the run's total)")
    p.add_argument("--patience", type=int, default=0,
                   help="early stopping: stop after this many epochs without a better validation loss (default 0: never)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set latent_dim=2 --set hidden=[256,128]; "
                        "see `python -m vaelab list -v` for the fields")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


@command("train", "train a variant and write its checkpoint folder")
def run_train(args) -> int:
    import torch

    from vaelab.data import DatasetNotFoundError, load_dataset
    from vaelab.registry import create, get_entry, list_variants
    from vaelab.train import NonFiniteLossError, TrainSettings, fit

    try:
        entry = get_entry(args.variant)
    except KeyError as error:
        near = difflib.get_close_matches(args.variant, [e.name for e in list_variants()], n=1)
        print(f"error: {error.args[0]}" + (f"\n  did you mean {near[0]}?" if near else ""), file=sys.stderr)
        return 2
    problem = check_overrides(entry.config_cls, parse_set(args.overrides), args.variant)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
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
                             grad_clip=args.grad_clip, lr_schedule=args.lr_schedule, progress=not args.quiet,
                             patience=args.patience)
    say = print if int(os.environ.get("RANK", "0")) == 0 else (lambda *a, **k: None)  # torchrun: rank 0 speaks
    n_params = sum(p.numel() for p in model.parameters())
    say(f"training {args.variant} ({n_params:,} parameters) on {data.source}, "
        f"{len(data.train_x):,} train / {len(data.val_x):,} validation images"
        + (f", resuming {args.out}" if args.resume else ""))
    try:
        history = fit(model, data, settings, out_dir=args.out, resume=args.resume)
    except NonFiniteLossError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # a resume that cannot be exact, a batch that does not split over processes
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not history["epochs"]:
        say(f"stopped before the first epoch finished: {history.get('stop_message', '')}")
        return 1
    last = history["epochs"][-1]
    total_s = sum(e["seconds"] for e in history["epochs"])
    status = "done" if history["status"] == "completed" else history["status"]
    say(f"{status} in {total_s:.1f}s: val loss {last['val']['total']:.4f}; checkpoint in {Path(args.out)}")
    return 0


# --- eval ------------------------------------------------------------------------------------

def add_eval(p: argparse.ArgumentParser) -> None:
    from vaelab.evaluate import EvalSettings

    d = EvalSettings()
    p.epilog = ("The defaults score an MNIST model in 1-3 minutes on two CPU cores; the options saying "
                "'first N' use a subset. Full-set figures: --iw-images 0 --n-trust 10000 --n-train 60000 "
                "(half an hour or more for a conv VAE).")
    p.add_argument("checkpoint", help="a checkpoint folder (config.json + model.safetensors)")
    p.add_argument("--write", action="store_true",
                   help="store metrics.json and the app's cached artifacts.safetensors in the checkpoint folder "
                        "(replacing them); without it nothing is written")
    p.add_argument("--dataset", default=None, help="dataset to score on (default: the one it was trained on)")
    p.add_argument("--data-dir", default=None, help="folder holding MNIST/raw/… (default: $VAELAB_DATA)")
    p.add_argument("--iw-samples", type=int, default=d.iw_samples,
                   help=f"k of the IWAE bound (default {d.iw_samples}; the time grows with k)")
    p.add_argument("--iw-images", type=int, default=d.iw_images,
                   help=f"first N test images for the IWAE bound (default {d.iw_images}); 0 for all 10,000 MNIST "
                        "test images: about 3 minutes for an MLP VAE, 20-30 for a conv VAE on two cores")
    p.add_argument("--n-train", type=int, default=d.n_train,
                   help=f"first N train images for the k-NN, PCA and UMAP fits (default {d.n_train}); "
                        "60000 for all of MNIST's (UMAP and encoding take several times longer)")
    p.add_argument("--n-trust", type=int, default=d.n_trust,
                   help=f"first N test images for trustworthiness (default {d.n_trust}); 10000 for all of "
                        "MNIST's (its N×N distance matrices then need a few GB of memory)")
    p.add_argument("--fd-samples", type=int, default=d.fd_samples,
                   help=f"samples for the Fréchet distance (default {d.fd_samples}); a discrete model draws "
                        "them through its PixelCNN prior, about a minute on two cores: fewer is faster, "
                        "but the distance reads higher")
    p.add_argument("--no-umap", action="store_true", help="skip UMAP (slow the first time on a dataset, then cached)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--quiet", action="store_true", help="no progress bars or section timings")


@command("eval", "score a checkpoint and print the table; --write stores metrics.json and the app's artifacts in it")
def run_eval(args) -> int:
    import torch

    from vaelab.artifacts import ARTIFACTS
    from vaelab.checkpoint import METRICS, CheckpointError, read_config
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
    settings = EvalSettings(iw_samples=args.iw_samples, iw_images=args.iw_images or None,
                            n_train=args.n_train, n_trust=args.n_trust, fd_samples=args.fd_samples,
                            umap=not args.no_umap)
    print(f"evaluating {args.checkpoint} ({meta['variant']}) on {data.source}")
    results = evaluate(args.checkpoint, data, settings, write=args.write, progress=None if args.quiet else print)
    rows = summary_rows(results)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    folder = Path(args.checkpoint)
    if args.write:
        print(f"wrote {folder / METRICS} and {folder / ARTIFACTS}")
    else:
        print(f"nothing was written; to store these numbers in {folder} (as {METRICS}, with the app's "
              f"{ARTIFACTS}), run again with --write")
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
        from vaelab import gallery

        if args.data_dir:
            os.environ["VAELAB_DATA"] = args.data_dir
        print("gallery:")
        gallery.build()  # the pictures follow the retrained models
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
    from vaelab.classifier import ClassifierConfig, train_classifier
    from vaelab.data import DatasetNotFoundError, load_dataset

    problem = check_overrides(ClassifierConfig, parse_set(args.overrides), "the classifier")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
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


def samplable_checkpoints() -> list[str]:
    """Names of the shipped checkpoints (:func:`vaelab.paths.checkpoints_dir`) that can sample,
    as their ``config.json`` records it (``info.can_sample``); a folder written before configs
    recorded it is loaded to ask the model."""
    from vaelab.checkpoint import CheckpointError, load_checkpoint, read_config
    from vaelab.paths import checkpoints_dir

    root = checkpoints_dir()
    names = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not (folder / "config.json").is_file():
            continue
        try:
            meta = read_config(folder)
            if "variant" not in meta:  # the classifier's folder: not an autoencoder
                continue
            recorded = (meta.get("info") or {}).get("can_sample")
            if recorded is None:
                recorded = load_checkpoint(folder).info.can_sample
        except (CheckpointError, KeyError, ValueError, RuntimeError, OSError):  # unreadable: not offered
            continue
        if recorded:
            names.append(folder.name)
    return names


def _samplers_hint(n: int, out: str) -> str:
    from vaelab.paths import checkpoints_dir

    root, names = checkpoints_dir(), samplable_checkpoints()
    if not names:
        return f"No checkpoint in {root} can sample either (VAELAB_CHECKPOINTS sets that folder)."
    return (f"Shipped checkpoints that can sample (in {root}): {', '.join(names)}\n"
            f"  e.g. python -m vaelab sample {root / names[0]} --n {n} --out {out}")


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
        hint = (f" Train a prior first: python -m vaelab train-prior --base {args.checkpoint}"
                if info.latent == "discrete" else " It has no prior to draw latents from.")
        print(f"error: this {model.variant} cannot sample.{hint}\n{_samplers_hint(args.n, args.out)}",
              file=sys.stderr)
        return 2
    if args.temperature is not None and not info.has_prior:
        print("error: --temperature applies to models with a code prior", file=sys.stderr)
        return 2
    _write_grid(model, args.n, args.out, args.temperature, args.seed)
    return 0


@command("app", "serve the web app over the shipped checkpoints (or --checkpoints FOLDER), as app.py does")
def cmd_app(args) -> int:
    import torch

    if args.checkpoints:
        folder = Path(args.checkpoints).expanduser()
        if not folder.is_dir():
            print(f"error: {folder} is not a folder of checkpoints", file=sys.stderr)
            return 2
        os.environ["VAELAB_CHECKPOINTS"] = str(folder.resolve())
    if args.data_dir:
        os.environ["VAELAB_DATA"] = str(Path(args.data_dir).expanduser().resolve())
    from vaelab.app import build, freeze_heap, launch_options
    from vaelab.app.catalogue import scan_checkpoints
    from vaelab.paths import checkpoints_dir

    if not scan_checkpoints():
        print(f"error: no checkpoints in {checkpoints_dir()}: set VAELAB_CHECKPOINTS (or --checkpoints) to the "
              "checkpoints folder of a vaelab checkout, or train one (vaelab train ... --out FOLDER)",
              file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)  # one per request by default, as app.py: see its comment
    demo = build()
    freeze_heap()
    if args.no_launch:
        print(f"built the app over {len(scan_checkpoints())} checkpoints in {checkpoints_dir()}; not serving "
              "(--no-launch)")
        return 0
    print(f"vaelab: serving http://{args.host}:{args.port}/ (Ctrl+C stops it)")
    demo.launch(server_name=args.host, server_port=args.port, **launch_options())
    return 0


def add_app(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoints", default=None,
                   help="the checkpoints folder (default $VAELAB_CHECKPOINTS, else a checkout's checkpoints/)")
    p.add_argument("--data-dir", default=None, help="where MNIST is, in torchvision's layout (default $VAELAB_DATA)")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="address to serve on (default 127.0.0.1; 0.0.0.0 for other machines)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                   help="port (default 7860)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per request (default 1)")
    p.add_argument("--no-launch", action="store_true", help="build the app, say what it holds, and exit")


@command("explore", "open the app on any autoencoder (a checkpoint folder, a diffusers or pythae model, your "
                    "own code) over a folder of images")
def cmd_explore(args) -> int:
    from vaelab.external import ExploreError, load_model

    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    try:
        from vaelab.remote import download, is_repo_id

        spec = args.model
        if is_repo_id(spec):  # a vaelab model on the Hub
            try:
                spec = str(download(spec))
            except Exception as error:  # no network, no such model, no access: huggingface_hub's own words
                raise ExploreError(f"could not fetch {args.model} from the Hugging Face Hub ({type(error).__name__}): "
                                   "this machine may have no network, or there is no such model. Download it "
                                   "elsewhere (vaelab push puts one there) and give its folder.") from None
        model = load_model(spec)
        data = _explore_data(args, model, spec)
        from vaelab.app.explored import explore

        from vaelab.models.base import AutoEncoder

        name = args.name or (Path(args.model.rstrip("/")).name if isinstance(model, AutoEncoder) else None)
        demo = explore(model, data, name=name, max_images=args.max_images, latent_map=args.latent_map,
                       launch=False, **({"image_shape": tuple(args.image_shape)} if args.image_shape else {}),
                       **({"value_range": tuple(args.value_range)} if args.value_range else {}),
                       **({"posterior": args.posterior} if args.posterior else {}))
        print(explore_summary())
        if not args.no_launch:
            print(f"serving http://{args.host}:{args.port}/ (Ctrl+C stops it)")
            demo.launch(server_name=args.host, server_port=args.port)
    except ExploreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _explore_data(args, model, spec):
    """What ``--data`` names: a folder of images, or a dataset by name; by default a checkpoint's
    own dataset, refused (not replaced) when its files are not on this machine."""
    from vaelab.data import DATASETS, DatasetNotFoundError, load_dataset
    from vaelab.external import ExploreError
    from vaelab.models.base import AutoEncoder

    name = args.data
    if name is not None and not Path(name).exists():
        if name.lower() in DATASETS:
            name = name.lower()
        else:
            raise ExploreError(f"--data {name!r} is neither a folder nor a dataset ({', '.join(DATASETS)})")
    elif name is not None:
        return name
    if name is None:
        if not isinstance(model, AutoEncoder):
            raise ExploreError("--data is needed: a folder of images for this model, or a dataset "
                               f"({', '.join(DATASETS)})")
        meta = json.loads((Path(spec) / "config.json").read_text())
        name = meta.get("dataset") or "digits"
    try:
        return load_dataset(name, args.data_dir, download=False)
    except DatasetNotFoundError as error:
        raise ExploreError(f"{spec} was trained on {name}, which is not on this machine ({error}). Give --data-dir "
                           "where it is, or --data with a folder of images to explore it on.") from None


def explore_summary() -> str:
    """What ``vaelab explore`` embedded, in a few lines: the model, the images, the numbers."""
    from vaelab.app import catalogue, state
    from vaelab.metric_keys import metric

    lines = []
    for card in catalogue.explored_cards():
        m = state.load(card.name)
        mse, pca_mse = metric(m.metrics, "reconstruction.mse"), metric(m.metrics, "reconstruction.pca_mse")
        knn = metric(m.metrics, "embedding.knn_latent_full")
        lines.append(f"{card.display}: {card.description}, {card.size} latent")
        lines.append(f"  images: {card.data_title}")
        if mse is not None:
            lines.append(f"  reconstruction error (MSE per pixel) {mse:.4f}; PCA with "
                         f"{metric(m.metrics, 'reconstruction.pca_dims')} components {pca_mse:.4f}, on held-out images")
        if knn is not None:
            lines.append(f"  5-nearest-neighbour label accuracy in the latent: {knn:.1%}")
        lines.append(f"  map: {metric(m.metrics, 'embedding.model_projection', '')}")
        lines += [f"  warning: {w}" for w in m.metrics.get("warnings", [])]
    return "\n".join(lines)


def add_explore(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a vaelab checkpoint folder, diffusers:ID (AutoencoderKL), diffusers-vq:ID "
                                 "(VQModel), pythae:FOLDER, or python:MODULE:FUNCTION (your code returns the model)")
    p.add_argument("--data", default=None, help="a folder of images (one sub-folder per class, and/or images directly), "
                                                "or a dataset by name (mnist, fashion-mnist, kmnist, digits); default "
                                                "for a checkpoint: its own dataset's test images")
    p.add_argument("--data-dir", default=None, help="where a checkpoint's dataset is looked for (default $VAELAB_DATA)")
    p.add_argument("--max-images", type=int, default=None, help="images embedded, at most (default 5000)")
    p.add_argument("--latent-map", choices=("flatten", "pool"), default="flatten",
                   help="a spatial latent on the map: all its numbers, or their mean over positions (default flatten)")
    p.add_argument("--image-shape", type=int, nargs=3, metavar=("C", "H", "W"), default=None,
                   help="the images the model takes, when it does not say")
    p.add_argument("--value-range", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                   help="the pixel range the model works in (default -1 1 for diffusers, else 0 1)")
    p.add_argument("--posterior", default=None,
                   help='what each value of the tuple encode returns is, e.g. "mean, logvar", "z, mean, logvar", '
                        '"mean, std" (a bare tuple is refused without it)')
    p.add_argument("--name", default=None, help="what the app calls the model")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--no-launch", action="store_true", help="embed, print what was found, build the app, then exit")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")


def _upload_failed(repo_id: str, error: Exception) -> int:
    """An upload to the Hub that failed: its reason, and what a token needs."""
    print(f"error: the upload to {repo_id} failed: {type(error).__name__}: {error}\n"
          "A write token is needed: set HF_TOKEN or run `huggingface-cli login`.", file=sys.stderr)
    return 1


@command("space", "put the app on a Hugging Face Space: assemble what it needs and upload it "
                  "(--dry-run lists the files and writes them to a folder, uploading nothing)")
def cmd_space(args) -> int:
    import tempfile

    from vaelab.space import assemble, describe, requirements, upload

    if not re.fullmatch(r"[\w.-]+/[\w.-]+", args.repo_id):
        print(f"error: a Space is named OWNER/NAME (e.g. your-name/vaelab), not {args.repo_id!r}", file=sys.stderr)
        return 2
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="vaelab-space-"))
    try:
        entries = assemble(folder, gpu=args.gpu, app=Path(args.app) if args.app else None,
                           include=[Path(p) for p in args.include], checkpoints=not args.no_checkpoints)
    except (FileExistsError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(describe(entries))
    print("\nrequirements.txt:\n" + requirements(args.gpu))
    if args.dry_run:
        print(f"Assembled in {folder}; nothing uploaded (dry run).")
        return 0
    try:
        url = upload(folder, args.repo_id, private=args.private, hardware=args.hardware)
    except Exception as error:  # network, authentication, permissions: the hub's own message says which
        return _upload_failed(args.repo_id, error)
    print(f"Uploaded: {url} (the Space builds in a few minutes)")
    return 0


def add_space(p: argparse.ArgumentParser) -> None:
    p.add_argument("repo_id", help="the Space, OWNER/NAME (created if it does not exist)")
    p.add_argument("--dry-run", action="store_true", help="list and assemble the files, upload nothing")
    p.add_argument("--out", default=None, help="assemble into this new folder (default: a temporary one)")
    p.add_argument("--gpu", action="store_true", help="GPU hardware: keep PyPI's CUDA torch (default: CPU wheels)")
    p.add_argument("--hardware", default=None, help="request Space hardware, e.g. cpu-basic, t4-small")
    p.add_argument("--private", action="store_true", help="create the Space private")
    p.add_argument("--app", default=None, help="your own app.py (e.g. one calling vaelab.explore(..., launch=False) "
                                               "on your model) instead of the project's")
    p.add_argument("--include", nargs="*", default=[], metavar="PATH",
                   help="files and folders your app needs (your model, your images)")
    p.add_argument("--no-checkpoints", action="store_true", help="leave the shipped checkpoints out")


@command("push", "upload a checkpoint folder to the Hugging Face Hub with a model card "
                 "(--dry-run writes the card and lists the files, uploading nothing)")
def cmd_push(args) -> int:
    import tempfile

    from vaelab.checkpoint import CheckpointError
    from vaelab.hub import REPO_ID, push

    if not REPO_ID.match(args.repo_id):
        print(f"error: a Hub model is named OWNER/NAME, not {args.repo_id!r}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="vaelab-push-")) / "model"
    try:
        files, url = push(Path(args.checkpoint), args.repo_id, out=out, private=args.private, dry_run=args.dry_run)
    except (FileNotFoundError, FileExistsError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # network, authentication, permissions: the hub's own message says which
        return _upload_failed(args.repo_id, error)
    for f in files:
        print(f"  {f.relative_to(out)}")
    print(f"Staged in {out}." + (" Nothing uploaded (dry run)." if url is None else f" Uploaded: {url}"))
    print(f'Load it with vaelab.load_checkpoint("{args.repo_id}").')
    return 0


def add_push(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a checkpoint folder")
    p.add_argument("repo_id", help="the Hub model, OWNER/NAME (created if it does not exist)")
    p.add_argument("--dry-run", action="store_true", help="write the card and list the files; upload nothing")
    p.add_argument("--out", default=None, help="stage the files in this new folder (default: a temporary one)")
    p.add_argument("--private", action="store_true", help="create the model private")


@command("gallery", "draw each family's shipped models: test images, their reconstructions, prior samples "
                    "(assets/gallery/, shown in the README)")
def cmd_gallery(args) -> int:
    from vaelab import gallery

    if args.data_dir:
        os.environ["VAELAB_DATA"] = args.data_dir
    files = gallery.build(Path(args.out) if args.out else gallery.OUT)
    print(f"{len(files)} pictures written.")
    return 0


def add_gallery(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=None, help="folder for the pictures (default assets/gallery)")
    p.add_argument("--data-dir", default=None, help="where MNIST is (default $VAELAB_DATA)")


SETUP = {"app": add_app, "gallery": add_gallery, "push": add_push, "space": add_space, "explore": add_explore, "list": add_list, "train": add_train, "eval": add_eval, "bench": add_bench, "zoo": add_zoo,
         "train-classifier": add_train_classifier, "train-prior": add_train_prior, "sample": add_sample}


def build_parser() -> Parser:
    parser = Parser(
        prog="vaelab" if Path(sys.argv[0]).name == "vaelab" else "python -m vaelab",
        description="Train, load and inspect autoencoders: every variant behind one interface.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent("""\
            examples:
              python -m vaelab list
              python -m vaelab train vae --dataset digits --epochs 20 --out runs/vae-digits
              python -m vaelab eval runs/vae-digits
              python -m vaelab train vq-vae --dataset digits --epochs 2 --set channels=[8] --set latent_dim=4 \\
                  --set codebook_size=16 --out runs/vq-digits
              python -m vaelab train-prior --base runs/vq-digits --epochs 2
              python -m vaelab sample runs/vq-digits --n 16 --out grid.png
            """))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for name, (help_, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        SETUP.get(name, lambda _p: None)(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (the ``vaelab`` console script exits with it)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the subcommand's parser, which knows the options they were meant as
        parser.subcommand(args.command).error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return COMMANDS[args.command][1](args)
    except BrokenPipeError:  # the output was piped into a program that stopped reading (`| head`)
        sys.stderr.close()
        return 0
