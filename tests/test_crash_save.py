"""A save killed at every stage loses no checkpoint: the folder then loads, as the previous version
or the new one, never half of each, and what the crash left behind is cleaned up. The stages are
instrumented (``VAELAB_CRASH_AT``): the child process is killed exactly there, not by timing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import torch

import vaelab
from vaelab.checkpoint import load_checkpoint, save_checkpoint

from .conftest import ROOT

CHILD = """
import sys, torch, vaelab
from vaelab.checkpoint import save_checkpoint
torch.manual_seed(1)  # the new version: other weights
model = vaelab.create("ae", image_shape=(1, 8, 8), latent_dim=2, hidden=(8,), backbone="mlp")
save_checkpoint(model, sys.argv[1], dataset="digits")
"""


def _weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("exchange", [True, False], ids=["one-exchange", "two-renames"])
@pytest.mark.parametrize("stage", ["written", "old-moved", "swapped"])
def test_a_save_killed_at_each_stage_leaves_a_loadable_checkpoint(stage, exchange, tmp_path):
    folder = tmp_path / "ck"
    torch.manual_seed(0)
    old = vaelab.create("ae", image_shape=(1, 8, 8), latent_dim=2, hidden=(8,), backbone="mlp")
    save_checkpoint(old, folder, dataset="digits")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VAELAB_CRASH_AT": stage,
           "VAELAB_NO_EXCHANGE": "0" if exchange else "1"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(folder)], env=env, capture_output=True, timeout=120)
    reached = not (exchange and stage == "old-moved")  # one exchange has no moment without the folder
    assert done.returncode == (-signal.SIGKILL if reached else 0), done.stderr.decode()[-2000:]
    loaded = load_checkpoint(folder)  # recovers an interrupted swap first
    torch.manual_seed(1)
    new = vaelab.create("ae", image_shape=(1, 8, 8), latent_dim=2, hidden=(8,), backbone="mlp")
    got = _weights(loaded)
    expect_new = stage == "swapped" or not reached
    assert torch.equal(got, _weights(new if expect_new else old))
    # the next save cleans what the crash left beside the folder
    save_checkpoint(old, folder, dataset="digits")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]
    assert torch.equal(_weights(load_checkpoint(folder)), _weights(old))
