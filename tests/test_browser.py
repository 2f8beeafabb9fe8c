"""The app in a real browser: the latent map (click, hover, the latent pad, switching models),
a latent slider, drawing a digit.

Playwright (from PyPI) drives Debian's Chromium at /usr/bin/chromium; the test skips, saying why,
when either is missing. A screenshot of each tab goes to ``$VAELAB_SCREENSHOTS``, else to a temporary folder (the
README's screenshots come from ``assets/screenshots.py``).
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
def browser(app_url):
    if not Path(CHROMIUM).is_file():
        print(f"skipping: no Chromium at {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser, app_url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT)
    page.goto(app_url)
    page.wait_for_selector("#map-canvas .lc[data-state=ready]", timeout=120_000)
    yield page
    page.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("VAELAB_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _src(page, selector: str) -> str:
    return page.locator(f"{selector} img").first.get_attribute("src") or ""


MAP = "#map-canvas .lc"


def _point(page, i: int, panel: int = 0) -> dict:
    return page.locator(MAP).evaluate("(root, [k, i]) => root.pointOnScreen(k, i)", [panel, i])


def _pick_shown(page) -> str:
    return page.locator(MAP).get_attribute("data-pick")


def _choose_map_model(page, name: str) -> None:
    page.locator("#map-model input").click()
    labels = page.locator("ul[role=listbox] li").all_inner_texts()
    label = next(t.strip() for t in labels if t.strip().startswith(name + " ·"))
    page.get_by_role("option", name=label, exact=True).dispatch_event("mousedown")


def test_clicking_a_point_picks_it_in_both_panels_and_the_image_row(page, shots):
    before = _pick_shown(page)
    target = 77 if before != "77" else 78
    at = _point(page, target)
    page.mouse.click(at["x"], at["y"])
    page.wait_for_function(f"() => document.querySelector('{MAP}').dataset.pick !== {before!r}")
    picked = int(_pick_shown(page))
    # the point under the cursor was picked (another may sit on the same pixel)
    there = _point(page, picked)
    assert abs(there["x"] - at["x"]) <= HIT_PX and abs(there["y"] - at["y"]) <= HIT_PX
    page.wait_for_function("i => document.querySelector('#map-index input[type=number]').value == String(i)", arg=picked)
    page.wait_for_function("i => document.body.innerText.includes('Test image #' + i)", arg=picked)
    # the PCA panel's star moved too: the same pick is drawn there
    assert _point(page, picked, panel=1) is not None


HIT_PX = 9  # the page's hit radius (8 px) plus rounding


def test_the_arrow_keys_move_the_pick_right_after_a_click(page):
    """A click on a dot gives the map the keyboard: no extra Tab press before the arrows work."""
    at = _point(page, 40)
    page.mouse.click(at["x"], at["y"])
    page.wait_for_function(f"() => document.querySelector('{MAP}').dataset.pick === '40'"
                           f" || document.activeElement.classList.contains('lc-over')")
    before = _pick_shown(page)
    assert page.evaluate("() => document.activeElement.classList.contains('lc-over')")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => document.querySelector('{MAP}').dataset.pick !== {before!r}")


def test_hovering_a_point_shows_its_image(page):
    at = _point(page, 123)
    page.mouse.move(at["x"] + 30, at["y"] + 30)
    page.mouse.move(at["x"], at["y"], steps=3)
    tip = page.locator("#map-canvas .lc-tip")
    tip.wait_for(state="visible")
    page.wait_for_function("() => { const i = document.querySelector('#map-canvas .lc-tip img');"
                           " return i && !i.hidden && i.src.startsWith('data:image/png'); }")
    assert "digit" in tip.inner_text()
    page.mouse.move(5, 5)


def test_the_latent_pad_decodes_where_you_drag(page, shots):
    box = page.locator("#map-canvas .lc-over").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.1)
    page.mouse.down()
    for k in range(1, 8):
        page.mouse.move(box["x"] + box["width"] * (0.2 + 0.03 * k), box["y"] + box["height"] * 0.1, steps=2)
    page.mouse.up()
    page.wait_for_function(f"() => document.querySelector('{MAP}').dataset.padDecoded")
    first = page.locator(MAP).get_attribute("data-pad-decoded")
    src = page.locator("#map-canvas .lc-pad-img").get_attribute("src")
    assert src.startswith("data:image/png")
    page.mouse.click(box["x"] + box["width"] * 0.85, box["y"] + box["height"] * 0.9)
    page.wait_for_function(f"before => document.querySelector('{MAP}').dataset.padDecoded !== before", arg=first)
    page.screenshot(path=str(shots / "latent-map.png"), full_page=True)


def test_switching_2d_16d_and_discrete_maps_shows_no_error(page):
    from vaelab.app.catalogue import scan_checkpoints

    names = {c.name for c in scan_checkpoints()}
    wanted = [n for n in ("vae-16", "vq-vae", "ae-2d", "digits-vae-8", "vae-2d", "digits-vae-2d") if n in names]
    assert len(wanted) >= 3
    for name in wanted:
        _choose_map_model(page, name)
        page.wait_for_function("name => { const r = document.querySelector('#map-canvas .lc');"
                               " return r.dataset.state === 'ready' && r.dataset.key.startsWith(name + '|'); }",
                               arg=name)
        page.wait_for_timeout(300)
        assert page.locator(".toast-body").count() == 0, page.locator(".toast-body").all_inner_texts()
        assert page.locator("#map-view .error, #map-index .error").count() == 0


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
    """The stroke the screenshots draw (a "7": the top bar, then the diagonal)."""
    from assets.screenshots import draw_a_seven

    draw_a_seven(page)


def test_drawing_shows_reconstructions_from_the_first_stroke(page, shots):
    page.get_by_role("tab", name="Draw").click()
    page.wait_for_selector("#draw-pad canvas")
    _draw_a_seven(page)  # no tool to choose first
    page.wait_for_selector("#recons img", timeout=TIMEOUT)
    assert page.locator("#recons img").count() >= 2
    page.wait_for_function("() => document.querySelector('#draw-map .lc').dataset.state === 'ready'")
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "draw.png"), full_page=True)
    # Clear empties the pad and the reconstructions; the next stroke draws again
    page.get_by_label("Clear the drawing").click()
    page.wait_for_function("() => document.querySelectorAll('#recons img').length === 0")
    before = page.locator("#seen img").first.get_attribute("src")
    _draw_a_seven(page)
    page.wait_for_function("before => { const i = document.querySelector('#seen img');"
                           " return i && i.src !== before; }", arg=before)
    page.wait_for_selector("#recons img", timeout=TIMEOUT)


def test_a_finger_draws_on_a_phone(browser, app_url):
    """Touch strokes draw on the pad (its touch-action is none: the page does not scroll)."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(app_url)
    page.wait_for_selector("#map-canvas .lc[data-state=ready]", timeout=120_000)
    tab = page.get_by_role("tab", name="Draw")
    if tab.count() and tab.is_visible():
        tab.click()
    else:  # on a phone the last tabs are under "More tabs"
        page.get_by_label("More tabs").click()
        page.locator(".overflow-dropdown button", has_text="Draw").click()
    pad = page.locator("#draw-pad canvas")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2
    cdp = context.new_cdp_session(page)

    def touch(kind: str, yy: float) -> None:
        cdp.send("Input.dispatchTouchEvent",
                 {"type": kind, "touchPoints": [] if kind == "touchEnd" else [{"x": x, "y": yy}]})
    touch("touchStart", y)
    for k in range(1, 12):
        touch("touchMove", y + box["height"] * 0.05 * k)
    touch("touchEnd", y)
    page.wait_for_selector("#recons img", timeout=TIMEOUT)
    context.close()


