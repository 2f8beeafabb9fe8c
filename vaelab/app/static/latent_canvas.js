// The latent map drawn in the page: every test point on a canvas, a second canvas on top for
// what moves (the picked star, the hovered ring, the posterior's ±2σ ellipse, the latent pad's
// cross). Runs as a gr.HTML component's js_on_load (element, trigger, props, server, watch).
//
// props.value is a small JSON string: {model, view, pick, label, ellipse, drawing, panels,
// pickable}. The points themselves are fetched once per (model, view) through the server
// function map_points and kept here, so a pick or a hover never re-sends or re-draws them.
// Picking a point sets props.value and fires 'input' (the Python handler fills the image row);
// hovering asks map_thumb for the point's image; dragging in a 2-D latent asks map_decode.
// After every redraw the root's data-drawn attribute changes: tests and the latency benchmark
// watch it (the canvas pixels are painted in the same frame).

const COLOURS = props.colours || ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const M = {l: 50, r: 10, t: 8, b: 40};  // plot margins inside each canvas, CSS pixels
const HIT = 8;                          // a point within this many pixels is under the cursor
const root = element.querySelector(".lc") || element;
root.innerHTML = `
  <div class="lc-row"><div class="lc-panels"></div>
    <div class="lc-pad" hidden>
      <div class="lc-pad-title">The decoder at z</div>
      <img class="lc-pad-img" alt="image decoded at the chosen z">
      <div class="lc-pad-cap">Click or drag anywhere in the left map.</div>
    </div></div>
  <div class="lc-legend"></div>
  <div class="lc-help"></div>
  <div class="lc-tip" hidden><img alt=""><div class="lc-tip-cap"></div></div>`;
const panelsBox = root.querySelector(".lc-panels"), padBox = root.querySelector(".lc-pad");
const padImg = root.querySelector(".lc-pad-img"), padCap = root.querySelector(".lc-pad-cap");
const tip = root.querySelector(".lc-tip"), tipImg = tip.querySelector("img");
const tipCap = tip.querySelector(".lc-tip-cap"), help = root.querySelector(".lc-help");
const legend = root.querySelector(".lc-legend");

const cache = new Map();   // "model|view" -> Promise of decoded points
const thumbs = new Map();  // "model|index" -> {src, how}
let v = {}, data = null, panels = [], hover = null, padZ = null, padPick = null, drawCount = 0, shownKey = null;

function parse(s) { try { return JSON.parse(s || "{}") || {}; } catch (e) { return {}; } }
function b64(s, Type) {
  const bin = atob(s), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Type(bytes.buffer);
}
function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

function decodePoints(p) {
  const labels = b64(p.labels, Uint8Array);
  return {key: p.key, n: p.n, labels, pad: p.pad, note: p.note || "", noun: p.noun || "digit",
    classes: p.classes || COLOURS.map((c, d) => String(d)),
    panels: p.panels.map(q => {
      const qx = b64(q.x, Uint16Array), qy = b64(q.y, Uint16Array), n = qx.length;
      const xs = new Float32Array(n), ys = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        xs[i] = q.lo[0] + qx[i] / 65535 * (q.hi[0] - q.lo[0]);
        ys[i] = q.lo[1] + qy[i] / 65535 * (q.hi[1] - q.lo[1]);
      }
      return {title: q.title, axes: q.axes, range: q.range, latent: q.latent, xs, ys};
    })};
}

function points(model, view) {
  const key = model + "|" + view;
  if (!cache.has(key)) {
    const p = server.map_points({model, view}).then(decodePoints);
    p.catch(() => cache.delete(key));
    cache.set(key, p);
  }
  return cache.get(key);
}

// --- panels: DOM, sizes, coordinates --------------------------------------------------------

function buildPanels(count) {
  panelsBox.innerHTML = "";
  panels = [];
  for (let k = 0; k < count; k++) {
    const div = document.createElement("div");
    div.className = "lc-panel";
    div.innerHTML = `<div class="lc-title"></div><div class="lc-stage">
      <canvas class="lc-pts"></canvas><canvas class="lc-over" tabindex="0"></canvas></div>`;
    panelsBox.appendChild(div);
    const pts = div.querySelector(".lc-pts"), over = div.querySelector(".lc-over");
    const panel = {k, div, stage: div.querySelector(".lc-stage"), title: div.querySelector(".lc-title"),
                   pts, over, w: 0, h: 0, px: null, py: null, grid: null};
    panels.push(panel);
    attachPointer(panel);
  }
}

