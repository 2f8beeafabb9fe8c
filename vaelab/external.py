"""Explore any autoencoder: your own PyTorch module, a diffusers or pythae model, on your own images.

:func:`adapt` puts a model behind vaelab's model contract (:mod:`vaelab.models.base`), read-only:

- **any module** with ``encode(x)`` and ``decode(z)`` (duck-typed), or two callables where the
  names differ. ``encode`` may return a tensor ``z`` (a plain autoencoder), a pair
  ``(mean, logvar)``, or an object with ``mean``/``logvar`` or ``loc``/``scale`` (a variational
  one); ``decode`` a tensor, or an object with ``sample`` or ``reconstruction``;
- **diffusers** ``AutoencoderKL`` (the posterior's mean and log-variance over its spatial latent)
  and ``VQModel`` (nearest-code indices over its code map, its codebook, decoding of edited maps);
- **pythae** models (``model.encoder(x)`` → ``embedding``/``log_covariance``, ``model.decoder(z)``
  → ``reconstruction``).

A spatial latent ``(C, h, w)`` is seen by the app as one vector of ``C·h·w`` numbers
(``flatten``); the latent map then shows its PCA. :func:`images` reads a tensor, a torchvision
dataset or a folder of images (torchvision's ``ImageFolder``: one sub-folder per class, or
images directly in it), resized and centre-cropped to the model's size, up to ``max_images``.
:func:`embed` encodes them (in batches, with a progress bar) and computes what the app draws:
2-D maps of the latent and of the pixels, the model's and PCA's reconstruction error at the same
number of numbers, k-NN accuracy when there are labels, code use for a discrete latent.

``vaelab.explore(model, data)`` (:mod:`vaelab.app.explored`) does all three and opens the app;
``python -m vaelab explore SPEC --data FOLDER`` does it from the command line (:func:`load_model`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from vaelab import metrics
from vaelab.data import Dataset
from vaelab.models.base import AutoEncoder, BaseConfig, Latent, LossOutput, ModelInfo, SamplingNotSupported

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_IMAGES = 5000  # images embedded by default: the map stays quick and memory modest
RECON_IMAGES = 500  # held-out images the reconstruction errors are measured on (decoding is the slow half)


class ExploreError(ValueError):
    """A model or dataset that cannot be explored; the message says what to change."""


# --- the adapter -------------------------------------------------------------------------------

def _tensor(x) -> torch.Tensor | None:
    return x if isinstance(x, torch.Tensor) else None


def _field(out, *names):
    """``out.name`` or ``out[name]`` for the first of ``names`` it has, else ``None``."""
    for n in names:
        v = getattr(out, n, None)
        if v is None and isinstance(out, dict):
            v = out.get(n)
        if v is not None:
            return v
    return None


MEAN_NAMES = ("mean", "mu", "loc", "embedding")  # a posterior's mean (pythae: embedding)
LOGVAR_NAMES = ("logvar", "log_var", "log_variance", "log_covariance")  # pythae: log_covariance
STD_NAMES = ("std", "stddev", "scale", "sigma")
VAR_NAMES = ("var", "variance")
CODE_NAMES = ("z", "code", "latent", "latents")  # a deterministic code (or a sample, beside a mean)
POSITIONS = {"mean": MEAN_NAMES, "logvar": LOGVAR_NAMES, "std": STD_NAMES, "var": VAR_NAMES, "z": CODE_NAMES}


def parse_posterior(posterior) -> tuple[str, ...] | None:
    """``posterior=`` as the name of each position of the tuple ``encode`` returns:
    ``"mean, logvar"``, ``("z", "mean", "logvar")``, ``"mean, std"``, ``"mean, var"`` or ``"z"``
    (``_`` for a position to ignore)."""
    if posterior is None:
        return None
    names = [p.strip() for p in (posterior.split(",") if isinstance(posterior, str) else posterior)]
    aliases = {alias: key for key, group in POSITIONS.items() for alias in group} | {"_": "_"}
    unknown = [n for n in names if n not in aliases]
    if unknown or not names:
        raise ExploreError(f"posterior= names each value encode returns, from {', '.join(POSITIONS)} or _ "
                           f"(e.g. posterior=\"z, mean, logvar\"); got {posterior!r}")
    out = tuple(aliases[n] for n in names)
    if "mean" not in out and "z" not in out:
        raise ExploreError(f"posterior={posterior!r} names no mean and no code z: which value is the latent?")
    if sum(k in out for k in ("logvar", "std", "var")) > 1:
        raise ExploreError(f"posterior={posterior!r} names the spread twice: give one of logvar, std or var")
    return out


def _spread(mean: torch.Tensor, logvar=None, std=None, var=None) -> torch.Tensor | None:
    """The log-variance from whichever of the three was given (``None`` when none was)."""
    for value, to_logvar in ((logvar, lambda v: v), (std, lambda v: 2 * torch.log(v)), (var, torch.log)):
        if _tensor(value) is not None:
            if value.shape != mean.shape:
                raise ExploreError(f"encode's spread has shape {tuple(value.shape)} but its mean "
                                   f"{tuple(mean.shape)}: they must match")
            return to_logvar(value)
    return None


def read_encoding(out, posterior: tuple[str, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """What an ``encode`` returned, as ``(mean or z, logvar or None)``.

    Read by name where the result has names: a diffusers output (``latent_dist``), a pythae
    output (``embedding``, ``log_covariance``), a dict or an object with ``mean``/``mu``/``loc``
    and ``logvar``/``std``/``scale``/``var``, a ``torch.distributions`` Normal. A bare tuple is read
    by ``posterior`` (the name of each position, see :func:`parse_posterior`); without it only a
    single tensor (or a 1-tuple) is accepted, since ``(mean, logvar)``, ``(mean, std)`` and
    ``(z, mean, logvar)`` look alike."""
    if _tensor(out) is not None:
        return out, None
    if posterior is not None and isinstance(out, (tuple, list)):
        if len(out) != len(posterior):
            raise ExploreError(f"posterior= names {len(posterior)} values but encode returned {len(out)}")
        got = {k: v for k, v in zip(posterior, out) if k != "_"}
        mean = got.get("mean", got.get("z"))
        if _tensor(mean) is None:
            raise ExploreError("the value posterior= calls the mean (or z) is not a tensor")
        return mean, _spread(mean, got.get("logvar"), got.get("std"), got.get("var"))
    dist = _field(out, "latent_dist")  # diffusers AutoencoderKL
    if dist is not None:
        return dist.mean, dist.logvar
    if isinstance(out, torch.distributions.Distribution):
        base = out.base_dist if isinstance(out, torch.distributions.Independent) else out
        if not isinstance(base, torch.distributions.Normal):
            raise ExploreError(f"encode returned a {type(base).__name__} distribution: a diagonal Normal (or "
                               "Independent of one) is what the app reads; pass encode=... returning its mean")
        return base.loc, 2 * torch.log(base.scale)
    mean = _field(out, *MEAN_NAMES)
    if _tensor(mean) is not None:
        return mean, _spread(mean, _field(out, *LOGVAR_NAMES), _field(out, *STD_NAMES), _field(out, *VAR_NAMES))
    code = _field(out, *CODE_NAMES)
    if _tensor(code) is not None:
        return code, None
    if isinstance(out, (tuple, list)) and len(out) == 1 and _tensor(out[0]) is not None:
        return out[0], None
    if isinstance(out, (tuple, list)) and out and all(_tensor(v) is not None for v in out):
        shapes = ", ".join(str(tuple(v.shape)) for v in out)
        raise ExploreError(f"encode returned a tuple of {len(out)} tensors ({shapes}), which could be (mean, logvar), "
                           "(mean, std), (z, mean, logvar), ...: say which with posterior=, e.g. "
                           "posterior=\"mean, logvar\" or posterior=\"z, mean, logvar\" (on the command line: "
                           "--posterior \"mean, logvar\")")
    raise ExploreError(f"encode returned {type(out).__name__}: expected a tensor, a dict or an object with mean and "
                       "logvar (or std), a torch Normal, or a tuple described by posterior= (or pass encode=... to "
                       "say how to encode)")


def read_decoding(out) -> torch.Tensor:
    """What a ``decode`` returned, as an image tensor."""
    if _tensor(out) is not None:
        return out
    v = _field(out, "sample", "reconstruction", "recon_x", "x_hat")
    if _tensor(v) is not None:
        return v
    if isinstance(out, (tuple, list)) and out and _tensor(out[0]) is not None:
        return out[0]
    raise ExploreError(f"decode returned {type(out).__name__}: expected an image tensor (pass decode=... to say "
                       "how to decode)")


@dataclass(frozen=True)
class ExternalConfig(BaseConfig):
    likelihood: str = "mse"
    source: str = ""  # what the model is, in words ("diffusers AutoencoderKL")


class ExternalModel(AutoEncoder):
    """A model vaelab did not build, behind the model contract, for exploring (not training).

    ``encode_fn(x)`` and ``decode_fn(z)`` take and give tensors in the model's own pixel range
    ``value_range`` (diffusers: −1…1); the contract's images are in 0…1. ``latent_shape`` is the
    shape of one image's latent as the module produces it; the contract's ``z`` is it flattened.
    For a discrete latent, ``quantize(h) -> (z_q, indices)``, ``lookup(indices) -> z_q`` and
    ``codebook`` (K, D) are given too."""

    variant = "external"

    def __init__(self, module: nn.Module | None, encode_fn: Callable, decode_fn: Callable, *,
                 image_shape: tuple[int, int, int], latent_shape: tuple[int, ...], variational: bool,
                 value_range: tuple[float, float] = (0.0, 1.0), source: str = "your model",
                 quantize: Callable | None = None, lookup: Callable | None = None,
                 codebook: Callable[[], torch.Tensor] | None = None, index_shape: tuple[int, ...] | None = None,
                 posterior: tuple[str, ...] | None = None):
        dim = math.prod(latent_shape)
        super().__init__(ExternalConfig(image_shape=tuple(image_shape), latent_dim=dim, source=source))
        self.module = module  # registered, so .eval() and .parameters() reach it
        self._encode, self._decode = encode_fn, decode_fn
        self.latent_shape, self.value_range = tuple(latent_shape), tuple(float(v) for v in value_range)
        self.variational = variational
        self._quantize, self._lookup, self._codebook, self.index_shape = quantize, lookup, codebook, index_shape
        self.posterior = posterior  # the names of the tuple encode returns (read_encoding)
        self._eval = None

    def train(self, mode: bool = True):
        """The app's eval()/train() switch this wrapper only: the module you gave keeps the mode
        it is in, and each call runs it in eval mode (:meth:`_calling`), then puts it back."""
        self.training = mode
        return self

    def _calling(self):
        """Run the wrapped module in eval mode for one call (see :class:`EvalWhileCalled`)."""
        if self._eval is None:
            self._eval = EvalWhileCalled(self.module)
        return self._eval

    @property
    def discrete(self) -> bool:
        return self._quantize is not None

    @property
    def info(self) -> ModelInfo:
        if self.discrete:
            k = int(self._codebook().shape[0])
            return ModelInfo("discrete", False, False, (self.latent_shape,), codebook_size=k,
                             index_shapes=(tuple(self.index_shape),), can_sample=False, likelihood="mse")
        return ModelInfo("continuous", self.variational, False, ((math.prod(self.latent_shape),),),
                         can_sample=self.variational, likelihood="mse")

    # pixels: the contract's 0…1 <-> the module's own range
    def to_module(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.value_range
        return x if (lo, hi) == (0.0, 1.0) else lo + (hi - lo) * x

    def from_module(self, y: torch.Tensor) -> torch.Tensor:
        lo, hi = self.value_range
        return y if (lo, hi) == (0.0, 1.0) else (y - lo) / (hi - lo)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, y=None) -> Latent:
        with self._calling():
            out = self._encode(self.to_module(x))
            if self.discrete:
                h = read_encoding(out)[0]
                zq, idx = self._quantize(h)
                return Latent(z=zq, indices=idx.reshape(len(x), *self.index_shape), extras={"z_e": h})
        mean, logvar = read_encoding(out, self.posterior)
        flat = mean.reshape(len(x), -1)
        return Latent(z=flat, mean=flat if self.variational else None,
                      logvar=logvar.reshape(len(x), -1) if self.variational and logvar is not None else None)

    def decode_params(self, z, y=None) -> torch.Tensor:
        if not self.discrete and z.dim() == 2:
            z = z.reshape(len(z), *self.latent_shape)
        with torch.no_grad(), self._calling():
            return self.from_module(read_decoding(self._decode(z)))

    def decode(self, z, y=None) -> torch.Tensor:
        return self.decode_params(z, y).clamp(0, 1)

    def latent_from_indices(self, indices):
        if not self.discrete:
            return super().latent_from_indices(indices)
        with torch.no_grad(), self._calling():
            return self._lookup(torch.as_tensor(indices).long())

    def codebooks(self) -> list[torch.Tensor | None]:
        return [self._codebook()] if self.discrete else []

    def sample(self, n: int, y=None, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.info.can_sample:
            raise SamplingNotSupported(f"{self.config.source} has no prior to sample from")
        z = torch.randn(n, math.prod(self.latent_shape), generator=generator)
        return self.decode(z)

    def loss(self, x, y=None, step: int = 0) -> LossOutput:
        raise TypeError(f"{self.config.source} is explored here, not trained: train it with its own library")


def _probe(model, encode_fn: Callable, image_shape, value_range,
           posterior) -> tuple[torch.Tensor, torch.Tensor | None]:
    x = torch.rand(2, *image_shape)
    lo, hi = value_range
    with torch.no_grad(), _eval_mode(model):
        return read_encoding(encode_fn(lo + (hi - lo) * x), posterior)


class EvalWhileCalled:
    """A context manager: ``module`` in eval mode while at least one call is inside (calls from the
    app's threads may overlap), each submodule's own mode put back when the last one leaves. The
    model you gave is left as it was between calls."""

    def __init__(self, module):
        import threading

        self.module, self.lock, self.inside, self.modes = module, threading.Lock(), 0, {}

    def __enter__(self):
        if isinstance(self.module, nn.Module):
            with self.lock:
                if self.inside == 0:
                    self.modes = {m: m.training for m in self.module.modules()}
                    self.module.eval()
                self.inside += 1
        return self

    def __exit__(self, *exc):
        if isinstance(self.module, nn.Module):
            with self.lock:
                self.inside -= 1
                if self.inside == 0:
                    for m, mode in self.modes.items():
                        m.training = mode
        return False


def _eval_mode(model) -> EvalWhileCalled:
    return EvalWhileCalled(model)


def _image_shape(model, image_shape) -> tuple[int, int, int]:
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 3:
            raise ExploreError(f"image_shape is (channels, height, width); got {image_shape}")
        return shape
    cfg = getattr(model, "config", None)
    c = _field(cfg, "in_channels") if cfg is not None else None
    size = _field(cfg, "sample_size") if cfg is not None else None
    if c and size:
        size = size if isinstance(size, (tuple, list)) else (size, size)
        return (int(c), int(size[0]), int(size[1]))
    dim = _field(getattr(model, "model_config", None), "input_dim")  # pythae
    if dim is not None and len(dim) == 3:
        return tuple(int(s) for s in dim)
    raise ExploreError("the model does not say what images it takes: pass image_shape=(channels, height, width)")


def _library(model) -> str:
    mod = type(model).__module__ or ""
    if mod.startswith("diffusers") and type(model).__name__ == "VQModel":
        return "diffusers-vq"
    if mod.startswith("diffusers") and hasattr(model, "encode") and hasattr(model, "decode"):
        return "diffusers-kl"
    if mod.startswith("pythae") and hasattr(model, "encoder") and hasattr(model, "decoder"):
        return "pythae"
    return "module"


def adapt(model, *, encode: Callable | str | None = None, decode: Callable | str | None = None,
          image_shape: tuple[int, int, int] | None = None, value_range: tuple[float, float] | None = None,
          name: str | None = None, posterior=None) -> AutoEncoder:
    """``model`` behind vaelab's contract (a vaelab model is returned as it is).

    ``encode``/``decode``: callables (or method names on ``model``) where it does not have
    ``encode``/``decode`` of its own. ``image_shape``: ``(C, H, W)`` it takes (read from a
    diffusers or pythae config when not given). ``value_range``: the pixel range it works in
    (diffusers' −1…1 by default for diffusers models, else 0…1; :func:`embed` warns when the
    decoder's outputs say otherwise). ``posterior``: the name of each value in the tuple
    ``encode`` returns (``"mean, logvar"``, ``"z, mean, logvar"``, ``"mean, std"``: see
    :func:`parse_posterior`); results with names (dicts, diffusers and pythae outputs, torch
    distributions) need none. The module you pass is not changed: each call runs it in eval mode
    and gives it back in the mode it was in."""
    if isinstance(model, AutoEncoder):
        return model
    posterior = parse_posterior(posterior)
    if value_range is not None:
        try:
            lo, hi = (float(v) for v in value_range)
        except (TypeError, ValueError):
            raise ExploreError(f"value_range is (low, high), e.g. (-1, 1); got {value_range!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ExploreError(f"value_range is (low, high) with low < high; got {value_range!r}")
        value_range = (lo, hi)
    kind = _library(model)
    shape = _image_shape(model, image_shape)
    cls = type(model).__name__
    if kind == "diffusers-vq":
        return _diffusers_vq(model, shape, value_range or (-1.0, 1.0), name or f"diffusers {cls}")
    if kind == "diffusers-kl":
        vr, source = value_range or (-1.0, 1.0), name or f"diffusers {cls}"
        enc, dec = model.encode, model.decode
    elif kind == "pythae":
        vr, source = value_range or (0.0, 1.0), name or f"pythae {cls}"
        enc, dec = model.encoder, model.decoder
    else:
        vr, source = value_range or (0.0, 1.0), name or f"your {cls}"
        enc = getattr(model, encode) if isinstance(encode, str) else encode or getattr(model, "encode", None)
        dec = getattr(model, decode) if isinstance(decode, str) else decode or getattr(model, "decode", None)
        if not callable(enc) or not callable(dec):
            raise ExploreError(f"{cls} has no encode/decode methods: pass encode=... and decode=... (callables or "
                               "method names) that map images to latents and back")
    mean, logvar = _probe(model, enc, shape, vr, posterior)
    return ExternalModel(model if isinstance(model, nn.Module) else None, enc, dec, image_shape=shape,
                         latent_shape=tuple(mean.shape[1:]), variational=logvar is not None, value_range=vr,
                         source=source, posterior=posterior)


def _diffusers_vq(model, shape, value_range, source) -> ExternalModel:
    """diffusers ``VQModel``: ``encode`` gives the pre-quantisation map; ``quantize`` the nearest
    codes; ``decode(..., force_not_quantize=True)`` decodes a map already quantised."""
    q = model.quantize

    def quantize(h):
        zq, _, info = q(h)
        return zq, info[2]

    def lookup(idx):
        b, hh, ww = idx.shape
        return q.get_codebook_entry(idx.reshape(-1), (b, hh, ww, q.embedding.weight.shape[1]))

    def decode(z):
        return model.decode(z, force_not_quantize=True)

    lo, hi = value_range
    with torch.no_grad(), _eval_mode(model):
        h = model.encode(lo + (hi - lo) * torch.rand(1, *shape)).latents
    return ExternalModel(model, lambda x: model.encode(x).latents, decode, image_shape=shape,
                         latent_shape=tuple(h.shape[1:]), variational=False, value_range=value_range, source=source,
                         quantize=quantize, lookup=lookup, codebook=lambda: q.embedding.weight.detach(),
                         index_shape=tuple(h.shape[2:]))


def source_of(model) -> str:
    """What the model is, in words: an adapter's source, or the vaelab variant."""
    return getattr(model.config, "source", "") or f"vaelab {getattr(model, 'variant', type(model).__name__)}"


DIFFUSERS_AUTOENCODERS = ("AutoencoderKL", "VQModel")  # the diffusers classes the adapters read


def _json(path: Path) -> dict:
    import json

    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _diffusers(source: str, sub: str, wanted: str | None):
    """A diffusers autoencoder from a folder (or Hub id): its class read from ``_class_name``
    in the folder's config, else ``wanted``."""
    try:
        import diffusers
    except ImportError:
        raise ExploreError("diffusers is not installed: pip install diffusers") from None
    folder = Path(source) / sub if sub else Path(source)
    if (folder / "model_index.json").is_file() and not (folder / "config.json").is_file():
        parts = [p.name for p in folder.iterdir() if (p / "config.json").is_file()
                 and _json(p / "config.json").get("_class_name") in DIFFUSERS_AUTOENCODERS]
        hint = f" (its autoencoder is in {', '.join(parts)}: diffusers:{source}#{parts[0]})" if parts else ""
        raise ExploreError(f"{folder} is a diffusers pipeline, not an autoencoder: name the autoencoder's sub-folder "
                           f"with #{hint}")
    found = _json(folder / "config.json").get("_class_name") if folder.is_dir() else None
    name = found or wanted or "AutoencoderKL"
    if name not in DIFFUSERS_AUTOENCODERS:
        raise ExploreError(f"{folder} holds a diffusers {name}; the explorer reads "
                           f"{' and '.join(DIFFUSERS_AUTOENCODERS)}")
    cls = getattr(diffusers, name)
    try:
        return cls.from_pretrained(source, **({"subfolder": sub} if sub else {}))
    except (OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        offline = "" if Path(source).exists() else (" If it is a Hub id, this machine may have no network: "
                                                    "download the model elsewhere and give its folder.")
        raise ExploreError(f"could not load {name} from {source!r}: {first[:300]}{offline}") from None


def _pythae_folder(folder: Path) -> Path:
    """A pythae model folder (``model_config.json`` + weights), or the ``final_model`` inside a
    pythae training folder (the newest, when there are several runs)."""
    if (folder / "model_config.json").is_file():
        return folder
    finals = sorted((p for p in folder.glob("**/final_model") if (p / "model_config.json").is_file()),
                    key=lambda p: p.stat().st_mtime)
    if finals:
        if len(finals) > 1:
            print(f"{folder} holds {len(finals)} pythae runs: exploring the newest, {finals[-1]}")
        return finals[-1]
    raise ExploreError(f"{folder} holds no pythae model: pythae saves one as a folder with model_config.json (a "
                       "training run puts it in <run>/final_model)")


def load_model(spec: str):
    """A model from a command-line spec, not yet adapted:

    - a vaelab checkpoint folder (``runs/vae``), or one pushed to the Hub (``owner/name``);
    - ``diffusers:ID`` — an ``AutoencoderKL`` or ``VQModel`` (the folder's ``_class_name`` says
      which) from a local folder or (with network) a Hub model id, e.g.
      ``diffusers:stabilityai/sd-vae-ft-mse``, with ``ID#subfolder`` for a model inside a
      pipeline's repository (``…#vae``, ``…#vqvae``); ``diffusers-vq:ID`` insists on a ``VQModel``.
      A local diffusers folder is recognised without the prefix too;
    - ``pythae:FOLDER`` — a pythae model saved with ``save()``, or a pythae training folder (its
      ``final_model``); recognised without the prefix too;
    - ``python:MODULE:FUNCTION`` — your own code: the function is called with no arguments and
      returns the model (``MODULE`` importable from the current folder)."""
    import importlib

    kind, _, rest = spec.partition(":")
    if kind in ("diffusers", "diffusers-vq") and rest:
        source, _, sub = rest.partition("#")
        return _diffusers(source, sub, "VQModel" if kind == "diffusers-vq" else None)
    if kind == "pythae" and rest:
        try:
            from pythae.models import AutoModel
        except ImportError:
            raise ExploreError("pythae is not installed: pip install pythae") from None
        return AutoModel.load_from_folder(str(_pythae_folder(Path(rest))))
    if kind == "python" and rest:
        module_name, _, fn_name = rest.partition(":")
        import sys

        if "" not in sys.path:
            sys.path.insert(0, "")
        try:
            fn = getattr(importlib.import_module(module_name), fn_name or "build_model")
        except (ImportError, AttributeError) as error:
            raise ExploreError(f"{spec}: {error}") from None
        return fn()
    folder = Path(spec)
    from vaelab.remote import is_repo_id

    meta = _json(folder / "config.json") if folder.is_dir() else {}
    if folder.is_dir() and "_class_name" in meta:  # a diffusers folder given without its prefix
        return _diffusers(str(folder), "", None)
    if folder.is_dir() and ((folder / "model_config.json").is_file() or any(folder.glob("**/final_model"))):
        return load_model(f"pythae:{folder}")
    if (folder / "config.json").is_file() or is_repo_id(spec):  # a folder, or a vaelab model on the Hub
        from vaelab.checkpoint import CheckpointError, load_checkpoint

        try:
            return load_checkpoint(folder)
        except CheckpointError as error:
            raise ExploreError(str(error)) from None
    raise ExploreError(f"{spec!r} is not a checkpoint folder, nor diffusers:ID, diffusers-vq:ID, pythae:FOLDER or "
                       "python:MODULE:FUNCTION")


# --- the images ---------------------------------------------------------------------------------

@dataclass
class Images:
    x: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
    labels: torch.Tensor  # (N,) int64 (all 0 without labels)
    classes: list[str]  # a name per label
    source: str  # where they came from, in words


def _fit(x: torch.Tensor, shape: tuple[int, int, int], clamp: bool = True) -> torch.Tensor:
    """Images ``(N, C, H, W)`` resized (shorter side) and centre-cropped to ``shape``, channels
    matched (grey repeated to RGB, RGB averaged to grey); ``clamp``: into 0…1 after resizing
    (off while the pixel range is still to be read from the whole set)."""
    import torch.nn.functional as F

    c, h, w = shape
    if x.shape[1] != c:
        if x.shape[1] == 1:
            x = x.expand(-1, c, -1, -1)
        elif c == 1:
            x = x.mean(1, keepdim=True)
        else:
            raise ExploreError(f"the images have {x.shape[1]} channels and the model takes {c}")
    if tuple(x.shape[2:]) != (h, w):
        s = max(h / x.shape[2], w / x.shape[3])
        size = (max(h, round(x.shape[2] * s)), max(w, round(x.shape[3] * s)))
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        top, left = (x.shape[2] - h) // 2, (x.shape[3] - w) // 2
        x = x[:, :, top:top + h, left:left + w]
    return (x.clamp(0, 1) if clamp else x).contiguous()


def _scale_integers(t: torch.Tensor) -> torch.Tensor:
    """Integer pixels to float 0…1 by their type's range (8-bit by 255, 16-bit by 65,535); floats
    as they are."""
    if t.dtype == torch.uint8:
        return t.float() / 255
    if not t.is_floating_point() and t.dtype != torch.bool and t.numel():
        return t.float() / (255.0 if int(t.max()) <= 255 else 65535.0)
    return t.float()


def _as_batch(t: torch.Tensor) -> torch.Tensor:
    """A tensor of images in any common layout -> ``(N, C, H, W)`` float in [0, 1]."""
    t = _scale_integers(torch.as_tensor(t))
    if t.dim() == 3:  # (N, H, W) grey
        t = t[:, None]
    elif t.dim() == 4 and t.shape[1] not in (1, 3) and t.shape[-1] in (1, 3):  # (N, H, W, C)
        t = t.permute(0, 3, 1, 2)
    if t.dim() != 4:
        raise ExploreError(f"images come as (N, C, H, W), (N, H, W, C) or (N, H, W); got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ExploreError("the images hold NaN or infinite values")
    if t.min() < -1e-6 or t.max() > 1 + 1e-6:
        if t.min() >= -1 - 1e-6 and t.max() <= 1 + 1e-6:
            t = (t + 1) / 2  # the −1…1 range diffusers works in
        else:
            raise ExploreError(f"pixel values run from {float(t.min()):g} to {float(t.max()):g}: give them in 0…1, "
                               "−1…1 or as uint8")
    return t


def _progress(iterable, total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="img", disable=not progress, leave=False)


def images(data, image_shape: tuple[int, int, int], *, labels=None, max_images: int = MAX_IMAGES,
           progress: bool = True) -> Images:
    """The images to embed, ``(N, C, H, W)`` in [0, 1] at ``image_shape``: from a tensor (labels
    optional), a vaelab :class:`~vaelab.data.Dataset` (its test images), a torchvision-style
    dataset of ``(image, label)`` pairs, or a folder of images (``ImageFolder`` when it has one
    sub-folder per class). At most ``max_images``, the first ones."""
    n_max = int(max_images)
    if n_max < 1:
        raise ExploreError("max_images must be at least 1")
    if isinstance(data, (str, Path)):
        return _folder(Path(data), image_shape, n_max, progress)
    if isinstance(data, Dataset):
        x, y, source = data.test_x[:n_max], data.test_y[:n_max], f"{data.name} test images"
        classes = [str(i) for i in range(data.num_classes)]
    elif isinstance(data, (torch.Tensor, np.ndarray)):
        x = _as_batch(torch.as_tensor(np.asarray(data) if isinstance(data, np.ndarray) else data)[:n_max])
        y = torch.zeros(len(x), dtype=torch.int64) if labels is None else torch.as_tensor(labels)[:n_max].long()
        source, classes = f"{len(x):,} images given as a tensor", [str(int(v)) for v in range(int(y.max()) + 1)]
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        x, y = _pairs(data, n_max, progress)
        source = f"{type(data).__name__} ({len(data):,} images)"
        classes = [str(c) for c in getattr(data, "classes", None) or range(int(y.max()) + 1)]
    else:
        raise ExploreError(f"cannot read images from {type(data).__name__}: give a tensor, a dataset or a folder")
    if len(x) == 0:
        raise ExploreError("there are no images to embed")
    x = _fit(_as_batch(x), tuple(image_shape))
    if len(y) != len(x):
        raise ExploreError(f"{len(y)} labels for {len(x)} images")
    return Images(x, y, classes, source)


def _pairs(data, n_max: int, progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(image, label)`` items (PIL images, arrays or tensors) -> a batch and labels. Integer
    pixels are scaled by their type's range (uint8 by 255, 16-bit by 65,535); float ones are kept
    as they are, and their range (0…1 or −1…1) is read once from the whole set by
    :func:`_as_batch`, not guessed image by image."""
    xs, ys = [], []
    n = min(len(data), n_max)
    for i in _progress(range(n), n, "reading images", progress):
        item = data[i]
        im, label = (item[0], item[1]) if isinstance(item, (tuple, list)) else (item, 0)
        xs.append(_one_image(im))
        ys.append(int(label) if not isinstance(label, torch.Tensor) else int(label.reshape(-1)[0]))
    shapes = {tuple(t.shape) for t in xs}
    if len(shapes) > 1:  # different sizes: fit each to the first one's size before stacking
        c, h, w = xs[0].shape
        xs = [_fit(t[None], (c, h, w), clamp=False)[0] for t in xs]
    return torch.stack(xs), torch.tensor(ys, dtype=torch.int64)


SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I")  # PIL's modes for 16-bit (and 32-bit integer) grey images


def _pil_pixels(im) -> np.ndarray:
    """A PIL image's pixels as float32 in 0…1: 8-bit by 255, 16-bit by 65,535 (``convert("L")``
    would clip a 16-bit image to white), palette and alpha images through RGB."""
    if im.mode in SIXTEEN_BIT:
        return np.asarray(im, dtype=np.float32) / 65535.0
    if im.mode == "F":
        return np.asarray(im, dtype=np.float32)  # float pixels: their range is read with the others
    if im.mode not in ("L", "RGB"):
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.float32) / 255.0


def _one_image(im) -> torch.Tensor:
    """A PIL image, array or tensor -> ``(C, H, W)`` float: integer types scaled to 0…1 by their
    range, floats as given (see :func:`_pairs`)."""
    if hasattr(im, "convert") and hasattr(im, "size"):  # PIL
        t = torch.from_numpy(_pil_pixels(im).copy())
    else:
        t = _scale_integers(im if isinstance(im, torch.Tensor) else torch.as_tensor(np.array(im)))
    if t.dim() == 2:
        t = t[None]
    elif t.dim() == 3 and t.shape[0] not in (1, 3) and t.shape[-1] in (1, 3):
        t = t.permute(2, 0, 1)
    return t


def _image_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def folder_files(root: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """The images of a folder and their classes: one class per sub-folder holding images (as
    torchvision's ``ImageFolder``), and the images directly in the folder as a class of their own
    (so none is dropped); a folder of images only has one class, "all"."""
    top = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                 and not p.name.startswith("."))
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    groups = [(d.name, _image_files(d)) for d in subdirs]
    groups = [(name, files) for name, files in groups if files]
    if not groups:
        return [(p, 0) for p in top], ["all"]
    if top:
        groups.append((f"{root.name} (top level)", top))
    classes = [name for name, _ in groups]
    return [(p, y) for y, (_, files) in enumerate(groups) for p in files], classes


def folder_image_shape(root: str | Path, sample: int = 200) -> tuple[int, int, int]:
    """``(C, H, W)`` of a folder's images when they all agree (read from up to ``sample`` files'
    headers, spread over the folder); an :class:`ExploreError` naming the sizes otherwise."""
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    if not root.is_dir():
        raise ExploreError(f"{root} is not a folder")
    files = [p for p, _ in folder_files(root)[0]]
    if not files:
        raise ExploreError(f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    pick = [files[i] for i in np.unique(np.linspace(0, len(files) - 1, min(sample, len(files))).round().astype(int))]
    shapes = set()
    for path in pick:
        try:
            with Image.open(path) as im:
                channels = 1 if im.mode in ("1", "L", "I", "F", *SIXTEEN_BIT) or (im.mode == "P" and _grey_palette(im)) else 3
                shapes.add((channels, im.size[1], im.size[0]))
        except (UnidentifiedImageError, OSError):
            continue
    if len(shapes) != 1:
        seen = ", ".join(f"{c}×{h}×{w}" for c, h, w in sorted(shapes)[:4]) or "none readable"
        raise ExploreError(f"the images in {root} do not share one size ({seen}) and the model does not say which it "
                           "takes: pass image_shape=(channels, height, width) (--image-shape C H W)")
    return shapes.pop()


def _grey_palette(im) -> bool:
    pal = im.getpalette() or []
    rgb = np.asarray(pal[: len(pal) // 3 * 3]).reshape(-1, 3)
    return bool(len(rgb)) and bool((rgb == rgb[:, :1]).all())


def _folder(root: Path, shape, n_max: int, progress: bool) -> Images:
    """A folder of images (see :func:`folder_files` for the classes), resized and centre-cropped
    to ``shape`` as each is read. Unreadable files are skipped and named."""
    from PIL import Image, UnidentifiedImageError

    if not root.is_dir():
        raise ExploreError(f"{root} is not a folder")
    files, classes = folder_files(root)
    if not files:
        raise ExploreError(f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    if len(files) > n_max:  # an even spread over the classes rather than the first class only
        pick = np.linspace(0, len(files) - 1, n_max).round().astype(int)
        files = [files[i] for i in pick]
    xs, ys, skipped = [], [], []
    for path, y in _progress(files, len(files), "reading images", progress):
        try:
            with Image.open(path) as im:
                im.draft("RGB", (shape[2] * 2, shape[1] * 2))  # JPEG: decode near the size needed
                if im.mode not in ("L", "F", *SIXTEEN_BIT):
                    im = im.convert("L" if shape[0] == 1 else "RGB")
                t = torch.from_numpy(_pil_pixels(im).copy())
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
            skipped.append(f"{path.relative_to(root)} ({_why_unreadable(error)})")
            continue
        t = t[None] if t.dim() == 2 else t.permute(2, 0, 1)
        xs.append(_fit(t[None], shape, clamp=False)[0])
        ys.append(y)
    if not xs:
        raise ExploreError(f"none of the images in {root} could be read: {', '.join(skipped[:5])}")
    x = _fit(_as_batch(torch.stack(xs)), shape)
    note = ""
    if skipped:
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        note = f"; skipped, unreadable: {', '.join(skipped[:5])}{more}"
    return Images(x, torch.tensor(ys, dtype=torch.int64), classes,
                  f"{len(xs):,} images from the folder {root.name}{note}")


def _why_unreadable(error: Exception) -> str:
    from PIL import Image, UnidentifiedImageError

    if isinstance(error, UnidentifiedImageError):
        return "not an image PIL can read"
    if isinstance(error, Image.DecompressionBombError):
        return "too many pixels"
    return "truncated or damaged"


# --- embedding ------------------------------------------------------------------------------------

@dataclass
class Embedding:
    """An explored model with everything the app draws, computed once."""

    model: AutoEncoder
    data: Images
    arrays: dict[str, np.ndarray]  # as in a checkpoint's artifacts (coords_model, coords_pca, ...)
    metrics: dict  # as in a checkpoint's metrics.json (reconstruction, embedding, posterior, codebook)
    pca_mean: np.ndarray
    pca_basis: np.ndarray  # (components, pixels), largest variance first
    seconds: dict = field(default_factory=dict)


OUTSIDE = 0.05  # share of the decoder's pixels beyond 0…1 (by more than a quarter of the range) that is "clearly not"


def range_warnings(m, x: torch.Tensor) -> list[str]:
    """What the decoder's outputs on ``x`` say about the pixel range assumed for the model
    (``value_range``), as sentences; ``[]`` when they agree with it. A model working in −1…1 but
    fed 0…1 gives outputs far below 0; one working in 0…1 but taken for −1…1 never gives the
    dark half of the range."""
    if not isinstance(m, ExternalModel) or m.discrete or len(x) == 0:
        return []
    with torch.no_grad():
        out = m.decode_params(m.encode(x).flat())
    if not torch.isfinite(out).all():
        return ["the decoder gave NaN or infinite pixels for some images"]
    lo, hi = m.value_range
    seen_lo, seen_hi = (float(lo + (hi - lo) * v) for v in (out.min(), out.max()))
    outside = float(((out < -0.25) | (out > 1.25)).float().mean())
    said = f"value_range=({lo:g}, {hi:g})"
    if outside > OUTSIDE:
        guess = " If it works in −1…1, pass value_range=(-1, 1)." if seen_lo < -0.5 and (lo, hi) == (0.0, 1.0) else ""
        return [f"The decoder's outputs run from {seen_lo:.2f} to {seen_hi:.2f}, and {outside:.0%} of its pixels lie "
                f"well outside the range assumed ({said}): the pictures and errors are likely wrong.{guess}"]
    dark_inputs = float((x < 0.1).float().mean())
    dark_outputs = float((out < 0.25).float().mean())
    if (lo, hi) != (0.0, 1.0) and dark_inputs > 0.2 and dark_outputs < 0.01:
        return [f"The decoder never gives the dark half of the assumed range ({said}) although "
                f"{dark_inputs:.0%} of the input pixels are dark: if the model works in 0…1, pass value_range=(0, 1)."]
    return []


def pca_fit(x: np.ndarray, components: int, max_rows: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the first ``components`` principal directions of the rows of ``x``, exactly:
    through the pixel covariance for up to 2,048 pixels (fitted on up to ``max_rows`` rows), else
    through the rows' Gram matrix (the dual form: as many directions as rows, at most), fitted on
    up to 1,000 rows so large images stay quick."""
    rows = torch.as_tensor(x[:max_rows if x.shape[1] <= 2048 else min(max_rows, 1000)], dtype=torch.float64)
    mean = rows.mean(0)
    centred = rows - mean
    k = max(1, min(int(components), *centred.shape))
    if centred.shape[1] <= 2048:
        values, vectors = torch.linalg.eigh(centred.T @ centred)
        basis = vectors[:, -k:].flip(1).T
    else:  # the eigenvectors of X Xᵀ, mapped back: v = Xᵀu / ‖Xᵀu‖
        values, u = torch.linalg.eigh(centred @ centred.T)
        keep = values.flip(0)[:k] > values.max() * 1e-10
        u = u.flip(1)[:, :k][:, keep]
        basis = (centred.T @ u).T
        basis = basis / basis.norm(dim=1, keepdim=True)
    return mean.numpy(), basis.contiguous().numpy()


def embed(model, data, *, labels=None, max_images: int = MAX_IMAGES, batch_size: int = 64,
          latent_map: str = "flatten", progress: bool = True, **adapt_kwargs) -> Embedding:
    """Encode the images of ``data`` with ``model`` (adapted by :func:`adapt`) and compute what
    the app draws. ``latent_map``: how a spatial latent ``(C, h, w)`` becomes a point of the map —
    ``"flatten"`` (all ``C·h·w`` numbers, then PCA) or ``"pool"`` (the mean over the ``h×w``
    positions: ``C`` numbers, then PCA)."""
    import time

    if latent_map not in ("flatten", "pool"):
        raise ExploreError('latent_map is "flatten" or "pool"')
    if ("image_shape" not in adapt_kwargs and not isinstance(model, AutoEncoder)
            and isinstance(data, (torch.Tensor, np.ndarray, Images, str, Path))):
        try:
            adapt_kwargs["image_shape"] = _image_shape(model, None)
        except ExploreError:  # the model does not say: the images given do
            if isinstance(data, (str, Path)):
                adapt_kwargs["image_shape"] = folder_image_shape(data)
            else:
                adapt_kwargs["image_shape"] = tuple((data.x if isinstance(data, Images) else _as_batch(
                    torch.as_tensor(np.asarray(data[:1]) if isinstance(data, np.ndarray) else data[:1]))).shape[1:])
    m = adapt(model, **adapt_kwargs)
    if m is model:  # a vaelab model: the app works on a copy in eval mode; yours stays as it is
        import copy

        m = copy.deepcopy(model)
        for p in m.parameters():
            p.requires_grad_(False)
    m.eval()  # an adapted model: each call runs your module in eval mode and gives it back as it was
    shape = tuple(m.config.image_shape)
    data = data if isinstance(data, Images) else images(data, shape, labels=labels, max_images=max_images,
                                                        progress=progress)
    x, y = data.x, data.labels
    seconds, t0 = {}, time.perf_counter()
    flats, means, logvars, indices, z_pooled = [], [], [], [], []
    bar = _progress(None, len(x), "encoding", progress)
    with torch.inference_mode(), bar:
        for i in range(0, len(x), batch_size):
            lat = m.encode(x[i:i + batch_size])
            bar.update(len(lat.flat()))
            flats.append(lat.flat().float())
            if lat.indices is not None:
                indices.append(lat.indices)
            if lat.mean is not None and lat.logvar is not None:
                means.append(lat.mean)
                logvars.append(lat.logvar)
            spatial = getattr(m, "latent_shape", None)
            if latent_map == "pool" and spatial and len(spatial) == 3:
                z = lat.z if not isinstance(lat.z, tuple) else lat.z[0]
                z_pooled.append(z.reshape(len(z), *spatial).mean((2, 3)).float())
    seconds["encode"] = time.perf_counter() - t0
    flat = torch.cat(flats).numpy()
    if not np.isfinite(flat).all():
        raise ExploreError("the model's latents hold NaN or infinite values for some images")
    # every fifth image is held out: PCA is fitted on the others, and both rebuild the held-out ones
    held = np.arange(len(x)) % 5 == 0
    if len(x) < 10:
        held[:] = True
    rec_idx = np.flatnonzero(held)[:RECON_IMAGES]
    t0 = time.perf_counter()
    with torch.inference_mode():
        xr = x[rec_idx]
        rec = torch.cat([m.reconstruct(xr[i:i + batch_size]) for i in range(0, len(xr), batch_size)]).clamp(0, 1)
    seconds["reconstruct"] = time.perf_counter() - t0
    warnings_ = range_warnings(m, xr[:batch_size])
    for w in warnings_:
        import warnings

        warnings.warn(w, stacklevel=2)
    t0 = time.perf_counter()
    pixels = x.flatten(1).numpy()
    info = m.info
    wanted = (sum(math.prod(s) for s in info.index_shapes) if info.latent == "discrete" else info.latent_dim)
    fit_rows = pixels[~held] if (~held).sum() >= 2 else pixels
    mean, basis = pca_fit(fit_rows, max(2, wanted))
    pca_dims = min(int(wanted), len(basis))
    centred = pixels - mean
    coords_pca = (centred @ basis[:2].T).astype(np.float32)
    pca_rec = (centred[rec_idx] @ basis[:pca_dims].T) @ basis[:pca_dims] + mean
    mse = float(((rec - xr) ** 2).mean())
    pca_mse = float(((np.clip(pca_rec, 0, 1) - pixels[rec_idx]) ** 2).mean())
    source = torch.cat(z_pooled).numpy() if z_pooled else flat
    if source.shape[1] == 1:  # one number: it is the horizontal axis; the vertical spread only keeps dots apart
        spread = np.random.default_rng(0).uniform(-1, 1, len(source))
        coords_model = np.column_stack([source[:, 0], spread]).astype(np.float32)
        how = "the 1-D latent itself (across); the vertical spread is random, to keep the dots apart"
    elif source.shape[1] == 2:
        coords_model, how = source.astype(np.float32), "latent itself"
    else:
        lm, lb = pca_fit(source, 2, max_rows=5000)
        coords_model = ((source - lm) @ lb.T).astype(np.float32)
        spatial = getattr(m, "latent_shape", ())
        if z_pooled:
            how = f"PCA of the latent averaged over its {spatial[1]}×{spatial[2]} positions ({spatial[0]} numbers)"
        elif len(spatial) == 3:
            how = f"PCA of the flattened latent ({'×'.join(map(str, spatial))} = {flat.shape[1]:,} numbers)"
        else:
            how = "PCA of the latent"
    emb = {"knn_k": 5, "n_test": len(x), "model_projection": how}
    if len(torch.unique(y)) > 1 and len(x) >= 20:
        # k-NN accuracy: the held-out fifth, classified by its neighbours among the rest
        yy = y.numpy()
        emb["knn_latent_full"] = metrics.knn_accuracy(flat[~held], yy[~held], flat[held], yy[held], 5)
        for key, c2 in (("model", coords_model), ("pca", coords_pca)):
            emb[f"knn_{key}"] = metrics.knn_accuracy(c2[~held], yy[~held], c2[held], yy[held], 5)
    if len(x) > 10:
        n_trust = min(len(x), 1000)  # O(n²) memory
        emb["n_trust"] = n_trust
        for key, c2 in (("model", coords_model), ("pca", coords_pca)):
            emb[f"trust_{key}"] = metrics.trustworthiness(pixels[:n_trust], c2[:n_trust], 5)
    results = {"variant": getattr(m, "variant", "external"), "source": source_of(m), "dataset": data.source, "test_images": len(x),
               "reconstruction": {"mse": mse, "pca_mse": pca_mse, "pca_dims": pca_dims, "pca_dims_wanted": int(wanted),
                                  "mse_ratio_to_pca": mse / pca_mse if pca_mse > 0 else None,
                                  "images": len(rec_idx), "pca_fitted_on": len(fit_rows)},
               "embedding": emb}
    arrays = {"test_labels": y.numpy(), "test_index": np.arange(len(x)), "coords_model": coords_model,
              "coords_pca": coords_pca}
    if info.latent == "continuous" and flat.shape[1] <= 4096:
        arrays["latent_test"] = flat.astype(np.float32)
    if means:
        mu, lv = torch.cat(means).double(), torch.cat(logvars).double()
        kl = (0.5 * (mu ** 2 + lv.exp() - 1 - lv)).mean(0).numpy()
        order = [int(i) for i in np.argsort(-kl)]
        results["posterior"] = {"kl_per_dim": kl.tolist(), "dims_by_kl": order, "kl": float(kl.sum()),
                                "active_units": int((torch.cat(means).var(0) > 0.01).sum())}
        arrays["kl_per_dim"] = kl.astype(np.float32)
    if indices:
        idx = torch.cat(indices)
        counts = metrics.codebook_usage(idx, info.codebook_size)
        results["codebook"] = {"levels": [metrics.codebook_health(counts)], **metrics.codebook_health(counts)}
        arrays["indices_level0"] = idx.numpy().astype(np.int32)
        arrays["usage_level0"] = counts.numpy()
    seconds["maps"] = time.perf_counter() - t0
    if isinstance(m, ExternalModel):
        results["value_range"] = list(m.value_range)
    results["warnings"] = warnings_
    results["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
    return Embedding(m, data, arrays, results, mean, basis, seconds)
