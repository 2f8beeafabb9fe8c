"""vaelab's web app: layout and wiring only; the work happens in the vaelab library.

This first version lists the model variants the library can train and says which dataset is
available. The latent map, sliders, drawing and training tabs build on it.
"""

from __future__ import annotations

import gradio as gr

from vaelab.data import data_dir
from vaelab.registry import list_variants


def dataset_status() -> str:
    """One line on which dataset the app can use, without loading it."""
    raw = data_dir() / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    if raw.is_file():
        return f"MNIST found in `{data_dir()}`: views that show original test images can use it."
    return ("MNIST not found (set `VAELAB_DATA` to a folder holding `MNIST/raw/`): the app uses "
            "scikit-learn's bundled 8×8 digits and what the shipped checkpoints cached.")


def variants_table() -> str:
    rows = ["| variant | family | what it is |", "| --- | --- | --- |"]
    rows += [f"| `{e.name}` | {e.family} | {e.description} |" for e in list_variants()]
    return "\n".join(rows)


with gr.Blocks(title="vaelab: explore autoencoder latent spaces") as demo:
    gr.Markdown("# vaelab\nExplore the latent spaces of autoencoders, from the classic autoencoder "
                "to the VAE and its discrete relatives.")
    status = gr.Markdown(dataset_status())
    with gr.Tab("Models"):
        gr.Markdown("Every variant below trains with `python -m vaelab train NAME` and loads from "
                    "its checkpoint folder.")
        table = gr.Markdown(variants_table())
    demo.load(dataset_status, outputs=status, api_name="status")

if __name__ == "__main__":
    demo.launch()
