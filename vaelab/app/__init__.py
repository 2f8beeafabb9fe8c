"""vaelab's web app: the only part of the package that imports gradio.

:func:`build` lays out the page: a header, a line on which dataset is available, and one tab
per module in :mod:`vaelab.app.tabs`, each holding its plain handlers (tests call them directly)
above its ``render()``. State (loaded models, datasets, fitted PCAs) lives in
:mod:`vaelab.app.state`, the list of checkpoints in :mod:`vaelab.app.catalogue`; figures come
from :mod:`vaelab.viz`, drawing preprocessing from :mod:`vaelab.preprocess`.

Starts with no dataset and no network: every tab works from the shipped checkpoints and the
artifacts evaluation cached beside them; with MNIST present (``VAELAB_DATA``), original images
and PCA reconstructions appear too. ``VAELAB_CHECKPOINTS`` points it at another checkpoint folder.
"""

from __future__ import annotations

import gradio as gr

from vaelab.app.catalogue import scan_checkpoints
from vaelab.app.state import dataset_status, host_instructions
from vaelab.app.tabs import draw, latent_map, models, sliders


def build() -> gr.Blocks:
    """The whole app, over the checkpoints found now (``VAELAB_CHECKPOINTS`` or the shipped ones)."""
    cards = scan_checkpoints()
    with gr.Blocks(title="vaelab: explore autoencoder latent spaces", js=draw.PAGE_JS) as demo:
        gr.Markdown("# vaelab — inside an autoencoder's latent space\nPick a model, see where it puts "
                    "each digit, drag its latent dimensions, or draw your own digit and watch every model "
                    "rebuild it.")
        status = gr.Markdown("**Data:** " + dataset_status())
        with gr.Accordion("Running this app yourself?", open=False):
            gr.Markdown(host_instructions())
        map_load = latent_map.render(cards)
        sliders_load = sliders.render(cards)
        draw_load = draw.render()
        models.render(cards)

        demo.load(lambda: "**Data:** " + dataset_status(), outputs=status, api_name="status")
        if map_load:
            demo.load(latent_map.select_map_model, *map_load, api_name="init_latent_map")
        if sliders_load:
            demo.load(sliders.setup_sliders, *sliders_load, api_name="init_sliders")
        demo.load(draw.draw, *draw_load, api_name="init_draw")
    return demo
