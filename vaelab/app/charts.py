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
               spans: list[tuple[float, float, str]] = (), logx: bool = False,
               hline: tuple[str, float] | None = None, last_values: bool = True) -> str:
    """``series``: (name, xs, ys) drawn as lines in :data:`PALETTE` order; non-finite values are
    skipped. ``marker`` draws a vertical line at that x; ``xmax`` fixes the x range's end (a chart
    that fills in as training goes); ``spans`` shades alternate (start, end, label) x ranges and
    names them (training phases); ``logx`` puts x on a log scale; ``hline`` is a named horizontal
    reference value, drawn dashed; ``last_values`` puts each series' last value beside its name."""
    pts = [(name, np.asarray(xs, float), np.asarray(ys, float)) for name, xs, ys in series]
    keep = [np.isfinite(y) & (y > 0 if logy else True) & (x > 0 if logx else True) for _, x, y in pts]
    pts = [(n, x[k], y[k]) for (n, x, y), k in zip(pts, keep) if k.any()]
    label = f"{ylabel} against {xlabel}"
    if not pts:
        return f'<div class="vl-chart-empty" role="img" aria-label="{html.escape(label)}">{html.escape(empty)}</div>'
    # the legend: names with their last values, in rows above the plot (below the panel's label)
    legend, x_at, row = [], 0.0, 0
    entries = [(name, float(y[-1])) for name, _, y in pts] + ([hline] if hline else [])
    for j, (name, last) in enumerate(entries):
        text = f"{'●' if j < len(pts) else '‒‒'} {name}" + (f" {_fmt(last)}" if last_values or j >= len(pts) else "")
        w = 6.2 * len(text) + 14
        if x_at and x_at + w > width - 60:
            x_at, row = 0.0, row + 1
        legend.append((text, x_at, row))
        x_at += w
    L, R, T, B = 54, 12, LEGEND_TOP + 14 * (row + 1), 38
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
        out.append(f'<text x="{sx(t):.1f}" y="{height - B + 14}" font-size="10" text-anchor="middle" '
                   f'fill="#5f6368">{label_text}</text>')
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
    if hline:
        text, at, row = legend[-1]
        out.append(f'<text x="{L + at:.0f}" y="{LEGEND_TOP + 14 * row}" font-size="11" '
                   f'fill="{PALETTE[len(pts) % len(PALETTE)]}">{html.escape(text)}</text>')
    if marker is not None:
        marker = float(fx(marker)) if not logx or marker > 0 else None
    if marker is not None and x0 <= marker <= x1:
        out.append(f'<line x1="{sx(marker):.1f}" x2="{sx(marker):.1f}" y1="{T}" y2="{height - B}" stroke="#f28e2b" '
                   f'stroke-width="2"/><text x="{sx(marker) - 4:.1f}" y="{height - B - 6}" font-size="11" '
                   f'text-anchor="end" fill="#f28e2b">{html.escape(marker_label)}</text>')
    out.append("</svg>")
    return "".join(out)
