// The code-map editor (codebook tab). Runs as a gr.HTML component's js_on_load
// (element, trigger, props, server, watch).
//
// props.value is the editor's JSON state (vaelab.app.tabs.codebook.editor_value): every level's
// map, the encoder's original maps, the selected and edited cells, each code's use, both
// decodings (PNG data URLs) and a note. A click on a cell selects it here, with no request; Apply
// (or Enter in the code box) calls the server function edit_cell, which decodes the edited map,
// and the answer replaces the state. Reset goes back to the encoder's map, also with no request.
const root = element.querySelector(".cm") || element;
root.innerHTML = `
  <div class="cm-grid-wrap" role="grid" aria-label="the image's code map: click a cell"></div>
  <figure class="cm-out"><img class="vl-px" alt="the decoded code map"><figcaption>decoded from the (edited) map</figcaption></figure>
  <div class="cm-side">
    <p class="cm-note" aria-live="polite"></p>
    <label class="cm-label">code for the selected cell
      <input class="cm-code" type="number" min="0" step="1" inputmode="numeric" disabled></label>
    <div class="cm-buttons"><button class="cm-apply" disabled>Apply</button><button class="cm-reset">Reset</button></div>
  </div>`;
const grid = root.querySelector(".cm-grid-wrap"), img = root.querySelector(".cm-out img");
const note = root.querySelector(".cm-note"), box = root.querySelector(".cm-code");
const apply = root.querySelector(".cm-apply"), reset = root.querySelector(".cm-reset");

const parse = s => { try { const v = JSON.parse(s || "{}"); return v && typeof v === "object" ? v : {}; } catch (e) { return {}; } };
const bold = s => String(s).replace(/[&<>]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;"}[c]))
                           .replace(/\*\*(.+?)\*\*/g, "<b>$1</b>");
let v = parse(props.value);

function say(text) { note.innerHTML = bold(text); }

function selectedNote() {
  const [r, c] = v.sel, k = v.maps[v.level][r][c], n = (v.counts || [])[k] || 0;
  return `Cell (${r}, ${c}) holds code **${k}**, used ${n.toLocaleString("en")} times on the test set. ` +
         `Choose another code (0 to ${v.k_max}) and apply.`;
}

function drawGrid() {
  const map = v.maps[v.level], sel = v.sel || [-1, -1], edited = new Set((v.edited || []).map(e => e.join(",")));
  grid.innerHTML = '<table class="cm-grid">' + map.map((row, r) => "<tr>" + row.map((k, c) =>
    `<td data-r="${r}" data-c="${c}" class="${r === sel[0] && c === sel[1] ? "cm-sel" : ""}${edited.has(r + "," + c) ? " cm-edit" : ""}"
       style="background:hsl(${(k * 47) % 360},55%,${85 - 25 * (v.used[k] || 0)}%)" title="cell (${r}, ${c}): code ${k}">${k}</td>`
  ).join("") + "</tr>").join("") + "</table>";
  root.dataset.sel = sel.join(",");
}

function render() {
  v = parse(props.value);
  if (!v.maps) { grid.innerHTML = ""; img.removeAttribute("src"); say(""); root.dataset.sel = "-1,-1"; return; }
  drawGrid();
  if (img.getAttribute("src") !== v.decoded) img.src = v.decoded;
  box.max = v.k_max;
  const ready = Array.isArray(v.sel);
  box.disabled = apply.disabled = !ready;
  if (ready && box.value === "") box.value = v.maps[v.level][v.sel[0]][v.sel[1]];
  say(v.note || (ready ? selectedNote() : "Click a cell of the map, then give it another code."));
}

grid.addEventListener("click", e => {
  const td = e.target.closest("td"); if (!td || !v.maps) return;
  v.sel = [+td.dataset.r, +td.dataset.c];
  v.note = "";
  props.value = JSON.stringify(v);
  box.value = v.maps[v.level][v.sel[0]][v.sel[1]];
  render();
  box.focus(); box.select();
});

let busy = false;
async function applyCode() {
  if (busy || !Array.isArray(v.sel)) return;
  busy = true; apply.disabled = true;
  try {
    const out = await server.edit_cell({value: JSON.stringify(v), code: box.value});
    if (out && out.value) { props.value = out.value; render(); }
    else say((out && out.error) || "The edited map could not be decoded.");
  } catch (e) {
    say("The server did not answer; try again.");
  } finally { busy = false; apply.disabled = !Array.isArray(v.sel); }
}
apply.addEventListener("click", applyCode);
box.addEventListener("keydown", e => { if (e.key === "Enter") { e.preventDefault(); applyCode(); } });
reset.addEventListener("click", () => {
  if (!v.maps) return;
  v.maps = v.original; v.edited = []; v.decoded = v.decoded_original;
  v.note = "Back to the encoder's own map.";
  props.value = JSON.stringify(v);
  render();
});

watch("value", () => { box.value = ""; render(); });
render();
