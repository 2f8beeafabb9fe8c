"""The model side of a learned prior over discrete codes.

A VQ-VAE has no prior of its own: it learns codes, not how often they occur together. To sample
it, a prior over its index maps is fitted afterwards (:mod:`vaelab.prior`) and attached to the
model; :class:`CodePriorMixin` holds it and samples through it. Loading attaches a saved prior
through the model contract's :meth:`~vaelab.models.base.AutoEncoder.attach_extras` hook, so the
checkpoint loader never imports the prior subsystem. The prior's folder (``CHECKPOINT/prior/``:
config.json with the per-level configs and the SHA-256 of the base weights, model.safetensors,
history.json) is read and written here; training a prior is :mod:`vaelab.prior`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict
from pathlib import Path

import torch

from vaelab.folders import (CONFIG, HISTORY, WEIGHTS, CheckpointError, atomic_folder, fingerprint,
                            load_weights, read_json, write_json, write_weights)
from vaelab.models.base import SamplingNotSupported
from vaelab.nn.pixelcnn import CodePrior, PixelCNNConfig
from vaelab.registry import config_from_dict

PRIOR_DIR = "prior"  # sub-folder of a checkpoint holding its code prior
FORMAT_VERSION = 1
KIND = "gated-pixelcnn"


class CodePriorMixin:
    """For discrete models: holds an attached :class:`CodePrior` and samples through it.

    Mix in before :class:`~vaelab.models.base.AutoEncoder` and report ``has_prior`` in ``info``
    (``can_sample=self.has_prior, has_prior=self.has_prior``). A model that has a fixed prior
    over its codes without a learned one (a Gumbel-softmax VAE's uniform prior) overrides
    :meth:`fixed_prior_indices` and reports ``can_sample=True``. The prior is kept outside the
    model's modules on purpose: it is not in the model's ``state_dict`` (the model's weights file
    stays the same with or without one) and lives in its own folder.
    """

    _code_prior: CodePrior | None = None

    @property
    def code_prior(self) -> CodePrior | None:
        return self._code_prior

    @property
    def has_prior(self) -> bool:
        return self._code_prior is not None

    def attach_prior(self, prior: CodePrior | None) -> None:
        """Attach ``prior`` (None detaches); it must match ``info.index_shapes`` and K."""
        if prior is not None:
            info = self.info
            want = tuple(tuple(s) for s in info.index_shapes)
            if prior.index_shapes != want or any(c.codebook_size != info.codebook_size
                                                 for c in prior.configs):
                raise ValueError(f"prior over index shapes {prior.index_shapes} (K="
                                 f"{prior.configs[0].codebook_size}) does not fit this model's "
                                 f"{want} (K={info.codebook_size})")
            prior.eval()
        object.__setattr__(self, "_code_prior", prior)  # not nn.Module.__setattr__: no submodule

    def fixed_prior_indices(self, n: int, generator: torch.Generator | None = None):
        """Indices when no learned prior is attached. By default there are none; models with a
        prior of their own over the codes (uniform, for Gumbel-softmax VAEs) override this."""
        raise SamplingNotSupported(
            f"{type(self).__name__} has no prior over its codes; train one with "
            "`python -m vaelab train-prior --base CHECKPOINT`")

    @torch.no_grad()
    def sample_indices(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0):
        """Indices drawn from the attached prior (else :meth:`fixed_prior_indices`), as
        ``Latent.indices`` has them."""
        if self._code_prior is None:
            return self.fixed_prior_indices(n, generator)
        device = next(self.parameters()).device
        prior = self._code_prior.to(device).eval()
        return prior.sample(n, generator=generator, temperature=temperature, device=device)

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """Images ``(n, C, H, W)``: indices from the prior, decoded via ``latent_from_indices``."""
        indices = self.sample_indices(n, generator, temperature)
        return self.decode(self.latent_from_indices(indices), y)

    def attach_extras(self, folder: str | Path, device: str | torch.device = "cpu") -> None:
        """The loader's hook: attach the prior saved in ``folder/prior/``, when there is one."""
        attach_if_present(self, folder, device)


# --- the prior's folder: CHECKPOINT/prior/ ------------------------------------------------------

def weights_fingerprint(checkpoint: str | os.PathLike) -> str | None:
    """SHA-256 of the base checkpoint's weights (None if it has none)."""
    return fingerprint(Path(checkpoint) / WEIGHTS)


def write_prior(prior: CodePrior, checkpoint: str | os.PathLike, history: dict | None = None) -> Path:
    """Write ``prior`` to ``checkpoint/prior/`` atomically (temporary folder, then rename)."""
    out = Path(checkpoint) / PRIOR_DIR
    with atomic_folder(out) as tmp:
        write_json(tmp / CONFIG, {"format": FORMAT_VERSION, "kind": KIND,
                                  "levels": [asdict(c) for c in prior.configs],
                                  "base_weights_sha256": weights_fingerprint(checkpoint)})
        write_weights(prior, tmp / WEIGHTS)
        if history is not None:
            write_json(tmp / HISTORY, history)
    return out


def read_prior_config(checkpoint: str | os.PathLike) -> dict:
    meta = read_json(Path(checkpoint) / PRIOR_DIR, CONFIG)
    if meta is None:
        raise CheckpointError(f"{Path(checkpoint) / PRIOR_DIR} holds no {CONFIG}")
    return meta


def load_prior(checkpoint: str | os.PathLike, device: str | torch.device = "cpu") -> CodePrior:
    """Rebuild the prior saved in ``checkpoint/prior/`` (eval mode)."""
    folder = Path(checkpoint) / PRIOR_DIR
    meta = read_prior_config(checkpoint)
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{folder}: unknown prior kind {meta.get('kind')!r}; this vaelab reads {KIND!r}")
    prior = CodePrior(tuple(config_from_dict(PixelCNNConfig, c) for c in meta["levels"]))
    load_weights(prior, folder, device)
    return prior.to(device).eval()


def attach_if_present(model, checkpoint: str | os.PathLike, device: str | torch.device = "cpu") -> bool:
    """Attach ``checkpoint/prior/`` to ``model`` when that folder exists (what
    :meth:`CodePriorMixin.attach_extras` does). Returns whether a prior was attached. A
    prior whose recorded weights hash differs from the checkpoint's weights is left out with a
    warning (it was fitted to other codes)."""
    if not (Path(checkpoint) / PRIOR_DIR / CONFIG).is_file():
        return False
    recorded = read_prior_config(checkpoint).get("base_weights_sha256")
    if recorded is not None and recorded != weights_fingerprint(checkpoint):
        warnings.warn(f"{Path(checkpoint) / PRIOR_DIR} was trained on other weights than "
                      f"{checkpoint}/{WEIGHTS}; not attached. Retrain it with train-prior.",
                      stacklevel=2)
        return False
    try:
        model.attach_prior(load_prior(checkpoint, device))
    except ValueError as error:
        raise CheckpointError(f"{checkpoint}: {error}") from error
    return True
