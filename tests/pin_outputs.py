"""Pinned outputs of every shipped checkpoint, so a refactor of the library can prove that the
models it ships still compute what they computed before.

``python -m tests.pin_outputs`` (from the repository root) recomputes the values and writes
``tests/fixtures/pinned_outputs.json``; ``tests/test_pinned_outputs.py`` recomputes them and
compares. Regenerate only when a change is *meant* to alter a model's outputs, and say so in the
commit. The inputs are seeded noise images (no dataset needed), so the test runs anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "checkpoints"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "pinned_outputs.json"
N = 4  # images per checkpoint


def shipped() -> list[str]:
    return sorted(p.name for p in CHECKPOINTS.iterdir() if (p / "config.json").is_file()
                  and (p / "model.safetensors").is_file() and p.name != "classifier")


def _flat(t) -> torch.Tensor:
    parts = t if isinstance(t, tuple) else (t,)
    return torch.cat([p.reshape(-1).double() for p in parts])


def _summary(t) -> list[float]:
    """Sum, sum of squares and the first four values: enough to see any change."""
    f = _flat(t)
    return [float(f.sum()), float(f.pow(2).sum()), *[float(v) for v in f[:4]]]


@torch.no_grad()
def outputs(name: str) -> dict:
    import vaelab

    model = vaelab.load_checkpoint(CHECKPOINTS / name)
    shape = tuple(model.config.image_shape)
    x = torch.rand((N, *shape), generator=torch.Generator().manual_seed(0))
    y = torch.arange(N) % 10 if model.info.conditional else None
    lat = model.encode(x, y)
    out = {"z": _summary(lat.z), "recon": _summary(model.reconstruct(x, y))}
    if lat.indices is not None:
        out["indices"] = _summary(lat.indices)
    if lat.mean is not None:
        out["logvar"] = _summary(lat.logvar)
    torch.manual_seed(0)
    loss = model.loss(x, y, 0)
    out["loss"] = {k: float(v) for k, v in sorted(loss.terms.items())}
    if model.info.can_sample:
        torch.manual_seed(0)
        ys = torch.arange(N) % 10 if model.info.conditional else None
        out["sample"] = _summary(model.sample(N, ys, generator=torch.Generator().manual_seed(1)))
    if model.info.variational:
        try:
            torch.manual_seed(0)
            out["log_weights"] = _summary(model.log_importance_weights(x, y, k=3))
        except TypeError:
            pass
    return out


def main() -> None:
    torch.set_num_threads(1)
    pins = {name: outputs(name) for name in shipped()}
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(pins, indent=1))
    print(f"wrote {len(pins)} checkpoints' outputs to {FIXTURE}")


if __name__ == "__main__":
    main()
