"""The cached-artifacts file of a checkpoint, in one place: its name, how it is stored, how it is
written and read.

``eval --write`` stores in ``CHECKPOINT/artifacts.safetensors`` what the app draws with no
dataset present (2-D test coordinates, labels, latents, code indices, usage counts, per-dimension
KL). Writer (:mod:`vaelab.evaluate`) and reader (:mod:`vaelab.app.state`) both go through this
module, so the storage dtypes and their widening back cannot drift apart.

Arrays are stored compactly (:data:`STORAGE_DTYPES`) because every shipped checkpoint carries
this file; they are written to a temporary file in the same folder and renamed into place, so a
reader never sees half a file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

ARTIFACTS = "artifacts.safetensors"
FILE_MODE = 0o644  # readable by everyone, like the checkpoint's other files (mkstemp would leave 0o600)

# Array name prefix -> storage dtype. Coordinates and latents in float16 (drawn or decoded for
# display, never scored), labels in uint8, test indices in int32; code indices (``indices_level*``)
# are chosen by the writer (int16 below 32,768 codes) and read back as stored.
STORAGE_DTYPES = {"coords_": np.float16, "latent_test": np.float16, "test_labels": np.uint8,
                  "test_index": np.int32}


def compact(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each array in its :data:`STORAGE_DTYPES` dtype (others unchanged), C-contiguous."""
    out = {}
    for name, a in arrays.items():
        dtype = next((d for prefix, d in STORAGE_DTYPES.items() if name.startswith(prefix)), None)
        out[name] = np.ascontiguousarray(a.astype(dtype) if dtype is not None else a)
    return out


def widen(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Stored arrays as plots and models want them: float16 -> float32, small integers -> int64;
    ``indices_*`` stay as stored (they only index a codebook)."""
    out = {}
    for name, a in arrays.items():
        if a.dtype == np.float16:
            a = a.astype(np.float32)
        elif a.dtype.kind in "iu" and a.dtype.itemsize < 8 and not name.startswith("indices_"):
            a = a.astype(np.int64)
        out[name] = a
    return out


def save_artifacts(folder: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` compacted to ``folder/artifacts.safetensors`` atomically; return its path."""
    from safetensors.numpy import save_file

    path = Path(folder) / ARTIFACTS
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{ARTIFACTS}.tmp-")
    os.close(fd)
    try:
        save_file(compact(arrays), tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_artifacts(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of ``folder/artifacts.safetensors``, widened (:func:`widen`)."""
    from safetensors.numpy import load_file

    return widen(load_file(str(Path(folder) / ARTIFACTS)))


def compact_artifacts(folder: str | os.PathLike) -> None:
    """Rewrite an existing artifacts file with :data:`STORAGE_DTYPES` (no recomputation)."""
    from safetensors.numpy import load_file

    save_artifacts(folder, load_file(str(Path(folder) / ARTIFACTS)))
