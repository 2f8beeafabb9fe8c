"""vaelab's web app: the only part of the package that imports gradio.

:func:`build` lays out the page: a one-line header, a line on which dataset is available, and
one tab per module in :mod:`vaelab.app.tabs`, each holding its plain handlers (tests call them
directly) above its ``render()``. State (loaded models, datasets, fitted PCAs) lives in
:mod:`vaelab.app.state`, the list of checkpoints in :mod:`vaelab.app.catalogue`; the latent map
drawn in the page in :mod:`vaelab.app.latent_canvas`; figures come from :mod:`vaelab.viz`,
drawing preprocessing from :mod:`vaelab.preprocess`. :func:`launch_options` holds what
``demo.launch`` needs (the page's style).

Starts with no dataset and no network: every tab works from the shipped checkpoints and the
artifacts evaluation cached beside them; with MNIST present (``VAELAB_DATA``), original images
and PCA reconstructions appear too. ``VAELAB_CHECKPOINTS`` points it at another checkpoint folder.
"""

from __future__ import annotations

import gradio as gr

from vaelab.app.catalogue import scan_checkpoints
from vaelab.app.serving import (  # noqa: F401  (freeze_heap: for the entry points)
    CACHE_CLEANING, QUEUE_SIZE, body_limits, freeze_heap, light_sessions, share_fairly)
from vaelab.app.state import dataset_status, fetch_running, host_instructions, start_fetch, warm_up
from vaelab.app.tabs import beta, codebook, draw, gumbel, latent_map, models, regularisers, sliders, train

# Small type for secondary lines; a compact header so each tab's main figure fits a 1280×720
# projector; on a phone the tab bar scrolls sideways instead of hiding tabs behind a menu.
PAGE_CSS = """
.vl-small, .vl-small p { font-size: 0.9em !important; }
.vl-header p { margin: 0 !important; }
.vl-header .vl-title { font-size: 1.45em; font-weight: 700; }
.vl-header .vl-data { font-size: 0.85em; color: var(--body-text-color-subdued); }
.vl-table table { display: block; overflow-x: auto; max-width: 100%; }
/* Gradio floats a component's label over the top-left corner of its box: over a picture, a chart or
   a table it hides what it names. Here every label sits above its content instead. */
.block label[data-testid="block-label"].float { position: relative !important; top: auto !important;
  left: auto !important; margin: 0 0 6px 0 !important; max-width: 100%; white-space: normal; }
@media (max-width: 640px) {
  /* a row of pictures or charts stacks on a phone, each as wide as the screen */
  .row:has(> .block .vl-px, > .block svg, > .block canvas, > .block .vl-recons, > .column .vl-px) > * {
    flex: 1 1 100% !important; min-width: 100% !important; }
  .vl-table td, .vl-table th { white-space: nowrap; }
  .tab-wrapper .tab-container { overflow-x: auto !important; flex-wrap: nowrap !important; }
  .tab-wrapper .tab-container button { flex: 0 0 auto; }
  .katex-display { overflow-x: auto; overflow-y: hidden; }
}
"""


def header() -> str:
    """The page's first line: the name, what it is, and what this server's data allows."""
    return ("<span class='vl-title'>vaelab</span> — inside an autoencoder's latent space. "
            f"<span class='vl-data'>{dataset_status()}</span>")


def launch_options() -> dict:
    """What ``demo.launch(...)`` takes besides the server settings: the page's style, and no run
    history (Gradio would otherwise save every request — each slider drag, each stroke — in the
    visitor's browser storage, rewriting a growing record on every event). Uploads (a checkpoint
    zip) are refused by Gradio itself beyond the upload limit."""
    from vaelab.app.upload import MAX_ZIP_BYTES

    # show_error: a refused input (a value of the wrong type, a choice not offered) reaches the
    # visitor as its message rather than as "an exception was raised"
    # app_kwargs: every request's body is capped before it is read (vaelab.app.serving.BodyLimits)
    return {"css": PAGE_CSS + latent_map.VIEWS_CSS, "run_history": False, "max_file_size": MAX_ZIP_BYTES, "show_error": True,
            "app_kwargs": {"middleware": [body_limits(MAX_ZIP_BYTES)]}}