def test_beta_tab_highlights_the_chosen_beta(page, shots):
    from vaelab.app.catalogue import scan_checkpoints
    from vaelab.app.tabs import beta

    names = beta.series_names(scan_checkpoints())
    if len(names) < 3:
        pytest.skip("no beta series among the checkpoints")
    page.get_by_role("tab", name="β comparison").click()
    page.wait_for_selector("#beta-rd [data-beta]:not([hidden]) svg circle")
    page.wait_for_selector("#beta-traversal [data-beta]:not([hidden]) img")
    shown = "sel => [...document.querySelectorAll(sel + ' [data-beta]')].filter(b => !b.hidden).map(b => b.dataset.beta)"
    assert page.evaluate(shown, "#beta-rd") == [names[len(names) // 2]]  # the radio's default
    page.locator("#beta-choice label").first.click()
    # the plane and the traversal switch to the first β at once, in the page
    page.wait_for_function(f"() => ({shown})('#beta-rd').join() === {names[0]!r}")
    page.wait_for_function(f"() => ({shown})('#beta-traversal').join() === {names[0]!r}")
    visible = page.locator("#beta-rd [data-beta]:not([hidden]) svg circle[r='8']")
    assert visible.count() == 1
    # and the server's numbers follow
    from vaelab.app.state import load

    page.wait_for_function("b => document.body.innerText.includes(b)", arg=f"β = {load(names[0]).card.beta:g} ({names[0]})")
    # another traversal rank sends new blocks: the chosen β stays shown
    page.locator("#beta-rank label").nth(1).click()
    page.wait_for_timeout(1500)
    assert page.evaluate(shown, "#beta-traversal") == [names[0]]
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "beta.png"), full_page=True)


