"""Many visitors at once, on loopback: 25 concurrent ``gradio_client`` sessions against the real app.

The app (``app.py``) runs in its own process. First one client alone times each kind of event;
then ``--clients`` sessions at once each mix latent-slider decodes, picks of a test image, map
switches and drawings, while one of them uploads a checkpoint zip and another trains a small
model. Reported: errors and cut-short answers (target: none), each event's p95 beside the
single client's p95 from the same run (target ≤ 5× for decodes and picks), and the server's
memory growth (resident memory sampled every 50 ms). (That one visitor's upload is refused to
another's session is checked in ``tests/test_battery.py``, where the server's registry is in reach.)

    python benchmarks/load_test.py [--clients 25] [--rounds 6] [--runs 3] [--think 1] [--out benchmarks/results/load_test.json]

Each of the ``--runs`` runs starts the app afresh and times one client alone, then the 25; the
ratios are taken within a run, and their median over the runs is reported with the lowest and
highest (the machine is noisy: one run's p95 of 150 answers moves by a factor of two).

A visitor is a person: by default each waits about a second (0.5–1.5 s) between two actions, so
25 visitors send about 25 events a second, a busy classroom. ``--think 0`` sends every visitor's
actions back to back instead: a stress test, 25 scripts on the same two cores as the server, where
each event waits behind the other 24 (at about 20 ms of server time per event on two cores, about
a quarter of a second at best) and the 5× target cannot hold.

``--quick`` (what the test suite runs, ``tests/test_load.py``): two rounds; results not written
unless ``--out`` is given.

The clients share the two cores with the server, so what they cost themselves is kept small and
reported: ``gradio_client`` builds a new TLS context (about 20 ms of CPU, loading the CA bundle)
for every request, even over plain http, so every client here is given one shared context instead
(``ssl_verify=`` is passed to httpx as its ``verify``). Before that, the 25 clients spent four times
the server's CPU time and the run timed the clients more than the server.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_latency import free_port, serve, stop  # noqa: E402  (the same start, wait and stop as the browser benchmark)


def start_app(port: int, runs: Path, data_dir: str | None) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1", "VAELAB_FETCH": "0",
           "VAELAB_RUNS": str(runs), "GRADIO_ANALYTICS_ENABLED": "False"}
    if data_dir:
        env["VAELAB_DATA"] = data_dir
    return serve([sys.executable, "app.py"], port, env)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/PID/stat``)."""
    fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def drawing() -> str:
    from PIL import Image, ImageDraw

    im = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(im).line([(140, 40), (140, 240)], fill=0, width=24)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def events():
    """The mix every visitor sends: (kind, endpoint, arguments(k))."""
    from vaelab.app.tabs import draw, sliders

    z = [0.0] * sliders.MAX_SLIDERS
    ink = drawing()
    drawn_by = draw.draw_plan().default()[:2]  # the draw tab's own first models (MNIST ones when it is here)
    return [("slider decode", "/decode", lambda k: ["digits-vae-8", 0, sliders.START_PRIOR, 0, *([0.3 * (k % 7) - 1] + z[1:])]),
            ("pick a test image", "/pick_row", lambda k: ["digits-vae-2d", (3 + 11 * k) % 100]),
            ("map switch", "/latent_map", lambda k: [("digits-vae-2d", "digits-ae-2d")[k % 2], "PCA", 1]),
            ("drawing", "/draw", lambda k: [ink, drawn_by])]


def p95(values: list[float]) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))] if v else float("nan")


