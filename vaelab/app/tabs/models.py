"""Models: what is shipped and what can be trained.

The shipped checkpoints with their test-set numbers (from each ``metrics.json``), and every
variant the registry knows, each trainable with ``python -m vaelab train NAME``.
"""

from __future__ import annotations

import json
import os

import gradio as gr

from vaelab.app.catalogue import Card, register_trained, scan_checkpoints
from vaelab.app.widgets import fmt, keyed
from vaelab.metric_keys import metric
from vaelab.paths import checkpoints_dir

UPLOAD_NOTE = ("**Bring your own checkpoint.** Zip a checkpoint folder that vaelab wrote (`config.json`, "
               "`model.safetensors`, and a `prior/` folder if it has one) and drop it here, or give the id of one "
               "pushed to the Hub with `python -m vaelab push`. It is checked, scored on "
               "its dataset by this server, and then appears in every tab that applies — for you only, in this "
               "page, until you close it. Nothing in the zip is run: weights are read from safetensors only.")


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
        data = c.data_title or c.dataset
        rows.append(f"| `{c.name}` | {c.family} | {cell(data)} {c.image_shape[-2]}×{c.image_shape[-1]} | "
                    f"{c.size} | {fmt(metric(m, 'reconstruction.mse'), 4)} ({fmt(metric(m, 'reconstruction.pca_mse'), 4)}) | "
                    f"{fmt(metric(m, 'embedding.knn_latent_full'))} | {cell(c.purpose or '—')} |")
    return "\n".join(rows)


NOT_LOADED = "**Not loaded**: the message at the top says why. Nothing was added to this page's pickers."


def load_upload(path, mine, progress=gr.Progress()) -> dict:
    """An uploaded zip: check, score, and add the model to this session's pickers."""
    from vaelab.app.state import runs_dir
    from vaelab.app.upload import UploadError, receive

    if not path:
        return {"upload_status": "Choose a .zip of a checkpoint folder."}
    try:
        folder, meta = receive(path, runs_dir() / "uploads", progress=lambda f, text: progress(f, desc=text))
    except UploadError as error:
        raise gr.Error(f"Not loaded: {error}") from None
    return _adopt_upload(folder, meta, os.path.basename(str(path)), mine)


def load_hub(repo_id, mine, progress=gr.Progress()) -> dict:
    """A Hub model id: download, check, score, and add the model to this session's pickers."""
    from vaelab.app.state import runs_dir
    from vaelab.app.upload import UploadError, receive_hub

    try:
        folder, meta = receive_hub(repo_id, runs_dir() / "uploads", progress=lambda f, text: progress(f, desc=text))
    except UploadError as error:
        raise gr.Error(f"Not loaded: {error}") from None
    return _adopt_upload(folder, meta, repo_id.strip(), mine)


def _adopt_upload(folder, meta, source: str, mine) -> dict:
    from vaelab.app.upload import describe_upload, title_of

    name = f"upload-{os.urandom(6).hex()}"
    card = register_trained(folder, name, title_of(meta, source))
    mine = [n for n in (mine or []) if n != name] + [name]
    return {"mine": mine, "upload_status": f"**Loaded**: {describe_upload(folder)}. It is now in this page's model "
                                           f"pickers as “{card.short_label}” (only for you)."}


# --- layout ------------------------------------------------------------------------------------

def render(cards: list[Card], explored: bool = False, mine=None) -> None:
    """The tab: the tables, and (with ``mine``, the session's own models) the checkpoint upload
    (``explored``: the models given to ``vaelab.explore``, no upload)."""
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
        if mine is not None:
            with gr.Accordion("Bring your own checkpoint", open=False, elem_id="upload-box"):
                gr.Markdown(UPLOAD_NOTE)
                with gr.Row():
                    upload = gr.File(label="checkpoint folder, zipped (.zip)", file_types=[".zip"], type="filepath",
                                     elem_id="upload-zip", scale=1)
                    with gr.Column(scale=1):
                        hub_id = gr.Textbox(label="or a model pushed to the Hugging Face Hub (owner/name)",
                                            placeholder="someone/vae-mnist", elem_id="upload-hub", max_length=120)
                        hub_load = gr.Button("Load from the Hub", elem_id="upload-hub-load")
                c = {"upload_status": gr.Markdown(elem_id="upload-status"), "mine": mine}
            events = [upload.upload(keyed(load_upload, c), [upload, mine], [c["upload_status"], mine],
                                    api_name="upload_checkpoint", concurrency_limit=1, concurrency_id="upload"),
                      gr.on([hub_load.click, hub_id.submit], keyed(load_hub, c), [hub_id, mine],
                            [c["upload_status"], mine], api_name="load_from_hub", concurrency_limit=1,
                            concurrency_id="upload")]
            for event in events:  # a refused file replaces the last line, which may be an earlier success
                event.failure(lambda: NOT_LOADED, None, c["upload_status"], queue=False, api_visibility="private")
        gr.Markdown("Shipped checkpoints (test-set numbers from each `metrics.json`):")
        gr.Markdown(checkpoints_table(cards), elem_classes=["vl-table"])
        gr.Markdown("Every variant below trains with `python -m vaelab train NAME` and loads from its "
                    "checkpoint folder.")
        gr.Markdown(variants_table(), elem_classes=["vl-table"])

