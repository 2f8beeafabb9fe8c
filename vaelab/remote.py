"""Where a checkpoint comes from when it is not a folder on this machine: the Hugging Face Hub.

A Hub model id is ``owner/name`` (and not a path that exists here). :func:`download` fetches a
checkpoint folder pushed with ``vaelab push`` (:mod:`vaelab.hub`) through ``huggingface_hub``
into its cache — with ``HF_HUB_OFFLINE=1``, from the cache alone — and returns the local folder.
Only the files a checkpoint has are fetched. The loader (:mod:`vaelab.checkpoint`) calls it, so
this module imports nothing of vaelab's.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
PATTERNS = ["*.json", "*.safetensors", "prior/*", "README.md"]  # what a download fetches


def is_repo_id(text: str) -> bool:
    """``owner/name`` that is not a path on this machine."""
    return bool(REPO_ID.match(str(text))) and not Path(str(text)).exists()


def download(repo_id: str, revision: str | None = None) -> Path:
    """The checkpoint folder of the Hub model ``repo_id`` (downloaded into huggingface_hub's
    cache, or found there when offline)."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, revision=revision, allow_patterns=PATTERNS))