function size(panel) {
  const r = panel.stage.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
  panel.w = Math.round(r.width); panel.h = Math.round(r.height);
  for (const c of [panel.pts, panel.over]) {
    c.width = Math.max(1, Math.round(panel.w * dpr)); c.height = Math.max(1, Math.round(panel.h * dpr));
    c.style.width = panel.w + "px"; c.style.height = panel.h + "px";
    c.getContext("2d").setTransform(dpr, 0, 0, dpr, 0, 0);
  }
}

function scales(panel) {
  const [x0, x1, y0, y1] = data.panels[panel.k].range, W = panel.w - M.l - M.r, H = panel.h - M.t - M.b;
  return {sx: x => M.l + (x - x0) / (x1 - x0) * W, sy: y => M.t + (y1 - y) / (y1 - y0) * H,
          ix: px => x0 + (px - M.l) / W * (x1 - x0), iy: py => y1 - (py - M.t) / H * (y1 - y0),
          kx: W / (x1 - x0), ky: H / (y1 - y0)};
}

function niceTicks(a, b, n) {
  const span = b - a, step0 = span / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 5, 10].map(f => f * mag).find(s => s >= step0) || 10 * mag;
  const out = [];
  for (let t = Math.ceil(a / step) * step; t <= b + 1e-9 * span; t += step) out.push(Math.abs(t) < step * 1e-6 ? 0 : t);
  return out;
}

// --- drawing ----------------------------------------------------------------------------------

function drawPoints(panel) {
  size(panel);
  const q = data.panels[panel.k], ctx = panel.pts.getContext("2d"), s = scales(panel);
  ctx.clearRect(0, 0, panel.w, panel.h);
  panel.title.textContent = q.title; panel.title.title = q.title;
  // axes, ticks and titles
  ctx.strokeStyle = "#9aa0a6"; ctx.lineWidth = 1; ctx.fillStyle = "#3c4043";
  ctx.font = "13px sans-serif";  // readable on a projector from the back of a room
  ctx.strokeRect(M.l + 0.5, M.t + 0.5, panel.w - M.l - M.r - 1, panel.h - M.t - M.b - 1);
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  for (const t of niceTicks(q.range[0], q.range[1], 5)) {
    const x = s.sx(t); ctx.fillText(+t.toPrecision(3), x, panel.h - M.b + 4);
    ctx.beginPath(); ctx.moveTo(x, panel.h - M.b); ctx.lineTo(x, panel.h - M.b + 3); ctx.stroke();
  }
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (const t of niceTicks(q.range[2], q.range[3], 5)) {
    const y = s.sy(t); ctx.fillText(+t.toPrecision(3), M.l - 5, y);
    ctx.beginPath(); ctx.moveTo(M.l - 3, y); ctx.lineTo(M.l, y); ctx.stroke();
  }
  ctx.textAlign = "center"; ctx.textBaseline = "bottom"; ctx.fillStyle = "#202124"; ctx.font = "14px sans-serif";
  ctx.fillText(q.axes[0], M.l + (panel.w - M.l - M.r) / 2, panel.h - 1);
  ctx.save(); ctx.translate(11, M.t + (panel.h - M.t - M.b) / 2); ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "middle"; ctx.fillText(q.axes[1], 0, 0); ctx.restore();
  // the points, in the test set's (shuffled) order so no digit hides under another
  const n = q.xs.length, px = new Float32Array(n), py = new Float32Array(n), labels = data.labels;
  const r = n > 5000 ? 1.6 : 2.2;
  ctx.save(); ctx.beginPath(); ctx.rect(M.l, M.t, panel.w - M.l - M.r, panel.h - M.t - M.b); ctx.clip();
  ctx.globalAlpha = 0.65;
  let last = -1;
  for (let i = 0; i < n; i++) {
    const x = s.sx(q.xs[i]), y = s.sy(q.ys[i]);
    px[i] = x; py[i] = y;
    if (labels[i] !== last) { last = labels[i]; ctx.fillStyle = COLOURS[last % 10]; }
    ctx.fillRect(x - r, y - r, 2 * r, 2 * r);
  }
  ctx.restore();
  panel.px = px; panel.py = py;
  // a grid of HIT-sized cells for hit testing
  const cols = Math.ceil(panel.w / HIT) + 1, rows = Math.ceil(panel.h / HIT) + 1, grid = new Map();
  for (let i = 0; i < n; i++) {
    const cx = Math.floor(px[i] / HIT), cy = Math.floor(py[i] / HIT);
    if (cx < 0 || cy < 0 || cx >= cols || cy >= rows) continue;
    const key = cy * cols + cx;
    let cell = grid.get(key); if (!cell) grid.set(key, cell = []); cell.push(i);
  }
  panel.grid = {cols, rows, cells: grid};
}

