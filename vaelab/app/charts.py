"""Small SVG charts written on the server and sent as HTML: no plotting library in the page, and a
redraw is one string (cheap enough to send a few times a second while a model trains)."""

from __future__ import annotations

import html
import math

import numpy as np

LEGEND_TOP = 18  # the legend's first row (labels sit above the chart, outside it)
TICK, TEXT = 13, 14  # font sizes (at the chart's full width): readable from a classroom's back row
INK = "#3c4043"  # axis text: dark enough to read on a projector
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


def _value_at(x: np.ndarray, y: np.ndarray, at: float, logx: bool) -> float | None:
    """A series' value at ``at`` (linear between its points, on the axis's own scale); ``None``
    outside the points' range."""
    xs = np.log10(x) if logx else x
    a = math.log10(at) if logx else at
    order = np.argsort(xs)
    xs, ys = xs[order], y[order]
    if not xs[0] <= a <= xs[-1]:
        return None
    return float(np.interp(a, xs, ys))


def line_chart(series: list[tuple[str, list[float], list[float]]], xlabel: str, ylabel: str, *,
               width: int = 500, height: int = 270, logy: bool = False, empty: str = "Nothing yet.",
               marker: float | None = None, marker_label: str = "", xmax: float | None = None,
               spans: list[tuple[float, float, str]] = (), logx: bool = False,
               hline: tuple[str, float] | None = None, last_values: bool = True) -> str:
    """``series``: (name, xs, ys) drawn as lines in :data:`PALETTE` order; non-finite values are
    skipped. ``marker`` draws a vertical line at that x; ``xmax`` fixes the x range's end (a chart
    that fills in as training goes); ``spans`` shades alternate (start, end, label) x ranges and
    names them (training phases); ``logx`` puts x on a log scale; ``hline`` is a named horizontal
    reference value, drawn dashed; ``last_values`` puts each series' value beside its name: at the
    marker (saying so) when there is one, else its last."""
    pts = [(name, np.asarray(xs, float), np.asarray(ys, float)) for name, xs, ys in series]
    keep = [np.isfinite(y) & (y > 0 if logy else True) & (x > 0 if logx else True) for _, x, y in pts]
    pts = [(n, x[k], y[k]) for (n, x, y), k in zip(pts, keep) if k.any()]
    label = f"{ylabel} against {xlabel}"
    if not pts:
        return f'<div class="vl-chart-empty" role="img" aria-label="{html.escape(label)}">{html.escape(empty)}</div>'
    # the legend: names with their last values, in rows above the plot (below the panel's label)
    legend, x_at, row = [], 0.0, 0
    at_marker = marker is not None and last_values and all(len(x) > 1 for _, x, _ in pts)
    entries = [(name, _value_at(x, y, marker, logx) if at_marker else float(y[-1])) for name, x, y in pts] \
        + ([hline] if hline else [])
    where = f" at {marker_label}" if at_marker and marker_label else ""
    for j, (name, value) in enumerate(entries):
        shown = value is not None and math.isfinite(value)
        text = (f"{'●' if j < len(pts) else '‒‒'} {name}"
                + (f" {_fmt(value)}{where if j < len(pts) else ''}" if shown and (last_values or j >= len(pts)) else ""))
        w = 7.6 * len(text) + 14
        if x_at and x_at + w > width - 60:
            x_at, row = 0.0, row + 1
        legend.append((text, x_at, row))
        x_at += w
    L, R, T, B = 62, 12, LEGEND_TOP + 17 * (row + 1), 44
    fy = np.log10 if logy else (lambda v: v)
    fx = np.log10 if logx else (lambda v: v)
    pts = [(n, fx(x), y) for n, x, y in pts]
    xs_all = np.concatenate([x for _, x, _ in pts])
    ys_all = np.concatenate([fy(y) for _, _, y in pts] + ([fy(np.array([hline[1]]))] if hline else []))
    x0, x1 = float(xs_all.min()), float(max(xs_all.max(), fx(xmax) if xmax else -math.inf))
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
    xticks = ([(math.log10(v), _fmt(v)) for v in (0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100) if x0 <= math.log10(v) <= x1]
              if logx else [(t, _fmt(t)) for t in _ticks(x0, x1)])
    for t, label_text in xticks:
        out.append(f'<text x="{sx(t):.1f}" y="{height - B + 16}" font-size="{TICK}" text-anchor="middle" '
                   f'fill="{INK}">{label_text}</text>')
    if logy:
        yt = [v for v in range(math.floor(y0), math.ceil(y1) + 1) if y0 <= v <= y1] or [y0, y1]
        ylab = [_fmt(10 ** v) for v in yt]
    else:
        yt = _ticks(y0, y1)
        ylab = [_fmt(v) for v in yt]
    for t, s in zip(yt, ylab):
        out.append(f'<text x="{L - 4}" y="{sy(t) + 4:.1f}" font-size="{TICK}" text-anchor="end" fill="{INK}">{s}</text>')
    out.append(f'<text x="{(L + width - R) / 2}" y="{height - 6}" font-size="{TEXT}" text-anchor="middle">'
               f'{html.escape(xlabel)}</text>')
    out.append(f'<text transform="translate(14 {(T + height - B) / 2}) rotate(-90)" font-size="{TEXT}" '
               f'text-anchor="middle">{html.escape(ylabel)}</text>')
    if hline:
        col = PALETTE[len(pts) % len(PALETTE)]
        out.append(f'<line x1="{L}" x2="{width - R}" y1="{sy(fy(hline[1])):.1f}" y2="{sy(fy(hline[1])):.1f}" '
                   f'stroke="{col}" stroke-dasharray="5 3"/>')
    for k, (a, b, name) in enumerate(spans):
        a, b = max(a, x0), min(b, x1)
        if b > a:
            if k % 2 == 0:
                out.append(f'<rect x="{sx(a):.1f}" y="{T}" width="{sx(b) - sx(a):.1f}" height="{height - T - B}" '
                           f'fill="#f1f3f4"/>')
            out.append(f'<text x="{(sx(a) + sx(b)) / 2:.1f}" y="{height - B - 6}" font-size="{TICK}" '
                       f'text-anchor="middle" fill="{INK}">{html.escape(name)}</text>')
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
        out.append(f'<text x="{L + at:.0f}" y="{LEGEND_TOP + 17 * row}" font-size="{TICK}" fill="{col}">'
                   f'{html.escape(text)}</text>')
    if hline:
        text, at, row = legend[-1]
        out.append(f'<text x="{L + at:.0f}" y="{LEGEND_TOP + 17 * row}" font-size="{TICK}" '
                   f'fill="{PALETTE[len(pts) % len(PALETTE)]}">{html.escape(text)}</text>')
    if marker is not None:
        marker = float(fx(marker)) if not logx or marker > 0 else None
    if marker is not None and x0 <= marker <= x1:
        out.append(f'<line x1="{sx(marker):.1f}" x2="{sx(marker):.1f}" y1="{T}" y2="{height - B}" stroke="#f28e2b" '
                   f'stroke-width="2"/><text x="{sx(marker) - 4:.1f}" y="{height - B - 6}" font-size="{TICK}" '
                   f'text-anchor="end" fill="#c96a12">{html.escape(marker_label)}</text>')
    out.append("</svg>")
    return "".join(out)
