"""Small SVG charts written on the server and sent as HTML: no plotting library in the page, and a
redraw is one string (cheap enough to send a few times a second while a model trains)."""

from __future__ import annotations

import html
import math

import numpy as np

LEGEND_TOP = 30  # below the label a labelled panel draws over its top-left corner
PALETTE = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#9c755f"]


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n + 1:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) / step) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:,.0f}"


def line_chart(series: list[tuple[str, list[float], list[float]]], xlabel: str, ylabel: str, *,
               width: int = 460, height: int = 240, logy: bool = False, empty: str = "Nothing yet.",
               marker: float | None = None, marker_label: str = "", xmax: float | None = None,
               spans: list[tuple[float, float, str]] = ()) -> str:
    """``series``: (name, xs, ys) drawn as lines in :data:`PALETTE` order; non-finite values are
    skipped. ``marker`` draws a vertical line at that x; ``xmax`` fixes the x range's end (a chart
    that fills in as training goes); ``spans`` shades alternate (start, end, label) x ranges and
    names them (training phases)."""
    pts = [(name, np.asarray(xs, float), np.asarray(ys, float)) for name, xs, ys in series]
    keep = [np.isfinite(y) & (y > 0 if logy else True) for _, _, y in pts]
    pts = [(n, x[k], y[k]) for (n, x, y), k in zip(pts, keep) if k.any()]
    label = f"{ylabel} against {xlabel}"
    if not pts:
        return f'<div class="vl-chart-empty" role="img" aria-label="{html.escape(label)}">{html.escape(empty)}</div>'
    # the legend: names with their last values, in rows above the plot (below the panel's label)
    legend, x_at, row = [], 0.0, 0
    for j, (name, _, y) in enumerate(pts):
        text = f"● {name} {_fmt(float(y[-1]))}"
        w = 6.2 * len(text) + 14
        if x_at and x_at + w > width - 60:
            x_at, row = 0.0, row + 1
        legend.append((text, x_at, row))
        x_at += w
    L, R, T, B = 54, 12, LEGEND_TOP + 14 * (row + 1), 38
    fy = np.log10 if logy else (lambda v: v)
    xs_all = np.concatenate([x for _, x, _ in pts])
    ys_all = np.concatenate([fy(y) for _, _, y in pts])
    x0, x1 = float(xs_all.min()), float(max(xs_all.max(), xmax or -math.inf))
    y0, y1 = float(np.percentile(ys_all, 1)) if len(ys_all) > 50 else float(ys_all.min()), float(ys_all.max())
    pad = 0.06 * ((y1 - y0) or abs(y1) or 1)
    y0, y1 = y0 - pad, y1 + pad
    if x1 <= x0:
        x1 = x0 + 1

    def sx(v):
        return L + (v - x0) / (x1 - x0) * (width - L - R)

    def sy(v):
        return T + (y1 - min(max(v, y0), y1)) / (y1 - y0) * (height - T - B)

    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px" role="img" '
           f'aria-label="{html.escape(label)}">',
           f'<rect x="{L}" y="{T}" width="{width - L - R}" height="{height - T - B}" fill="none" stroke="#9aa0a6"/>']
    for t in _ticks(x0, x1):
        out.append(f'<text x="{sx(t):.1f}" y="{height - B + 14}" font-size="10" text-anchor="middle" '
                   f'fill="#5f6368">{_fmt(t)}</text>')
    if logy:
        yt = [v for v in range(math.floor(y0), math.ceil(y1) + 1) if y0 <= v <= y1] or [y0, y1]
        ylab = [_fmt(10 ** v) for v in yt]
    else:
        yt = _ticks(y0, y1)
        ylab = [_fmt(v) for v in yt]
    for t, s in zip(yt, ylab):
        out.append(f'<text x="{L - 4}" y="{sy(t) + 3:.1f}" font-size="10" text-anchor="end" fill="#5f6368">{s}</text>')
    out.append(f'<text x="{(L + width - R) / 2}" y="{height - 6}" font-size="11" text-anchor="middle">'
               f'{html.escape(xlabel)}</text>')
    out.append(f'<text transform="translate(12 {(T + height - B) / 2}) rotate(-90)" font-size="11" '
               f'text-anchor="middle">{html.escape(ylabel)}</text>')
    for k, (a, b, name) in enumerate(spans):
        a, b = max(a, x0), min(b, x1)
        if b > a:
            if k % 2 == 0:
                out.append(f'<rect x="{sx(a):.1f}" y="{T}" width="{sx(b) - sx(a):.1f}" height="{height - T - B}" '
                           f'fill="#f1f3f4"/>')
            out.append(f'<text x="{(sx(a) + sx(b)) / 2:.1f}" y="{height - B - 6}" font-size="10" text-anchor="middle" '
                       f'fill="#5f6368">{html.escape(name)}</text>')
    for j, (name, x, y) in enumerate(pts):
        col = PALETTE[j % len(PALETTE)]
        if len(x) > 600:  # keep the string small: every k-th point (the last one always)
            keep = np.unique(np.r_[np.linspace(0, len(x) - 1, 600).astype(int), len(x) - 1])
            x, y = x[keep], y[keep]
        fyv = fy(y)
        if len(x) == 1:
            out.append(f'<circle cx="{sx(x[0]):.1f}" cy="{sy(fyv[0]):.1f}" r="3" fill="{col}"/>')
        else:
            out.append(f'<polyline fill="none" stroke="{col}" stroke-width="1.8" points="'
                       + " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(x, fyv)) + '"/>')
        text, at, row = legend[j]
        out.append(f'<text x="{L + at:.0f}" y="{LEGEND_TOP + 14 * row}" font-size="11" fill="{col}">'
                   f'{html.escape(text)}</text>')
    if marker is not None and x0 <= marker <= x1:
        out.append(f'<line x1="{sx(marker):.1f}" x2="{sx(marker):.1f}" y1="{T}" y2="{height - B}" stroke="#f28e2b" '
                   f'stroke-width="2"/><text x="{sx(marker) - 4:.1f}" y="{height - B - 6}" font-size="11" '
                   f'text-anchor="end" fill="#f28e2b">{html.escape(marker_label)}</text>')
    out.append("</svg>")
    return "".join(out)
