"""The app in a real browser: draw a digit, drag a latent slider, switch models in the latent map.

Playwright (from PyPI) drives Debian's Chromium at /usr/bin/chromium; the test skips, saying why,
when either is missing. A screenshot of each tab goes to ``$VAELAB_SCREENSHOTS`` (the README's
screenshots come from ``VAELAB_SCREENSHOTS=assets``), else to a temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
TIMEOUT = 20_000  # ms per wait; a busy two-core machine is slow to render plots


@pytest.fixture(scope="module")
def page(app_url):
    if not Path(CHROMIUM).is_file():
        print(f"skipping: no Chromium at {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT)
        page.goto(app_url)
        page.wait_for_selector("#map-plot .js-plotly-plot", timeout=120_000)  # first load fits PCA
        yield page
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("VAELAB_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _src(page, selector: str) -> str:
    return page.locator(f"{selector} img").first.get_attribute("src") or ""


def test_switch_models_in_the_latent_map(page, shots):
    from vaelab.app.catalogue import scan_checkpoints
    from vaelab.app.tabs.latent_map import model_choices

    choices = model_choices(scan_checkpoints())
    names = [value for _, value in choices]
    assert len(names) >= 2, "need two checkpoints to switch between"
    page.wait_for_selector("#map-plot .annotation-text")
    first = page.locator("#map-plot .annotation-text").first.text_content()
    other = next(n for n in names if not first.startswith(n + " "))
    page.locator("#map-model input").click()
    page.get_by_role("option", name=dict((v, k) for k, v in choices)[other]).click()
    page.wait_for_function(
        "name => [...document.querySelectorAll('#map-plot .annotation-text')]"
        ".some(t => t.textContent.startsWith(name + ' '))",
        arg=other)
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "latent-map.png"), full_page=True)


def test_moving_a_latent_slider_changes_the_decoded_image(page, shots):
    page.get_by_role("tab", name="Latent sliders").click()
    page.wait_for_selector("#decoded img")
    before = _src(page, "#decoded")
    number = page.locator("#z-slider-0 input[type=number]")
    number.fill("2.5")
    number.press("Enter")
    page.wait_for_function("before => { const i = document.querySelector('#decoded img');"
                           " return i && i.src !== before; }", arg=before)
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "latent-sliders.png"), full_page=True)


def _draw_a_seven(page) -> None:
    box = page.locator("#sketchpad canvas").last.bounding_box()
    cx, cy, h = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["height"]
    # a "7": the top bar, then the diagonal stroke
    page.mouse.move(cx - 0.25 * h, cy - 0.3 * h)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(cx - 0.25 * h + 0.05 * h * k, cy - 0.3 * h, steps=2)
    for k in range(1, 13):
        page.mouse.move(cx + 0.25 * h - 0.03 * h * k, cy - 0.3 * h + 0.05 * h * k, steps=2)
    page.mouse.up()


def _brush_selected(page) -> bool:
    return "highlight" in (page.get_by_label("Brush").first.get_attribute("class") or "")


def test_drawing_shows_reconstructions_from_the_first_stroke(page, shots):
    page.get_by_role("tab", name="Draw").click()
    page.wait_for_function("() => { const b = document.querySelector('#sketchpad button[aria-label=\"Brush\"]');"
                           " return b && b.classList.contains('highlight'); }")  # no click on the brush
    _draw_a_seven(page)
    page.wait_for_selector("#recons img", timeout=TIMEOUT)
    assert page.locator("#recons img").count() >= 2
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "draw.png"), full_page=True)
    # Clear deselects the Sketchpad's brush; the page selects it again, so the next stroke draws
    page.get_by_label("Clear canvas").first.click()
    page.wait_for_function("() => document.querySelector('#sketchpad button[aria-label=\"Brush\"]')"
                           ".classList.contains('highlight')")
    assert _brush_selected(page)
    before = page.locator("#seen img").first.get_attribute("src")
    _draw_a_seven(page)
    page.wait_for_function("before => { const i = document.querySelector('#seen img');"
                           " return i && i.src !== before; }", arg=before)


def test_models_tab(page, shots):
    page.get_by_role("tab", name="Models").click()
    page.wait_for_timeout(300)
    assert page.get_by_text("Shipped checkpoints (test-set").is_visible()
    page.screenshot(path=str(shots / "models.png"), full_page=True)
