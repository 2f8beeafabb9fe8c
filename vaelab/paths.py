"""Where vaelab finds things on disk: one function per place, read by everything else.

- :func:`checkpoints_dir`: the shipped checkpoints, ``$VAELAB_CHECKPOINTS`` if set, else the
  repository's ``checkpoints/`` folder (when vaelab runs from a checkout).
- :func:`classifier_dir`: the project's MNIST classifier, ``checkpoints_dir() / "classifier"``.
- :func:`checkpoint_path`: a path a checkpoint's config names (VQ-GAN's ``feature_net``),
  resolved against :func:`checkpoints_dir` — so an installed copy with ``VAELAB_CHECKPOINTS``
  finds the same files a checkout does.
- :data:`REPO_ROOT`: the checkout vaelab was imported from (the zoo, the gallery and the results
  table write there). When vaelab is installed as a package it is the folder above the installed
  package, which holds no checkpoints: nothing the app reads is found through it.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CLASSIFIER = "classifier"  # sub-folder of the checkpoints folder holding the classifier


def checkpoints_dir() -> Path:
    """Shipped checkpoints: ``$VAELAB_CHECKPOINTS`` or the repository's ``checkpoints/``."""
    env = os.environ.get("VAELAB_CHECKPOINTS")
    return Path(env).expanduser() if env else REPO_ROOT / "checkpoints"


def classifier_dir() -> Path:
    """The shipped classifier's folder (it may be absent: callers check)."""
    return checkpoints_dir() / CLASSIFIER


def checkpoint_path(path: str | os.PathLike) -> Path:
    """A path named in a checkpoint's config, on this machine: an absolute path as it is; a
    relative one inside :func:`checkpoints_dir` (a leading ``checkpoints/``, how configs written in
    a checkout name it, is the checkpoints folder itself)."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    parts = p.parts
    if parts and parts[0] == "checkpoints":
        parts = parts[1:]
    return checkpoints_dir().joinpath(*parts)