function nearest(panel, x, y) {
  if (!panel.grid) return null;
  const {cols, cells} = panel.grid, cx = Math.floor(x / HIT), cy = Math.floor(y / HIT);
  let best = null, bd = HIT * HIT;
  for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
    const cell = cells.get((cy + dy) * cols + (cx + dx));
    if (!cell) continue;
    for (const i of cell) {
      const d = (panel.px[i] - x) ** 2 + (panel.py[i] - y) ** 2;
      if (d < bd) { bd = d; best = i; }
    }
  }
  return best;
}

function star(ctx, x, y, r) {
  ctx.beginPath();
  for (let j = 0; j < 10; j++) {
    const a = -Math.PI / 2 + j * Math.PI / 5, rr = j % 2 ? r * 0.45 : r;
    ctx.lineTo(x + rr * Math.cos(a), y + rr * Math.sin(a));
  }
  ctx.closePath(); ctx.fill(); ctx.stroke();
}

// The star shrinks inside a posterior narrower than itself, so the ±2σ ellipse around it shows.
function starRadius(s, g) {
  if (!g || !g.sigma) return 9;
  const r = Math.min(2 * g.sigma[0] * s.kx, 2 * g.sigma[1] * s.ky);
  return Math.max(6, Math.min(9, r - 2));
}

function ellipse(ctx, s, g, colour) {
  if (!g || !g.mu || !g.sigma) return;
  const rx = Math.max(1.5, 2 * g.sigma[0] * s.kx), ry = Math.max(1.5, 2 * g.sigma[1] * s.ky);
  const small = Math.min(rx, ry) < 10;  // inside the star: solid, on a white halo, so it shows on top of it
  ctx.save();
  ctx.beginPath(); ctx.ellipse(s.sx(g.mu[0]), s.sy(g.mu[1]), rx, ry, 0, 0, 2 * Math.PI);
  ctx.strokeStyle = "#ffffff"; ctx.lineWidth = 4; ctx.stroke();
  ctx.strokeStyle = colour; ctx.lineWidth = 2; if (!small) ctx.setLineDash([5, 3]);
  ctx.stroke(); ctx.restore();
}

function drawOverlay() {
  for (const panel of panels) {
    if (!panel.px) continue;
    const ctx = panel.over.getContext("2d"), s = scales(panel), q = data.panels[panel.k];
    ctx.clearRect(0, 0, panel.w, panel.h);
    ctx.save(); ctx.beginPath(); ctx.rect(M.l, M.t, panel.w - M.l - M.r, panel.h - M.t - M.b); ctx.clip();
    if (hover !== null) {
      ctx.strokeStyle = "#202124"; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.arc(panel.px[hover], panel.py[hover], 6, 0, 2 * Math.PI); ctx.stroke();
    }
    if (q.latent) {
      if (v.drawing) {
        ctx.fillStyle = "#d62728"; ctx.strokeStyle = "#fff"; ctx.lineWidth = 1.5;
        star(ctx, s.sx(v.drawing.mu[0]), s.sy(v.drawing.mu[1]), 9);
        ellipse(ctx, s, v.drawing, "#d62728");
      }
      if (padZ && data.pad) {
        const x = s.sx(padZ[0]), y = s.sy(padZ[1]);
        ctx.strokeStyle = "#d62728"; ctx.lineWidth = 2;
        ctx.beginPath(); ctx.moveTo(x - 9, y); ctx.lineTo(x + 9, y); ctx.moveTo(x, y - 9); ctx.lineTo(x, y + 9); ctx.stroke();
      }
    }
    if (Number.isInteger(v.pick) && v.pick >= 0 && v.pick < panel.px.length) {
      ctx.fillStyle = "#ffd400"; ctx.strokeStyle = "#202124"; ctx.lineWidth = 1.5;
      star(ctx, panel.px[v.pick], panel.py[v.pick], q.latent ? starRadius(s, v.ellipse) : 9);
    }
    if (q.latent) ellipse(ctx, s, v.ellipse, "#202124");  // on top: a narrow posterior hides under the star
    ctx.restore();
  }
  root.dataset.pick = Number.isInteger(v.pick) ? String(v.pick) : "";
  root.dataset.drawn = String(++drawCount);
}

