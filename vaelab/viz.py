"""Figure builders for the app: arrays in, plotly figures or numpy images out.

Pure functions with no model or Gradio in sight, so tests call them directly and the app's
handlers stay a few lines. Every figure sets its height explicitly: plots inside tabs that were
hidden at first render otherwise come out too small in some Gradio releases.
"""

from __future__ import annotations

import base64
import functools
import io
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from PIL import Image

# ten distinguishable colours (Tableau 10), one per digit
DIGIT_COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                 "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#7f7f7f"]
MAP_HEIGHT = 470
MAX_POINTS = 4000  # points drawn per panel: SVG stays quick in every browser, the picture the same
IMAGE_PIXELS = 224  # displayed size of one digit image (nearest-neighbour upscaling keeps pixels crisp)


def display_subset(n: int, keep: int | None = None, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of the points drawn: the first ``max_points`` (test sets are shuffled already),
    always including ``keep``."""
    idx = np.arange(min(n, max_points))
    if keep is not None and 0 <= keep < n and keep >= max_points:
        idx = np.append(idx, keep)
    return idx


def _template() -> dict:
    """plotly_white as a plain dict: figures are built unvalidated (about 20× faster than
    plotly's validating constructors, which matters for a handler running on every stroke), so
    the named template must be expanded here rather than by plotly."""
    global _TEMPLATE
    if _TEMPLATE is None:
        import plotly.io as pio

        _TEMPLATE = pio.templates["plotly_white"].to_plotly_json()
    return _TEMPLATE


_TEMPLATE = None


def _figure(traces: list[dict], layout: dict) -> go.Figure:
    return go.Figure(data=traces, layout={"template": _template(), **layout}, _validate=False)


def _digit_traces(coords: np.ndarray, labels: np.ndarray, idx: np.ndarray, axes: str = "",
                  showlegend: bool = True) -> list[dict]:
    """One scatter trace per digit (so the legend toggles digits), on axes ``x{axes}``/``y{axes}``."""
    traces = []
    for digit in range(10):
        sel = idx[labels[idx] == digit]
        if len(sel) == 0:
            continue
        traces.append(dict(type="scatter", x=coords[sel, 0], y=coords[sel, 1], mode="markers",
                           name=str(digit), legendgroup=str(digit), showlegend=showlegend,
                           xaxis="x" + axes, yaxis="y" + axes,
                           marker=dict(size=4, color=DIGIT_COLOURS[digit], opacity=0.7),
                           customdata=sel,
                           hovertemplate="test image %{customdata}<br>digit " + str(digit) + "<extra></extra>"))
    return traces


def _star(x: float, y: float, name: str, axes: str = "", showlegend: bool = True) -> dict:
    return dict(type="scatter", x=[x], y=[y], mode="markers", name=name, showlegend=showlegend,
                legendgroup="star", xaxis="x" + axes, yaxis="y" + axes,
                marker=dict(symbol="star", size=20, color="black", line=dict(color="white", width=1.5)),
                hovertemplate=name + "<extra></extra>")


def robust_range(values: np.ndarray, spread: float = 2.0) -> dict:
    """An axis range around the 1st–99th percentile (plus a 10 % margin) when a few outliers
    would otherwise squash the bulk of the points (the full range is over ``spread`` times the
    percentile range); ``{}`` (plotly's autorange) when the points fill their range."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) < 20:
        return {}
    lo, hi = np.percentile(v, [1, 99])
    if hi <= lo or (v.max() - v.min()) <= spread * (hi - lo):
        return {}
    margin = 0.1 * (hi - lo)
    return {"range": [float(lo - margin), float(hi + margin)]}


def latent_map_figure(model_coords: np.ndarray, pixel_coords: np.ndarray, labels: np.ndarray,
                      titles: tuple[str, str], picked: int | None = None,
                      axis_titles: tuple[tuple[str, str], tuple[str, str]] = (("z₁", "z₂"), ("PC 1", "PC 2")),
                      height: int = MAP_HEIGHT) -> go.Figure:
    """Two scatter panels of the same test images, coloured by digit: the model's 2-D latent
    (or its projection) and PCA of the pixels; ``picked`` is marked with a star in both."""
    labels = np.asarray(labels)
    model_coords, pixel_coords = np.asarray(model_coords), np.asarray(pixel_coords)
    idx = display_subset(len(labels), picked)
    traces = []
    for axes, coords in (("", model_coords), ("2", pixel_coords)):
        traces += _digit_traces(coords, labels, idx, axes, showlegend=axes == "")
        if picked is not None and 0 <= picked < len(labels):
            traces.append(_star(float(coords[picked, 0]), float(coords[picked, 1]), f"picked #{picked}",
                                axes, showlegend=axes == ""))
    (mx, my), (px, py) = axis_titles
    gap = 0.08
    layout = dict(
        height=height, margin=dict(l=50, r=20, t=60, b=45),
        legend=dict(itemsizing="constant", title=dict(text="digit")),
        # titles as nested dicts: figures are built unvalidated, so "title_text" would not expand
        xaxis=dict(domain=[0, 0.5 - gap / 2], title=dict(text=mx), anchor="y", **robust_range(model_coords[:, 0])),
        yaxis=dict(domain=[0, 1], title=dict(text=my), anchor="x", **robust_range(model_coords[:, 1])),
        xaxis2=dict(domain=[0.5 + gap / 2, 1], title=dict(text=px), anchor="y2", **robust_range(pixel_coords[:, 0])),
        yaxis2=dict(domain=[0, 1], title=dict(text=py), anchor="x2", **robust_range(pixel_coords[:, 1])),
        annotations=[dict(text=t, x=x, y=1.0, xref="paper", yref="paper", xanchor="center", yanchor="bottom",
                          showarrow=False, font=dict(size=14))
                     for t, x in zip(titles, (0.25 - gap / 4, 0.75 + gap / 4))])
    return _figure(traces, layout)


def drawing_map_figure(coords: np.ndarray, labels: np.ndarray, point: np.ndarray | None, title: str,
                       height: int = 460) -> go.Figure:
    """One model's 2-D latent map with the drawing's latent as a star (``point`` may be None)."""
    labels = np.asarray(labels)
    traces = _digit_traces(np.asarray(coords), labels, display_subset(len(labels)))
    if point is not None:
        traces.append(_star(float(point[0]), float(point[1]), "your drawing"))
    layout = dict(title=dict(text=title, font=dict(size=14)), height=height,
                  margin=dict(l=45, r=15, t=50, b=85), xaxis=dict(title=dict(text="z₁")), yaxis=dict(title=dict(text="z₂")),
                  legend=dict(itemsizing="constant", orientation="h", y=-0.2, font=dict(size=11)))
    return _figure(traces, layout)


def empty_figure(message: str, height: int = 300) -> go.Figure:
    """A blank figure that says why there is nothing to show."""
    layout = dict(height=height, xaxis=dict(visible=False), yaxis=dict(visible=False),
                  margin=dict(l=10, r=10, t=10, b=10),
                  annotations=[dict(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                                    font=dict(size=15))])
    return _figure([], layout)


# --- images ----------------------------------------------------------------------------------

def as_grey(image) -> np.ndarray:
    """``(H, W)``, ``(1, H, W)`` or ``(1, 1, H, W)`` (tensor or array) -> float ``(H, W)`` in [0, 1]
    (a colour image is averaged over its channels)."""
    a = as_image(image)
    return a.mean(-1) if a.ndim == 3 else a


def as_image(image) -> np.ndarray:
    """One image as the page shows it: float in [0, 1], ``(H, W)`` when grey, ``(H, W, 3)`` when in
    colour. Takes ``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)`` with C = 1 or 3 (a model's layout),
    or ``(H, W, 3)`` (a picture's), as a tensor or an array."""
    a = image.detach().float().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    a = np.asarray(a, dtype=np.float32)
    while a.ndim > 3:
        a = a[0]
    if a.ndim == 3:
        if a.shape[0] == 1:
            a = a[0]
        elif a.shape[0] == 3 and a.shape[-1] != 3:
            a = a.transpose(1, 2, 0)
        elif a.shape[-1] != 3:
            a = a.mean(0)  # some other stack of channels: their mean, in grey
    return np.clip(a, 0.0, 1.0)


def upscale(a: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour ``scale``× along height and width (grey or colour)."""
    return a.repeat(scale, 0).repeat(scale, 1) if scale > 1 else a


def to_uint8(a: np.ndarray) -> np.ndarray:
    return (np.asarray(a, np.float32) * 255 + 0.5).astype(np.uint8)


def png_data_url(image) -> str:
    """An image as a PNG data URL, to sit inline in the page (no file, no second request).

    A ``uint8`` array of shape ``(H, W)`` or ``(H, W, 3)`` is written as it is; anything else is
    read as one image in [0, 1] (see :func:`as_image`, grey or colour), one pixel per model pixel
    (the page scales it up)."""
    a = np.asarray(image) if not hasattr(image, "detach") else None
    if a is None or a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        a = to_uint8(as_image(image))
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a), mode="L" if a.ndim == 2 else "RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def to_display(image, pixels: int = IMAGE_PIXELS) -> np.ndarray:
    """One image -> uint8 about ``pixels`` on its longer side (grey ``(H, W)`` or colour
    ``(H, W, 3)``), upscaled by an integer factor with nearest neighbour so every model pixel
    stays a visible square."""
    a = as_image(image)
    return to_uint8(upscale(a, max(1, pixels // max(a.shape[:2]))))


def tile(images, cols: int, pad: int = 1, pad_value: float = 0.35) -> np.ndarray:
    """``(N, H, W)`` or ``(N, C, H, W)`` (or anything :func:`as_image` reads per item) -> one float
    grid image, in colour when any image is."""
    ims = [as_image(im) for im in images]
    colour = any(im.ndim == 3 for im in ims)
    if colour:
        ims = [im if im.ndim == 3 else np.repeat(im[..., None], 3, -1) for im in ims]
    h, w = ims[0].shape[:2]
    rows = (len(ims) + cols - 1) // cols
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad) + ((3,) if colour else ()), pad_value, np.float32)
    for i, im in enumerate(ims):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = im
    return out


def strip(images, pixels_per_image: int = 112) -> np.ndarray:
    """Images in one row, each about ``pixels_per_image`` wide, as uint8."""
    grid = tile(images, cols=len(images))
    h = as_image(images[0]).shape[0]
    return to_uint8(upscale(grid, max(1, pixels_per_image // h)))


def grid_image(images, cols: int, pixels: int = 480, pad: int = 0) -> np.ndarray:
    """A square-ish grid of images as uint8, upscaled to about ``pixels`` wide."""
    grid = tile(images, cols=cols, pad=pad)
    return to_uint8(upscale(grid, max(1, pixels // grid.shape[1])))


FONT = Path(__file__).parent / "fonts" / "DejaVuSans-subset.ttf"  # has the Greek and maths the app writes


@functools.lru_cache(maxsize=16)
def font(size: int):
    """The font every picture's text is written in (DejaVu Sans: β, τ, σ, ±, → included; Pillow's
    built-in font has no Greek and draws β as an empty box)."""
    from PIL import ImageFont

    return ImageFont.truetype(str(FONT), int(size))


def placeholder_image(text: str = "", pixels: int = IMAGE_PIXELS, width: int | None = None) -> np.ndarray:
    """A dark-grey panel standing for an image that cannot be shown, with ``text`` (why) written
    on it, wrapped to fit; ``width`` makes it a strip."""
    from PIL import Image, ImageDraw
    w = width or pixels
    img = Image.new("L", (w, pixels), 60)
    if text:
        draw = ImageDraw.Draw(img)
        size = max(11, min(18, pixels // 9))
        font_ = font(size)
        words, lines, line = text.split(), [], ""
        for word in words:
            trial = f"{line} {word}".strip()
            if draw.textlength(trial, font=font_) > w - 16 and line:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
        step = int(size * 1.3)
        y = max(4, (pixels - step * len(lines)) // 2)
        for line in lines:
            x = max(4, (w - draw.textlength(line, font=font_)) // 2)
            draw.text((x, y), line, fill=225, font=font_)
            y += step
    return np.asarray(img, np.uint8)


def scatter_image(coords: np.ndarray, labels: np.ndarray, lo, hi, size: int = 200, dot: int = 2) -> np.ndarray:
    """A scatter of ``coords`` (N, 2) coloured by digit label, rasterised to an RGB uint8
    ``(size, size, 3)`` square spanning ``lo``…``hi`` on both axes (points outside are left
    out). For small multiples, where a figure per panel would be heavy."""
    img = np.full((size, size, 3), 255, np.uint8)
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    span = np.where(hi > lo, hi - lo, 1.0)
    px = ((coords[:, 0] - lo[0]) / span[0] * (size - dot)).astype(int)
    py = ((hi[1] - coords[:, 1]) / span[1] * (size - dot)).astype(int)
    keep = (px >= 0) & (px <= size - dot) & (py >= 0) & (py <= size - dot)
    colours = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in DIGIT_COLOURS], np.uint8)
    for x, y, label in zip(px[keep], py[keep], np.asarray(labels)[keep]):
        img[y:y + dot, x:x + dot] = colours[int(label) % len(colours)]
    img[0, :], img[-1, :], img[:, 0], img[:, -1] = 150, 150, 150, 150  # a frame
    return img
