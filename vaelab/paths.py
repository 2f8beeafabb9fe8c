"""Where vaelab finds things on disk: one function per place, read by everything else.

- :func:`checkpoints_dir`: the shipped checkpoints, ``$VAELAB_CHECKPOINTS`` if set, else the
  repository's ``checkpoints/`` folder (when vaelab runs from a checkout).
- :func:`classifier_dir`: the project's MNIST classifier, ``checkpoints_dir() / "classifier"``.
- :data:`REPO_ROOT`: the checkout vaelab was imported from; relative paths in configs (VQ-GAN's
  ``feature_net``) start here. When vaelab is installed as a package it is the folder above the
  installed package, which holds no checkpoints; set ``VAELAB_CHECKPOINTS`` there.
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