const className = i => escapeHtml(data.classes[data.labels[i]] ?? String(data.labels[i]));

function drawLegend() {
  const names = data ? data.classes.slice(0, COLOURS.length) : COLOURS.map((c, d) => String(d));
  const chips = names.length > 1 ? names.map((name, d) =>
    `<span><i style="background:${COLOURS[d]}"></i>${escapeHtml(name)}</span>`).join("") : "";
  const extra = [];
  if (v.pickable !== false) extra.push(`<span><b class="lc-star">★</b>picked image</span>`);
  if (v.ellipse && v.ellipse.sigma) extra.push(`<span><b class="lc-ell"></b>its posterior, ±2σ ` +
    `(σ = ${v.ellipse.sigma.map(t => t.toPrecision(2)).join(", ")})</span>`);
  if (v.drawing) extra.push(`<span><b class="lc-star lc-red">★</b>your drawing (±2σ)</span>`);
  legend.innerHTML = chips + extra.join("");
  const words = [];
  words.push("Hover a dot to see its image" + (v.pickable !== false ? "; click it to pick it" : "") + ".");
  if (data && data.pad && v.pad !== false) words.push("Click or drag on empty space in the left map to decode that z (the pad on the right).");
  if (data && data.note) words.push(data.note);
  help.textContent = words.join(" ");
}

function redrawAll() {
  if (!data) return;
  const want = Math.min(data.panels.length, v.panels || data.panels.length);
  if (panels.length !== want) buildPanels(want);
  padBox.hidden = !(data.pad && v.pad !== false);
  for (const panel of panels) drawPoints(panel);
  drawLegend();
  drawOverlay();
}

// --- hover thumbnails, picking, the latent pad ------------------------------------------------

let thumbBusy = false, thumbWanted = null;
function fillThumb(i, t) {
  if (hover !== i) return;
  tipImg.src = t.src; tipImg.hidden = !t.src;
  tipCap.innerHTML = `#${i} · ${data.noun} <b>${className(i)}</b><br><small>${escapeHtml(t.how)}</small>`;
  root.dataset.thumb = String(i);
}

async function showThumb(i) {
  const cached = thumbs.get(v.model + "|" + i);
  if (cached) { fillThumb(i, cached); return; }
  thumbWanted = i;
  if (thumbBusy) return;
  thumbBusy = true;
  try {
    while (thumbWanted !== null) {  // one request at a time; the latest hovered point next
      const j = thumbWanted, model = v.model; thumbWanted = null;
      if (hover !== j) continue;
      try {
        const t = await server.map_thumb({model, index: j});
        thumbs.set(model + "|" + j, t);
        if (model === v.model) fillThumb(j, t);
      } catch (e) {
        if (hover === j) tipCap.textContent = `#${j}: its image could not be loaded`;
      }
    }
  } finally { thumbBusy = false; }
}

function moveTip(panel, x, y) {
  const box = root.getBoundingClientRect(), st = panel.stage.getBoundingClientRect();
  let left = st.left - box.left + x + 14, top = st.top - box.top + y + 14;
  if (left + 130 > box.width) left -= 150;
  tip.style.left = left + "px"; tip.style.top = top + "px";
}

function setHover(panel, i, x, y) {
  if (i === hover) { if (i !== null) moveTip(panel, x, y); return; }
  hover = i;
  drawOverlay();
  if (i === null) { tip.hidden = true; return; }
  tip.hidden = false; tipImg.hidden = true;
  tipCap.innerHTML = `#${i} · ${data.noun} <b>${className(i)}</b>`;
  moveTip(panel, x, y);
  showThumb(i);
}

function padFollowsPick() {  // the decoder at z shows the picked image's own z after each pick
  if (!data || !data.pad || v.pad === false || !data.panels[0].latent || !Number.isInteger(v.pick)) return;
  if (v.pick === padPick) return;
  padPick = v.pick;
  decodeAt([data.panels[0].xs[v.pick], data.panels[0].ys[v.pick]]);
}

function pick(i) {
  v.pick = i; v.label = data.labels[i]; v.ellipse = null;
  drawOverlay();
  padFollowsPick();
  props.value = JSON.stringify(v);
  trigger("input");
}

