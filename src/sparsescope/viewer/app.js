/* sparsescope viewer -- the page's state: start-up, the round's graph, derived state.
   SS.start builds one context `A` (the data, the view state V, DOM helpers) and hands it to
   the other parts, each of which adds its functions to A:
     stage.js  drawing, pan/zoom, hit testing, events on the graph canvas;
     panel.js  the side panel (round slider, view controls, figures, selection card);
     inputs.js test-image thumbnails, the drawing pad, the output scores;
     share.js  the URL hash (the view state) and export (PNG, SVG, link);
     hooks.js  window.sparsescope, the test and benchmark hooks.
   All data-derived text goes through textContent; no HTML parsing of data. */
/* Start the page.  `loaded` resolves once the deflated blocks (other rounds, samples)
   are inflated: the current round draws before that; the round slider and the
   thumbnails come alive, and `ready` is set, once it has resolved. */
SS.start = function (data, loaded) {
  const A = SS.context(data, loaded);
  SS.stage(A); SS.panel(A); SS.inputs(A); SS.share(A); SS.hooks(A);
  A.readHashSafely();
  A.recompute();
  A.fit();
  /* view --exact: the simplified graph and its certificate, once inflated (before `ready`) */
  loaded.then(function () {
    if (!SS.simplifiedDoc) return;
    if (!A.V.simplified) { A.V.simplified = SS.simplifiedDoc; A.V.facts = SS.factIndex(SS.simplifiedDoc.facts); }
    A.V.loadWitness = function (x) { A.V.drawn.set(x); A.showPad(); A.V.state.input = { drawn: true }; A.V.state.mode = "input"; A.recompute(); };
    A.recompute();
  });
};

SS.context = function (data, loaded) {
  const $ = function (id) { return document.getElementById(id); };
  const el = SS.el;
  const t0 = performance.now();
  const doc = JSON.parse($("flowgraph").textContent);
  const V = {
    data: data, layout: data.layout, R: 10, cache: {}, samples: SS.samples(data.samples),
    state: { round: data.current, mode: "weights", out: null, input: null, sel: null, inEdges: false, unused: false, simp: false },
    view: { s: 1, tx: 0, ty: 0 }, drawn: new Float64Array(0), values: null, highlight: null, frames: 0
  };
  V.cache[data.current] = SS.fromDoc(doc);
  if (SS.simplifiedDoc) { V.simplified = SS.simplifiedDoc; V.facts = SS.factIndex(SS.simplifiedDoc.facts); }  /* already inflated (a link waited) */
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
    if (V.state.simp && r === data.current && V.simplified) {  /* the exactly simplified graph (opened round only) */
      if (!V.simpG) V.simpG = SS.fromDag(V.simplified.dag, V.G0);
      return V.simpG;
    }
    if (!V.cache[r]) V.cache[r] = SS.fromPacked(data.rounds[r], V.G0);
    return V.cache[r];
  }
  function currentInput() {
    const s = V.state.input;
    if (!s) return null;
    if (s.sample !== undefined) { const k = V.samples.pos(s.sample); return k >= 0 ? V.samples.x(k) : null; }
    return V.drawn;
  }

  const A = { data: data, loaded: loaded, $: $, el: el, t0: t0, V: V, canvas: canvas, ctx: ctx, L0: L0, inRows: inRows,
    inCols: inCols, labelOf: labelOf, fewInputEdges: fewInputEdges, graphFor: graphFor, currentInput: currentInput };
  A.outL = V.G0.layers[V.G0.layers.length - 1];
  A.nR = data.metrics.length;
  const fit = function () { A.fit(); }, panel = function () { A.panel(); }, writeHash = function () { A.writeHash(); };
  const redraw = function () { A.redraw(); };
  /* ---- derived state ------------------------------------------------ */
  function recompute() {
    const G = V.G = graphFor(V.state.round), st = V.state;
    A.slowFrames = 0;
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
      V.off = SS.alwaysOff(G);
      V.offCount = 0;
      G.layers.forEach(function (L) { const y = V.pos[L.name]; if (y) for (let i = 0; i < L.size; i++) if (V.off[L.name][i] && y[i] === y[i]) V.offCount++; });
      if (A.api.firstRenderMs !== undefined) fit();
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
      if (V.imgRound !== V.state.round + (V.G.simplified ? "s" : "")) {
        V.weightImages = [];
        for (let j = 0; j < first.size; j++) {
          const v = new Float64Array(L0.size);
          for (let e = first.start[j]; e < first.start[j + 1]; e++) v[first.src[e]] = first.w[e];
          V.weightImages.push(SS.valueImage(document.createElement("canvas"), v, inRows, inCols, wmax));
        }
        V.imgRound = V.state.round + (V.G.simplified ? "s" : "");
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

  A.recompute = recompute;
  return A;
};
