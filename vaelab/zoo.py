"""The pretrained zoo: a reproducible recipe for every shipped checkpoint.

``python -m vaelab zoo [--only NAMES] [--resume]`` trains each recipe on its dataset (MNIST from
``$VAELAB_DATA``, or the bundled digits), evaluates it, and writes ``checkpoints/<name>/``.
Training saves a checkpoint after every epoch; ``--resume`` skips finished models and continues an
interrupted one exactly from its last saved epoch (weights, Adam's moments, schedules and random
generators are all saved with the checkpoint).
Each model's training time is recorded in its ``history.json`` and in ``zoo.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vaelab.checkpoint import compact_weights, load_checkpoint
from vaelab.folders import CONFIG, HISTORY, WEIGHTS, read_json, write_json
from vaelab.registry import create

from vaelab.paths import REPO_ROOT as ROOT  # noqa: E402
CHECKPOINTS = ROOT / "checkpoints"


@dataclass(frozen=True)
class Recipe:
    name: str  # folder under checkpoints/
    variant: str  # registry name
    dataset: str = "mnist"  # training data
    epochs: int = 10
    overrides: dict = field(default_factory=dict)  # config fields
    train: dict = field(default_factory=dict)  # TrainSettings fields (batch_size, lr, binarize, ...)
    purpose: str = ""  # what the app uses it for
    prior_epochs: int = 0  # discrete models: epochs of a PixelCNN prior over the codes, trained after the model
    half_weights: bool = False  # store the weights as float16 (loading restores float32), before evaluation
    eval: dict = field(default_factory=dict)  # EvalSettings fields beyond ZOO_EVAL (the headline figures' scope)


MLP = {"hidden": (512, 256)}
# Every recipe validates each epoch on the split held out of the training images and stops once
# the validation loss has not improved for this many epochs (a recipe's own "patience" wins); the
# test set is only ever seen by evaluation.
PATIENCE = 5
# the sparse autoencoder: λ = 30 brings the units' mean activation near ρ = 0.05 (λ = 1 for 20 epochs
# left it at 0.24, with 60 % of the units above 0.1 on an image; λ = 10: 0.085 and 21 %; λ = 30: 0.066
# and 16 %, at a higher reconstruction error — the price of the penalty)
SPARSE_WEIGHT, SPARSE_EPOCHS = 30.0, 30
SPARSE = Recipe("sparse-ae", "sparse-ae", overrides={"sparsity_weight": SPARSE_WEIGHT}, epochs=SPARSE_EPOCHS,
                train={"lr_schedule": "cosine"}, purpose="few code units active per image")
CONTRACTIVE = Recipe("contractive-ae", "contractive-ae", overrides={"contractive_weight": 0.03}, epochs=20,
                     train={"lr": 1e-2, "lr_schedule": "cosine"}, purpose="codes that ignore small changes")
DEEP = {"hidden": (1000, 500, 250)}
# Ordered by what the app needs first, so an interrupted run (see --resume) ships those soonest.
RECIPES: list[Recipe] = [
    # small digits models: something to show with no MNIST at hand. Their validation split is 144
    # images, too few for early stopping (at patience 5 it stopped digits-vae-2d after 69 of 300
    # epochs, its 5-NN accuracy 0.60 instead of 0.82): they train the whole schedule and record
    # the validation loss of every epoch
    Recipe("digits-ae-2d", "ae", dataset="digits", overrides={"hidden": (64, 32), "latent_dim": 2}, epochs=200,
           train={"patience": 0}),
    Recipe("digits-vae-2d", "vae", dataset="digits", overrides={"hidden": (64, 32), "latent_dim": 2}, epochs=300,
           train={"patience": 0}),
    Recipe("digits-vae-8", "vae", dataset="digits", overrides={"hidden": (64, 32), "latent_dim": 8}, epochs=300,
           train={"patience": 0}),
    # the app's comparison views
    # 2-D maps: a deeper 784-1000-500-250-2 MLP (Hinton & Salakhutdinov 2006) and a cosine lr decay
    Recipe("ae-2d", "ae", overrides={**DEEP, "latent_dim": 2}, epochs=150, train={"lr_schedule": "cosine"},
           half_weights=True, purpose="2-D latent map"),
    Recipe("vae-2d", "vae", overrides={**DEEP, "latent_dim": 2}, epochs=60, train={"lr_schedule": "cosine"},
           half_weights=True, purpose="2-D latent map"),
    Recipe("linear-ae-2d", "linear-ae", overrides={"latent_dim": 2}, epochs=5, train={"lr": 3e-3},
           purpose="beside PCA at d=2"),
    # float16 weights (restored to float32 on loading) keep what ships under the Space's size limit
    Recipe("vae-16", "vae", overrides={**MLP, "latent_dim": 16}, epochs=10, half_weights=True, purpose="latent sliders"),
    Recipe("cvae", "cvae", overrides={**MLP, "latent_dim": 2}, epochs=10, half_weights=True, purpose="ask for a digit"),
    # the beta series: the same network and training for every beta, each run until its validation
    # loss has not improved for 10 epochs (at most 300)
    *[Recipe(f"beta-vae-{b:g}", "beta-vae", overrides={**MLP, "latent_dim": 10, "beta": float(b)}, epochs=300,
             train={"patience": 10}, purpose="beta series") for b in (0.5, 1, 2, 4, 8)],
    # VQ-VAE: two residual blocks each side (as in the paper), with and without restarts of rarely
    # used codes, trained the same way (until the validation loss has not improved for 5 epochs)
    # so the codebook tab can replay collapse against its cure; each records code use per epoch
    Recipe("vq-vae", "vq-vae", overrides={"res_blocks": 2, "restart_threshold": 0.9}, epochs=60,
           train={"patience": 5}, prior_epochs=10, purpose="codebook usage with dead-code restart"),
    Recipe("vq-vae-no-restart", "vq-vae", overrides={"res_blocks": 2, "restart": False}, epochs=60,
           train={"patience": 5}, prior_epochs=10, purpose="codebook collapse without restart"),
    # vq-vae-2 (about 2 minutes an epoch on two cores) is capped at 40 epochs; its prior (two
    # PixelCNNs, 5 minutes an epoch) at 5
    Recipe("vq-vae-2", "vq-vae-2", epochs=40, train={"patience": 5}, prior_epochs=5,
           purpose="two code levels, a prior per level"),
    # the grid dVAE anneals tau to its floor in about 15 epochs; it stops as the VQ-VAEs do
    Recipe("dvae", "dvae", epochs=60, train={"patience": 5}, prior_epochs=10, purpose="Gumbel temperature"),
    Recipe("gumbel-vae", "gumbel-vae", epochs=150, train={"binarize": "dynamic", "lr_schedule": "cosine"},
           purpose="20x10 categorical VAE vs Jang et al."),
    # classic family
    Recipe("ae-32", "ae", epochs=5, purpose="shallow 784-32-784 baseline"),
    Recipe("linear-ae-8", "linear-ae", overrides={"latent_dim": 8}, epochs=5, train={"lr": 3e-3}),
    Recipe("linear-ae-32", "linear-ae", overrides={"latent_dim": 32}, epochs=5, train={"lr": 3e-3}),
    Recipe("ae-8", "ae", overrides={**MLP, "latent_dim": 8}, epochs=5, half_weights=True, purpose="AE vs PCA at d=8"),
    Recipe("deep-ae", "deep-ae", epochs=30, train={"lr_schedule": "cosine"}),
    Recipe("conv-ae", "conv-ae", epochs=5),
    # each regulariser beside a plain autoencoder that differs from it only in the penalty (the same
    # network, code non-linearity and training recipe), so the Regularisers tab compares like with like
    Recipe("denoising-ae", "denoising-ae", epochs=20, train={"lr_schedule": "cosine"}),
    Recipe("ae-256-32", "ae", overrides={"hidden": (256,)}, epochs=20, train={"lr_schedule": "cosine"},
           purpose="the denoising autoencoder without its noise"),
    SPARSE,
    Recipe("ae-64-sigmoid", "ae", overrides={"latent_dim": 64, "code_activation": "sigmoid"},
           epochs=SPARSE.epochs, train=SPARSE.train, purpose="the sparse autoencoder without its penalty"),
    Recipe("k-sparse-ae", "k-sparse-ae", epochs=5),
    Recipe("ae-100", "ae", overrides={"latent_dim": 100}, epochs=5,
           purpose="the k-sparse autoencoder without its top-k"),
    # one sigmoid layer learns slowly at lr 1e-3; λ chosen by a sweep (see the model's config)
    CONTRACTIVE,
    Recipe("ae-32-sigmoid", "ae", overrides={"code_activation": "sigmoid"}, epochs=CONTRACTIVE.epochs,
           train=CONTRACTIVE.train, purpose="the contractive autoencoder without its penalty"),
    Recipe("stacked-ae", "stacked-ae", epochs=5),
    Recipe("conv-vae-16", "vae", overrides={"backbone": "conv", "hidden": (256,), "latent_dim": 16}, epochs=3),
    Recipe("vae-32-binarized", "vae",
           overrides={"backbone": "conv", "channels": (32, 64), "hidden": (256,), "latent_dim": 32,
                      "kl_warmup": "linear", "warmup_steps": 10 * 469},
           epochs=220, train={"binarize": "dynamic", "lr_schedule": "cosine"}, eval={"iw_images": None},
           purpose="likelihood vs published IWAE numbers"),  # the headline bound: the whole test set
    Recipe("hvae", "hvae", epochs=10),
    Recipe("vae-gan", "vae-gan", epochs=3),
    Recipe("vq-gan", "vq-gan", epochs=1),
]
# Evaluation in the zoo: the IWAE bound on the first 1,000 test images keeps each model to
# minutes on two cores (a recipe's ``eval`` widens it: the likelihood model's headline figure is on
# the whole test set); everything else uses the whole test set.
ZOO_EVAL = {"iw_samples": 1000, "iw_images": 1000}


def describe_shipped(folder: Path = CHECKPOINTS) -> list[str]:
    """Write each shipped model's ``info`` and its recipe's ``purpose`` into its config.json
    (checkpoints trained before config.json carried them); returns the names described."""
    from vaelab.checkpoint import describe

    purposes = {r.name: r.purpose for r in RECIPES}
    done = []
    for config in sorted(folder.glob("*/config.json")):
        meta = read_json(config.parent, CONFIG)
        if "variant" in meta and ("info" not in meta or "purpose" not in meta):
            describe(config.parent, purpose=purposes.get(config.parent.name, ""))
            done.append(config.parent.name)
    return done


def recipes(only: list[str] | None = None) -> list[Recipe]:
    from vaelab.registry import REGISTRY, _load_all

    _load_all()
    chosen = [r for r in RECIPES if r.variant in REGISTRY]
    if only:
        unknown = set(only) - {r.name for r in RECIPES}
        if unknown:
            raise KeyError(f"no zoo recipe named {', '.join(sorted(unknown))}; "
                           f"known: {', '.join(r.name for r in RECIPES)}")
        chosen = [r for r in chosen if r.name in only]
    return chosen


def train_one(recipe: Recipe, data, out: Path, resume: bool, threads: int | None = None) -> dict:
    """Train ``recipe`` into ``out``. With ``resume``, a finished model is skipped and an
    interrupted one continues exactly from its last saved epoch (weights, optimiser, schedules,
    random generators); a folder without training state is trained again from the start."""
    from vaelab.checkpoint import read_training_state
    from vaelab.train import TrainSettings, fit

    history = read_json(out, HISTORY) if resume else None
    if history and history.get("status") == "completed" and (out / WEIGHTS).is_file():
        return {"skipped": "already trained"}
    exact = resume and read_training_state(out) is not None
    if resume and history and not exact:
        print(f"{out} holds no training state to resume from: training {recipe.name} from the start")
    settings = TrainSettings(epochs=recipe.epochs, threads=threads, progress=True,
                             **{"patience": PATIENCE, **recipe.train})
    torch.manual_seed(0)
    model = create(recipe.variant, image_shape=data.image_shape, **recipe.overrides)
    start = time.perf_counter()
    new = fit(model, data, settings, out_dir=out, resume=exact)
    new["training_seconds"] = sum(e["seconds"] for e in new["epochs"])
    new["wall_seconds_this_run"] = time.perf_counter() - start
    write_json(out / HISTORY, new)
    meta = read_json(out, CONFIG)
    write_json(out / CONFIG, {**meta, "purpose": recipe.purpose})  # carried over by later saves
    return {"epochs": len(new["epochs"]), "training_seconds": new["training_seconds"]}


def run(only: list[str] | None = None, resume: bool = False, evaluate_after: bool = True,
        threads: int | None = None, data_dir=None) -> dict:
    from vaelab.data import load_dataset
    from vaelab.evaluate import evaluate

    log_path = CHECKPOINTS / "zoo.json"
    log = read_json(CHECKPOINTS, "zoo.json", {}) or {}
    cache = {}
    for recipe in recipes(only):
        if recipe.dataset not in cache:
            cache[recipe.dataset] = load_dataset(recipe.dataset, data_dir, download=None)
        data = cache[recipe.dataset]
        out = CHECKPOINTS / recipe.name
        print(f"== {recipe.name}: {recipe.variant} on {data.source}, {recipe.epochs} epochs")
        status = train_one(recipe, data, out, resume, threads)
        if recipe.half_weights and compact_weights(out):
            status["weights"] = "float16"
            if (out / "metrics.json").is_file():
                (out / "metrics.json").unlink()  # metrics must describe the weights that ship
        if recipe.prior_epochs and not (out / "prior" / "model.safetensors").is_file():
            from vaelab.prior import PriorSettings, train_prior

            _, prior_history = train_prior(load_checkpoint(out), data,
                                           settings=PriorSettings(epochs=recipe.prior_epochs, threads=threads),
                                           out_dir=out)
            status["prior_test_nats_per_map"] = prior_history["epochs"][-1]["val"]["total"]
        if evaluate_after and not (resume and "skipped" in status and (out / "metrics.json").is_file()):
            from vaelab.evaluate import EvalSettings
            evaluate(out, data, EvalSettings(**{**ZOO_EVAL, **recipe.eval}), write=True)
        log = read_json(CHECKPOINTS, "zoo.json", {}) or {}  # another zoo process may have written it
        if "skipped" not in status:
            log[recipe.name] = {**status, "variant": recipe.variant, "dataset": recipe.dataset,
                                "purpose": recipe.purpose}
        CHECKPOINTS.mkdir(exist_ok=True)
        write_json(log_path, log)
    return log
