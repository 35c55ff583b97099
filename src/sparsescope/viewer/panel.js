/* sparsescope viewer -- the side panel: round slider and header, view controls (mode, output,
   find, unused units, input edges), the round's figures and spark line, the selection card.
   Adds to the context A: panel, headline, select, placeCard. */
SS.panel = function (A) {
  const V = A.V, data = A.data, $ = A.$, el = A.el, canvas = A.canvas;
  const L0 = A.L0, labelOf = A.labelOf, graphFor = A.graphFor, fewInputEdges = A.fewInputEdges;
  const recompute = function () { A.recompute(); };
  const redraw = function () { A.redraw(); }, fit = function () { A.fit(); }, inputPanel = function () { A.inputPanel(); };
  /* ---- panel ---------------------------------------------------------- */
  /* the header names the run and the round on the slider */
  function headline() {
    const m = data.metrics[V.state.round] || {};
    return data.title + " \u00b7 round " + (m.round !== undefined ? m.round : V.state.round);
  }
  const nR = data.metrics.length;
  $("round").max = String(nR - 1);
  $("round").disabled = true;  /* until the other rounds are inflated */
  $("round").addEventListener("input", function () {
    V.state.round = +this.value;
    V.state.simp = false;  /* the simplified graph is the opened round's */
    V.state.inEdges = fewInputEdges(graphFor(V.state.round));  /* dense rounds: input edges off */
    recompute();
  });
  $("graph-orig").onclick = function () { V.state.simp = false; recompute(); };
  $("graph-simp").onclick = function () { if (V.simplified && V.state.round === data.current) { V.state.simp = true; recompute(); } };
  $("unused").addEventListener("change", function () { V.state.unused = this.checked; recompute(); });
  $("mode-weights").onclick = function () { V.state.mode = "weights"; recompute(); };
  $("mode-input").onclick = function () {
    V.state.mode = "input";
    if (!V.state.input) V.state.input = V.samples.n && A.api.ready ? { sample: V.samples.index[0] } : { drawn: true };
    recompute();
  };
  const outSel = $("output"), outL = V.G0.layers[V.G0.layers.length - 1];
  for (let k = 0; k < outL.size; k++) {
    const o = el("option", null, SS.nodeId(outL, k) + (outL.labels ? " \u2014 " + outL.labels[k] : ""));
    o.value = String(k); outSel.appendChild(o);
  }
  outSel.addEventListener("change", function () { V.state.out = this.value === "" ? null : +this.value; recompute(); });
  $("inedges").addEventListener("change", function () { V.state.inEdges = this.checked; recompute(); });
  const ids = $("ids");
  V.G0.layers.forEach(function (L) { if (L !== L0) for (let i = 0; i < L.size; i++) { const o = el("option"); o.value = SS.nodeId(L, i); ids.appendChild(o); } });
  $("find").addEventListener("submit", function (ev) {
    ev.preventDefault();
    const q = $("find-id").value.trim();
    let loc = SS.locate(V.G, q);
    if (!loc && outL.labels) { const k = outL.labels.indexOf(q); if (k >= 0) loc = { layer: V.G.layers[V.G.layers.length - 1], i: k }; }
    if (!loc) { $("find-msg").textContent = "no node " + q; return; }
    $("find-msg").textContent = "";
    select(SS.nodeId(loc.layer, loc.i), true);
  });
  function select(id, center) {
    V.state.sel = id; recompute();
    if (!center) return;
    const loc = SS.locate(V.G, id), geo = SS.geometry(V);
    if (loc.layer.kind !== "input" && V.pos[loc.layer.name][loc.i] !== V.pos[loc.layer.name][loc.i]) { V.state.unused = true; recompute(); }
    const p = loc.layer.kind === "input" ? geo.pixel(loc.i) : [V.layout.layers[loc.layer.name].x + (geo.isImage(loc.layer) ? V.layout.image / 2 : 0), V.pos[loc.layer.name][loc.i]];
    V.view.tx = canvas.clientWidth / 2 - p[0] * V.view.s; V.view.ty = canvas.clientHeight / 2 - p[1] * V.view.s; redraw();
  }

  function figures() {
    const m = data.metrics[V.state.round] || {}, f = $("figures");
    f.textContent = "";
    const add = function (k, v) { f.appendChild(el("span", "k", k)); f.appendChild(el("span", null, v)); };
    const pct = function (v, d) { return typeof v === "number" ? (100 * v).toFixed(d) + " %" : "\u2014"; };
    add("density", pct(m.density, 2));
    if (m.eval_return !== undefined) add("greedy return", m.eval_return.toFixed(1) + (m.solved ? " (solved)" : " (NOT solved)"));
    else add("test accuracy", pct(m.test_accuracy, 2));
    const wl = m.weights_left || {}, wt = m.weights_total || {};
    Object.keys(wl).forEach(function (k) { add("weights " + k, Number(wl[k]).toLocaleString() + " / " + (wt[k] !== undefined ? Number(wt[k]).toLocaleString() : "?")); });
    add("edges (graph)", V.G.edges.toLocaleString());
    const live = V.live, dead = [];
    V.G.layers.slice(1, -1).forEach(function (L) { for (let i = 0; i < L.size; i++) if (!live[L.name][i]) dead.push(1); });
    let ignored = 0; for (let i = 0; i < L0.size; i++) if (!live[L0.name][i]) ignored++;
    add(V.state.out === null ? "unused units" : "units outside", String(dead.length));
    add(V.state.out === null ? "ignored inputs" : "inputs outside", String(ignored));
    if (V.G.box) {  /* every ReLU unit whose bound proves it off (SS.alwaysOff, as `analyse` counts them), and how many of those are drawn */
      let nOff = 0; V.G.layers.forEach(function (L) { const m = V.off[L.name]; for (let i = 0; i < m.length; i++) nOff += m[i]; });
      add("always off", nOff.toLocaleString() + " (" + V.offCount.toLocaleString() + " drawn; box \u201c" + V.G.box + "\u201d)");
    }
    if (V.simplified && V.state.round !== data.current) add("simplified", "exact analysis: round " + SS.exactRound(V) + " only");
    else if (V.simplified) {
      const z = V.simplified.sizes, o = z.original, n = z.simplified;
      add("simplified", n.vertices.toLocaleString() + " vertices, " + n.edges.toLocaleString() + " edges (original " + o.vertices.toLocaleString() +
        ", " + o.edges.toLocaleString() + "; box \u201c" + V.simplified.box + "\u201d)");
      add("composed units", String(V.simplified.composed.length) + "; facts certified: " + V.simplified.facts.length.toLocaleString());
    }
    $("round-label").textContent = (m.round !== undefined ? m.round : V.state.round) + " / " + (nR - 1);
    const head = headline();
    $("title").textContent = head; document.title = head;
    $("subtitle").textContent = "round " + V.state.round + " \u00b7 density " + pct(m.density, 2) + (m.eval_return !== undefined ? " \u00b7 greedy return " + m.eval_return.toFixed(1) : " \u00b7 accuracy " + pct(m.test_accuracy, 2)) + (V.G.box ? " \u00b7 bounds over box \u201c" + V.G.box + "\u201d" : "");
    spark();
  }
  function spark() { SS.drawSpark($("spark"), data.metrics, V.state.round); }

  /* The selection card floats beside the selected node (where the eye is). */
  function details() {
    const box = $("sel"), hl = V.highlight, card = $("card");
    $("sel-empty").hidden = !!hl;
    card.hidden = !hl;
    if (!hl) { box.textContent = ""; return; }
    SS.renderCard(box, V, hl, labelOf);
    placeCard();
  }
  function placeCard() {
    const card = $("card"), hl = V.highlight;
    if (!hl || card.hidden) return;
    const geo = SS.geometry(V), L = hl.sel.layer, i = hl.sel.i;
    const p = L.kind === "input" ? geo.pixel(i) : geo.port(L, i, true);
    if (p[1] !== p[1]) return;
    const sx = p[0] * V.view.s + V.view.tx, sy = p[1] * V.view.s + V.view.ty;
    const W = canvas.clientWidth, H = canvas.clientHeight, cw = card.offsetWidth, ch = card.offsetHeight;
    let x = sx + 24;
    if (x + cw > W - 6) x = Math.max(6, (L.kind === "input" ? sx : sx - (geo.isImage(L) ? V.layout.image * V.view.s : 0)) - cw - 30);
    card.style.left = Math.max(6, Math.min(x, W - cw - 6)) + "px";
    card.style.top = Math.max(6, Math.min(sy - 40, H - ch - 6)) + "px";
  }
  $("card-close").onclick = function () { V.state.sel = null; recompute(); };

  function panel() {
    $("round").value = String(V.state.round);
    $("mode-weights").classList.toggle("on", V.state.mode === "weights");
    $("mode-input").classList.toggle("on", V.state.mode === "input");
    outSel.value = V.state.out === null ? "" : String(V.state.out);
    $("inedges").checked = V.state.inEdges;
    $("unused").checked = V.state.unused;
    $("simp-row").hidden = !document.getElementById("simplified");
    $("graph-orig").classList.toggle("on", !V.G.simplified); $("graph-simp").classList.toggle("on", !!V.G.simplified);
    $("graph-simp").disabled = !V.simplified || V.state.round !== data.current;
    figures(); inputPanel(); details();
  }

  A.panel = panel; A.headline = headline; A.select = select; A.placeCard = placeCard;
};
