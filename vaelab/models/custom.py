"""Your own encoder and decoder in place of a variant's built-in backbones (as pythae allows).

``vaelab.create("vae", image_shape=..., latent_dim=16, encoder=MyEncoder(), decoder=MyDecoder())``
keeps everything the variant adds — its posterior, prior, loss, quantiser — and swaps the
networks. Each module must produce what the built-in one produced, and this is checked when the
model is built, with the shapes in the message: a variant's encoder maps images ``(B, C, H, W)``
to the numbers its head reads (a VAE: ``2 × latent_dim``, the mean and log-variance of each
unit; a plain autoencoder: ``latent_dim``), its decoder maps what the encoder side produces back
to ``(B, C, H, W)`` decoder outputs (logits for a Bernoulli likelihood). Conditional variants
pass the one-hot label as a second argument.

The checkpoint records the modules' class names; the weights are saved like any other. Loading
needs the modules again — ``load_checkpoint(folder, modules={"encoder": MyEncoder(),
"decoder": MyDecoder()})`` — because their code is yours, not vaelab's: nothing is unpickled.
"""

from __future__ import annotations

import torch
from torch import nn

ROLES = ("encoder", "decoder")


class UserModule(nn.Module):
    """Wraps a user's network so it is called as the built-in backbone was: ``(x)`` or, for a
    conditional variant, ``(x, cond)``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x) if cond is None else self.net(x, cond)


def class_path(net: nn.Module) -> str:
    return f"{type(net).__module__}.{type(net).__qualname__}"


def _calls(model, role: str) -> tuple[tuple, torch.Tensor]:
    """The arguments the built-in ``role`` network gets in a reconstruction of two random
    images, and its output (shapes are what a replacement must match)."""
    seen = {}
    built = getattr(model, role)

    def record(module, args, out):  # returns None: the output goes on unchanged
        seen.setdefault("call", (args, out))

    handle = built.register_forward_hook(record)
    try:
        x = torch.rand(2, *model.config.image_shape)
        y = torch.zeros(2, dtype=torch.long) if model.info.conditional else None
        with torch.no_grad():
            model.reconstruct(x, y)
    finally:
        handle.remove()
    if "call" not in seen:
        raise ValueError(f"{model.variant}'s {role} is not used when it rebuilds an image; it cannot be replaced")
    return seen["call"]


def _shape(t) -> tuple:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__


def plug(model, **modules: nn.Module):
    """Put ``modules`` (``encoder=``, ``decoder=``) in place of ``model``'s built-in networks,
    after checking each gives the built-in one's output shape; returns the model."""
    unknown = set(modules) - set(ROLES)
    if unknown:
        raise TypeError(f"only {' and '.join(ROLES)} can be replaced, not {', '.join(sorted(unknown))}")
    recorded = dict(getattr(model, "custom_modules", {}) or {})
    for role, net in modules.items():
        if net is None:
            continue
        if not isinstance(net, nn.Module):
            raise TypeError(f"{role} must be a torch.nn.Module, not {type(net).__name__}")
        if not isinstance(getattr(model, role, None), nn.Module):
            raise ValueError(f"{model.variant} has no single {role} network to replace")
        args, out = _calls(model, role)
        inputs = [a for a in args if a is not None]
        try:
            with torch.no_grad():
                got = net(*inputs)
        except Exception as error:
            raise ValueError(f"your {role} ({type(net).__name__}) failed on input(s) of shape "
                             f"{', '.join(str(_shape(a)) for a in inputs)}: {type(error).__name__}: {error}") from None
        if _shape(got) != _shape(out):
            what = ("the numbers its head reads" if role == "encoder" else "the decoder's output, one value per pixel")
            raise ValueError(f"your {role} ({type(net).__name__}) maps {_shape(inputs[0])} to {_shape(got)}; "
                             f"{model.variant} with these settings needs {_shape(out)} ({what})")
        setattr(model, role, UserModule(net))
        recorded[role] = class_path(net)
    model.custom_modules = recorded
    return model
