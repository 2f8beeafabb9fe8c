"""Screenshots of every tab at a desktop (1400×1000), a classroom projector (1280×720) and a phone
(390×844), taken from the running app with Debian's Chromium; the README shows the desktop ones.

    python app.py &                      # or any running copy of the app
    python assets/screenshots.py [--url http://127.0.0.1:7860/] [--out assets/screenshots]

    python assets/explore_example.py &   # an explored colour model (port 7870)
    python assets/screenshots.py --explored --url http://127.0.0.1:7870/

Each tab is shown as a user would first see it (the first screen, not the whole page): the latent
map after hovering a point, the sliders after one slider moved, the draw tab after drawing a 7.
Files: ``<tab>-<width>x<height>.png``; with ``--explored``, ``explore-<tab>-<width>x<height>.png`` of
the tabs such an app has (the map after a point is picked, the sliders, the models).
"""

from __future__ import annotations

import argparse
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
VIEWPORTS = [(1400, 1000), (1280, 720), (390, 844)]


def draw_a_seven(page) -> None:
    box = page.locator("#draw-pad canvas").bounding_box()
    cx, cy, h = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["height"]
    page.mouse.move(cx - 0.25 * h, cy - 0.3 * h)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(cx - 0.25 * h + 0.05 * h * k, cy - 0.3 * h, steps=2)
    for k in range(1, 13):
        page.mouse.move(cx + 0.25 * h - 0.03 * h * k, cy - 0.3 * h + 0.05 * h * k, steps=2)
    page.mouse.up()


def tab(page, name: str) -> None:
    """Open a tab; on a narrow screen the tabs that do not fit are under the "More tabs" menu."""
    button = page.get_by_role("tab", name=name)
    if button.count() and button.is_visible():
        button.click()
    else:
        page.get_by_label("More tabs").click()
        page.locator(".overflow-dropdown button", has_text=name).click()
    page.wait_for_timeout(800)


def shoot(page, out: Path, w: int, h: int) -> list[Path]:
    files = []
    page.set_viewport_size({"width": w, "height": h})
    page.wait_for_selector("#map-canvas .lc[data-state=ready]", timeout=120_000)
    page.wait_for_timeout(1000)
    at = page.locator("#map-canvas .lc").evaluate("r => r.pointOnScreen(0, 77)")
    page.mouse.move(at["x"], at["y"])
    page.wait_for_timeout(800)
    files.append(out / f"latent-map-{w}x{h}.png")
    page.screenshot(path=str(files[-1]))
    page.mouse.move(1, 1)
    tab(page, "Latent sliders")
    page.wait_for_selector("#decoded img")
    files.append(out / f"latent-sliders-{w}x{h}.png")
    page.screenshot(path=str(files[-1]))
    tab(page, "Draw")
    page.wait_for_selector("#draw-pad canvas")
    page.locator("#draw-pad").scroll_into_view_if_needed()
    draw_a_seven(page)
    page.wait_for_selector("#recons img", timeout=60_000)
    page.wait_for_timeout(1500)
    page.evaluate("window.scrollTo(0, 0)")
    files.append(out / f"draw-{w}x{h}.png")
    page.screenshot(path=str(files[-1]))
    for name, key, ready in (("β comparison", "beta", "#beta-rd [data-beta]:not([hidden]) svg"), ("Codebook", "codebook", "#cb-cells td"),
                             ("Gumbel temperature", "gumbel", "#gb-live img[data-k=heatmap][src]"),
                             ("Regularisers", "regularisers", "#reg-jac img")):
        tab(page, name)
        page.wait_for_selector(ready, timeout=60_000)
        page.wait_for_timeout(1200)
        page.evaluate("window.scrollTo(0, 0)")
        files.append(out / f"{key}-{w}x{h}.png")
        page.screenshot(path=str(files[-1]))
    tab(page, "Train")  # a 2-D VAE on the digits, watched until it ends (about 10 s)
    page.wait_for_selector("#train-start")
    page.get_by_label("latent size").fill("2")
    page.locator("#train-start").click()
    page.wait_for_function("() => document.querySelector('#train-status').innerText.includes('model pickers')",
                           timeout=120_000)
    page.wait_for_timeout(800)
    page.evaluate("window.scrollTo(0, 0)")
    files.append(out / f"train-{w}x{h}.png")
    page.screenshot(path=str(files[-1]))
    tab(page, "Models")
    files.append(out / f"models-{w}x{h}.png")
    page.screenshot(path=str(files[-1]))
    return files


def shoot_explored(page, out: Path, w: int, h: int) -> list[Path]:
    files = []
    page.set_viewport_size({"width": w, "height": h})
    page.wait_for_selector("#map-canvas .lc[data-state=ready]", timeout=120_000)
    page.wait_for_timeout(1000)
    at = page.locator("#map-canvas .lc").evaluate("r => r.pointOnScreen(0, 40)")
    page.mouse.click(at["x"], at["y"])
    page.wait_for_timeout(1500)
    at = page.locator("#map-canvas .lc").evaluate("r => r.pointOnScreen(0, 123)")
    page.mouse.move(at["x"], at["y"])
    page.wait_for_timeout(800)
    files.append(out / f"explore-map-{w}x{h}.png")
    page.screenshot(path=str(files[-1]))
    page.mouse.move(1, 1)
    page.locator("#map-recon").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    files.append(out / f"explore-pick-{w}x{h}.png")
    page.screenshot(path=str(files[-1]))
    page.evaluate("window.scrollTo(0, 0)")
    for name, key in (("Latent sliders", "sliders"), ("Models", "models")):
        if page.get_by_role("tab", name=name).count() == 0 and w >= 500:
            continue
        try:
            tab(page, name)
        except Exception:  # this app has no such tab
            continue
        page.wait_for_timeout(2500)
        files.append(out / f"explore-{key}-{w}x{h}.png")
        page.screenshot(path=str(files[-1]))
    return files


def wait_for(url: str, seconds: float) -> None:
    """Return once ``url`` answers, or exit with a message after ``seconds``."""
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).read(1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer within {seconds:.0f} s: is the app running?")
            time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860/")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "screenshots"))
    parser.add_argument("--explored", action="store_true", help="the app opened by vaelab.explore")
    parser.add_argument("--wait", type=float, default=180,
                        help="seconds to wait for the server to answer (it may still be starting)")
    args = parser.parse_args()
    wait_for(args.url, args.wait)
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for w, h in VIEWPORTS:
            page = browser.new_page(viewport={"width": w, "height": h}, device_scale_factor=1,
                                    is_mobile=w < 500, has_touch=w < 500)
            page.goto(args.url)
            for f in (shoot_explored if args.explored else shoot)(page, out, w, h):
                print(f)
            page.close()
        browser.close()


if __name__ == "__main__":
    main()
