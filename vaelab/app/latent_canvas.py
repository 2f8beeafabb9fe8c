"""A latent map drawn in the page: the test set's points on a canvas you can hover, click and drag.

The component is a ``gr.HTML`` whose value is a small JSON string — which model and 2-D view,
the picked test image, a posterior to draw as its ±2σ ellipse — while the points (10,000 per
panel, quantised to 16 bits) travel once per model and view through the server function
:func:`map_points` and stay in the page. Picking, hovering and the latent pad then cost one
small request each, and moving the pick redraws only the marker layer.

Server functions (called by the page, so every argument is checked here):
:func:`map_points` (a model's panels), :func:`map_thumb` (a test point's image: the original when
the dataset is on the server, else the model's decoding of its cached latent) and
:func:`map_decode` (the image at any z of a 2-D latent: the latent pad).
"""

from __future__ import annotations

import base64
import json
import math

import gradio as gr
import numpy as np
import torch
from fastapi import HTTPException

from vaelab import viz
from vaelab.viz import png_data_url
from vaelab.app.state import Loaded, decode, load, reconstruct_test, test_image
from vaelab.app.serving import bounded
from vaelab.app.widgets import asset

VIEWS = ("latent", "pca", "umap")
VIEW_AXES = {"latent": ("z₁", "z₂"), "pca": ("PC 1 of the latent", "PC 2 of the latent"),
             "umap": ("UMAP 1", "UMAP 2")}
ONE_NUMBER_AXES = ("z, the one latent number", "random spread (no meaning)")
PAD_LIMIT = 1e4  # the latent pad decodes |z| up to this; beyond is not a place anyone drags to


class MapRequestError(HTTPException, ValueError):
    """A request from the page that names no shipped model, no test image or no finite z: the
    caller gets "400 Bad Request" with this message (not a bare "500 Internal Server Error")."""

    def __init__(self, message: str):
        super().__init__(status_code=400, detail=message)

    def __str__(self) -> str:
        return self.detail


def _model(name) -> Loaded:
    if not isinstance(name, str):
        raise MapRequestError("the model must be named by a string")
    try:
        return load(name)
    except KeyError as error:  # the catalogue has no such name
        raise MapRequestError(f"no checkpoint named {name!r}") from error


def has_latent_plane(m: Loaded) -> bool:
    """The map's left panel is the latent itself (a 2-D continuous latent, one vector)."""
    return m.single_vector_latent and m.card.latent_dim == 2 and m.arrays["coords_model"].shape[1] == 2


def one_number(m: Loaded) -> bool:
    """The latent is a single number: the map shows it across, the vertical spread is random."""
    return m.single_vector_latent and m.card.latent_dim == 1


def available_views(m: Loaded) -> list[str]:
    if has_latent_plane(m):
        return ["latent"]
    return ["pca"] + (["umap"] if "coords_model_umap" in m.arrays else [])


def resolve_view(m: Loaded, view) -> str:
    """``view`` if it applies to this model, else the model's default (UMAP when cached for a
    latent with more than two numbers: it keeps neighbourhoods PCA flattens)."""
    options = available_views(m)
    if view in options:
        return view
    return "umap" if "umap" in options else options[0]


