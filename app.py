"""vaelab's web app: layout and wiring only. The work happens in plain library functions:
handlers and caches in :mod:`vaelab.explorer`, figures in :mod:`vaelab.viz`, drawing
preprocessing in :mod:`vaelab.preprocess`.

Starts with no dataset and no network: every tab works from the shipped checkpoints and the
artifacts evaluation cached beside them; with MNIST present (``VAELAB_DATA``), original images
and PCA reconstructions appear too. ``VAELAB_CHECKPOINTS`` points it at another checkpoint folder.
"""

from __future__ import annotations

import gradio as gr
import torch

from vaelab import explorer as ex
from vaelab.explorer import dataset_status, variants_table  # noqa: F401  (part of the app's API)

# One intra-op thread per request: the app decodes single images, where extra threads only add
# contention (on a shared 2-core machine the draw handler's p95 fell from ~170 ms to ~40 ms), and
# two requests can then run side by side.
torch.set_num_threads(1)

CARDS = ex.scan_checkpoints()
MAP_CHOICES = ex.choices(CARDS)
SLIDER_CHOICES = ex.choices([c for c in CARDS if c.has_sliders])


def _default(choices, preferred):
    names = [value for _, value in choices]
    return next((n for n in preferred if n in names), names[0] if names else None)


MAP_DEFAULT = _default(MAP_CHOICES, ["vae-2d", "ae-2d", "digits-vae-2d", "digits-ae-2d"])
SLIDER_DEFAULT = _default(SLIDER_CHOICES, ["vae-16", "digits-vae-8", "vae-2d", "digits-vae-2d"])
PLAN = ex.draw_plan()
IMG = dict(height=230, width=230, buttons=[], interactive=False, image_mode="L", type="numpy")
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]