def test_codebook_tab_edits_a_code_and_redecodes(page, shots):
    page.get_by_role("tab", name="Codebook").click()
    page.wait_for_selector("#cb-cells td")
    page.wait_for_selector("#cb-cells .cm-out img[src^='data:image/png']")
    img = "#cb-cells .cm-out img"
    before = page.locator(img).get_attribute("src")
    page.locator("#cb-cells td").nth(10).click()
    page.wait_for_function("() => document.querySelector('#cb-cells .cm').dataset.sel !== '-1,-1'")
    code = page.locator("#cb-cells .cm-code")
    held = int(code.input_value())
    assert f"holds code {held}" in page.locator("#cb-cells .cm-note").inner_text()
    code.fill(str((held + 7) % 64))
    page.locator("#cb-cells .cm-apply").click()
    page.wait_for_function("([s, before]) => document.querySelector(s).src !== before", arg=[img, before])
    assert page.locator("#cb-cells td.cm-edit").count() == 1
    # a code the model does not have: a message in the editor, the image unchanged
    edited = page.locator(img).get_attribute("src")
    code.fill("100000")
    code.press("Enter")
    page.wait_for_function("() => document.querySelector('#cb-cells .cm-note').innerText.includes('codes 0 to')")
    assert page.locator(img).get_attribute("src") == edited
    page.screenshot(path=str(shots / "codebook.png"), full_page=True)
    page.locator("#cb-cells .cm-reset").click()
    page.wait_for_function("([s, before]) => document.querySelector(s).src === before", arg=[img, before])
    assert page.locator("#cb-cells td.cm-edit").count() == 0


def test_gumbel_tab_moving_tau_changes_the_soft_codes(page, shots):
    page.get_by_role("tab", name="Gumbel temperature").click()
    heat, soft = "#gb-live img[data-k=heatmap]", "#gb-live img[data-k=soft]"
    page.wait_for_selector(heat + "[src^='data:image/png']", timeout=60_000)
    before, soft_before = (page.locator(s).get_attribute("src") for s in (heat, soft))
    number = page.locator("#gb-live .gl-number")
    number.fill("0.063")
    number.press("Enter")
    page.wait_for_function("([s, before]) => document.querySelector(s).src !== before", arg=[heat, before])
    page.wait_for_function("([s, before]) => document.querySelector(s).src !== before", arg=[soft, soft_before])
    assert page.locator("#gb-live .gl-range").input_value() == "-1.2"
    assert "At τ = 0.063" in page.locator("#gb-live .gl-entropy").inner_text()
    # let go: the gap's numbers are quoted at the page's τ itself (10^-1.2 = 0.0631), not the curve's nearest point
    page.wait_for_function("() => [...document.querySelectorAll('.prose')].some(e => e.textContent.includes("
                           "'At τ = 0.0631 the relaxed objective'))", timeout=60_000)
    # dragging the slider with the keyboard redraws too
    shown = page.locator(heat).get_attribute("src")
    page.locator("#gb-live .gl-range").focus()
    for _ in range(20):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("([s, before]) => document.querySelector(s).src !== before", arg=[heat, shown])
    page.wait_for_function("() => document.querySelector('#gb-live .gl').dataset.logTau === '-1.00'")
    # nonsense typed: a message, nothing lost
    number.fill("-3")
    number.press("Enter")
    page.wait_for_function("() => document.querySelector('#gb-live .gl-entropy').innerText.includes('positive')")
    page.screenshot(path=str(shots / "gumbel.png"), full_page=True)


