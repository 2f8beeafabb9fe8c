"""Models: what is shipped and what can be trained.

The shipped checkpoints with their test-set numbers (from each ``metrics.json``), and every
variant the registry knows, each trainable with ``python -m vaelab train NAME``.
"""

from __future__ import annotations

import json

import gradio as gr

from vaelab.app.catalogue import Card, scan_checkpoints
from vaelab.app.widgets import fmt
from vaelab.paths import checkpoints_dir


def cell(text: str) -> str:
    """Text for a Markdown table cell: a ``|`` (as in "p(z₁|z₂)") would end the cell."""
    return str(text).replace("|", "\\|")


def variants_table() -> str:
    from vaelab.registry import list_variants

    rows = ["| variant | family | what it is |", "| --- | --- | --- |"]
    rows += [f"| `{e.name}` | {e.family} | {cell(e.description)} |" for e in list_variants()]
    return "\n".join(rows)


def checkpoints_table(cards: list[Card] | None = None) -> str:
    cards = scan_checkpoints() if cards is None else cards
    if not cards:
        return f"No evaluated checkpoints in `{checkpoints_dir()}`."
    rows = ["| checkpoint | family | data | latent | recon MSE (PCA) | 5-NN acc | used for |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for c in cards:
        m = json.loads((c.folder / "metrics.json").read_text())
        rec, emb = m.get("reconstruction", {}), m.get("embedding", {})
        data = c.data_title or c.dataset
        rows.append(f"| `{c.name}` | {c.family} | {cell(data)} {c.image_shape[-2]}×{c.image_shape[-1]} | "
                    f"{c.size} | {fmt(rec.get('mse'), 4)} ({fmt(rec.get('pca_mse'), 4)}) | "
                    f"{fmt(emb.get('knn_latent_full'))} | {cell(c.purpose or '—')} |")
    return "\n".join(rows)


# --- layout ------------------------------------------------------------------------------------

def render(cards: list[Card], explored: bool = False) -> None:
    """The tab: two tables, no events (``explored``: the models given to ``vaelab.explore``)."""
    if explored:
        with gr.Tab("Models"):
            gr.Markdown("**The model explored here, and how well it does on your images.** Reconstruction error is "
                        "measured on every fifth image (held out), against PCA fitted on the others with as many "
                        "components as the latent has numbers (capped by how many images fitted it); k-NN accuracy "
                        "classifies the held-out fifth by its neighbours among the rest (when the images have labels).")
            gr.Markdown(checkpoints_table(cards), elem_classes=["vl-table"])
        return
    with gr.Tab("Models"):
        gr.Markdown("**Every model this app ships, and how well it does on the test set.** Below them, "
                    "every variant the library can train.")
        gr.Markdown("Shipped checkpoints (test-set numbers from each `metrics.json`):")
        gr.Markdown(checkpoints_table(cards), elem_classes=["vl-table"])
        gr.Markdown("Every variant below trains with `python -m vaelab train NAME` and loads from its "
                    "checkpoint folder.")
        gr.Markdown(variants_table(), elem_classes=["vl-table"])
