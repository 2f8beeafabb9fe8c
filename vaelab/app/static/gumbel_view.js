// The τ view (Gumbel temperature tab). Runs as a gr.HTML component's js_on_load
// (element, trigger, props, server, watch).
//
// props.value (vaelab.app.tabs.gumbel.live_value) holds the model, test image, noise seed, the
// log10 τ shown and what is shown at it: the heatmap and decodings as PNG data URLs, the entropy
// sentence, the two curves as SVG. Moving τ calls the server function tau_view directly (one
// request at a time; while one is out only the newest τ waits) and redraws in place. When τ is
// let go, the value is updated and 'input' fires: the server then writes the formula's numbers.
const root = element.querySelector(".gl") || element;
root.innerHTML = `
  <div class="gl-control">
    <span class="gl-label" id="gl-label">temperature τ, on a log scale</span>
    <div class="gl-slide">
      <span class="gl-end">0.05</span>
      <input class="gl-range" type="range" step="0.01" aria-labelledby="gl-label">
      <span class="gl-end">10</span>
      <label class="gl-typed">τ = <input class="gl-number" type="number" step="any" min="0.05" max="10"
             aria-label="temperature τ"></label>
    </div>
  </div>
  <p class="gl-entropy" aria-live="polite"></p>
  <div class="gl-row">
    <figure class="gl-fig gl-heat"><figcaption>soft sample: one row per position, one column per category (dark = 1)</figcaption>
      <img class="vl-px" data-k="heatmap" alt="per-position categorical distributions"></figure>
    <div class="gl-col">
      <div class="gl-pair">
        <figure class="gl-fig"><figcaption>decoded from the soft codes</figcaption><img class="vl-px" data-k="soft" alt="decoded soft codes"></figure>
        <figure class="gl-fig"><figcaption>from the hard (one-hot) codes</figcaption><img class="vl-px" data-k="hard" alt="decoded hard codes"></figure>
      </div>
      <figure class="gl-fig"><figcaption>six Gumbel draws at this τ (soft codes)</figcaption><img class="vl-px" data-k="samples" alt="six decoded Gumbel draws"></figure>
    </div>
  </div>
  <div class="gl-row">
    <figure class="gl-fig gl-chart"><figcaption>reconstruction error against τ</figcaption><div data-k="error_curve"></div></figure>
    <figure class="gl-fig gl-chart"><figcaption>relaxed vs exact objective</figcaption><div data-k="gap_curve"></div></figure>
  </div>`;
const range = root.querySelector(".gl-range"), number = root.querySelector(".gl-number");
const sentence = root.querySelector(".gl-entropy");
const parse = s => { try { const v = JSON.parse(s || "{}"); return v && typeof v === "object" ? v : {}; } catch (e) { return {}; } };
const bold = s => String(s).replace(/[&<>]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;"}[c]))
                           .replace(/\*\*(.+?)\*\*/g, "<b>$1</b>");
const tauText = t => { const x = Math.pow(10, t); return x >= 1 ? x.toPrecision(3).replace(/\.?0+$/, "") : x.toPrecision(2); };
let v = parse(props.value);

function draw(view) {
  if (!view) return;
  for (const img of root.querySelectorAll("img[data-k]")) {
    const src = view[img.dataset.k];
    if (src && img.getAttribute("src") !== src) img.src = src;
  }
  for (const box of root.querySelectorAll("div[data-k]")) {
    const svg = view[box.dataset.k];
    if (svg !== undefined && box.innerHTML !== svg) box.innerHTML = svg;
  }
  sentence.classList.remove("gl-error");
  sentence.innerHTML = bold(view.entropy || "");
}

function showTau(t) {
  range.value = t;
  if (document.activeElement !== number) number.value = tauText(t);
  root.dataset.logTau = Number(t).toFixed(2);
}

let busy = false, wanted = null, settle = false;
async function ask(t, letGo) {
  wanted = t; settle = settle || letGo;
  showTau(t);
  if (busy || !v.model) return;
  busy = true;
  try {
    while (wanted !== null) {
      const w = wanted; wanted = null;
      try {
        const out = await server.tau_view({model: v.model, log_tau: w, index: v.index, seed: v.seed});
        if (out && out.view) { v.log_tau = w; v.view = out.view; draw(out.view); }
        else { sentence.classList.add("gl-error"); sentence.textContent = (out && out.error) || "This τ could not be shown."; }
      } catch (e) {
        sentence.classList.add("gl-error"); sentence.textContent = "The server did not answer; move τ again.";
      }
    }
    if (settle) { settle = false; props.value = JSON.stringify(v); trigger("input"); }
  } finally { busy = false; }
}

range.addEventListener("input", () => ask(+range.value, false));
range.addEventListener("change", () => ask(+range.value, true));
function typed() {
  const x = parseFloat(number.value);
  if (!Number.isFinite(x) || x <= 0) {
    sentence.classList.add("gl-error");
    sentence.textContent = "τ is a positive number, from 0.05 to 10.";
    return;
  }
  const [lo, hi] = v.range || [-1.3, 1];
  const t = Math.min(hi, Math.max(lo, Math.log10(x)));
  number.blur();
  ask(Math.round(t * 100) / 100, true);
}
number.addEventListener("keydown", e => { if (e.key === "Enter") { e.preventDefault(); typed(); } });
number.addEventListener("change", typed);

function render() {
  v = parse(props.value);
  const [lo, hi] = v.range || [-1.3, 1];
  range.min = lo; range.max = hi;
  showTau(v.log_tau ?? 0);
  draw(v.view);
}
watch("value", render);
render();
