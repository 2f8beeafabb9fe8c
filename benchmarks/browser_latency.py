"""The app's speed as a user feels it: from an action in a real browser to the changed pixels.

Playwright drives Debian's Chromium (``/usr/bin/chromium``) against the real app (``app.py``,
started here as a subprocess) and, in the same run, a trivial Gradio app — type a number, press
Enter, get a 28×28 image back — whose round trip is the floor every figure is divided by. Each
action is repeated (``--reps``, default 7) and the median is reported.

How a latency is measured: just before the action a ``MutationObserver`` is armed on the element
that should change; the latency is the time of the *last* DOM mutation inside it before it stays
quiet for ``--quiet`` ms (plotly redraws a figure in many mutations; the last one is when the
user sees the result), then two animation frames so the pixels are painted. During slider drags a
``PerformanceObserver`` collects long tasks (main thread busy > 50 ms): the longest is reported
as the page's worst freeze.

    python benchmarks/browser_latency.py [--reps 7] [--data-dir ../shared/data] [--out FILE] [--while-training]

With ``--while-training`` another session trains a 2-D VAE in the Train tab the whole time (the
same actions, to compare with an idle run).

Results go to ``benchmarks/results/browser_latency.json`` (and a table on stdout). Actions: pick a
test image (typed index; a click on a point, until the marker moves and until the image row
shows it), hover a point until its thumbnail shows, drag in the latent pad until the decoded image
changes, switch model (the first time for each shipped model, and warm between two), move a latent
slider, draw a stroke; and the longest freeze while dragging the pad, moving over the points and
dragging a slider. Each row names the element watched. The map's canvas changes no DOM when it
repaints, so the page sets the map root's ``data-drawn`` attribute right after each repaint.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

TRIVIAL_APP = '''
import numpy as np, gradio as gr
def show(n):
    img = np.zeros((28, 28), dtype=np.uint8)
    k = int(n or 0) % 28
    img[:, k] = 255
    img[k, :] = 255
    return img
with gr.Blocks() as demo:
    n = gr.Number(0, precision=0, label="number", elem_id="n")
    out = gr.Image(label="image", elem_id="out", image_mode="L", type="numpy", height=230, width=230)
    n.submit(show, n, out, api_name="show")
demo.launch(server_port=int(__import__("sys").argv[1]), quiet=True)
'''

# Arms an observer on `selector`; window.__settled resolves to the ms from arming to the last
# mutation (null if nothing changed within the timeout).
ARM = """([selector, quietMs, timeoutMs]) => {
  const root = document.querySelector(selector);
  window.__settled = new Promise(resolve => {
    if (!root) { resolve(-1); return; }
    const t0 = performance.now();
    let last = null, timer = null;
    const finish = () => { obs.disconnect();
      requestAnimationFrame(() => requestAnimationFrame(() => resolve(last === null ? null : last - t0))); };
    const obs = new MutationObserver(() => { last = performance.now(); clearTimeout(timer);
                                             timer = setTimeout(finish, quietMs); });
    obs.observe(root, {subtree: true, childList: true, attributes: true, characterData: true});
    setTimeout(() => { if (last === null) finish(); }, timeoutMs);
  });
}"""

# Resolves window.__settled to the ms from arming to the first change of `attribute` on the element
# (then two frames): the map's data-drawn, which the page sets right after repainting its canvas.
ARM_FIRST = """([selector, attribute, timeoutMs]) => {
  const el = document.querySelector(selector);
  window.__settled = new Promise(resolve => {
    if (!el) { resolve(-1); return; }
    const t0 = performance.now();
    const obs = new MutationObserver(() => { const t = performance.now(); obs.disconnect();
      requestAnimationFrame(() => requestAnimationFrame(() => resolve(t - t0))); });
    obs.observe(el, {attributes: true, attributeFilter: [attribute]});
    setTimeout(() => { obs.disconnect(); resolve(null); }, timeoutMs);
  });
}"""

LONG_TASKS = """() => { window.__long = [];
  new PerformanceObserver(list => { for (const e of list.getEntries()) window.__long.push(e.duration); })
    .observe({type: 'longtask', buffered: false}); }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(args: list[str], port: int, env: dict, timeout: float = 180) -> subprocess.Popen:
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"server {args} exited: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"server {args} did not answer on port {port} within {timeout}s")


