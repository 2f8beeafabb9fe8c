"""A drawing pad written in the page (a ``gr.HTML``): the pen is always ready, strokes work with a
mouse, a pen or a finger, and the drawing is sent as one small PNG data URL while it is drawn and
when a stroke ends — one request, no uploads, so every model's rebuild follows the pen.

Its value is ``""`` (empty) or ``"data:image/png;base64,..."``; :func:`vaelab.preprocess.sketch_to_ink`
reads it, checking the format and size before decoding a pixel.
"""

from __future__ import annotations

import gradio as gr

from vaelab.app.widgets import asset


def draw_pad(*, elem_id: str, brush: int = 18) -> gr.HTML:
    """The pad; wire its ``.input`` (fired while drawing, at the end of a stroke, on Undo and Clear)."""
    return gr.HTML("", html_template='<div class="dp"></div>',
                   css_template=asset("draw_pad.css"),
                   js_on_load=asset("draw_pad.js"), apply_default_css=False,
                   elem_id=elem_id, label="drawing pad", brush=brush)