with gr.Blocks(title="vaelab: explore autoencoder latent spaces") as demo:
    gr.Markdown("# vaelab — inside an autoencoder's latent space\nPick a model, see where it puts "
                "each digit, drag its latent dimensions, or draw your own digit and watch every model "
                "rebuild it.")
    status = gr.Markdown("**Data:** " + dataset_status())

    with gr.Tab("Latent map"):
        with gr.Row():
            map_model = gr.Dropdown(MAP_CHOICES, value=MAP_DEFAULT, label="Model (grouped by family)", scale=3,
                                    elem_id="map-model")
            projection = gr.Radio([ex.PROJ_LATENT, ex.PROJ_PCA, ex.PROJ_UMAP], value=ex.PROJ_LATENT,
                                  label="2-D view of the latent", scale=2)
        map_plot = gr.Plot(label="Test images in the model's latent (left) and in PCA of the pixels (right)",
                           elem_id="map-plot")
        index = gr.Slider(0, 100, value=0, step=1, label="Pick a test image (its star moves in both maps)")
        with gr.Row():
            original = gr.Image(label="original", **IMG)
            model_recon = gr.Image(label="model's reconstruction", **IMG)
            pca_recon = gr.Image(label="PCA's reconstruction (same d)", **IMG)
        neighbours = gr.Image(label="nearest test images in the model's latent", height=100, buttons=[],
                              interactive=False, type="numpy")
        pick_caption = gr.Markdown()
        map_md = gr.Markdown(latex_delimiters=LATEX)
        with gr.Row():
            manifold = gr.Image(label="decoded manifold over the latent plane", height=480, width=480,
                                buttons=[], interactive=False, image_mode="L", type="numpy")
            manifold_caption = gr.Markdown()

    with gr.Tab("Latent sliders"):
        with gr.Row():
            slider_model = gr.Dropdown(SLIDER_CHOICES, value=SLIDER_DEFAULT, label="VAE model", scale=3)
            start = gr.Radio([ex.START_TEST, ex.START_PRIOR], value=ex.START_TEST, label="Start from", scale=2)
            start_index = gr.Slider(0, 100, value=0, step=1, label="test image", scale=1)
            label = gr.Slider(0, 9, value=0, step=1, label="digit to condition on", visible=False, scale=1)
        elbo_md = gr.Markdown(latex_delimiters=LATEX)
        with gr.Row():
            decoded = gr.Image(label="decoded image", scale=1, elem_id="decoded", **IMG)
            with gr.Column(scale=3):
                sliders, slider_rows = [], []
                for row in range(ex.MAX_SLIDERS // 4):
                    with gr.Row(visible=False) as slider_row:
                        slider_rows.append(slider_row)
                        sliders += [gr.Slider(-ex.SLIDER_RANGE, ex.SLIDER_RANGE, value=0.0, step=0.05,
                                              label=f"z{4 * row + k}", visible=False, min_width=160,
                                              elem_id=f"z-slider-{4 * row + k}")
                                    for k in range(4)]
        with gr.Row():
            dim = gr.Dropdown(label="Traverse one dimension from −3 to 3 (the others stay as set)", scale=3)
            traverse_btn = gr.Button("Traverse", scale=1)
        traversal = gr.Image(label="traversal", height=130, buttons=[], interactive=False, type="numpy")
        with gr.Row():
            seed = gr.Number(0, precision=0, label="seed", scale=1)
            sample_btn = gr.Button("Sample z ~ N(0, I)", scale=2)
        samples = gr.Image(label="samples from the prior", height=130, buttons=[], interactive=False, type="numpy")
        with gr.Row():
            interp_a = gr.Number(0, precision=0, label="from test image", scale=1)
            interp_b = gr.Number(1, precision=0, label="to test image", scale=1)
            interp_btn = gr.Button("Interpolate between their posterior means", scale=2)
        interpolation = gr.Image(label="interpolation", height=130, buttons=[], interactive=False, type="numpy")

    with gr.Tab("Draw"):
        gr.Markdown(ex.draw_markdown(PLAN), latex_delimiters=LATEX)
        with gr.Row():
            pad = gr.Sketchpad(type="numpy", image_mode="L", canvas_size=(280, 280), label="draw a digit",
                               brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"),
                               layers=False, transforms=(), scale=3, elem_id="sketchpad")
            with gr.Column(scale=2):
                seen = gr.Image(label="what the models see", elem_id="seen", **IMG)
                draw_msg = gr.Markdown(ex.EMPTY_DRAWING)
                reading = gr.Markdown()
            draw_map = gr.Plot(label="the drawing in a 2-D latent", elem_id="draw-map", scale=4)
        recons = gr.Gallery(label="reconstructions (each model's rebuild of the image above)", columns=6,
                            height=240, object_fit="contain", allow_preview=False, fit_columns=False,
                            elem_id="recons")

    with gr.Tab("Models"):
        gr.Markdown("Shipped checkpoints (test-set numbers from each `metrics.json`):")
        gr.Markdown(ex.checkpoints_table(CARDS))
        gr.Markdown("Every variant below trains with `python -m vaelab train NAME` and loads from its "
                    "checkpoint folder.")
        gr.Markdown(variants_table())

    # --- wiring ---------------------------------------------------------------------------------
    map_outputs = [map_plot, projection, index, map_md, original, model_recon, pca_recon, neighbours, pick_caption,
                   manifold, manifold_caption]
    map_inputs = [map_model, projection, index]
    map_model.input(ex.select_map_model, map_inputs, map_outputs, api_name="latent_map")
    projection.input(ex.select_map_model, map_inputs, map_outputs, api_name="latent_map_projection")
    index.input(ex.pick_point, [map_model, projection, index],
                [map_plot, original, model_recon, pca_recon, neighbours, pick_caption],
                api_name="pick_point", show_progress="hidden", trigger_mode="always_last")

    setup_inputs = [slider_model, start, start_index, label]
    setup_outputs = [elbo_md, decoded, dim, label, start_index, traversal, samples, interpolation,
                     *slider_rows, *sliders]
    for trigger, name in ((slider_model.input, "sliders_model"), (start.input, "sliders_start"),
                          (start_index.release, "sliders_start_image")):
        trigger(ex.setup_sliders, setup_inputs, setup_outputs, api_name=name)
    gr.on([s.input for s in sliders] + [label.input], ex.decode_sliders, [slider_model, label, *sliders],
          decoded, api_name="decode", show_progress="hidden", trigger_mode="always_last",
          concurrency_limit=4, concurrency_id="decode")
    traverse_btn.click(ex.traverse, [slider_model, label, dim, *sliders], traversal, api_name="traverse",
                       concurrency_id="decode")
    dim.input(ex.traverse, [slider_model, label, dim, *sliders], traversal, api_name="traverse_dim",
              concurrency_id="decode")
    sample_btn.click(ex.sample_prior, [slider_model, label, seed], samples, api_name="sample",
                     concurrency_id="decode")
    interp_btn.click(ex.interpolate, [slider_model, interp_a, interp_b, label], interpolation,
                     api_name="interpolate", concurrency_id="decode")

    pad.change(ex.draw, pad, [seen, recons, draw_map, reading, draw_msg], api_name="draw",
               show_progress="hidden", trigger_mode="always_last")

    demo.load(lambda: "**Data:** " + dataset_status(), outputs=status, api_name="status")
    if MAP_DEFAULT:
        demo.load(ex.select_map_model, map_inputs, map_outputs, api_name="init_latent_map")
    if SLIDER_DEFAULT:
        demo.load(ex.setup_sliders, setup_inputs, setup_outputs, api_name="init_sliders")
    demo.load(ex.draw, pad, [seen, recons, draw_map, reading, draw_msg], api_name="init_draw")

if __name__ == "__main__":
    demo.launch()
