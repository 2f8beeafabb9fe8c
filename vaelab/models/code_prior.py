"""The model side of a learned prior over discrete codes.

A VQ-VAE has no prior of its own: it learns codes, not how often they occur together. To sample
it, a prior over its index maps is fitted afterwards (:mod:`vaelab.prior`) and attached to the
model; :class:`CodePriorMixin` holds it and samples through it. Loading attaches a saved prior
through the model contract's :meth:`~vaelab.models.base.AutoEncoder.attach_extras` hook, so the
checkpoint loader never imports the prior subsystem.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vaelab.models.base import SamplingNotSupported
from vaelab.nn.pixelcnn import CodePrior


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
        from vaelab.prior import attach_if_present  # the subsystem that reads prior folders

        attach_if_present(self, folder, device)
