"""The registry: variant name -> (model class, config class).

Everything that lists or loads models reads this table: the CLI's ``list``, the checkpoint loader,
the app's model picker and the contract tests. Adding a variant is adding one file under
``vaelab/models/`` with a ``@register(...)`` line; :mod:`vaelab.models` imports every module in
its package, so no other file changes.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import typing
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Entry:
    name: str  # registry key, as typed on the command line ("beta-vae")
    model_cls: type  # subclass of vaelab.models.base.AutoEncoder
    config_cls: type  # frozen dataclass accepted by model_cls(config)
    family: str  # grouping for listings and the app ("classic", "variational", "discrete", ...)
    description: str  # one line a newcomer understands
    tiny: dict = field(default_factory=dict)  # overrides that make a seconds-fast model for tests


REGISTRY: dict[str, Entry] = {}
FAMILIES = ("classic", "variational", "hierarchical", "discrete", "adversarial")  # listing order
_loaded = False


def register(name: str, config_cls: type, *, family: str, description: str,
             tiny: dict | None = None) -> Callable[[type], type]:
    """Class decorator adding ``name`` to the registry. Stack it to register presets."""

    def decorate(model_cls: type) -> type:
        if name in REGISTRY:
            raise ValueError(f"variant {name!r} registered twice")
        REGISTRY[name] = Entry(name, model_cls, config_cls, family, description, dict(tiny or {}))
        return model_cls

    return decorate


def _load_all() -> None:
    """Import every module of :mod:`vaelab.models` so their ``@register`` lines run."""
    global _loaded
    if _loaded:
        return
    package = importlib.import_module("vaelab.models")
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"vaelab.models.{info.name}")
    _loaded = True


def list_variants() -> list[Entry]:
    """Every registered variant, families in :data:`FAMILIES` order, registration order within."""
    _load_all()
    rank = {f: i for i, f in enumerate(FAMILIES)}
    return sorted(REGISTRY.values(), key=lambda e: rank.get(e.family, len(FAMILIES)))


def get_entry(name: str) -> Entry:
    _load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown variant {name!r}; known variants: {known}") from None


def make_config(name: str, overrides: dict[str, Any] | None = None, *, tiny: bool = False):
    """The config of ``name`` with its defaults, optionally the tiny test preset, then overrides."""
    entry = get_entry(name)
    values = dict(entry.tiny) if tiny else {}
    values.update(overrides or {})
    return config_from_dict(entry.config_cls, values)


def create(name: str, *, tiny: bool = False, encoder=None, decoder=None, **overrides):
    """Build a fresh model of variant ``name``; keyword arguments override config fields.
    ``encoder``/``decoder``: your own ``nn.Module`` in place of the built-in network (checked
    against it: :mod:`vaelab.models.custom`)."""
    entry = get_entry(name)
    model = entry.model_cls(make_config(name, overrides, tiny=tiny))
    model.variant = name  # the checkpoint records it, so loading finds the class again
    if encoder is not None or decoder is not None:
        from vaelab.models.custom import plug

        plug(model, encoder=encoder, decoder=decoder)
    return model


# --- config <-> JSON -------------------------------------------------------------------------

def config_to_dict(config) -> dict:
    return dataclasses.asdict(config)


def _coerce(value: Any, annotation: Any) -> Any:
    """JSON gives lists where the dataclass wants tuples; put them back."""
    origin = typing.get_origin(annotation)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for arg in typing.get_args(annotation):
            if typing.get_origin(arg) is tuple and isinstance(value, list):
                return tuple(value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def config_from_dict(config_cls: type, values: dict[str, Any]):
    """Build ``config_cls`` from a dict, rejecting unknown keys with the list of known ones."""
    hints = typing.get_type_hints(config_cls)
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(
            f"{config_cls.__name__} has no field(s) {', '.join(unknown)}; "
            f"its fields are: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(v, hints.get(k)) for k, v in values.items()}
    return config_cls(**kwargs)