def stop(proc: subprocess.Popen, grace: float = 30) -> None:
    """End a server started by :func:`serve`: asked first, killed if it has not gone in ``grace`` s."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def timed(page, selector: str, action, quiet: int, timeout: int = 30_000) -> float | None:
    page.evaluate(ARM, [selector, quiet, timeout])
    action()
    return page.evaluate("window.__settled")


def timed_first(page, selector: str, attribute: str, action, timeout: int = 30_000) -> float | None:
    page.evaluate(ARM_FIRST, [selector, attribute, timeout])
    action()
    return page.evaluate("window.__settled")


def type_number(page, selector: str, value) -> None:
    box = page.locator(selector)
    box.fill(str(value))
    box.press("Enter")


def measure_trivial(browser, url: str, reps: int, quiet: int) -> list[float]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.wait_for_selector("#n input")
    type_number(page, "#n input", 1)
    page.wait_for_selector("#out img")
    out = [timed(page, "#out", lambda k=k: type_number(page, "#n input", k + 2), quiet) for k in range(reps)]
    page.close()
    return out


MAP = "#map-canvas .lc"


def point(page, i: int, panel: int = 0) -> dict:
    return page.locator(MAP).evaluate("(root, [k, i]) => root.pointOnScreen(k, i)", [panel, i])


def open_models(page) -> None:
    """Open the latent map's model picker (the user's first click; not timed)."""
    for attempt in range(3):
        page.locator("#map-model input").click()
        try:
            page.wait_for_selector("ul[role=listbox] li", timeout=2000)
            return
        except Exception:  # the click closed a list that was still open: open it again
            page.locator(".vl-header").first.click()
    raise RuntimeError("the model picker did not open")


def press_model(page, name: str) -> None:
    """Press on ``name`` in the open picker (a mouse-down selects; the list scrolls while it opens,
    so a full click may find it moving): the user's choice, from which a switch is timed."""
    options = page.locator("ul[role=listbox] li")
    labels = [t.strip().splitlines()[-1] for t in options.all_inner_texts()]  # the chosen one has a ✓ line
    if not any(t.startswith(name + " ·") for t in labels):
        raise RuntimeError(f"no option for {name!r} among {labels}")
    options.nth(next(k for k, t in enumerate(labels) if t.startswith(name + " ·"))).dispatch_event("mousedown")


def choose(page, name: str) -> None:
    open_models(page)
    press_model(page, name)


def timed_switch(page, name: str, quiet: int, timeout: int = 30_000) -> float | None:
    open_models(page)
    return timed(page, "#map-canvas", lambda: press_model(page, name), quiet, timeout)


def shown_key(page) -> str:
    return page.locator(MAP).get_attribute("data-key") or ""


def longest_task(page, action) -> float:
    page.evaluate(LONG_TASKS)
    action()
    page.wait_for_timeout(1000)
    return max(page.evaluate("window.__long") or [0])


