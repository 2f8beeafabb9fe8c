"""How fast the app answers, measured in one run so the ratios compare like with like.

- slider -> decoded image: the ``decode_sliders`` handler (target p95 <= 20 ms);
- the same through HTTP with gradio_client, against a trivial endpoint returning an image of the
  same size from the same server (target ratio of medians <= 1.2);
- drawing -> every reconstruction + latent map + classifier: the ``draw`` handler (p95 <= 100 ms);
- switching models in the latent map: ``select_map_model`` on cached coordinates (<= 0.5 s).

    python benchmarks/app_speed.py [--repeats 50] [--out benchmarks/results/app_speed.json]

Uses whatever checkpoints ``VAELAB_CHECKPOINTS`` (or the repository) holds; models are loaded
once before timing, as a running app has them cached.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def stats(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"median_ms": round(float(np.median(ms)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "min_ms": round(float(ms.min()), 2), "n": len(ms)}


def timed(fn, repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "app_speed.json"))
    args = parser.parse_args()

    import gradio as gr
    import torch
    from gradio_client import Client

    import app
    from vaelab.app import state
    from vaelab.app.catalogue import scan_checkpoints
    from vaelab.app.tabs import draw, latent_map, sliders

    rng = np.random.default_rng(0)
    results: dict = {"checkpoints": str(state.checkpoints_dir()), "torch_threads": torch.get_num_threads(),
                     "machine": f"{platform.machine()}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}"}

    # 1. slider -> decoded image (handler)
    cards = scan_checkpoints()
    vae = sliders.default_model(cards)
    dims = len(sliders.slider_dims(state.load(vae)))

    def slider_values():
        return [float(v) for v in rng.uniform(-3, 3, sliders.MAX_SLIDERS)]

    results["slider_handler"] = {"model": vae, **stats(timed(lambda: sliders.decode_sliders(vae, 0, sliders.START_PRIOR, 0, *slider_values()),
                                                             args.repeats * 4))}
    results["slider_handler"]["target_p95_ms"] = 20

    # 2. round trip through gradio_client: slider endpoint vs a trivial image endpoint
    image = sliders.decode_sliders(vae, 0, sliders.START_PRIOR, 0, *slider_values())
    with gr.Blocks() as trivial:
        n = gr.Number(0)
        out = gr.Image(type="numpy", image_mode="L")
        n.change(lambda _: image, n, out, api_name="trivial_image")
    app.demo.launch(prevent_thread_lock=True, quiet=True, **app.launch_options())
    trivial.launch(prevent_thread_lock=True, quiet=True)
    try:
        client, trivial_client = Client(app.demo.local_url, verbose=False), Client(trivial.local_url, verbose=False)
        slider_rt = timed(lambda: client.predict(vae, 0, sliders.START_PRIOR, 0, *slider_values(), api_name="/decode"), args.repeats)
        trivial_rt = timed(lambda: trivial_client.predict(1, api_name="/trivial_image"), args.repeats)
        # interleave a second pass so machine load affects both alike
        for _ in range(args.repeats // 2):
            t = time.perf_counter(); client.predict(vae, 0, sliders.START_PRIOR, 0, *slider_values(), api_name="/decode")
            slider_rt.append(time.perf_counter() - t)
            t = time.perf_counter(); trivial_client.predict(1, api_name="/trivial_image")
            trivial_rt.append(time.perf_counter() - t)
    finally:
        app.demo.close()
        trivial.close()
    results["slider_round_trip"] = stats(slider_rt)
    results["trivial_image_round_trip"] = stats(trivial_rt)
    results["round_trip_ratio_median"] = round(statistics.median(slider_rt) / statistics.median(trivial_rt), 3)
    results["round_trip_ratio_target"] = 1.2

    # 3. drawing -> every reconstruction
    canvas = np.full((280, 280), 255, np.uint8)
    canvas[50:230, 125:150] = 0
    canvas[50:75, 80:200] = 0
    drawing = {"background": canvas, "layers": [canvas], "composite": canvas}
    plan = draw.draw_plan()
    results["draw_handler"] = {"models": [c.name for c in plan.recon],
                               "map_model": plan.map_card.name if plan.map_card else None,
                               **stats(timed(lambda: draw.draw(drawing), args.repeats)), "target_p95_ms": 100}

    # 4. switching models in the latent map (cached coordinates; models already loaded)
    names = [v for _, v in latent_map.model_choices(cards)]
    for name in names:  # a running app has loaded each model (and fitted its PCA) once already
        latent_map.select_map_model(name, None, 0)
    switch = []
    for k in range(max(args.repeats // 2, len(names))):
        name = names[k % len(names)]
        t = time.perf_counter()
        latent_map.select_map_model(name, None, int(rng.integers(0, 300)))
        switch.append(time.perf_counter() - t)
    results["switch_model_handler"] = {"models": names, **stats(switch), "target_p95_ms": 500}
    first_load = []
    for name in names:  # and the first, cold switch (loads weights + artifacts from disk)
        state.clear_caches()
        t = time.perf_counter()
        latent_map.select_map_model(name, None, 0)
        first_load.append(time.perf_counter() - t)
    results["switch_model_cold_first_time"] = stats(first_load)
    results["slider_dims"] = dims

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
