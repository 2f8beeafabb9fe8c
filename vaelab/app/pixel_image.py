"""``PixelImage``: a picture the server draws, sent inline in the page.

A ``gr.Image`` output is written to a file on the server (as WebP) and fetched by the browser in a
second request after the event's answer. For the small pictures this app redraws on every move of
a control (a re-decoded digit, a row of traversals, a heatmap of categorical distributions) that
second request is a large share of the latency. ``PixelImage`` is a ``gr.HTML`` whose handler
value is the same numpy array a ``gr.Image`` takes; it is sent as a PNG data URL inside the
answer, drawn with crisp pixels at a chosen width.
"""

from __future__ import annotations

import contextlib
import html

import gradio as gr
import gradio.component_meta
import numpy as np

from vaelab.viz import png_data_url

CSS = """
.vl-px { display: block; max-width: 100%; height: auto; object-fit: contain; image-rendering: pixelated; margin: 0 auto; }
.vl-px-empty { color: var(--body-text-color-subdued); font-size: 13px; padding: 8px 0; }
"""


@contextlib.contextmanager
def _no_type_stubs():
    """Gradio writes a ``.pyi`` stub beside the source of every component class it sees defined;
    for an installed package that is a file written into site-packages at import, which ``pip
    uninstall`` leaves behind. The stub is for editors only: skip writing it."""
    write = gradio.component_meta.create_or_modify_pyi
    gradio.component_meta.create_or_modify_pyi = lambda *args, **kwargs: None
    try:
        yield
    finally:
        gradio.component_meta.create_or_modify_pyi = write


with _no_type_stubs():  # the class is defined here, at module level, as any other
    class PixelImage(gr.HTML):
        """An image (numpy ``uint8`` grey ``(H, W)`` or colour ``(H, W, 3)``, or a float image in
        [0, 1]) shown inline, ``width`` or ``height`` CSS pixels (its own size when neither; never
        wider than its column), with ``alt`` text.

        Handlers return the array (tests compare arrays); the component turns it into an ``<img>``.
        A string is passed through as HTML, ``None`` shows ``empty``."""

        def __init__(self, value=None, *, alt: str = "", width: int | None = None, height: int | None = None,
                     empty: str = "", label: str | None = None, **kwargs):
            self.alt, self.width, self.height, self.empty = alt, width, height, empty
            kwargs.setdefault("js_on_load", None)
            kwargs.setdefault("show_label", label is not None)
            kwargs.setdefault("container", label is not None)
            super().__init__(None, label=label, css_template=CSS + kwargs.pop("css_template", ""), **kwargs)
            self.value = self.postprocess(value)

        def postprocess(self, value) -> str:
            if value is None:
                return f'<div class="vl-px-empty">{html.escape(self.empty)}</div>' if self.empty else ""
            if isinstance(value, str):
                return value
            a = np.asarray(value)
            style = (f' style="width:{int(self.width)}px"' if self.width else
                     f' style="height:{int(self.height)}px; width:auto"' if self.height else "")
            return (f'<img class="vl-px" src="{png_data_url(a)}" alt="{html.escape(self.alt)}"'
                    f' width="{a.shape[1]}" height="{a.shape[0]}"{style}>')