def run(clients: int = 25, rounds: int = 6, data_dir: str | None = None, think: float = 1.0) -> dict:
    import ssl

    from gradio_client import Client, handle_file

    from vaelab.app.tabs import train

    if data_dir:
        os.environ["VAELAB_DATA"] = data_dir  # this process picks the draw tab's models as the server does
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = free_port()
        proc = start_app(port, tmp / "runs", data_dir)
        url = f"http://127.0.0.1:{port}/"
        tls = ssl.create_default_context()  # one for every client (see the module's docstring)
        try:
            mix = events()
            # one visitor alone
            alone = Client(url, verbose=False, ssl_verify=tls)
            single = {kind: [] for kind, _, _ in mix}
            for kind, api, args in mix:  # untimed: models loaded, caches filled, as for the visitors after
                for k in range(3):
                    alone.predict(*args(k), api_name=api)
            for k in range(max(8, rounds * 2)):
                for kind, api, args in mix:
                    t = time.perf_counter()
                    alone.predict(*args(k), api_name=api)
                    single[kind].append((time.perf_counter() - t) * 1000)
            # the upload's zip and the training knobs
            upload = tmp / "mine.zip"
            with zipfile.ZipFile(upload, "w") as z:
                for f in ("config.json", "model.safetensors"):
                    z.write(ROOT / "checkpoints" / "digits-ae-2d" / f, f"mine/{f}")
            knobs = {**{k.field: train.defaults("ae", "digits").get(k.field) for k in train.KNOBS},
                     "latent_dim": 2, "epochs": 2}
            knobs = [knobs[k.field] for k in train.KNOBS]
            # many visitors at once
            base = rss_mb(proc.pid)
            peak = [base]
            visitors_done = threading.Event()

            def sample():
                while not visitors_done.is_set():
                    peak[0] = max(peak[0], rss_mb(proc.pid))
                    time.sleep(0.05)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            times = {kind: [] for kind, _, _ in mix}
            when = []  # (seconds into the run, kind, visitor, ms) of every event
            errors, extra = [], {}
            lock = threading.Lock()
            ready = threading.Barrier(clients)

            def visitor(n: int):
                try:
                    c = Client(url, verbose=False, ssl_verify=tls)
                except Exception as error:
                    with lock:
                        errors.append(f"client {n} could not connect: {error}")
                    ready.abort()
                    return
                try:
                    ready.wait(timeout=120)
                except threading.BrokenBarrierError:
                    pass
                if n == 0:  # one visitor uploads a checkpoint
                    t = time.perf_counter()
                    try:
                        status = c.predict(handle_file(str(upload)), [], api_name="/upload_checkpoint")
                        with lock:
                            extra["upload_ms"] = (time.perf_counter() - t) * 1000
                            extra["upload_at_s"] = round(t - began, 2)
                            extra["upload_status"] = str(status)[:160]
                    except Exception as error:
                        with lock:
                            errors.append(f"upload: {type(error).__name__}: {str(error)[:200]}")
                if n == 1:  # another trains a model (two epochs on the digits)
                    t = time.perf_counter()
                    try:
                        c.predict("ae", "digits", *knobs, api_name="/train_start")
                        with lock:
                            extra["training_ms"] = (time.perf_counter() - t) * 1000
                            extra["training_at_s"] = round(t - began, 2)
                    except Exception as error:
                        with lock:
                            errors.append(f"training: {type(error).__name__}: {str(error)[:200]}")
                pause = random.Random(n)
                for k in range(rounds):
                    for kind, api, args in mix:
                        if think:  # a person between two actions: think ± 50 %
                            time.sleep(think * pause.uniform(0.5, 1.5))
                        t = time.perf_counter()
                        try:
                            c.predict(*args(n * 31 + k), api_name=api)
                        except Exception as error:
                            with lock:
                                errors.append(f"{kind}: {type(error).__name__}: {str(error)[:200]}")
                            continue
                        with lock:
                            times[kind].append((time.perf_counter() - t) * 1000)
                            when.append((round(t - began, 2), kind, n, round(times[kind][-1])))

            began = time.perf_counter()
            server_cpu, client_cpu = cpu_seconds(proc.pid), cpu_seconds(os.getpid())
            threads = [threading.Thread(target=visitor, args=(n,)) for n in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=600)
            wall = time.perf_counter() - began
            server_cpu = cpu_seconds(proc.pid) - server_cpu
            client_cpu = cpu_seconds(os.getpid()) - client_cpu
            visitors_done.set()
            sampler.join()
            alive = urllib.request.urlopen(url, timeout=30).status == 200
        finally:
            stop(proc)
    rows = {}
    for kind in times:
        one, many = p95(single[kind]), p95(times[kind])
        mid_one, mid_many = statistics.median(single[kind]), statistics.median(times[kind]) if times[kind] else float("nan")
        rows[kind] = {"single_p95_ms": round(one, 1), "concurrent_p95_ms": round(many, 1),
                      "ratio": round(many / one, 2) if one else None,
                      "single_median_ms": round(mid_one, 1), "concurrent_median_ms": round(mid_many, 1),
                      "median_ratio": round(mid_many / mid_one, 2) if mid_one else None, "n": len(times[kind])}
    return {"clients": clients, "rounds": rounds, "think_seconds": think, "seconds": round(wall, 1), "errors": errors,
            "events": rows, "server_rss_mb_before": round(base, 1), "server_rss_mb_peak": round(peak[0], 1),
            "server_growth_mb": round(peak[0] - base, 1), "still_serving": alive,
            "slowest": sorted(when, key=lambda w: -w[3])[:12],
            "server_cpu_seconds": round(server_cpu, 1), "clients_cpu_seconds": round(client_cpu, 1), **extra,
            "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count()}


def summary(runs: list[dict]) -> dict:
    """Each event's p95 ratio (25 visitors / one client, both from the same run) over several
    runs: the median, and the lowest and highest."""
    kinds = runs[0]["events"]
    ratios = {kind: sorted(r["events"][kind]["ratio"] for r in runs) for kind in kinds}
    return {kind: {"median_ratio": statistics.median(v), "lowest": v[0], "highest": v[-1]} for kind, v in ratios.items()}


def main() -> None:
    import faulthandler

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3, help="whole runs (app started afresh each time); medians reported")
    parser.add_argument("--quick", action="store_true", help="two rounds per visitor, one run")
    parser.add_argument("--think", type=float, default=1.0,
                        help="seconds a visitor waits between two actions (±50 %%); 0 = every visitor at full speed")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=None, help="default: benchmarks/results/load_test.json (not with --quick)")
    args = parser.parse_args()
    runs = 1 if args.quick else max(1, args.runs)
    faulthandler.dump_traceback_later(900 * runs, exit=True)  # a hung run says where it hung
    results = [run(args.clients, 2 if args.quick else args.rounds, args.data_dir, args.think) for _ in range(runs)]
    result = {"p95_ratio_over_runs": summary(results), "runs": results}
    print(json.dumps(result, indent=1))
    out = args.out or (None if args.quick else str(ROOT / "benchmarks" / "results" / "load_test.json"))
    if out:
        Path(out).write_text(json.dumps(result, indent=1))
        print(f"written to {out}")


if __name__ == "__main__":
    main()
