// A drawing pad written in the page: black round strokes on white, drawn with a mouse, a pen or
// a finger, the pen always ready (no tool to pick first). Runs as a gr.HTML component's
// js_on_load (element, trigger, props). While a stroke is drawn, and when it ends, the pad
// sends itself as a PNG data URL: props.value is set and 'input' fired (the Python handler
// rebuilds the drawing with every model). Undo takes the last stroke back; Clear empties the pad
// (value "").

const SIZE = 280;                    // the pad's own pixels; the page scales it to fit
const WIDTH = props.brush || 18;     // stroke width in pad pixels (MNIST-like at 280×280)
const LIVE_MS = 150;                 // while drawing, send at most this often
const root = element.querySelector(".dp") || element;
root.innerHTML = `
  <div class="dp-box"><canvas class="dp-canvas" width="${SIZE}" height="${SIZE}"
     aria-label="drawing pad: draw a digit" role="img"></canvas>
    <div class="dp-hint">Draw a digit here</div></div>
  <div class="dp-tools">
    <button type="button" class="dp-undo" aria-label="Undo the last stroke">↶ Undo</button>
    <button type="button" class="dp-clear" aria-label="Clear the drawing">✕ Clear</button>
  </div>`;
const canvas = root.querySelector(".dp-canvas"), ctx = canvas.getContext("2d");
const hint = root.querySelector(".dp-hint");
let strokes = [], current = null, lastSent = 0, timer = null, sends = 0;

function paper() { ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, SIZE, SIZE); }
function line(points) {
  ctx.strokeStyle = "#000"; ctx.fillStyle = "#000"; ctx.lineWidth = WIDTH;
  ctx.lineCap = "round"; ctx.lineJoin = "round";
  if (points.length === 1) {
    ctx.beginPath(); ctx.arc(points[0][0], points[0][1], WIDTH / 2, 0, 2 * Math.PI); ctx.fill(); return;
  }
  ctx.beginPath(); ctx.moveTo(points[0][0], points[0][1]);
  for (const [x, y] of points.slice(1)) ctx.lineTo(x, y);
  ctx.stroke();
}
function redraw() { paper(); for (const s of strokes) line(s); hint.hidden = strokes.length > 0; }

function send() {
  clearTimeout(timer); timer = null; lastSent = performance.now();
  props.value = strokes.length ? canvas.toDataURL("image/png") : "";
  root.dataset.sent = String(++sends);
  trigger("input");
}
function sendSoon() {  // while drawing: at most one send per LIVE_MS
  const wait = LIVE_MS - (performance.now() - lastSent);
  if (wait <= 0) send();
  else if (!timer) timer = setTimeout(send, wait);
}

function at(e) {
  const r = canvas.getBoundingClientRect();
  return [(e.clientX - r.left) * SIZE / r.width, (e.clientY - r.top) * SIZE / r.height];
}
canvas.addEventListener("pointerdown", e => {
  if (e.button !== undefined && e.button > 0) return;
  e.preventDefault();
  canvas.setPointerCapture(e.pointerId);
  current = [at(e)];
  strokes.push(current);
  hint.hidden = true;
  line(current);
});
canvas.addEventListener("pointermove", e => {
  if (!current) return;
  const p = at(e), q = current[current.length - 1];
  current.push(p);
  line([q, p]);
  sendSoon();
});
const end = () => { if (!current) return; current = null; send(); };
canvas.addEventListener("pointerup", end);
canvas.addEventListener("pointercancel", end);
root.querySelector(".dp-undo").addEventListener("click", () => { strokes.pop(); redraw(); send(); });
root.querySelector(".dp-clear").addEventListener("click", () => { strokes = []; redraw(); send(); });
redraw();