let padBusy = false, padWanted = null;
async function decodeAt(z) {
  padZ = z; drawOverlay();
  padWanted = z;
  if (padBusy) return;
  padBusy = true;
  try {
    while (padWanted) {
      const w = padWanted; padWanted = null;
      try {
        const out = await server.map_decode({model: v.model, z: w, label: v.label || 0});
        padImg.src = out.src;
        padCap.textContent = `z = (${w[0].toFixed(2)}, ${w[1].toFixed(2)})` + (out.note ? " · " + out.note : "");
        root.dataset.padDecoded = w[0].toFixed(3) + "," + w[1].toFixed(3);
      } catch (e) { padCap.textContent = "This z could not be decoded."; }
    }
  } finally { padBusy = false; }
}

function attachPointer(panel) {
  const c = panel.over;
  const padHere = () => data && data.pad && v.pad !== false && data.panels[panel.k].latent;
  let down = null;
  const at = e => { const r = c.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  const inside = (x, y) => x >= M.l && x <= panel.w - M.r && y >= M.t && y <= panel.h - M.b;
  c.addEventListener("pointermove", e => {
    if (!data) return;
    const [x, y] = at(e);
    if (down && padHere() && (down.dragging || Math.hypot(x - down.x, y - down.y) > 4)) {
      down.dragging = true; setHover(panel, null);
      if (inside(x, y)) { const s = scales(panel); decodeAt([s.ix(x), s.iy(y)]); }
      return;
    }
    setHover(panel, inside(x, y) ? nearest(panel, x, y) : null, x, y);
  });
  c.addEventListener("pointerleave", () => { if (!down) setHover(panel, null); });
  c.addEventListener("pointerdown", e => {
    if (!data) return;
    const [x, y] = at(e);
    if (!inside(x, y)) return;
    down = {x, y, i: nearest(panel, x, y), dragging: false};
    if (padHere()) { c.setPointerCapture(e.pointerId); e.preventDefault(); }
    // preventDefault keeps the page from scrolling under a drag, and the focus from moving: give the
    // canvas the focus itself, so the arrow keys move the pick right after a click
    c.focus({preventScroll: true});
  });
  const up = e => {
    if (!down) return;
    const [x, y] = at(e), d = down; down = null;
    if (d.dragging) return;
    if (d.i !== null && v.pickable !== false) { pick(d.i); return; }
    if (padHere() && inside(x, y)) { const s = scales(panel); decodeAt([s.ix(x), s.iy(y)]); }
  };
  c.addEventListener("pointerup", up);
  c.addEventListener("pointercancel", () => { down = null; });
  c.addEventListener("keydown", e => {  // arrow keys move the pick to the nearest point that way
    if (!data || !Number.isInteger(v.pick) || !["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"].includes(e.key)) return;
    e.preventDefault();
    const [dx, dy] = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]}[e.key];
    const x0 = panel.px[v.pick], y0 = panel.py[v.pick];
    let best = null, bd = Infinity;
    for (let i = 0; i < panel.px.length; i++) {
      const ax = panel.px[i] - x0, ay = panel.py[i] - y0, along = ax * dx + ay * dy;
      if (along <= 1) continue;
      const d = along + 3 * Math.abs(ax * dy - ay * dx);
      if (d < bd) { bd = d; best = i; }
    }
    if (best !== null) pick(best);
  });
}

// --- following the server's value ------------------------------------------------------------

async function onValue() {
  const next = parse(props.value);
  if (!next.model) { root.dataset.state = "empty"; return; }
  const key = next.model + "|" + next.view;
  const same = data && data.key === key && shownKey === key + "|" + next.panels;
  v = next;
  if (same) { drawLegend(); drawOverlay(); padFollowsPick(); return; }
  root.dataset.state = "loading";
  let d;
  try { d = await points(next.model, next.view); }
  catch (e) { root.dataset.state = "error"; help.textContent = "The map's points could not be loaded: " + (e && e.message || e); return; }
  if (parse(props.value).model !== next.model) return;  // a newer switch is on its way
  if (!data || data.key !== d.key) { hover = null; tip.hidden = true; padZ = null; padPick = null; }
  data = d; shownKey = key + "|" + next.panels;
  root.dataset.state = "ready"; root.dataset.key = key;
  redrawAll();
  padFollowsPick();
}

// Where test point i is drawn in panel k, in page coordinates (null before the points are drawn):
// lets browser tests and the latency benchmark hover and click a known point.
root.pointOnScreen = (k, i) => {
  const panel = panels[k];
  if (!panel || !panel.px || !(i >= 0 && i < panel.px.length)) return null;
  const r = panel.over.getBoundingClientRect();
  return {x: r.left + panel.px[i], y: r.top + panel.py[i]};
};

new ResizeObserver(() => { if (data) redrawAll(); }).observe(panelsBox);
watch("value", onValue);
onValue();