def measure_app(browser, url: str, reps: int, quiet: int, first_switch: int) -> dict[str, list]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    page.goto(url)
    page.wait_for_selector(MAP + "[data-state=ready]", timeout=180_000)
    page.wait_for_timeout(1500)
    results: dict[str, list] = {}
    freeze = "longest main-thread task while "

    # pick a test image by typing its index -> the map's marker moves
    picker = page.locator("#map-index input[type=number]")
    results["pick: type an index + Enter -> marker moved (#map-canvas)"] = [
        timed(page, "#map-canvas", lambda k=k: (picker.fill(str(10 + k)), picker.press("Enter")), quiet)
        for k in range(reps)]

    # pick by clicking a point: the marker is drawn by the page; the image row follows from the server
    def click(i):
        at = point(page, i)
        page.mouse.click(at["x"], at["y"])
    results["pick: click a point -> marker moved (map repainted)"] = [
        timed_first(page, MAP, "data-drawn", lambda k=k: click(300 + 7 * k)) for k in range(reps)]
    page.wait_for_timeout(1000)
    results["pick: click a point -> the server's answer drawn (#map-canvas quiet)"] = [
        timed(page, "#map-canvas", lambda k=k: click(400 + 7 * k), quiet) for k in range(reps)]
    page.wait_for_timeout(1000)
    results["pick: click a point -> its reconstruction shown (model's image)"] = [
        timed(page, "#map-recon", lambda k=k: click(500 + 7 * k), quiet) for k in range(reps)]
    page.wait_for_timeout(1000)

    # hover a point never hovered before -> its thumbnail
    def hover(i):
        at = point(page, i)
        page.mouse.move(at["x"], at["y"])
    page.mouse.move(5, 5)
    results["hover a point -> thumbnail shown (.lc-tip)"] = []
    for k in range(reps):
        page.mouse.move(5, 5)
        page.wait_for_timeout(200)
        results["hover a point -> thumbnail shown (.lc-tip)"].append(
            timed(page, "#map-canvas .lc-tip", lambda k=k: hover(1000 + 13 * k), quiet))
    page.mouse.move(5, 5)

    # the latent pad: press in the 2-D latent and drag -> the decoded image at the new z
    box = page.locator("#map-canvas .lc-over").first.bounding_box()
    results["latent pad: drag -> decoded image (.lc-pad)"] = []
    for k in range(reps):
        x0, y0 = box["x"] + box["width"] * (0.2 + 0.08 * k), box["y"] + box["height"] * 0.15
        page.mouse.move(x0, y0)
        page.mouse.down()
        results["latent pad: drag -> decoded image (.lc-pad)"].append(
            timed(page, "#map-canvas .lc-pad", lambda: page.mouse.move(x0 + 25, y0 + 10, steps=2), quiet))
        page.mouse.up()
        page.wait_for_timeout(300)

    def drag_pad():
        page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.5)
        page.mouse.down()
        for j in range(60):
            page.mouse.move(box["x"] + box["width"] * (0.1 + 0.013 * j),
                            box["y"] + box["height"] * (0.5 + 0.3 * ((j % 20) / 20 - 0.5)), steps=1)
            page.wait_for_timeout(16)
        page.mouse.up()
    results[freeze + "dragging in the latent pad (ms)"] = [longest_task(page, drag_pad)]

    def sweep_hover():
        for j in range(60):
            page.mouse.move(box["x"] + box["width"] * (0.1 + 0.013 * j), box["y"] + box["height"] * 0.6)
            page.wait_for_timeout(16)
    results[freeze + "moving over the map's points (ms)"] = [longest_task(page, sweep_hover)]

    # switching model: the first switch to models the page has not shown (cold in server and page),
    # then warm switches between two 2-D maps
    page.locator("#map-model input").click()
    page.wait_for_selector("ul[role=listbox] li")
    names = [t.strip().splitlines()[-1].split(" ·")[0] for t in page.locator("ul[role=listbox] li").all_inner_texts()]
    page.locator(".vl-header").first.click()  # close the list
    page.wait_for_timeout(300)
    cold = [n for n in names if n not in ("vae-2d",)][:first_switch]
    results["switch model, first time for each model -> map redrawn (#map-canvas)"] = []
    for name in cold:
        ms = timed_switch(page, name, quiet, timeout=60_000)
        assert shown_key(page).startswith(name + "|"), f"the switch to {name} did not happen: {shown_key(page)}"
        results["switch model, first time for each model -> map redrawn (#map-canvas)"].append(ms)
        page.wait_for_timeout(300)
    pair = ["ae-2d", "vae-2d"]
    for name in pair:  # warm both
        choose(page, name)
        page.wait_for_timeout(3000)
    results["switch model (warm, ae-2d <-> vae-2d) -> map redrawn (#map-canvas)"] = []
    for k in range(reps):
        results["switch model (warm, ae-2d <-> vae-2d) -> map redrawn (#map-canvas)"].append(
            timed_switch(page, pair[k % 2], quiet))
        page.wait_for_timeout(500)
    assert shown_key(page).startswith(pair[(reps - 1) % 2] + "|"), f"the switch did not happen: {shown_key(page)}"

    # latent slider -> decoded image
    page.get_by_role("tab", name="Latent sliders").click()
    page.wait_for_selector("#decoded img")
    page.wait_for_timeout(1000)
    number = page.locator("#z-slider-0 input[type=number]")
    results["set a latent slider's value -> #decoded"] = [
        timed(page, "#decoded", lambda k=k: (number.fill(f"{-2 + 0.5 * k:.2f}"), number.press("Enter")), quiet)
        for k in range(reps)]

    # dragging the slider: the longest main-thread task while the thumb moves
    track = page.locator("#z-slider-0 input[type=range]").bounding_box()
    y = track["y"] + track["height"] / 2

    def drag_slider():
        page.mouse.move(track["x"] + 5, y)
        page.mouse.down()
        for k in range(40):
            page.mouse.move(track["x"] + 5 + (track["width"] - 10) * k / 39, y, steps=2)
            page.wait_for_timeout(25)
        page.mouse.up()
    results[freeze + "dragging a slider (ms)"] = [longest_task(page, drag_slider)]

    # drawing -> every reconstruction
    page.get_by_role("tab", name="Draw").click()
    page.wait_for_selector("#draw-pad canvas")
    canvas = page.locator("#draw-pad canvas").bounding_box()
    cx, cy, h = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2, canvas["height"]

    def stroke(k: int, lift: bool = True) -> None:
        x0 = cx - 0.3 * h + 0.03 * h * k
        page.mouse.move(x0, cy - 0.3 * h)
        page.mouse.down()
        for j in range(1, 9):
            page.mouse.move(x0 + 0.02 * h * j, cy - 0.3 * h + 0.07 * h * j, steps=2)
        if lift:
            page.mouse.up()

    stroke(0)
    page.wait_for_selector("#recons img", timeout=60_000)
    page.wait_for_timeout(1500)
    # timed from the pen's lift (the pad also sends while the stroke is drawn, at most every 150 ms)
    results["drawing: lift the pen -> every reconstruction (#recons)"] = []
    for k in range(reps):
        stroke(k + 1, lift=False)
        results["drawing: lift the pen -> every reconstruction (#recons)"].append(
            timed(page, "#recons", page.mouse.up, quiet))
        page.wait_for_timeout(300)
    # the new tabs' main controls
    def open_tab(name: str, ready: str) -> None:
        page.get_by_role("tab", name=name).click()
        page.wait_for_selector(ready, timeout=120_000)
        page.wait_for_timeout(1500)

    open_tab("β comparison", "#beta-rd [data-beta]:not([hidden]) svg circle")
    labels = page.locator("#beta-choice label")
    results["β comparison: choose β -> point and traversal redrawn (#beta-rd)"] = [
        timed(page, "#beta-rd", lambda k=k: labels.nth(k % labels.count()).click(), quiet) for k in range(reps)]

    open_tab("Codebook", "#cb-cells td")
    page.wait_for_selector("#cb-cells .cm-out img[src^='data:image/png']")
    code = page.locator("#cb-cells .cm-code")
    results["codebook: apply a code to a cell -> re-decoded image (#cb-cells .cm-out)"] = []
    for k in range(reps):
        page.locator("#cb-cells td").nth(3 + k).click()
        page.wait_for_timeout(400)
        code.fill(str(17 + 5 * k))
        results["codebook: apply a code to a cell -> re-decoded image (#cb-cells .cm-out)"].append(
            timed(page, "#cb-cells .cm-out", lambda: page.locator("#cb-cells .cm-apply").click(), quiet))

    open_tab("Gumbel temperature", "#gb-live img[data-k=heatmap][src^='data:image/png']")
    tau = page.locator("#gb-live .gl-number")
    results["Gumbel: set τ -> heatmap and reconstructions (#gb-live .gl-heat)"] = [
        timed(page, "#gb-live .gl-heat", lambda k=k: (tau.fill(f"{10 ** (-1.2 + 0.3 * k):.3g}"), tau.press("Enter")),
              quiet) for k in range(reps)]
    page.close()
    return results