def _svg_points(page, selector: str) -> int:
    """How many points the chart's lines have (0 before the first one is drawn)."""
    return page.locator(selector).evaluate(
        "el => [...el.querySelectorAll('polyline')].reduce((n, p) => n + p.getAttribute('points').split(' ').length, 0)")


def test_train_tab_streams_stops_and_the_model_is_used_in_the_latent_map(page, shots):
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-variant input").click()
    page.locator("ul[role=listbox] li", has_text="vae — Variational").first.click()
    latent = page.get_by_label("latent size")
    latent.fill("2")
    page.get_by_label("epochs").fill("150")
    page.get_by_label("batch size").fill("16")
    page.locator("#train-start").click()
    page.wait_for_selector("#train-losses polyline", timeout=60_000)
    first = _svg_points(page, "#train-losses")
    page.wait_for_function("([sel, n]) => [...document.querySelectorAll(sel + ' polyline')].reduce((k, p) => "
                           "k + p.getAttribute('points').split(' ').length, 0) > n", arg=["#train-losses", first])
    page.wait_for_selector("#train-map img", timeout=60_000)  # an epoch ended: the map is drawn
    map_before = page.locator("#train-map img").get_attribute("src")
    page.wait_for_function("before => document.querySelector('#train-map img').src !== before", arg=map_before)
    page.screenshot(path=str(shots / "train-running.png"), full_page=True)
    page.locator("#train-stop").click()
    page.wait_for_function("() => document.querySelector('#train-status').innerText.includes('model pickers')",
                           timeout=60_000)
    status = page.locator("#train-status").inner_text()
    assert "Stopped" in status and "saved after epoch" in status
    page.screenshot(path=str(shots / "train.png"), full_page=True)
    title = status.split("“")[1].split("”")[0]
    page.get_by_role("tab", name="Latent map").click()
    page.locator("#map-model input").click()
    page.locator("ul[role=listbox] li", has_text=title).first.click()
    page.wait_for_function("() => (document.querySelector('#map-canvas .lc').dataset.key || '').startsWith('trained-')",
                           timeout=60_000)
    page.wait_for_selector("#map-canvas .lc[data-state=ready]")
    assert "your vae" in page.locator("#map-canvas").inner_text()


def test_models_tab(page, shots):
    page.get_by_role("tab", name="Models").click()
    page.wait_for_timeout(300)
    assert page.get_by_text("Shipped checkpoints (test-set").is_visible()
    page.screenshot(path=str(shots / "models.png"), full_page=True)


def test_uploading_a_checkpoint_zip_adds_it_to_the_pickers(page, shots, tmp_path):
    import zipfile

    from .conftest import ROOT

    archive = tmp_path / "my-model.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in ("config.json", "model.safetensors"):
            z.write(ROOT / "checkpoints" / "digits-vae-2d" / f, f"my-model/{f}")
    page.get_by_role("tab", name="Models").click()
    page.locator("#upload-box").get_by_text("Bring your own checkpoint").click()
    page.locator("#upload-zip input[type=file]").set_input_files(str(archive))
    page.wait_for_function("() => document.querySelector('#upload-status').innerText.includes('Loaded')",
                           timeout=120_000)
    page.screenshot(path=str(shots / "upload.png"), full_page=True)
    page.get_by_role("tab", name="Latent map").click()
    page.locator("#map-model input").click()
    options = page.locator("ul[role=listbox] li").all_inner_texts()
    assert any("your vae (my-model" in t for t in options)
    page.keyboard.press("Escape")
    # a refused model after it (a Hub id this offline machine cannot fetch): the status line no
    # longer says the last one loaded
    page.get_by_role("tab", name="Models").click()
    page.locator("#upload-hub textarea, #upload-hub input").first.fill("someone/not-on-this-machine")
    page.locator("#upload-hub-load").click()
    page.wait_for_function("() => document.querySelector('#upload-status').innerText.includes('Not loaded')",
                           timeout=60_000)