def explored_header(cards) -> str:
    """The header when the app shows models given to ``vaelab.explore``."""
    names = ", ".join(c.display for c in cards)
    data = "; ".join(sorted({c.data_title for c in cards if c.data_title}))
    return (f"<span class='vl-title'>vaelab</span> — inside {names}. "
            f"<span class='vl-data'>{data}</span>")


def build(cards=None, *, explored: bool = False) -> gr.Blocks:
    """The whole app, over the checkpoints found now (``VAELAB_CHECKPOINTS`` or the shipped ones),
    or over ``cards``. ``explored``: the cards are models given to ``vaelab.explore`` — only the
    tabs that apply to them are laid out, and no Train tab."""
    cards = scan_checkpoints() if cards is None else list(cards)
    light_sessions()
    if not explored:
        warm_up([n for n in (latent_map.default_model(cards), sliders.default_model(cards)) if n])
        start_fetch()  # MNIST, when it is not on disk and there is network: in the background
    title = "vaelab: explore autoencoder latent spaces"
    first_line = (lambda: explored_header(cards)) if explored else header
    with gr.Blocks(title=title, delete_cache=CACHE_CLEANING) as demo:
        status = gr.Markdown(first_line(), elem_classes=["vl-header"])
        mine = gr.State([])  # the models this browser session trained in the Train tab
        map_load = latent_map.render(cards, mine)
        sliders_load = sliders.render(cards, mine) if not explored or sliders.model_choices(cards) else None
        draw_load = (draw.render(mine) if not explored else
                     draw.render(None, cards) if draw.drawable(cards) else draw.render_note(cards))
        beta_load = beta.render(cards) if not explored or beta.series_names(cards) else None
        codebook_load = codebook.render(cards, mine) if not explored or codebook.codebook_models(cards) else None
        gumbel_load = gumbel.render(cards, mine) if not explored or gumbel.gumbel_models(cards) else None
        regulariser_loads = (regularisers.render(cards) or []) if not explored else []
        if not explored:
            train.render(mine)
        models.render(cards, explored=explored, mine=None if explored else mine)
        if not explored:
            with gr.Accordion("Running this app yourself?", open=False):
                gr.Markdown(host_instructions())

        demo.load(first_line, outputs=status, api_name="status")
        if not explored:  # while MNIST downloads, the banner follows it; the timer stops when it is done
            ticker = gr.Timer(3.0, active=fetch_running())
            ticker.tick(lambda: (header(), gr.Timer(active=fetch_running())), outputs=[status, ticker],
                        show_progress="hidden", api_visibility="private", queue=False)
        if map_load:
            demo.load(*map_load, api_name="init_latent_map")
        if sliders_load:
            demo.load(*sliders_load, api_name="init_sliders")
        if draw_load:
            demo.load(*draw_load, api_name="init_draw")
        if beta_load:
            demo.load(*beta_load, api_name="init_beta")
        if codebook_load:
            demo.load(*codebook_load, api_name="init_codebook")
        if gumbel_load:
            demo.load(*gumbel_load, api_name="init_gumbel")
        for k, load in enumerate(regulariser_loads):
            demo.load(*load, api_name=f"init_regularisers_{k}")
        # what the page calls directly (server functions), for API clients too; registered after
        # the tabs, whose run of gr.Tab blocks an endpoint's placeholder would otherwise split
        for laid_out, module in ((codebook_load, codebook), (gumbel_load, gumbel)):
            for api_name, fn in module.API.items() if laid_out else ():
                gr.api(fn, api_name=api_name)
    # a bounded queue: beyond it a visitor is told the app is busy instead of waiting without end;
    # two requests at once by default (two cores), heavy events set their own limits; shared in
    # rounds among visitors, each with a bounded number of waiting events (vaelab.app.serving)
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=2)
    return with_launch_options(share_fairly(demo))


def with_launch_options(demo: gr.Blocks) -> gr.Blocks:
    """``demo`` whose ``launch()`` applies :func:`launch_options` (the page's style, error display,
    request limits) unless the caller overrides them, and keeps the collector off the built app: a
    bare ``demo.launch()`` serves the app as ``app.py`` does."""
    import functools

    plain = demo.launch

    @functools.wraps(plain)
    def launch(*args, **kwargs):
        freeze_heap()
        return plain(*args, **{**launch_options(), **kwargs})

    demo.launch = launch
    return demo
