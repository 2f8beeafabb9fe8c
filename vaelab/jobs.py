"""Training jobs for a shared server: a queue, worker processes, and what they stream.

A :class:`JobQueue` runs at most ``max_running`` jobs at a time (one by default: a free CPU Space
has two cores, and the page needs one of them). Each job trains in its own process, so a job
never holds the web server's interpreter lock, its CPU threads are capped (one by default), a
job over its time limit can always be ended, and a crash in training leaves the server standing.

The worker runs :class:`vaelab.train.Training` into the job's folder (a checkpoint after every
epoch) and sends back, through a pipe:

* ``start``  — the watched test images (originals), their labels, steps per epoch, epochs;
* ``step``   — the loss terms, at most every :data:`STEP_EVERY` seconds (and every epoch's last);
* ``epoch``  — the epoch's record (train and validation terms, code usage for discrete models)
  and a snapshot: the watched images rebuilt, and a 2-D map of ``map_points`` test latents
  (the latent itself when it is 2-D, else its PCA, signs kept from one epoch to the next);
* ``saved`` / ``not_saved`` / ``stopped`` / ``finished`` / ``error``.

:class:`Job` gathers them for the page (``version`` grows with every message, so a page that
polls redraws only when something changed). ``stop()`` ends a job between two steps, keeping its
last finished epoch; a new job with ``resume=True`` on the same folder continues it exactly.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

STEP_EVERY = 0.25  # seconds between streamed step messages
NICE = 10  # the worker's scheduling priority, lowered by this much
GRACE = 30.0  # seconds past its time limit before a job that did not stop is killed


@dataclass(frozen=True)
class JobSpec:
    """What to train: a registered variant on a dataset, with config and training overrides."""

    variant: str
    dataset: str = "digits"
    config: dict = field(default_factory=dict)  # model config fields (latent_dim, beta, ...)
    train: dict = field(default_factory=dict)  # TrainSettings fields (epochs, batch_size, lr, ...)
    time_limit: float = 600.0  # seconds of training, then the job stops keeping its last epoch
    threads: int = 1  # CPU threads of the worker
    data_dir: str | None = None  # where MNIST-like datasets are (None: $VAELAB_DATA)
    watch: int = 8  # test images rebuilt after every epoch
    map_points: int = 1000  # test images placed on the per-epoch latent map
    evaluate: bool = True  # afterwards, a quick evaluation writes metrics and the app's cached arrays

    @property
    def epochs(self) -> int:
        return int(self.train.get("epochs", 10))


SCORING = {"seconds": 20.0}  # how long the last job's scoring took (a first guess until one is measured)


# --- the worker (runs in its own process) ------------------------------------------------------

def _grey_uint8(x) -> np.ndarray:
    """``(B, C, H, W)`` in [0, 1] -> ``(B, H, W)`` uint8 (channels averaged)."""
    a = x.detach().float().clamp(0, 1).mean(1).numpy()
    return (a * 255 + 0.5).astype(np.uint8)


class _Snapshots:
    """The per-epoch pictures of a training model: fixed test images rebuilt, and a 2-D map."""

    def __init__(self, model, data, spec: JobSpec):
        self.model = model
        self.x = data.test_x[:spec.watch]
        self.y = data.test_y[:spec.watch]
        self.map_x = data.test_x[:spec.map_points]
        self.map_y = data.test_y[:spec.map_points]
        self.axes = None  # the previous epoch's PCA axes, to keep signs steady

    def start(self) -> dict:
        return {"originals": _grey_uint8(self.x), "labels": self.map_y.numpy().astype(np.int16)}

    def take(self) -> dict:
        import torch

        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng():  # the training's random stream is untouched
                rebuilt = self.model.reconstruct(self.x, self.y).clamp(0, 1)
                flat = torch.cat([self.model.encode(self.map_x[i:i + 500], self.map_y[i:i + 500]).flat()
                                  for i in range(0, len(self.map_x), 500)]).double().numpy()
        finally:
            self.model.train(was_training)
        return {"rebuilt": _grey_uint8(rebuilt), "points": self._plane(flat), "dims": int(flat.shape[1])}

    def _plane(self, flat: np.ndarray) -> np.ndarray:
        if flat.shape[1] <= 2:
            pts = np.zeros((len(flat), 2))
            pts[:, :flat.shape[1]] = flat
            return pts.astype(np.float32)
        centred = flat - flat.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        axes = vt[:2]
        if self.axes is not None:  # a principal axis' sign is arbitrary: keep the one it had
            axes = axes * np.sign(np.sum(axes * self.axes, 1, keepdims=True) + 1e-12)
        self.axes = axes
        return (centred @ axes.T).astype(np.float32)


def _worker(spec: JobSpec, folder: str, resume: bool, conn, stop_event) -> None:
    """Train ``spec`` into ``folder`` and report through ``conn`` (runs in a child process)."""
    try:
        import torch

        from vaelab.data import load_dataset
        from vaelab.registry import create
        from vaelab.train import EpochEnd, Finished, NotSaved, Saved, Step, Stopped, Training, TrainSettings

        torch.set_num_threads(max(1, int(spec.threads)))
        data = load_dataset(spec.dataset, spec.data_dir, download=False)
        torch.manual_seed(int(spec.train.get("seed", 0)))
        model = create(spec.variant, image_shape=data.image_shape, **spec.config)
        settings = TrainSettings(**{**spec.train, "progress": False, "threads": max(1, int(spec.threads))})
        training = Training(model, data, settings, folder, resume=resume,
                            history_extra={"job": {"variant": spec.variant, "dataset": spec.dataset,
                                                   "config": spec.config}})
        snaps = _Snapshots(model, data, spec)
        epochs = sum(n for _, n in model.training_phases(settings.epochs))  # layer-wise pretraining included
        conn.send(("start", {**snaps.start(), "epochs": epochs, "source": data.source,
                             "train_images": len(data.train_x)}))
        began, last_sent, limit_hit = time.monotonic(), 0.0, False
        for event in training:
            if stop_event.is_set():
                training.stop()
            elif time.monotonic() - began > spec.time_limit and not limit_hit:
                limit_hit = True
                training.stop()
            if isinstance(event, Step):
                now = time.monotonic()
                if now - last_sent >= STEP_EVERY or event.batch == event.batches - 1:
                    last_sent = now
                    conn.send(("step", {"step": event.step, "epoch": event.epoch, "phase": event.phase,
                                        "batch": event.batch + 1, "batches": event.batches, "lr": event.lr,
                                        "seconds": now - began,
                                        "terms": {k: float(v) for k, v in event.terms.items()}}))
            elif isinstance(event, EpochEnd):
                conn.send(("epoch", {"record": event.record, **snaps.take(), "seconds": time.monotonic() - began}))
            elif isinstance(event, Saved):
                conn.send(("saved", {"epoch": event.epoch}))
            elif isinstance(event, NotSaved):
                conn.send(("not_saved", {"epoch": event.epoch, "reason": event.reason}))
            elif isinstance(event, Stopped):
                reason = "time limit" if limit_hit and event.reason == "requested" else event.reason
                message = (f"Stopped at the time limit ({spec.time_limit:.0f} s). {event.message}"
                           if reason == "time limit" else event.message)
                conn.send(("stopped", {"reason": reason, "message": message, "epoch": event.epoch,
                                       "step": event.step}))
            elif isinstance(event, Finished):
                conn.send(("finished", {"epochs": len(event.history["epochs"])}))
        if spec.evaluate and (Path(folder) / "model.safetensors").is_file():
            _evaluate(folder, data, conn)
    except Exception as error:  # the page shows it; the server stays up
        try:
            conn.send(("error", {"message": f"{type(error).__name__}: {error}"}))
        except (OSError, ValueError):
            pass
    finally:
        conn.close()


# what a model trained here needs before the app can show it: every section, on fewer images
QUICK_EVAL = {"iw_samples": 100, "iw_images": 500, "n_train": 5000, "n_trust": 1000, "fd_samples": 1000,
              "umap": False}


def _evaluate(folder: str, data, conn) -> None:
    """Score the saved model and cache the arrays the app's tabs read (metrics.json,
    artifacts.safetensors); a failure here leaves the checkpoint as it is."""
    from vaelab.evaluate import EvalSettings, evaluate

    conn.send(("evaluating", {}))
    began = time.monotonic()
    try:
        evaluate(folder, data, EvalSettings(**QUICK_EVAL), write=True, progress=None)
    except Exception as error:
        conn.send(("evaluated", {"ok": False, "message": f"{type(error).__name__}: {error}"}))
    else:
        conn.send(("evaluated", {"ok": True, "seconds": time.monotonic() - began}))


def main(argv: list[str] | None = None) -> None:
    """``python -m vaelab.jobs FD FOLDER RESUME``: the worker process, at a lower scheduling
    priority than the server (:data:`NICE`). The spec comes as JSON on stdin; messages go out
    through the inherited pipe ``FD``; SIGUSR1 asks it to stop between two steps (and so does
    SIGTERM)."""
    import json
    import signal
    import sys
    from multiprocessing.connection import Connection

    argv = sys.argv[1:] if argv is None else argv
    fd, folder, resume = int(argv[0]), argv[1], argv[2] == "1"
    try:  # below the web server: when both want the CPU, a click is answered first
        os.nice(NICE)
    except (AttributeError, OSError):
        pass
    spec = JobSpec(**json.loads(sys.stdin.read()))
    stop = threading.Event()
    for sig in (signal.SIGUSR1, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    _worker(spec, folder, resume, Connection(fd, readable=False), stop)


# --- the server side ---------------------------------------------------------------------------

QUEUED, RUNNING, FINISHED, STOPPED, FAILED = "queued", "running", "finished", "stopped", "failed"


@dataclass
class Job:
    """One training job as the page sees it. Fields are written by the queue's reader thread;
    read them under ``lock`` (or take :meth:`view`)."""

    spec: JobSpec
    folder: Path
    resume: bool = False
    owner: str = ""  # who submitted it (a browser session)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    status: str = QUEUED
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    start: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)
    epochs: list = field(default_factory=list)  # {"record", "rebuilt", "points", "dims", "seconds"}
    saved_epoch: int | None = None
    message: str = ""
    evaluation: str = ""  # "", "running", "done", or why it failed
    stop_reason: str = ""  # "requested", "time limit", "early stopping", "non-finite loss", ...
    version: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _process: object = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        """Its process has ended (training, and the evaluation after it)."""
        return self.ended is not None

    def stop(self) -> None:
        """End the job between two steps (its folder keeps the last finished epoch); a queued
        job is taken off the queue."""
        with self.lock:
            if self.status == QUEUED:
                self.status, self.ended, self.message = STOPPED, time.time(), "Taken off the queue before it started."
                self.version += 1
            elif self._process is not None and self._process.poll() is None:
                self._process.send_signal(signal.SIGUSR1)

    def eta(self) -> float | None:
        """Seconds of training left, from the pace so far (None before the first steps)."""
        with self.lock:
            if self.status != RUNNING or not self.steps or not self.start:
                return None
            run = self.steps[getattr(self, "run_from", 0):] or self.steps[-1:]
            first, last = run[0], run[-1]
            total = self.start["epochs"] * last["batches"]
            done_steps = (last["epoch"] - 1) * last["batches"] + last["batch"]
            if done_steps <= 0 or last["seconds"] <= 0:
                return None
            # this run's steps only: after a resume the earlier run's steps and clock do not count
            done_now = done_steps - (first["epoch"] - 1) * last["batches"] - first["batch"] + 1
            pace = last["seconds"] / max(1, done_now)
            left = max(0.0, (total - done_steps) * pace)
            return min(left, max(0.0, self.spec.time_limit - last["seconds"]))

    def time_left(self) -> float:
        """Seconds until this running job frees its slot: its training left (or its whole time
        limit before it has a pace), then its scoring on the test images (as long as the last
        job's took; while it is being scored, what is left of that)."""
        scoring = SCORING["seconds"] if self.spec.evaluate else 0.0
        if self.evaluation == "running":
            return max(1.0, scoring - (time.monotonic() - getattr(self, "evaluation_began", time.monotonic())))
        eta = self.eta()
        return (eta if eta is not None else self.spec.time_limit) + scoring

    def _receive(self, kind: str, body: dict) -> None:
        with self.lock:
            if kind == "start":
                self.start = body
                self.run_from = len(self.steps)  # a resumed run's pace is measured from its own steps
            elif kind == "step":
                self.steps.append(body)
            elif kind == "epoch":
                self.epochs.append(body)
            elif kind == "saved":
                self.saved_epoch = body["epoch"]
            elif kind == "not_saved":
                self.message = body["reason"]
            elif kind == "stopped":
                self.status, self.message = STOPPED, body["message"]
                self.stop_reason = body["reason"]
            elif kind == "finished":
                if self.status != STOPPED:
                    self.status = FINISHED
                    self.message = f"Finished: {body['epochs']} epochs."
            elif kind == "evaluating":
                self.evaluation = "running"
                self.evaluation_began = time.monotonic()
            elif kind == "evaluated":
                self.evaluation = "done" if body["ok"] else body["message"]
                if body.get("seconds"):
                    SCORING["seconds"] = float(body["seconds"])
            elif kind == "error":
                self.status, self.message = FAILED, body["message"]
            self.version += 1


class JobQueue:
    """First come, first served, ``max_running`` at a time; every job within ``time_limit``."""

    def __init__(self, max_running: int = 1):
        self.max_running = max(1, int(max_running))
        self.jobs: list[Job] = []
        self._lock = threading.Lock()
        atexit.register(self.kill_all)

    def submit(self, spec: JobSpec, folder: str | Path, *, resume: bool = False, owner: str = "") -> Job:
        job = Job(spec, Path(folder), resume=resume, owner=owner)
        with self._lock:
            self.jobs.append(job)
        self._pump()
        return job

    def position(self, job: Job) -> int:
        """0 while it runs (or is done), else how many jobs go before it."""
        with self._lock:
            if job.status != QUEUED:
                return 0
            waiting = [j for j in self.jobs if j.status == QUEUED]
            return waiting.index(job) + 1 if job in waiting else 0

    def wait_estimate(self, job: Job) -> float:
        """Seconds until ``job`` can start: the running jobs' time left and the time limits of the
        queued jobs ahead of it (an upper bound: a job often ends before its limit)."""
        with self._lock:
            running = [j for j in self.jobs if j.status == RUNNING]
            ahead = []
            for j in self.jobs:
                if j is job:
                    break
                if j.status == QUEUED:
                    ahead.append(j)
        if job.status != QUEUED:
            return 0.0
        lefts = sorted(j.time_left() for j in running)
        # slots free up as the running jobs end; queued jobs ahead take the next free slot
        slots = (lefts + [0.0] * self.max_running)[:self.max_running]
        for j in ahead:
            slots.sort()
            slots[0] += j.spec.time_limit
        return min(slots) if slots else 0.0

    def running(self) -> list[Job]:
        with self._lock:
            return [j for j in self.jobs if j.status == RUNNING]

    def _pump(self) -> None:
        with self._lock:
            self.jobs = [j for j in self.jobs if not j.done or time.time() - (j.ended or 0) < 3600]
            active = sum(j.status == RUNNING for j in self.jobs)
            starting = []
            for j in self.jobs:
                if active >= self.max_running:
                    break
                if j.status == QUEUED:
                    j.status, j.started = RUNNING, time.time()
                    active += 1
                    starting.append(j)
        for job in starting:
            self._launch(job)

    def _launch(self, job: Job) -> None:
        from multiprocessing.connection import Connection

        read_fd, write_fd = os.pipe()
        job.folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            process = subprocess.Popen([sys.executable, "-m", "vaelab.jobs", str(write_fd), str(job.folder),
                                        "1" if job.resume else "0"], stdin=subprocess.PIPE,
                                       pass_fds=(write_fd,), start_new_session=True)
        except Exception as error:
            os.close(read_fd)
            os.close(write_fd)
            job._receive("error", {"message": f"could not start the training process: {error}"})
            self._ended(job)
            return
        os.close(write_fd)
        try:
            process.stdin.write(json.dumps(asdict(job.spec)).encode())
            process.stdin.close()
        except OSError:
            pass  # it died at once: the reader reports its exit code
        job._process = process
        threading.Thread(target=self._read, args=(job, Connection(read_fd, writable=False), process), daemon=True,
                         name=f"vaelab-job-reader-{job.id}").start()

    def _read(self, job: Job, receive, process) -> None:
        deadline = time.monotonic() + job.spec.time_limit + GRACE + 60  # + start-up and data loading
        try:
            while True:
                if receive.poll(0.5):
                    try:
                        kind, body = receive.recv()
                    except (EOFError, OSError):
                        break
                    job._receive(kind, body)
                elif process.poll() is not None and not receive.poll(0):
                    break
                if time.monotonic() > deadline and process.poll() is None:
                    process.kill()
                    job._receive("error", {"message": f"The job did not stop at its time limit "
                                                      f"({job.spec.time_limit:.0f} s) and was ended; its folder "
                                                      "keeps the last finished epoch."})
                    break
        finally:
            receive.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            with job.lock:
                if job.status in (QUEUED, RUNNING):  # the process ended without a last word (killed, out of memory)
                    job.status = FAILED
                    job.message = job.message or (f"The training process ended unexpectedly (exit code "
                                                  f"{process.returncode}); its folder keeps the last finished epoch.")
                    job.version += 1
            self._ended(job)

    def _ended(self, job: Job) -> None:
        with job.lock:
            job.ended = job.ended or time.time()
            job.version += 1
        self._pump()

    def kill_all(self) -> None:
        """End every worker process now (the server is exiting; folders keep their last epoch)."""
        for j in list(self.jobs):
            p = j._process
            if p is not None and p.poll() is None:
                p.kill()

    def shutdown(self) -> None:
        """Stop every job (between steps) and take queued ones off the queue."""
        with self._lock:
            jobs = list(self.jobs)
        for j in jobs:
            j.stop()



if __name__ == "__main__":
    main()