def start_training(url: str):
    """Another visitor starts a long training job in the Train tab (it runs while the page is measured)."""
    from gradio_client import Client

    sys.path.insert(0, str(ROOT))
    from vaelab.app.tabs import train as tab

    client = Client(url, verbose=False)
    dataset = "mnist" if any(v == "mnist" for _, v in tab.available_datasets()) else "digits"
    d = tab.defaults("vae", dataset)
    values = {**{k.field: d.get(k.field) for k in tab.KNOBS}, "latent_dim": 2, "epochs": 200}
    job = client.submit("vae", dataset, *[values[k.field] for k in tab.KNOBS], api_name="/train_start")
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until it trains (its status says so)
        out = job.outputs()
        if out and "Training" in str(out[-1][0]):
            break
        time.sleep(1)
    return {"client": client, "job": job, "dataset": dataset}


def stop_training(trainer) -> dict:
    trainer["client"].predict(api_name="/train_stop")
    outputs = trainer["job"].outputs()
    last = str(outputs[-1][0]) if outputs else ""
    return {"dataset": trainer["dataset"], "status_when_measuring_ended": last[:200]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="repetitions per action (median reported)")
    parser.add_argument("--quiet", type=int, default=150, help="ms without DOM changes that ends a measurement")
    parser.add_argument("--first-switch", type=int, default=40,
                        help="how many shipped models get a first (cold) switch measured")
    parser.add_argument("--data-dir", default=None, help="MNIST folder for the app (default: $VAELAB_DATA; none is fine)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "browser_latency.json"))
    parser.add_argument("--while-training", action="store_true",
                        help="measure while the app trains a model (a 2-D VAE on MNIST, or the digits without it) "
                             "submitted through its Train tab by another session")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    if args.data_dir:
        env["VAELAB_DATA"] = args.data_dir
    trivial_port, app_port = free_port(), free_port()
    trivial = serve([sys.executable, "-c", TRIVIAL_APP, str(trivial_port)], trivial_port, env)
    app = serve([sys.executable, "app.py"], app_port, {**env, "GRADIO_SERVER_PORT": str(app_port)})
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            floor = measure_trivial(browser, f"http://127.0.0.1:{trivial_port}/", args.reps, args.quiet)
            trainer = start_training(f"http://127.0.0.1:{app_port}/") if args.while_training else None
            try:
                rows = measure_app(browser, f"http://127.0.0.1:{app_port}/", args.reps, args.quiet, args.first_switch)
            finally:
                training = stop_training(trainer) if trainer else None
            browser.close()
    finally:
        for proc in (trivial, app):
            stop(proc)
    base = statistics.median(v for v in floor if v is not None)
    table = {}
    for name, values in rows.items():
        seen = [v for v in values if v is not None and v >= 0]
        med = statistics.median(seen) if seen else None
        table[name] = {"median_ms": med, "values_ms": values,
                       "ratio_to_trivial": None if med is None or "longest" in name else med / base}
    result = {"trivial_app_round_trip_ms": {"median_ms": base, "values_ms": floor}, "actions": table,
              "reps": args.reps, "quiet_ms": args.quiet, "data": env.get("VAELAB_DATA") is not None,
              "while_training": training, "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
              "when": time.strftime("%Y-%m-%d %H:%M")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"trivial Gradio app round trip: {base:.0f} ms (median of {len(floor)})")
    print("| action | median ms | × trivial |\n| --- | ---: | ---: |")
    for name, row in table.items():
        med = "–" if row["median_ms"] is None else f"{row['median_ms']:.0f}"
        ratio = "–" if row["ratio_to_trivial"] is None else f"{row['ratio_to_trivial']:.1f}×"
        print(f"| {name} | {med} | {ratio} |")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
