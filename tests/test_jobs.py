"""Training jobs in worker processes: streaming, stop, exact resume, the queue and its limits."""

import time

import numpy as np
import pytest
import torch

from vaelab.checkpoint import load_checkpoint
from vaelab.folders import read_json
from vaelab.jobs import FAILED, FINISHED, QUEUED, RUNNING, STOPPED, JobQueue, JobSpec

TINY_VAE = JobSpec("vae", "digits", {"latent_dim": 2, "hidden": (32,)}, {"epochs": 3, "batch_size": 64})


def wait(job, until=lambda j: j.done, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not until(job):
        assert time.monotonic() < deadline, f"job still {job.status}: {job.message}"
        time.sleep(0.05)
    return job


def test_a_tiny_run_streams_steps_epochs_and_pictures_and_leaves_a_checkpoint(tmp_path):
    job = wait(JobQueue().submit(TINY_VAE, tmp_path / "run"))
    assert job.status == FINISHED, job.message
    assert job.start["epochs"] == 3 and job.start["originals"].shape == (8, 8, 8)
    assert len(job.epochs) == 3 and job.saved_epoch == 3
    steps = job.steps
    assert steps and all(np.isfinite(s["terms"]["total"]) for s in steps)
    assert [s["step"] for s in steps] == sorted(s["step"] for s in steps)
    assert steps[-1]["batch"] == steps[-1]["batches"]  # every epoch's last step is sent
    last = job.epochs[-1]
    assert last["rebuilt"].shape == (8, 8, 8) and last["rebuilt"].dtype == np.uint8
    n_test = len(job.start["labels"])
    assert last["points"].shape == (n_test, 2) and last["dims"] == 2
    # what was streamed is what the folder holds
    history = read_json(tmp_path / "run", "history.json")
    assert [e["val"]["total"] for e in history["epochs"]] == [e["record"]["val"]["total"] for e in job.epochs]
    model = load_checkpoint(tmp_path / "run")
    from vaelab.data import load_dataset

    data = load_dataset("digits")
    with torch.no_grad():
        z = model.encode(data.test_x[:n_test]).flat().numpy()
        rebuilt = model.reconstruct(data.test_x[:8]).clamp(0, 1).mean(1).numpy()
    np.testing.assert_allclose(last["points"], z, atol=1e-5)  # the map is the final model's latent
    assert np.abs(last["rebuilt"].astype(float) - rebuilt * 255).max() <= 1.0


def test_stop_keeps_the_last_epoch_and_resume_continues_exactly(tmp_path):
    spec = JobSpec("vae", "digits", {"latent_dim": 2, "hidden": (32,)}, {"epochs": 8, "batch_size": 32})
    queue = JobQueue()
    whole = wait(queue.submit(spec, tmp_path / "whole"))
    assert whole.status == FINISHED

    part = queue.submit(spec, tmp_path / "part")
    wait(part, lambda j: len(j.epochs) >= 2 or j.done)
    part.stop()
    wait(part)
    assert part.status == STOPPED and part.stop_reason == "requested", part.message
    kept = len(read_json(tmp_path / "part", "history.json")["epochs"])
    assert 2 <= kept < 8 and kept == part.saved_epoch

    rest = wait(queue.submit(spec, tmp_path / "part", resume=True))
    assert rest.status == FINISHED, rest.message
    assert rest.epochs[0]["record"]["epoch"] == kept + 1
    a, b = load_checkpoint(tmp_path / "whole"), load_checkpoint(tmp_path / "part")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


def test_jobs_wait_their_turn_and_the_wait_is_shown(tmp_path):
    queue = JobQueue(max_running=1)
    first = queue.submit(JobSpec("vae", "digits", {"latent_dim": 2}, {"epochs": 30}), tmp_path / "a")
    second = queue.submit(TINY_VAE, tmp_path / "b")
    assert first.status == RUNNING and second.status == QUEUED
    assert queue.position(second) == 1 and queue.position(first) == 0
    from vaelab.jobs import SCORING

    assert 0 < queue.wait_estimate(second) <= first.spec.time_limit + SCORING["seconds"]
    first.stop()
    wait(second)
    assert second.status == FINISHED and second.started >= first.ended


def test_a_job_stops_at_its_time_limit_and_keeps_its_last_epoch(tmp_path):
    spec = JobSpec("vae", "digits", {"latent_dim": 2}, {"epochs": 10_000, "batch_size": 16}, time_limit=3.0)
    job = wait(JobQueue().submit(spec, tmp_path / "run"))
    assert job.status == STOPPED and job.stop_reason == "time limit", job.message
    assert "time limit" in job.message
    if job.saved_epoch:
        assert len(read_json(tmp_path / "run", "history.json")["epochs"]) == job.saved_epoch


@pytest.mark.parametrize("spec, status, words", [
    (JobSpec("no-such-variant", "digits"), FAILED, "no-such-variant"),
    (JobSpec("vae", "digits", {"latent_dim": 2}, {"epochs": 3, "lr": 1e12}), STOPPED, "lower learning rate"),
])
def test_a_bad_job_ends_with_its_reason_and_the_queue_goes_on(tmp_path, spec, status, words):
    queue = JobQueue()
    bad = wait(queue.submit(spec, tmp_path / "bad"))
    assert bad.status == status and words in bad.message, bad.message
    good = wait(queue.submit(TINY_VAE, tmp_path / "good"))
    assert good.status == FINISHED


def test_the_worker_runs_below_the_servers_priority(tmp_path):
    import os

    from vaelab.jobs import NICE

    job = JobQueue().submit(JobSpec("vae", "digits", {"latent_dim": 2}, {"epochs": 500}), tmp_path / "run")
    wait(job, lambda j: j.steps or j.done)
    pid = job._process.pid
    worker = os.getpriority(os.PRIO_PROCESS, pid)
    job.stop()
    wait(job)
    assert worker == min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICE)


def test_the_time_left_counts_this_runs_pace_and_the_scoring_after_it(tmp_path):
    """After a resume the pace comes from the resumed run's own steps (its clock restarted); a job
    being scored still holds its slot for about as long as the last scoring took."""
    from vaelab.jobs import RUNNING, SCORING, Job, JobSpec

    job = Job(JobSpec("vae", "digits", {}, {"epochs": 10}), tmp_path)
    job.status = RUNNING
    job._receive("start", {"epochs": 10})
    for b in range(1, 11):  # the first run: epoch 1, 1 s a step
        job._receive("step", {"epoch": 1, "batch": b, "batches": 10, "seconds": float(b)})
    job._receive("start", {"epochs": 10})  # resumed at epoch 2: its clock starts again
    for b in range(1, 6):  # 0.2 s a step now
        job._receive("step", {"epoch": 2, "batch": b, "batches": 10, "seconds": 0.2 * b})
    left_steps = 10 * 10 - (10 + 5)
    assert job.eta() == pytest.approx(left_steps * 0.2, rel=1e-6)
    SCORING["seconds"] = 12.0
    assert job.time_left() == pytest.approx(left_steps * 0.2 + 12.0, rel=1e-6)
    job._receive("evaluating", {})
    assert 1.0 <= job.time_left() <= 12.0
