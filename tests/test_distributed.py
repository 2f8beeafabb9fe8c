"""Scale-out with torchrun: two processes (gloo on the CPU) each take half of every batch, and
one DistributedDataParallel step equals one single-process step on the combined batch."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from .conftest import ROOT

STEP = textwrap.dedent("""
    import os, sys
    import torch
    from safetensors.torch import save_file
    import vaelab
    from vaelab.train import Training, TrainSettings

    data = vaelab.load_dataset("digits")
    torch.manual_seed(0)
    model = vaelab.create("ae", image_shape=data.image_shape, hidden=(32,), latent_dim=4)
    settings = TrainSettings(epochs=1, batch_size=64, max_steps=1, progress=False, threads=1)
    for event in Training(model, data, settings):
        pass
    if int(os.environ.get("RANK", "0")) == 0:
        tensors = {f"weight.{k}": v for k, v in model.state_dict().items()}
        tensors.update({f"grad.{k}": p.grad for k, p in model.named_parameters()})
        save_file({k: v.contiguous() for k, v in tensors.items()}, sys.argv[1])
""")


def run(args, tmp_path, timeout=240):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def torchrun(n):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}"]


def test_one_ddp_step_equals_one_step_on_the_combined_batch(tmp_path):
    script = tmp_path / "step.py"
    script.write_text(STEP)
    single = run([sys.executable, str(script), str(tmp_path / "single.safetensors")], tmp_path)
    assert single.returncode == 0, single.stderr
    double = run([*torchrun(2), str(script), str(tmp_path / "ddp.safetensors")], tmp_path)
    assert double.returncode == 0, double.stderr[-3000:]
    a, b = load_file(str(tmp_path / "single.safetensors")), load_file(str(tmp_path / "ddp.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        if k.startswith("grad."):
            # gradients averaged over the two half-batches = the gradient of the combined batch's
            # mean (a sum instead of a mean would double them; Adam's first step, about lr·sign(g),
            # would hide that, so the gradients are compared as well as the weights)
            assert torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6), k
        else:
            # weights after the Adam step: equal up to summation order, which can move an entry
            # whose gradient is ~0 by a fraction of the learning rate (1e-3)
            assert torch.allclose(a[k], b[k], rtol=0, atol=1e-4), k
    assert any(not torch.equal(a[k], torch.zeros_like(a[k])) for k in a if k.startswith("grad."))


def test_torchrun_trains_from_the_command_line_and_rank_0_writes(tmp_path):
    out = tmp_path / "ck"
    done = run([*torchrun(2), "-m", "vaelab", "train", "ae", "--dataset", "digits", "--epochs", "1",
                "--batch-size", "64", "--threads", "1", "--quiet", "--out", str(out)], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    history = json.loads((out / "history.json").read_text())
    assert history["processes"] == 2 and history["status"] == "completed"
    assert len(history["epochs"]) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ck.")]  # no stray temporary folders