@pytest.fixture(scope="module")
def explored_url():
    """An app over a model this test defines, on colour images (a second server)."""
    import torch
    from torch import nn

    from vaelab.app import explored

    from .test_external import blobs

    class ColourAE(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.e, self.d = nn.Linear(3 * 16 * 16, 2), nn.Linear(2, 3 * 16 * 16)

        def encode(self, x):
            return self.e(x.flatten(1))

        def decode(self, z):
            return torch.sigmoid(self.d(z)).reshape(-1, 3, 16, 16)

    x, y = blobs(300)
    demo = explored.explore(ColourAE(), x, labels=y, name="colour ae", launch=False, progress=False)
    demo.launch(prevent_thread_lock=True, quiet=True)
    yield demo.local_url
    demo.close()


def test_an_explored_colour_model_in_the_browser(browser, explored_url, shots):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.set_default_timeout(TIMEOUT)
    page.goto(explored_url)
    page.wait_for_selector(MAP + "[data-state=ready]", timeout=120_000)
    tabs = page.get_by_role("tab").all_inner_texts()
    assert tabs == ["Latent map", "Draw", "Models"]
    # the legend names the classes, the hover shows the image in colour
    assert page.locator("#map-canvas .lc-legend").inner_text().split()[:4] == ["0", "1", "2", "3"]
    at = _point(page, 11)
    page.mouse.move(at["x"] + 30, at["y"] + 30)
    page.mouse.move(at["x"], at["y"], steps=3)
    page.wait_for_function("() => { const i = document.querySelector('#map-canvas .lc-tip img');"
                           " return i && !i.hidden && i.src.startsWith('data:image/png'); }")
    assert "class" in page.locator("#map-canvas .lc-tip").inner_text()
    page.mouse.click(at["x"], at["y"])
    page.wait_for_function("() => document.body.innerText.includes('class') && "
                           "document.body.innerText.includes('Test image #')")
    page.screenshot(path=str(shots / "explored.png"), full_page=True)
    page.get_by_role("tab", name="Draw").click()
    assert page.get_by_text("Drawing is for grey digit models").is_visible()
    page.close()


# --- layout: no label over content, nothing squeezed, at a desktop, a projector and a phone ---------------

OVERLAPS = """() => {
  const out = [];
  document.querySelectorAll('label[data-testid="block-label"]').forEach(l => {
    const r = l.getBoundingClientRect();
    if (!r.width || !r.height || getComputedStyle(l).visibility === 'hidden') return;
    const block = l.closest('.block');
    if (!block) return;
    block.querySelectorAll('img, canvas, svg, table').forEach(c => {
      const q = c.getBoundingClientRect();
      if (!q.width || !q.height || l.contains(c)) return;
      if (!(q.right <= r.left + 1 || q.left >= r.right - 1 || q.bottom <= r.top + 1 || q.top >= r.bottom - 1))
        out.push(l.innerText.slice(0, 60) + ' over a ' + c.tagName);
    });
  });
  return out;
}"""


def _open_tab(page, name: str) -> None:
    """Open a tab as the screenshot script does (on a phone, through the "More tabs" menu)."""
    from assets.screenshots import tab

    tab(page, name)
    page.wait_for_timeout(700)


@pytest.mark.parametrize("size", [(1400, 1000), (1280, 720), (390, 844)])
def test_no_label_covers_a_picture_a_chart_or_a_table(browser, app_url, size):
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.set_default_timeout(TIMEOUT)
    try:
        page.goto(app_url)
        page.wait_for_selector("#map-canvas .lc[data-state=ready]", timeout=120_000)
        found = {}
        for name in ("Latent map", "Latent sliders", "β comparison", "Codebook", "Regularisers"):
            _open_tab(page, name)
            found[name] = page.evaluate(OVERLAPS)
        assert not any(found.values()), found
    finally:
        page.close()


def test_on_a_phone_the_regularisers_pictures_are_shown_at_a_readable_size(browser, app_url):
    from vaelab.app import state

    if state.dataset("mnist") is None:
        pytest.skip("the Regularisers pictures need the MNIST test images (set VAELAB_DATA to a folder with MNIST/raw/)")
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.set_default_timeout(TIMEOUT)
    try:
        page.goto(app_url)
        page.wait_for_selector("#map-canvas .lc[data-state=ready]", timeout=120_000)
        _open_tab(page, "Regularisers")
        page.wait_for_selector("#reg-hist svg", timeout=60_000)
        widths = page.evaluate("() => [...document.querySelectorAll('#reg-hist svg[role=img], #reg-jac img')]"
                               ".map(e => e.getBoundingClientRect().width)")
        assert widths and min(widths) > 250, widths
        _open_tab(page, "Latent map")
        row = page.evaluate("() => [...document.querySelectorAll('#map-recon img')].map(e => e.getBoundingClientRect().width)")
        assert row and min(row) > 150, row
    finally:
        page.close()
