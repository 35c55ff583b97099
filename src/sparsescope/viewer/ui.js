/* sparsescope viewer -- state, events, side panel, URL hash, export.
   All data-derived text goes through textContent; no HTML parsing of data. */
/* Start the page.  `loaded` resolves once the deflated blocks (other rounds, samples)
   are inflated: the current round draws before that; the round slider and the
   thumbnails come alive, and `ready` is set, once it has resolved. */
SS.start = function (data, loaded) {
  const $ = function (id) { return document.getElementById(id); };
  const el = function (tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const t0 = performance.now();
  const doc = JSON.parse($("flowgraph").textContent);
  const V = {
    data: data, layout: data.layout, R: 10, cache: {}, samples: SS.samples(data.samples),
    state: { round: data.current, mode: "weights", out: null, input: null, sel: null, inEdges: false, unused: false },
    view: { s: 1, tx: 0, ty: 0 }, drawn: new Float64Array(0), values: null, highlight: null, frames: 0
  };
  V.cache[data.current] = SS.fromDoc(doc);
  V.G0 = V.cache[data.current];
  V.drawn = new Float64Array(V.G0.layers[0].size);
  /* input->h1 edges are drawn by default only while there are few of them (also on each round change) */
  const IN_EDGES_MAX = 3000;
  const fewInputEdges = function (G) { return G.layers.length > 1 && G.layers[1].dst.length <= IN_EDGES_MAX; };
  V.state.inEdges = fewInputEdges(V.G0);
  const canvas = $("view"), ctx = canvas.getContext("2d");
  const L0 = V.G0.layers[0], inRows = V.layout.input.rows, inCols = V.layout.input.cols;
  const labelOf = function (k) { const o = V.G0.layers[V.G0.layers.length - 1]; return o.labels ? o.labels[k] : String(k); };

  function graphFor(r) {
    if (!V.cache[r]) V.cache[r] = SS.fromPacked(data.rounds[r], V.G0);
    return V.cache[r];
  }
  function currentInput() {
    const s = V.state.input;
    if (!s) return null;
    if (s.sample !== undefined) { const k = V.samples.pos(s.sample); return k >= 0 ? V.samples.x(k) : null; }
    return V.drawn;
  }

  /* ---- derived state ------------------------------------------------ */
  function recompute() {
    const G = V.G = graphFor(V.state.round), st = V.state;
    slowFrames = 0;
    const out = G.layers[G.layers.length - 1];
    // visibility: edges into nodes of the chosen output's subgraph (analysis.subgraph)
    const seed = SS.masks(G);
    if (st.out === null) out.name && seed[out.name].fill(1); else seed[out.name][st.out] = 1;
    const back = SS.reachBack(G, seed);
    if (st.out === null) { V.visible = {}; G.layers.forEach(function (L) { V.visible[L.name] = new Uint8Array(L.size).fill(1); }); }
    else V.visible = back;
    V.live = SS.live(G, back);
    // the live graph of all outputs decides which units are placed (choosing an output fades, never moves)
    if (V.placed !== G || V.placedUnused !== st.unused) {
      const all = SS.masks(G);
      all[out.name].fill(1);
      V.liveAll = st.out === null ? V.live : SS.live(G, SS.reachBack(G, all));
      const fromIn = SS.masks(G); fromIn[L0.name].fill(1);
      const fwd = SS.reachFwd(G, fromIn);
      V.constant = {};
      G.layers.forEach(function (L) { const m = new Uint8Array(L.size); for (let i = 0; i < L.size; i++) m[i] = V.liveAll[L.name][i] && !fwd[L.name][i] && L !== out ? 1 : 0; V.constant[L.name] = m; });
      SS.place(V);
      V.shownCount = {};
      G.layers.forEach(function (L) { if (L.kind !== "input") { let n = 0; const y = V.pos[L.name]; for (let i = 0; i < L.size; i++) if (y[i] === y[i]) n++; V.shownCount[L.name] = n; } });
      V.placed = G; V.placedUnused = st.unused;
      if (api.firstRenderMs !== undefined) fit();
    }
    // values
    const x = st.mode === "input" ? currentInput() : null;
    V.values = x ? SS.evaluate(G, x) : null;
    V.valueMax = {};
    if (V.values) G.layers.forEach(function (L) {
      let m = 0; const p = V.values.post[L.name];
      for (let i = 0; i < p.length; i++) m = Math.max(m, Math.abs(p[i]));
      V.valueMax[L.name] = m;
    });
    V.pred = V.values ? SS.argmax(V.values.post[out.name]) : null;
    // selection highlight
    V.highlight = null;
    if (st.sel) {
      const loc = SS.locate(G, st.sel);
      if (loc) {
        const a = SS.masks(G), d = SS.masks(G);
        a[loc.layer.name][loc.i] = 1; d[loc.layer.name][loc.i] = 1;
        V.highlight = { sel: loc, anc: SS.reachBack(G, a), desc: SS.reachFwd(G, d) };
      }
    }
    images();
    panel();
    writeHash();
    redraw();
  }

  function images() {
    const G = V.G, first = G.layers[1], inp = V.layout.input;
    const x = V.values ? V.values.post[L0.name] : null;
    if (V.layout.layers[first.name].image) {
      let wmax = 0, pmax = 0;
      for (let e = 0; e < first.w.length; e++) {
        wmax = Math.max(wmax, Math.abs(first.w[e]));
        if (x) pmax = Math.max(pmax, Math.abs(first.w[e] * x[first.src[e]]));
      }
      if (V.imgRound !== V.state.round) {
        V.weightImages = [];
        for (let j = 0; j < first.size; j++) {
          const v = new Float64Array(L0.size);
          for (let e = first.start[j]; e < first.start[j + 1]; e++) v[first.src[e]] = first.w[e];
          V.weightImages.push(SS.valueImage(document.createElement("canvas"), v, inRows, inCols, wmax));
        }
        V.imgRound = V.state.round;
      }
      V.productImages = x ? [] : null;
      if (x) for (let j = 0; j < first.size; j++) {
        const v = new Float64Array(L0.size);
        for (let e = first.start[j]; e < first.start[j + 1]; e++) v[first.src[e]] = first.w[e] * x[first.src[e]];
        V.productImages.push(SS.valueImage(document.createElement("canvas"), v, inRows, inCols, pmax));
      }
    }
    // the input grid: the input itself, or how many visible h1 units read each pixel
    const c = V.inputCanvas || (V.inputCanvas = document.createElement("canvas"));
    if (x) SS.greyImage(c, x, inRows, inCols);
    else {
      const cnt = new Float64Array(L0.size);
      let m = 0;
      for (let e = 0; e < first.dst.length; e++) if (V.visible[first.name][first.dst[e]] && V.pos[first.name][first.dst[e]] === V.pos[first.name][first.dst[e]]) cnt[first.src[e]]++;
      for (let i = 0; i < cnt.length; i++) m = Math.max(m, cnt[i]);
      c.width = inCols; c.height = inRows;
      const g = c.getContext("2d"), im = g.createImageData(inCols, inRows);
      for (let i = 0; i < cnt.length; i++) {
        const t = m ? cnt[i] / m : 0, k = 4 * i;
        if (cnt[i] === 0) { im.data[k] = 246; im.data[k + 1] = 238; im.data[k + 2] = 236; }
        else { im.data[k] = 200 - 170 * t; im.data[k + 1] = 210 - 160 * t; im.data[k + 2] = 225 - 120 * t; }
        im.data[k + 3] = 255;
      }
      g.putImageData(im, 0, 0);
    }
    V.ancCanvas = null;
    const hl = V.highlight;
    if (hl && hl.sel.layer.kind !== "input") {
      const a = document.createElement("canvas"); a.width = inCols; a.height = inRows;
      const g = a.getContext("2d"), im = g.createImageData(inCols, inRows), anc = hl.anc[L0.name];
      for (let i = 0; i < anc.length; i++) if (anc[i]) { im.data[4 * i] = 255; im.data[4 * i + 1] = 170; im.data[4 * i + 2] = 0; im.data[4 * i + 3] = 110; }
      g.putImageData(im, 0, 0);
      V.ancCanvas = a;
    }
  }

  /* ---- drawing ------------------------------------------------------- */
  let pending = false;
  function redraw() { if (!pending) { pending = true; requestAnimationFrame(frame); } }
  function size() {
    const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
    return { w: w, h: h, dpr: dpr };
  }
  function draw() {
    const z = size(), t = performance.now();
    ctx.setTransform(z.dpr, 0, 0, z.dpr, 0, 0);
    const P = new SS.CanvasPainter(ctx);
    SS.drawScene(P, V, z.w, z.h, true);
    takeSnapshot();  /* the graph without the screen-fixed legend */
    SS.drawLegend(P, V, z.w, z.h);
    V.frames++;
    V.lastDrawMs = performance.now() - t;
    return V.lastDrawMs;
  }
  /* While the user pans or zooms a heavy scene (dense graphs: the browser's
     raster of thousands of curves costs ~50 ms a frame), move a snapshot of
     the last full drawing instead, and redraw in full once the motion stops. */
  const HEAVY_EDGES = 3000, SETTLE_MS = 140;
  const snap = new SS.Snapshot();
  let moving = false, settle = null;
  /* Heavy: many edges, or frames measured slow while moving (the rasterizer, not the draw call,
     can be the cost: e.g. hundreds of input edges converging on a few units). */
  let slowFrames = 0, lastFrameAt = 0;
  function heavy() { return V.G.edges >= HEAVY_EDGES || slowFrames >= 2; }
  function takeSnapshot() { if (!heavy()) snap.drop(); else snap.take(canvas, V.view); }
  function drawMoved() {
    const z = size(), P = new SS.CanvasPainter(ctx);
    ctx.setTransform(z.dpr, 0, 0, z.dpr, 0, 0);
    snap.paint(P, V.view, z.w, z.h);
    SS.drawLegend(P, V, z.w, z.h);
    V.frames++;
  }
  function motion() {
    moving = true;
    clearTimeout(settle);
    settle = setTimeout(function () { moving = false; redraw(); }, SETTLE_MS);
  }
  function frame() {
    pending = false;
    const now = performance.now();
    if (moving && !snap.fits(canvas) && now - lastFrameAt < 200) slowFrames += now - lastFrameAt > 40 ? 1 : 0;
    lastFrameAt = now;
    if (moving && snap.fits(canvas)) {
      drawMoved();
    } else {
      draw();
    }
    if (api.firstRenderMs === undefined) {
      api.firstRenderMs = performance.now(); api.initMs = performance.now() - t0;
      api.bootMs = SS.bootMs; api.preloadMs = SS.preloadMs;
      requestAnimationFrame(function () {
        api.firstFrameMs = performance.now();
        loaded.then(function () {
          $("round").disabled = false;
          buildThumbs();
          api.ready = true;
        }).catch(function (err) { console.error(err); $("status").textContent = String(err); });
      });
    }
    placeCard();
    $("status").textContent = V.G.edges.toLocaleString() + " edges \u00b7 " + Math.round(V.view.s * 100) + "%";
  }
  function fit() {
    const w = canvas.clientWidth, h = canvas.clientHeight, lay = V.layout;
    V.view = fitted(w, h, 40, 72);
    redraw();
  }
  const fitted = function (w, h, top, bottom) { return SS.fitted(V, w, h, top, bottom); };
  function zoomAt(f, cx, cy) {
    const v = V.view, s = Math.max(0.05, Math.min(40, v.s * f));
    v.tx = cx - (cx - v.tx) * s / v.s; v.ty = cy - (cy - v.ty) * s / v.s; v.s = s;
    redraw();
  }

  /* ---- hit testing ----------------------------------------------------- */
  function hit(sx, sy) {
    const G = V.G, wx = (sx - V.view.tx) / V.view.s, wy = (sy - V.view.ty) / V.view.s, inp = V.layout.input;
    const c = Math.floor((wx - inp.x) / inp.cell), r = Math.floor((wy - inp.y) / inp.cell);
    if (c >= 0 && c < inp.cols && r >= 0 && r < inp.rows) return { layer: G.layers[0], i: r * inp.cols + c };
    const img = V.layout.image;
    let best = null, bd = Infinity;
    G.layers.forEach(function (L) {
      if (L.kind === "input") return;  /* layer objects differ between rounds: test the kind */
      const ll = V.layout.layers[L.name], py = V.pos[L.name];
      for (let i = 0; i < L.size; i++) {
        if (py[i] !== py[i]) continue;  /* not shown */
        if (ll.image) {
          const wmax = V.state.mode === "input" ? 2 * img + 6 : img;
          if (wx >= ll.x && wx <= ll.x + wmax && Math.abs(wy - py[i]) <= img / 2) return (best = { layer: L, i: i }, bd = 0);
        } else {
          const d = Math.hypot(wx - ll.x, wy - py[i]), lim = Math.max(V.R * 1.4, 8 / V.view.s);
          if (d <= lim && d < bd) { bd = d; best = { layer: L, i: i }; }
        }
      }
    });
    return best;
  }

  /* ---- events on the graph canvas ------------------------------------ */
  let drag = null;
  canvas.addEventListener("mousedown", function (ev) { drag = { x: ev.clientX, y: ev.clientY, moved: 0 }; canvas.classList.add("drag"); });
  window.addEventListener("mousemove", function (ev) {
    if (drag) {
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      drag.moved += Math.abs(dx) + Math.abs(dy); drag.x = ev.clientX; drag.y = ev.clientY;
      V.view.tx += dx; V.view.ty += dy; motion(); redraw();
      return;
    }
    if (ev.target !== canvas) return;
    const b = canvas.getBoundingClientRect(), loc = hit(ev.clientX - b.left, ev.clientY - b.top), tip = $("tip");
    if (!loc) { tip.hidden = true; return; }
    const key = V.state.round + "|" + V.state.mode + "|" + SS.nodeId(loc.layer, loc.i) + "|" + JSON.stringify(V.state.input);
    if (tip.dataset.key !== key || tip.hidden) { SS.renderTip(tip, V, loc); tip.dataset.key = key; }
    tip.hidden = false;
    tip.style.left = Math.max(4, Math.min(ev.clientX - b.left + 14, b.width - tip.offsetWidth - 4)) + "px";
    tip.style.top = Math.max(4, Math.min(ev.clientY - b.top + 14, b.height - tip.offsetHeight - 4)) + "px";
  });
  window.addEventListener("mouseup", function (ev) {
    if (!drag) return;
    const click = drag.moved < 4 && ev.target === canvas;
    drag = null; canvas.classList.remove("drag");
    if (click) {
      const b = canvas.getBoundingClientRect(), loc = hit(ev.clientX - b.left, ev.clientY - b.top);
      V.state.sel = loc ? SS.nodeId(loc.layer, loc.i) : null;
      recompute();
    }
  });
  canvas.addEventListener("mouseleave", function () { $("tip").hidden = true; });
  canvas.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    const b = canvas.getBoundingClientRect();
    motion();
    zoomAt(Math.exp(-ev.deltaY * 0.0015), ev.clientX - b.left, ev.clientY - b.top);
  }, { passive: false });
  window.addEventListener("resize", redraw);
  window.addEventListener("keydown", function (ev) {
    const t = ev.target, typing = t.tagName === "SELECT" || t.tagName === "TEXTAREA" ||
      (t.tagName === "INPUT" && ["range", "checkbox", "button", "radio"].indexOf(t.type) < 0);
    if (typing) return;
    if (ev.key === "f") fit();
    if (ev.key === "Escape") { V.state.sel = null; recompute(); }
  });
  $("fit").onclick = fit;
  $("zoomin").onclick = function () { zoomAt(1.25, canvas.clientWidth / 2, canvas.clientHeight / 2); };
  $("zoomout").onclick = function () { zoomAt(0.8, canvas.clientWidth / 2, canvas.clientHeight / 2); };

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
    V.state.inEdges = fewInputEdges(graphFor(V.state.round));  /* dense rounds: input edges off */
    recompute();
  });
  $("unused").addEventListener("change", function () { V.state.unused = this.checked; recompute(); });
  $("mode-weights").onclick = function () { V.state.mode = "weights"; recompute(); };
  $("mode-input").onclick = function () {
    V.state.mode = "input";
    if (!V.state.input) V.state.input = V.samples.n && api.ready ? { sample: V.samples.index[0] } : { drawn: true };
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

  // samples
  /* Thumbnails (and each sample's prediction) are made right after the first frame,
     so the graph shows first; `ready` is set once they exist. */
  const thumbs = $("thumbs"), thumbEls = [];
  function buildThumbs() {
    for (let i = 0; i < V.samples.n; i++) {
      const c = SS.greyImage(document.createElement("canvas"), V.samples.x(i), inRows, inCols), t = V.samples.index[i];
      c.dataset.i = String(t);
      c.onclick = function () { V.state.input = { sample: t }; V.state.mode = "input"; recompute(); };
      thumbs.appendChild(c); thumbEls.push(c);
    }
    inputPanel();
  }
  let predRound = null, preds = [];
  function samplePreds() {
    if (predRound === V.state.round) return preds;
    const G = V.G, out = G.layers[G.layers.length - 1];
    preds = [];
    for (let i = 0; i < V.samples.n; i++) preds.push(SS.argmax(SS.evaluate(G, V.samples.x(i)).post[out.name]));
    predRound = V.state.round;
    thumbEls.forEach(function (c, i) {
      c.classList.toggle("wrong", preds[i] !== V.samples.y[i]);
      c.title = "test image #" + V.samples.index[i] + "  true " + labelOf(V.samples.y[i]) + "  predicted " + labelOf(preds[i]);
    });
    return preds;
  }

  // drawing pad
  const pad = $("pad"), padCtx = pad.getContext("2d");
  let painting = null;
  function showPad() { SS.greyImage(pad, V.drawn, inRows, inCols); }
  function paint(px, py) { SS.paint(V.drawn, inRows, inCols, px, py); }
  function padPos(ev) { const b = pad.getBoundingClientRect(); return [(ev.clientX - b.left) / b.width * inCols, (ev.clientY - b.top) / b.height * inRows]; }
  function strokeTo(p) {
    const q = painting.last, n = Math.max(1, Math.ceil(Math.hypot(p[0] - q[0], p[1] - q[1]) * 2));
    for (let k = 1; k <= n; k++) paint(q[0] + (p[0] - q[0]) * k / n, q[1] + (p[1] - q[1]) * k / n);
    painting.last = p;
    V.state.input = { drawn: true }; V.state.mode = "input";
    showPad(); recompute();
  }
  pad.addEventListener("mousedown", function (ev) { ev.preventDefault(); const p = padPos(ev); painting = { last: p }; paint(p[0], p[1]); strokeTo(p); });
  window.addEventListener("mousemove", function (ev) { if (painting) strokeTo(padPos(ev)); });
  window.addEventListener("mouseup", function () { painting = null; });
  $("pad-clear").onclick = function () { V.drawn.fill(0); showPad(); if (V.state.input && V.state.input.drawn) recompute(); };
  showPad();
  if (!V.samples.n) thumbs.hidden = true;

  function figures() {
    const m = data.metrics[V.state.round] || {}, f = $("figures");
    f.textContent = "";
    const add = function (k, v) { f.appendChild(el("span", "k", k)); f.appendChild(el("span", null, v)); };
    const pct = function (v, d) { return typeof v === "number" ? (100 * v).toFixed(d) + " %" : "\u2014"; };
    add("density", pct(m.density, 2));
    add("test accuracy", pct(m.test_accuracy, 2));
    const wl = m.weights_left || {}, wt = m.weights_total || {};
    Object.keys(wl).forEach(function (k) { add("weights " + k, Number(wl[k]).toLocaleString() + " / " + (wt[k] !== undefined ? Number(wt[k]).toLocaleString() : "?")); });
    add("edges (graph)", V.G.edges.toLocaleString());
    const live = V.live, dead = [];
    V.G.layers.slice(1, -1).forEach(function (L) { for (let i = 0; i < L.size; i++) if (!live[L.name][i]) dead.push(1); });
    let ignored = 0; for (let i = 0; i < L0.size; i++) if (!live[L0.name][i]) ignored++;
    add(V.state.out === null ? "unused units" : "units outside", String(dead.length));
    add(V.state.out === null ? "ignored inputs" : "inputs outside", String(ignored));
    $("round-label").textContent = (m.round !== undefined ? m.round : V.state.round) + " / " + (nR - 1);
    const head = headline();
    $("title").textContent = head; document.title = head;
    $("subtitle").textContent = "round " + V.state.round + " \u00b7 density " + pct(m.density, 2) + " \u00b7 accuracy " + pct(m.test_accuracy, 2) + (V.G.box ? " \u00b7 bounds over box \u201c" + V.G.box + "\u201d" : "");
    spark();
  }
  function spark() { SS.drawSpark($("spark"), data.metrics, V.state.round); }

  function inputPanel() {
    const info = $("input-info"), st = V.state, scores = $("scores");
    scores.textContent = "";
    thumbEls.forEach(function (c) { c.classList.remove("on"); });
    if (thumbEls.length) samplePreds();
    if (!st.input || st.mode !== "input" || !V.values) { info.textContent = V.samples.n ? "Pick a test image or draw a digit to see every node's value." : "Draw a digit to see every node's value."; return; }
    const p = V.pred;
    if (st.input.sample !== undefined) {
      const t = st.input.sample, k = V.samples.pos(t), y = V.samples.y[k];
      thumbEls[k] && thumbEls[k].classList.add("on");
      V.inputName = "test image #" + t + " (true " + labelOf(y) + ")";
      info.textContent = "test image #" + t + " \u00b7 true " + labelOf(y) + " \u00b7 predicted " + labelOf(p) + (p === y ? "  \u2713" : "  \u2717");
    } else { V.inputName = "drawn input"; info.textContent = "drawn input \u00b7 predicted " + labelOf(p); }
    const out = V.G.layers[V.G.layers.length - 1], v = V.values.post[out.name];
    let lo = Math.min.apply(null, v), hi = Math.max.apply(null, v);
    for (let k = 0; k < v.length; k++) {
      const row = el("div", "bar" + (k === p ? " top" : "")), bar = el("i");
      row.appendChild(el("span", "lab", labelOf(k)));
      bar.style.width = Math.round(4 + 90 * (v[k] - lo) / ((hi - lo) || 1)) + "px";
      row.appendChild(bar); row.appendChild(el("span", null, SS.short(v[k])));
      scores.appendChild(row);
    }
  }

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
    figures(); inputPanel(); details();
  }

  /* ---- URL hash: the view state ---------------------------------------- */
  const b64url = SS.b64url;
  function hashOf() {
    const st = V.state, p = ["r=" + st.round, "m=" + (st.mode === "input" ? "i" : "w")];
    if (st.out !== null) p.push("o=" + st.out);
    if (st.input) p.push("i=" + (st.input.sample !== undefined ? "s" + st.input.sample : "d" + b64url(Uint8Array.from(V.drawn, function (v) { return Math.round(v * 255); }))));
    if (st.sel) p.push("sel=" + encodeURIComponent(st.sel));
    p.push("e=" + (st.inEdges ? 1 : 0));
    if (st.unused) p.push("u=1");
    return "#" + p.join("&");
  }
  function writeHash() {
    const h = hashOf();
    if (location.hash === h) return;
    try { history.replaceState(null, "", h); } catch (err) { /* sandboxed frame: no URL to update */ }
    $("link-text").value = location.href;
  }
  function readHash() {
    const st = V.state, q = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      const k = kv.indexOf("=");
      if (k <= 0) return;
      try { q[kv.slice(0, k)] = decodeURIComponent(kv.slice(k + 1)); } catch (err) { /* malformed %-escape: ignore the key */ }
    });
    if (q.r !== undefined && /^\d+$/.test(q.r) && +q.r < nR) st.round = +q.r;
    if (q.m) st.mode = q.m === "i" ? "input" : "weights";
    st.out = q.o !== undefined && /^\d+$/.test(q.o) && +q.o < outL.size ? +q.o : null;
    st.input = null;
    if (q.i && /^s\d+$/.test(q.i) && V.samples.pos(+q.i.slice(1)) >= 0) st.input = { sample: +q.i.slice(1) };
    else if (q.i && q.i[0] === "d") {
      try {
        const bin = atob(q.i.slice(1).replace(/-/g, "+").replace(/_/g, "/"));
        if (bin.length === V.drawn.length) { for (let k = 0; k < bin.length; k++) V.drawn[k] = bin.charCodeAt(k) / 255; st.input = { drawn: true }; showPad(); }
      } catch (err) { /* malformed drawing in the link: ignore it */ }
    }
    if (st.mode === "input" && !st.input) st.mode = "weights";
    st.sel = q.sel && SS.locate(V.G0, q.sel) ? q.sel : null;
    if (q.e !== undefined) st.inEdges = q.e === "1";
    st.unused = q.u === "1";
  }
  function readHashSafely() {
    const saved = JSON.stringify(V.state);
    try { readHash(); } catch (err) { Object.assign(V.state, JSON.parse(saved)); }  /* a bad link keeps the current view */
  }
  window.addEventListener("hashchange", function () { if (location.hash !== hashOf()) { readHashSafely(); recompute(); } });

  /* ---- export ------------------------------------------------------------- */
  function download(blob, name) {
    const a = el("a"), url = URL.createObjectURL(blob);
    a.href = url; a.download = name; document.body.appendChild(a); a.click(); a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 5000);
  }
  /* Export: the whole graph fitted into a fixed page with a title block (run, round,
     density, accuracy, box, and what is shown), whatever the current pan and zoom. */
  const EXPORT_W = 1600, EXPORT_H = 1000;
  const exportTitle = function () { return SS.exportTitle(V, data.metrics[V.state.round] || {}, headline(), labelOf); };
  const exportDraw = function (P, w, h) { SS.exportDraw(P, V, w, h, exportTitle()); };
  function svgText() { const P = new SS.SvgPainter(EXPORT_W, EXPORT_H); exportDraw(P, EXPORT_W, EXPORT_H); return P.svg(); }
  function exportCanvas() {
    const c = document.createElement("canvas"), k = 2;
    c.width = EXPORT_W * k; c.height = EXPORT_H * k;
    const g = c.getContext("2d"); g.setTransform(k, 0, 0, k, 0, 0);
    exportDraw(new SS.CanvasPainter(g), EXPORT_W, EXPORT_H);
    return c;
  }
  const base = function () { return "sparsescope-round" + V.state.round + (V.state.out !== null ? "-out" + V.state.out : ""); };
  $("png").onclick = function () { exportCanvas().toBlob(function (b) { download(b, base() + ".png"); }, "image/png"); };
  $("svg").onclick = function () { download(new Blob([svgText()], { type: "image/svg+xml" }), base() + ".svg"); };
  $("link").onclick = function () {
    const t = $("link-text"); t.hidden = false; t.value = location.href; t.select();
    try { navigator.clipboard.writeText(location.href).catch(function () {}); } catch (err) { /* no clipboard here */ }
  };

  /* ---- test and benchmark hooks -------------------------------------------- */
  const api = {
    ready: false,
    values: function () { if (!V.values) return null; const o = {}; V.G.layers.forEach(function (L) { o[L.name] = Array.from(V.values.post[L.name]); }); return o; },
    input: function () { const x = V.state.mode === "input" ? currentInput() : null; return x ? Array.from(x) : null; },
    state: function () { return JSON.parse(JSON.stringify(V.state)); },
    hash: hashOf,
    /* shown units with their screen position (CSS px in the canvas) and whether drawn faded */
    placed: function () {
      const out = [], geo = SS.geometry(V);
      V.G.layers.forEach(function (L) {
        if (L.kind === "input") return;
        for (let i = 0; i < L.size; i++) {
          const y = V.pos[L.name][i];
          if (y !== y) continue;
          const p = geo.port(L, i, false);
          out.push({ id: SS.nodeId(L, i), x: p[0] * V.view.s + V.view.tx, y: p[1] * V.view.s + V.view.ty, live: !!V.liveAll[L.name][i] });
        }
      });
      return out;
    },
    visibleEdges: function () {
      const out = [];
      V.G.layers.forEach(function (L) { if (L.kind === "affine") for (let e = 0; e < L.dst.length; e++) if (V.visible[L.name][L.dst[e]]) out.push([L.name, L.dst[e], L.src[e]]); });
      return out;
    },
    graph: function () {
      return V.G.layers.filter(function (L) { return L.kind === "affine"; }).map(function (L) {
        return { name: L.name, dst: Array.from(L.dst), src: Array.from(L.src), weight: Array.from(L.w), bias: Array.from(L.bias),
          lo: L.lo ? Array.from(L.lo) : null, hi: L.hi ? Array.from(L.hi) : null, pre_lo: L.preLo ? Array.from(L.preLo) : null, pre_hi: L.preHi ? Array.from(L.preHi) : null };
      });
    },
    set: function (patch) { Object.assign(V.state, patch); recompute(); },
    select: function (id) { select(id, true); },
    setDrawn: function (arr) { V.drawn.set(arr); showPad(); V.state.input = { drawn: true }; V.state.mode = "input"; recompute(); },
    pngDataURL: function () { return exportCanvas().toDataURL("image/png"); },
    svgText: svgText,
    draw: draw,
    pan: function (dx, dy) { V.view.tx += dx; V.view.ty += dy; },
    zoom: function (f) { zoomAt(f, canvas.clientWidth / 2, canvas.clientHeight / 2); pending = false; },
    fit: fit,
    frames: function () { return V.frames; },
    /* n animation frames of pan + zoom; resolves to per-frame times (ms):
       `frame` between successive animation frames, `draw` in the draw call */
    benchPanZoom: function (n, full) {  /* full: redraw everything each frame, no snapshot */
      return new Promise(function (resolve) {
        const frameMs = [], drawMs = [];
        let last = null, k = 0;
        function step(ts) {
          if (last !== null) frameMs.push(ts - last);
          last = ts;
          if (k++ >= n) { resolve({ frame: frameMs, draw: drawMs }); return; }
          const f = k % 20 < 10 ? 1.03 : 1 / 1.03;
          V.view.tx += 3; V.view.ty += k % 2 ? 2 : -2;
          if (!full) motion();  /* the same path as a user's drag or wheel */
          zoomAt(f, canvas.clientWidth / 2, canvas.clientHeight / 2); pending = false;
          const t = performance.now(); if (full) draw(); else frame(); drawMs.push(performance.now() - t);
          requestAnimationFrame(step);
        }
        requestAnimationFrame(step);
      });
    }
  };
  window.sparsescope = api;

  readHashSafely();
  recompute();
  fit();
};