def _quantise(values: np.ndarray) -> tuple[str, float, float]:
    v = np.nan_to_num(np.asarray(values, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        hi = lo + 1.0
    q = np.round((v - lo) / (hi - lo) * 65535).astype("<u2")
    return base64.b64encode(q.tobytes()).decode("ascii"), lo, hi


def _axis_range(values: np.ndarray) -> list[float]:
    r = viz.robust_range(values).get("range")
    if r is None:
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        margin = 0.05 * (hi - lo) or 1.0
        r = [lo - margin, hi + margin]
    return [float(r[0]), float(r[1])]


def _panel(coords: np.ndarray, title: str, axes: tuple[str, str], latent: bool) -> dict:
    x, xlo, xhi = _quantise(coords[:, 0])
    y, ylo, yhi = _quantise(coords[:, 1])
    return {"title": title, "axes": list(axes), "latent": latent, "x": x, "y": y,
            "lo": [xlo, ylo], "hi": [xhi, yhi],
            "range": _axis_range(coords[:, 0]) + _axis_range(coords[:, 1])}


def map_titles(m: Loaded, view: str) -> tuple[str, str]:
    """The two panels' titles, with the scores evaluation measured for that view."""
    emb = m.metrics.get("embedding", {})
    k = emb.get("knn_k", 5)
    key = "model_umap" if view == "umap" else "model"
    what = {"latent": "its 2-D latent", "pca": "PCA of its latent", "umap": "UMAP of its latent"}[view]
    if one_number(m):
        what = "its 1-D latent (across; the vertical spread is random)"
    score = lambda name: viz_fmt(emb.get(name))  # noqa: E731
    # spelled out: these are the 2-D view's own scores (the live line under the map gives the full latent's)
    return (f"{m.card.display}: {what} · {k}-NN accuracy here {score('knn_' + key)} · trustworthiness "
            f"{score('trust_' + key)}",
            f"PCA of the pixels · {k}-NN accuracy here {score('knn_pca')} · trustworthiness {score('trust_pca')}")


def viz_fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) and math.isfinite(v) else "n/a"


def map_payload(name, view) -> dict:
    """The points of ``name``'s map in ``view``: the model's panel and PCA of the pixels."""
    m = _model(name)
    view = resolve_view(m, view)
    left = m.arrays["coords_model_umap" if view == "umap" else "coords_model"]
    titles = map_titles(m, view)
    labels = np.asarray(m.labels, np.uint8)
    note = ""
    if left.shape[1] == 1:  # a 1-D latent recorded as one column: a random vertical spread keeps the dots apart
        left = np.column_stack([left[:, 0], np.random.default_rng(0).uniform(-1, 1, len(left))])
    how = str(m.metrics.get("embedding", {}).get("model_projection", ""))
    if view == "pca" and ("flattened" in how or "averaged" in how):  # a spatial latent: say how it became a point
        note = f"Left: {how}."
    if viz.robust_range(left[:, 0]) or viz.robust_range(left[:, 1]):
        note = (note + " " if note else "") + "A few points lie beyond the view (the axes span the 1st–99th percentile)."
    return {"key": f"{name}|{view}", "n": int(len(labels)),
            "labels": base64.b64encode(labels.tobytes()).decode("ascii"),
            "pad": has_latent_plane(m), "note": note, "noun": m.noun,
            "classes": None if m.classes is None else [m.class_name(k) for k in range(min(len(m.classes), 256))],
            "panels": [_panel(left, titles[0], ONE_NUMBER_AXES if one_number(m) else VIEW_AXES[view], view == "latent"),
                       _panel(m.arrays["coords_pca"], titles[1], ("PC 1 of the pixels", "PC 2 of the pixels"),
                              False)]}


def _index(m: Loaded, index) -> int:
    try:
        i = int(index)
    except (TypeError, ValueError, OverflowError) as error:
        raise MapRequestError(f"a test image is picked by its index, not {index!r}") from error
    if not 0 <= i < m.n_test:
        raise MapRequestError(f"{m.card.display} has test images 0 to {m.n_test - 1}; there is no #{i}")
    return i


@torch.no_grad()
def thumbnail(name, index) -> dict:
    """Test point ``index``'s image and where it came from."""
    m = _model(name)
    i = _index(m, index)
    x = test_image(m, i)
    if x is not None:
        return {"src": png_data_url(x[0]), "how": "original test image"}
    rec, how = reconstruct_test(m, i)  # the same decoding the image row shows
    if rec is None:
        return {"src": "", "how": how}
    return {"src": png_data_url(rec[0]), "how": how + " (the dataset is not on this server)"}


@torch.no_grad()
def decode_at(name, z, label=0) -> dict:
    """The image the decoder of a 2-D latent model draws at ``z``."""
    m = _model(name)
    if not has_latent_plane(m):
        raise MapRequestError(f"{m.card.display} has no 2-D latent to decode points of")
    try:
        zz = np.asarray(z, np.float64).reshape(2)
    except (TypeError, ValueError) as error:
        raise MapRequestError(f"z must be two numbers, not {z!r}") from error
    if not np.all(np.isfinite(zz)) or np.abs(zz).max() > PAD_LIMIT:
        raise MapRequestError(f"z must be two finite numbers within ±{PAD_LIMIT:g}")
    try:
        digit = int(label or 0)
    except (TypeError, ValueError):
        digit = 0
    digit = min(max(digit, 0), 9)
    image = decode(m, zz[None].astype(np.float32), digit)[0]
    note = f"conditioned on digit {digit}" if m.info.conditional else ""
    return {"src": png_data_url(image), "note": note}


# the server functions the page calls: one JSON argument each
def map_points(request: dict) -> dict:
    request = request if isinstance(request, dict) else {}
    return map_payload(request.get("model"), request.get("view"))


def map_thumb(request: dict) -> dict:
    request = request if isinstance(request, dict) else {}
    return thumbnail(request.get("model"), request.get("index"))


def map_decode(request: dict) -> dict:
    request = request if isinstance(request, dict) else {}
    return decode_at(request.get("model"), request.get("z"), request.get("label"))


# --- the value: what the page should show -----------------------------------------------------

@torch.no_grad()
def posterior_ellipse(m: Loaded, x: torch.Tensor | None) -> dict | None:
    """A VAE's posterior for image ``x`` in its 2-D latent: ``{"mu", "sigma"}``, else ``None``."""
    if x is None or not (m.info.variational and has_latent_plane(m)):
        return None
    if m.info.conditional:
        return None  # its posterior depends on the label as well as the image
    lat = m.model.encode(x)
    if lat.mean is None or lat.logvar is None:
        return None
    mu = lat.mean.reshape(-1)[:2].tolist()
    sigma = torch.exp(0.5 * lat.logvar.reshape(-1)[:2]).tolist()
    return {"mu": [float(v) for v in mu], "sigma": [float(v) for v in sigma]}


def map_value(name: str, view: str, pick: int | None = None, *, ellipse: dict | None = None,
              drawing: dict | None = None, panels: int | None = None, pickable: bool = True,
              pad: bool = True) -> str:
    m = load(name)
    label = int(m.labels[pick]) if pick is not None else 0
    return json.dumps({"model": name, "view": resolve_view(m, view), "pick": pick, "label": label,
                       "ellipse": ellipse, "drawing": drawing, "panels": panels, "pickable": pickable,
                       "pad": pad})


def read_value(value) -> dict:
    """The page's value as a dict (``{}`` when it is empty or not JSON)."""
    if isinstance(value, dict):
        return value
    try:
        out = json.loads(value or "{}")
    except (TypeError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def latent_canvas(value: str = "", *, elem_id: str, label: str = "") -> gr.HTML:
    """The component (place it inside a layout; wire its ``.input`` to a pick handler)."""
    return gr.HTML(value, html_template='<div class="lc"></div>',
                   css_template=asset("latent_canvas.css"),
                   js_on_load=asset("latent_canvas.js"),
                   server_functions=[bounded(map_points), bounded(map_thumb), bounded(map_decode)], apply_default_css=False,
                   elem_id=elem_id, label=label or None, colours=list(viz.DIGIT_COLOURS))
