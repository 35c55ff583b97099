/* sparsescope conv viewer -- the page: the channel-level view of a convolutional flowgraph,
   channels that expand to their positions, the unrolled per-output subgraph, per-input feature
   maps (a test image, numbered by its test-set index, or a drawing), a slider across the embedded
   rounds, and a fitted, titled PNG export.  The graph itself: convgraph.js.  All data-derived text
   goes through textContent. */
(function () {
  "use strict";
  const T0 = performance.now();
  const D = JSON.parse(document.getElementById("sparsescope-data").textContent);
  const $ = (id) => document.getElementById(id);
  const nodeId = SS.conv.nodeId, chanOf = SS.conv.chanOf, chanId = SS.conv.chanId;

  // -- rounds: the opened one exact, the others unrolled from their compact form once inflated -----
  const BASE = SS.conv.fromDoc(JSON.parse(document.getElementById("flowgraph").textContent));
  const cache = {};
  cache[D.current] = BASE;
  const SLIDER = D.rounds ? D.rounds.map((r, i) => (r !== null || i === D.current ? i : -1)).filter((i) => i >= 0) : [D.current];
  const FACTS = { facts: null, simplified: null };  /* view --exact: the certificate and the simplified graph, once inflated */
  function graphFor(r) {
    if (S.simp && r === D.current && FACTS.simplified) return cache.simp || (cache.simp = SS.conv.fromDag(FACTS.simplified.dag, BASE));
    if (!cache[r]) cache[r] = SS.conv.fromPacked(D.rounds[r], BASE, { round: (D.metrics[r] || {}).round });
    return cache[r];
  }
  let C = BASE, L = C.L, OUT = C.OUT;
  let SAMPLES = { n: 0, y: [], index: [], pos: () => -1, x: null };
  const inL = BASE.L[0], side = inL.map ? [inL.map[1], inL.map[2]] : [1, inL.size];
  const drawn = new Float64Array(inL.size);

  // -- state -----------------------------------------------------------------------------------
  const S = { round: D.current, view: "channels", mode: "weights", output: null, input: null, inputName: "", expanded: new Set(),
              tx: 0, ty: 0, k: 1, lv: null, vals: null, scene: null, hover: null, sel: null, simp: false };
  const CELL = 2.5, XCELL = 7, GAP = 150, PAD = 8, HEAD = 16;
  function currentInput() {
    const s = S.input;
    if (!s) return null;
    if (s.drawn) return drawn;
    const k = SAMPLES.pos(s.sample);
    return k >= 0 ? SAMPLES.x(k) : null;
  }
  function values() {
    const x = S.mode === "input" ? currentInput() : null;
    S.vals = x ? SS.conv.evaluate(C, x) : null;
    if (!S.input) S.inputName = "";
    else if (S.input.drawn) S.inputName = "drawn input";
    else S.inputName = "test image #" + S.input.sample + " (label " + SAMPLES.y[SAMPLES.pos(S.input.sample)] + ")";
  }

  // -- layout: columns of cards; expanded channels draw at XCELL per position ------------------
  function layout() {
    const lv = S.lv, cols = [];
    let x = 0, tallest = 0;
    for (const l of L) {
      const cards = [];
      const liveCh = new Uint8Array(l.channels);
      const n = lv.nodes[l.name];
      for (let i = 0; i < l.size; i++) if (n[i]) liveCh[chanOf(l, i)] = 1;
      let y = 0, w = 0;
      for (let c = 0; c < l.channels; c++) {
        if (!liveCh[c]) continue;
        let cw, chh, cell = 0;
        if (l.map) {
          const ex = S.view === "unrolled" || S.expanded.has(chanId(l, c));
          cell = ex ? XCELL : CELL;
          cw = l.map[2] * cell + 2 * PAD; chh = l.map[1] * cell + PAD + HEAD;
        } else { cw = 74; chh = 20; }
        cards.push({ l, c, x, y, w: cw, h: chh, cell, id: chanId(l, c) });
        y += chh + 10; w = Math.max(w, cw);
      }
      tallest = Math.max(tallest, y);
      cols.push({ l, x, w, h: y, cards });
      x += w + GAP;
    }
    for (const col of cols) { const dy = (tallest - col.h) / 2; for (const cd of col.cards) { cd.y += dy; cd.x = col.x + (col.w - cd.w) / 2; } }
    const index = {};
    for (const col of cols) for (const cd of col.cards) index[col.l.name + ":" + cd.c] = cd;
    S.scene = { cols, index, width: x - GAP, height: tallest };
    buildEdges();
    buildImages();
  }
  function anchor(l, i, side) {  // world point of node i of layer l: its position if expanded, else its card's side
    const cd = S.scene.index[l.name + ":" + chanOf(l, i)];
    if (!cd) return null;
    if (l.map && cd.cell === XCELL) {
      const p = i - chanOf(l, i) * l.plane, yy = Math.floor(p / l.map[2]), xx = p % l.map[2];
      return [cd.x + PAD + (xx + 0.5) * cd.cell, cd.y + HEAD + (yy + 0.5) * cd.cell, true];
    }
    return [side > 0 ? cd.x + cd.w : cd.x, cd.y + cd.h / 2, !l.map];
  }
  /* Lines between drawn positions (per layer and sign, as flat x1,y1,x2,y2 lists: S.segs) and one
     curve per channel pair where either end is a folded card (S.curves); the canvas strokes them as
     Path2Ds, the SVG export writes the same lists. */
  function buildEdges() {
    const segs = [], curves = [];
    let lines = 0;
    for (const q of SS.conv.groups(C)) {  /* a layer's own edges, then (simplified graph) its skip edges */
      const l = q.l, m = S.lv.edges[q.key], agg = new Map(), P = [], N = [];
      for (let e = 0; e < m.length; e++) {
        if (!m[e]) continue;
        const a = anchor(q.srcLayer, q.src[e], 1), b = anchor(l, q.dst[e], -1);
        if (!a || !b) continue;
        if (a[2] && b[2]) {
          (q.w[e] > 0 ? P : N).push(a[0], a[1], b[0], b[1]); lines++;
        } else {
          const key = chanOf(l, q.dst[e]) * 65536 + chanOf(q.srcLayer, q.src[e]) * 2 + (a[2] ? 1 : 0);
          const g = agg.get(key) || { layer: l.name, a, b, n: 0, ties: new Set() };
          if (a[2]) g.a = a;  // an expanded source: one curve per channel pair, drawn from the card's side
          g.n++; g.ties.add(q.tie ? q.tie[e] : e); agg.set(key, g);
        }
      }
      if (P.length) segs.push({ layer: l.name, sign: "pos", xy: P });
      if (N.length) segs.push({ layer: l.name, sign: "neg", xy: N });
      for (const g of agg.values()) curves.push(g);
    }
    const pos = new Path2D(), neg = new Path2D(), cp = new Path2D();
    for (const sg of segs) {
      const p = sg.sign === "pos" ? pos : neg, xy = sg.xy;
      for (let k = 0; k < xy.length; k += 4) { p.moveTo(xy[k], xy[k + 1]); p.lineTo(xy[k + 2], xy[k + 3]); }
    }
    for (const g of curves) {
      const [x1, y1] = g.a, [x2, y2] = g.b, mx = (x1 + x2) / 2;
      cp.moveTo(x1, y1); cp.bezierCurveTo(mx, y1, mx, y2, x2, y2);
    }
    S.segs = segs; S.curves = curves;
    S.paths = { pos, neg, curves: cp, lines, folded: curves.length };
  }
  function tileColour(l, i, vals) {
    const n = S.lv.nodes[l.name][i];
    if (vals) {
      const v = vals[l.name][i];
      if (l.kind === "input") { const g = 255 * (1 - Math.min(1, Math.abs(v))); return [g, g, g]; }
      const t = Math.min(1, Math.abs(v) / (S.vmax[l.name] || 1));
      return v > 0 ? [199 - 199 * t, 233 - 129 * t, 192 - 137 * t] : v < 0 ? [253 - 88 * t, 208 - 208 * t, 195 - 157 * t] : [236, 236, 236];
    }
    if (!n) return [236, 236, 236];
    const h = l.hi ? Math.max(0, l.hi[i]) / (S.vmax[l.name] || 1) : 1;
    return [190 - 155 * h, 200 - 149 * h, 220 - 131 * h];
  }
  function buildImages() {
    const vals = S.mode === "input" && S.vals ? S.vals : null;
    S.linPath = null;  /* simplified graph: a purple frame on each drawn position proven always on (linear) */
    if (C.simplified) {
      S.linPath = new Path2D();
      for (const col of S.scene.cols) {
        const l = col.l;
        if (!l.map || !l.linear) continue;
        for (const cd of col.cards) {
          if (cd.cell !== XCELL) continue;
          for (let p = 0; p < l.plane; p++) {
            const i = cd.c * l.plane + p;
            if (l.linear[i] && S.lv.nodes[l.name][i]) S.linPath.rect(cd.x + PAD + (p % l.map[2]) * XCELL + 0.5, cd.y + HEAD + Math.floor(p / l.map[2]) * XCELL + 0.5, XCELL - 1, XCELL - 1);
          }
        }
      }
    }
    S.vmax = {};
    for (const l of L) {
      let m = 0;
      const src = vals ? vals[l.name] : l.hi;
      if (src) for (let i = 0; i < l.size; i++) if (vals || S.lv.nodes[l.name][i]) m = Math.max(m, Math.abs(src[i]));
      S.vmax[l.name] = m;
    }
    S.images = {};
    for (const col of S.scene.cols) {
      const l = col.l;
      if (!l.map) continue;
      for (const cd of col.cards) {
        const cv = document.createElement("canvas");
        cv.width = l.map[2]; cv.height = l.map[1];
        const ctx = cv.getContext("2d"), img = ctx.createImageData(cv.width, cv.height);
        for (let p = 0; p < l.plane; p++) {
          const rgb = tileColour(l, cd.c * l.plane + p, vals);
          img.data[4 * p] = rgb[0]; img.data[4 * p + 1] = rgb[1]; img.data[4 * p + 2] = rgb[2]; img.data[4 * p + 3] = 255;
        }
        ctx.putImageData(img, 0, 0);
        S.images[cd.id] = cv;
      }
    }
  }

  // -- drawing -----------------------------------------------------------------------------------
  const canvas = $("view"), ctx = canvas.getContext("2d");
  let dpr = 1;
  function resize() {
    dpr = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(canvas.clientWidth * dpr));
    canvas.height = Math.max(1, Math.round(canvas.clientHeight * dpr));
  }
  /* The scene in world coordinates on `g` (its transform already maps world to pixels at zoom k). */
  function paint(g, k, hover) {
    g.lineWidth = 1 / k;
    g.globalAlpha = 0.45;
    g.strokeStyle = "#1a9641"; g.stroke(S.paths.pos);
    g.strokeStyle = "#d7191c"; g.stroke(S.paths.neg);
    g.globalAlpha = 0.7; g.lineWidth = 1.2 / Math.sqrt(k);
    g.strokeStyle = "#7a8699"; g.stroke(S.paths.curves);
    g.globalAlpha = 1;
    g.imageSmoothingEnabled = false;
    const showText = k > 0.35;
    g.font = "10px system-ui, sans-serif"; g.textBaseline = "middle";
    for (const col of S.scene.cols) {
      for (const cd of col.cards) {
        g.fillStyle = "#fff"; g.strokeStyle = hover && hover.card === cd ? "#2b6cb0" : "#8c8c8c";
        g.lineWidth = 1 / k;
        g.fillRect(cd.x, cd.y, cd.w, cd.h); g.strokeRect(cd.x, cd.y, cd.w, cd.h);
        if (col.l.map) g.drawImage(S.images[cd.id], cd.x + PAD, cd.y + HEAD, col.l.map[2] * cd.cell, col.l.map[1] * cd.cell);
        if (!col.l.map && col.l.linear && col.l.linear[cd.c]) { g.strokeStyle = "#7b4fb0"; g.lineWidth = 2 / k; g.strokeRect(cd.x - 2, cd.y - 2, cd.w + 4, cd.h + 4); }
        if (showText) {
          g.fillStyle = "#222";
          let label = cd.id;
          if (!col.l.map) {
            label = nodeId(col.l, cd.c);
            if (S.mode === "input" && S.vals) label += " " + SS.short(S.vals[col.l.name][cd.c]);
            g.fillText(label, cd.x + 5, cd.y + cd.h / 2);
          } else g.fillText(label, cd.x + 5, cd.y + 8);
        }
      }
    }
    if (S.linPath) { g.globalAlpha = 0.9; g.strokeStyle = "#7b4fb0"; g.lineWidth = 1 / k; g.stroke(S.linPath); g.globalAlpha = 1; }
  }
  function draw() {
    const t = performance.now();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#fbfbfa"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(dpr * S.k, 0, 0, dpr * S.k, dpr * S.tx, dpr * S.ty);
    paint(ctx, S.k, S.hover);
    S.lastDrawMs = performance.now() - t;
    snap = null;  // the canvas holds a full frame; copied only when motion starts (copying forces rasterising)
    full = { k: S.k, tx: S.tx, ty: S.ty };
  }
  // While panning/zooming, move a bitmap of the last full frame; redraw fully once motion stops.
  const snapCanvas = document.createElement("canvas"), snapCtx = snapCanvas.getContext("2d");
  let snap = null, full = null, settle = 0;
  function drawMoving() {
    if (!snap && full) {
      snapCanvas.width = canvas.width; snapCanvas.height = canvas.height;
      snapCtx.drawImage(canvas, 0, 0);
      snap = full;
    }
    if (!snap) { draw(); return; }
    const r = S.k / snap.k;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#fbfbfa"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(r, 0, 0, r, dpr * (S.tx - snap.tx * r), dpr * (S.ty - snap.ty * r));
    ctx.drawImage(snapCanvas, 0, 0);
    clearTimeout(settle);
    settle = setTimeout(() => requestAnimationFrame(draw), 150);
  }
  function fitted(w, h, top) {  /* the whole scene centred in w x h below a `top` margin */
    const sc = S.scene, k = Math.min((w - 40) / Math.max(sc.width, 1), (h - top - 20) / Math.max(sc.height, 1), 4);
    return { k, tx: (w - sc.width * k) / 2, ty: top + (h - top - sc.height * k) / 2 };
  }
  function fit() { const v = fitted(canvas.clientWidth, canvas.clientHeight, 40); S.k = v.k; S.tx = v.tx; S.ty = v.ty; }
  let pending = false;
  function redraw() { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; draw(); }); } }
  let pendingMove = false;
  function redrawMoving() { if (!pendingMove) { pendingMove = true; requestAnimationFrame(() => { pendingMove = false; drawMoving(); }); } }


  // -- interaction ---------------------------------------------------------------------------------
  function world(ev) { const r = canvas.getBoundingClientRect(); return [(ev.clientX - r.left - S.tx) / S.k, (ev.clientY - r.top - S.ty) / S.k]; }
  function hit(wx, wy) {
    for (const col of S.scene.cols) {
      if (wx < col.x - 2 || wx > col.x + col.w + 2) continue;
      for (const cd of col.cards) {
        if (wx < cd.x || wx > cd.x + cd.w || wy < cd.y || wy > cd.y + cd.h) continue;
        const l = col.l;
        let node = l.map ? null : cd.c;
        if (l.map) {
          const xx = Math.floor((wx - cd.x - PAD) / cd.cell), yy = Math.floor((wy - cd.y - HEAD) / cd.cell);
          if (xx >= 0 && yy >= 0 && xx < l.map[2] && yy < l.map[1]) node = cd.c * l.plane + yy * l.map[2] + xx;
        }
        return { card: cd, layer: l, node };
      }
    }
    return null;
  }
  const fmt = (v) => (Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : v.toFixed(4));
  function describe(h) {
    const l = h.layer, lines = [h.card.id];
    if (h.node !== null) {
      lines[0] = nodeId(l, h.node) + (S.lv.nodes[l.name][h.node] ? "" : "  (not live)");
      if (l.lo) lines.push("bounds <" + fmt(l.lo[h.node]) + ", " + fmt(l.hi[h.node]) + ">");
      if (S.vals) lines.push("value  " + fmt(S.vals[l.name][h.node]) + "  (" + S.inputName + ")");
      if (l.srcLayer) { let k = 0; for (const g of SS.conv.into(l)) for (let e = 0; e < g.dst.length; e++) if (g.dst[e] === h.node) k++; lines.push("fan-in " + k + " edges"); }
      if (l.linear && l.linear[h.node]) lines.push("linear over the box (proven always on)");
      for (const f of SS.factRowsAt(FACTS, nodeId(l, h.node), S.round === D.current, roundOf(D.current))) lines.push(f[0] + ": " + f[1]);
    }
    if (l.map) {
      let n = 0; const nodes = S.lv.nodes[l.name];
      for (let p = 0; p < l.plane; p++) n += nodes[h.card.c * l.plane + p];
      lines.push("channel " + h.card.id + ": " + n + "/" + l.plane + " positions live");
      if (l.tie && l.tieShape.length === 4) {
        const [, I, k] = l.tieShape, per = new Map();
        for (let e = 0; e < l.tie.length; e++) {
          const t = l.tie[e]; if (Math.floor(t / (I * k * k)) !== h.card.c) continue;
          per.set(t, l.w[e]);
        }
        const ws = [...per.entries()].sort((a, b) => a[0] - b[0]).map(([t, w]) => {
          const i = Math.floor(t / (k * k)) % I, ky = Math.floor(t / k) % k, kx = t % k;
          return "  [" + i + "," + ky + "," + kx + "] " + fmt(w);
        });
        lines.push("kernel weights (in, ky, kx): " + ws.length); lines.push(...ws.slice(0, 12));
      }
    }
    return lines.join("\n");
  }
  let drag = null;
  canvas.addEventListener("mousedown", (ev) => { drag = { x: ev.clientX, y: ev.clientY, tx: S.tx, ty: S.ty, moved: false }; });
  window.addEventListener("mouseup", (ev) => {
    if (drag && !drag.moved && ev.target === canvas) {
      const h = hit(...world(ev));
      S.sel = h ? (h.node !== null ? nodeId(h.layer, h.node) : h.card.id) : null;
      if (h && h.layer.map && S.view === "channels") toggle(h.card.id); else share.writeHash();
    }
    drag = null;
  });
  canvas.addEventListener("mousemove", (ev) => {
    if (drag) {
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      S.tx = drag.tx + dx; S.ty = drag.ty + dy; redrawMoving(); return;
    }
    const h = hit(...world(ev)), tip = $("tip");
    S.hover = h;
    if (!h) { tip.hidden = true; return; }
    const text = describe(h);
    tip.textContent = text; tip.hidden = false;
    const r = canvas.getBoundingClientRect();
    tip.style.left = Math.min(ev.clientX - r.left + 14, r.width - 260) + "px"; tip.style.top = (ev.clientY - r.top + 14) + "px";
    $("sel").textContent = text;
  });
  canvas.addEventListener("mouseleave", () => { $("tip").hidden = true; });
  function zoomAt(f, cx, cy) { S.tx = cx - (cx - S.tx) * f; S.ty = cy - (cy - S.ty) * f; S.k *= f; redrawMoving(); }
  canvas.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = canvas.getBoundingClientRect();
    zoomAt(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
  }, { passive: false });
  $("fit").onclick = () => { fit(); redraw(); };
  $("zoomin").onclick = () => zoomAt(1.25, canvas.clientWidth / 2, canvas.clientHeight / 2);
  $("zoomout").onclick = () => zoomAt(0.8, canvas.clientWidth / 2, canvas.clientHeight / 2);
  window.addEventListener("keydown", (ev) => {
    if (ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT") return;
    if (ev.key === "f") { fit(); redraw(); } else if (ev.key === "u") set({ view: "unrolled" }); else if (ev.key === "c") set({ view: "channels" });
  });
  window.addEventListener("resize", () => { resize(); redraw(); });

  function toggle(id) { if (S.expanded.has(id)) S.expanded.delete(id); else S.expanded.add(id); layout(); status(); redraw(); share.writeHash(); }
  function status() {
    const sz = S.sizes;
    $("status").textContent = (S.view === "unrolled" ? "unrolled" : "channels") + " \u00b7 " + sz.vertices + " vertices, " + sz.edges +
      " edges \u00b7 drawn: " + S.paths.lines + " lines, " + S.paths.folded + " channel curves";
  }
  const pct = (v) => (typeof v === "number" ? (100 * v).toFixed(2) + "%" : "\u2014");
  function roundOf(r) { const m = D.metrics[r] || {}; return m.round !== undefined ? m.round : C.meta.round; }
  /* the header names the run and the round on the slider; the subtitle gives its figures */
  function headline() { return D.title + " \u00b7 round " + roundOf(S.round); }
  function figures() {
    const m = D.metrics[S.round] || {}, acc = m.test_accuracy !== undefined ? m.test_accuracy : C.meta.test_accuracy;
    return (m.density !== undefined ? "density " + pct(m.density) + " \u00b7 " : "") + "test accuracy " + pct(acc) +
      (C.box ? " \u00b7 bounds over box \u201c" + C.box + "\u201d" : " \u00b7 no bounds embedded for this round");
  }
  function header() {
    const h = headline();
    $("title").textContent = h; document.title = h;
    $("subtitle").textContent = figures();
    $("round-label").textContent = roundOf(S.round) + " (" + (SLIDER.indexOf(S.round) + 1) + " of " + SLIDER.length + " embedded)";
    for (const tr of $("round-table").querySelectorAll("tr")) {
      const i = Number(tr.dataset.i), m = D.metrics[i] || {};
      tr.style.fontWeight = i === S.round || (S.round < 0 && m.round === C.meta.round) ? "700" : "";
    }
  }
  function panel() {
    const sz = S.sizes, f = $("sizes");
    f.textContent = "";
    const rows = [["vertices", sz.vertices], ["edges", sz.edges], ["channel nodes", sz.channelNodes],
                  ["channel edges", sz.channelEdges], ["kernel weights", sz.weights]];
    if (FACTS.simplified && S.round !== D.current) rows.push(["simplified (exact)", "exact analysis: round " + roundOf(D.current) + " only"]);
    else if (FACTS.simplified) {  /* the sizes are the opened round's */
      const z = FACTS.simplified.sizes, o = z.original, n = z.simplified;
      rows.push(["simplified (exact)", n.vertices + " vertices, " + n.edges + " edges (original " + o.vertices + ", " + o.edges + ")"],
                ["composed units", FACTS.simplified.composed.length + "; facts certified: " + FACTS.simplified.facts.length]);
    }
    $("simp-row").hidden = !document.getElementById("simplified");
    $("graph-orig").classList.toggle("on", !S.simp); $("graph-simp").classList.toggle("on", !!S.simp);
    $("graph-simp").disabled = !FACTS.simplified || S.round !== D.current;
    for (const [k, v] of rows) { const a = document.createElement("span"); a.className = "k"; a.textContent = k; const b = document.createElement("span"); b.textContent = String(v); f.append(a, b); }
    sel.value = S.output === null ? "" : String(S.output);
    $("view-channels").classList.toggle("on", S.view === "channels"); $("view-unrolled").classList.toggle("on", S.view === "unrolled");
    $("mode-weights").classList.toggle("on", S.mode === "weights"); $("mode-input").classList.toggle("on", S.mode === "input");
    for (const c of $("thumbs").children) c.classList.toggle("on", S.input !== null && !S.input.drawn && Number(c.dataset.i) === S.input.sample);
    $("round").value = String(SLIDER.indexOf(S.round));
    header();
    const sc = $("scores"); sc.textContent = "";
    if (S.vals) {
      const o = S.vals[OUT.name], top = o.indexOf(Math.max(...o));
      $("input-info").textContent = S.inputName + " \u00b7 prediction " + nodeId(OUT, top) + (OUT.labels ? " \u201c" + OUT.labels[top] + "\u201d" : "");
      for (let i = 0; i < o.length; i++) { const d = document.createElement("div"); d.textContent = nodeId(OUT, i) + " " + SS.short(o[i]); if (i === top) d.style.fontWeight = "700"; sc.append(d); }
    } else $("input-info").textContent = SAMPLES.n ? "Pick a test image or draw to see every node's value." : "Draw to see every node's value.";
  }
  function set(opts) {
    if ("round" in opts && opts.round !== S.round && SLIDER.indexOf(opts.round) >= 0) {
      S.round = opts.round; S.simp = false; C = graphFor(S.round); L = C.L; OUT = C.OUT;
      S.lv = SS.conv.live(C, S.output); S.sizes = SS.conv.sizes(C, S.lv);
    }
    if ("simp" in opts && !!opts.simp !== S.simp && (!opts.simp || (FACTS.simplified && S.round === D.current))) {
      S.simp = !!opts.simp; C = graphFor(S.round); L = C.L; OUT = C.OUT;
      S.lv = SS.conv.live(C, S.output); S.sizes = SS.conv.sizes(C, S.lv);
    }
    if ("view" in opts) S.view = opts.view;
    if ("mode" in opts) S.mode = opts.mode;
    if ("output" in opts) { S.output = opts.output; S.lv = SS.conv.live(C, S.output); S.sizes = SS.conv.sizes(C, S.lv); }
    if ("sample" in opts) S.input = opts.sample === null ? null : { sample: opts.sample };
    if ("drawn" in opts) { drawn.set(opts.drawn); showPad(); S.input = { drawn: true }; }
    if ("expand" in opts) { for (const id of opts.expand) S.expanded.add(id); }
    if ("fold" in opts) { for (const id of opts.fold) S.expanded.delete(id); }
    if ("expanded" in opts) S.expanded = new Set(opts.expanded);
    if ("select" in opts) S.sel = opts.select;
    if (S.mode === "input" && !S.input) S.mode = "weights";
    values();
    const refit = "view" in opts || "output" in opts || "round" in opts || "simp" in opts;
    layout(); if (refit) fit(); panel(); status(); redraw(); share.writeHash();
  }
  $("view-channels").onclick = () => set({ view: "channels" });
  $("graph-orig").onclick = () => set({ simp: false });
  $("graph-simp").onclick = () => set({ simp: true });
  $("view-unrolled").onclick = () => set({ view: "unrolled" });
  $("mode-weights").onclick = () => set({ mode: "weights" });
  $("mode-input").onclick = () => set(S.input ? { mode: "input" } : SAMPLES.n ? { mode: "input", sample: SAMPLES.index[0] } : { mode: "input", drawn: drawn });
  const sel = $("output");
  for (let i = 0; i < OUT.size; i++) { const o = document.createElement("option"); o.value = String(i); o.textContent = nodeId(OUT, i) + (OUT.labels ? " \u201c" + OUT.labels[i] + "\u201d" : ""); sel.append(o); }
  sel.onchange = () => set({ output: sel.value === "" ? null : Number(sel.value) });
  const slider = $("round");
  slider.max = String(SLIDER.length - 1); slider.disabled = true;  /* until the other rounds are inflated */
  slider.addEventListener("input", () => set({ round: SLIDER[Number(slider.value)] }));
  if (SLIDER.length < 2) $("round-row").hidden = true;

  // -- inputs: test images numbered by their test-set index, and a drawing pad --------------------
  function buildThumbs() {
    for (let k = 0; k < SAMPLES.n; k++) {
      const t = SAMPLES.index[k], cv = SS.greyImage(document.createElement("canvas"), SAMPLES.x(k), side[0], side[1]);
      cv.dataset.i = String(t); cv.title = "test image #" + t + ", label " + SAMPLES.y[k];
      cv.onclick = () => set({ sample: t, mode: "input" });
      $("thumbs").append(cv);
    }
    if (!SAMPLES.n) $("thumbs").hidden = true;
  }
  const pad = $("pad");
  let painting = null;
  function showPad() { SS.greyImage(pad, drawn, side[0], side[1]); }
  function padPos(ev) { const b = pad.getBoundingClientRect(); return [(ev.clientX - b.left) / b.width * side[1], (ev.clientY - b.top) / b.height * side[0]]; }
  function strokeTo(p) {
    const q = painting.last, n = Math.max(1, Math.ceil(Math.hypot(p[0] - q[0], p[1] - q[1]) * 2));
    for (let j = 1; j <= n; j++) SS.paint(drawn, side[0], side[1], q[0] + (p[0] - q[0]) * j / n, q[1] + (p[1] - q[1]) * j / n);
    painting.last = p;
    set({ drawn: drawn, mode: "input" });
  }
  pad.addEventListener("mousedown", (ev) => { ev.preventDefault(); const p = padPos(ev); painting = { last: p }; strokeTo(p); });
  window.addEventListener("mousemove", (ev) => { if (painting) strokeTo(padPos(ev)); });
  window.addEventListener("mouseup", () => { painting = null; });
  $("pad-clear").onclick = () => { drawn.fill(0); showPad(); if (S.input && S.input.drawn) set({ drawn: drawn }); };
  showPad();

  // -- sharing: the URL hash and the PNG/SVG export (convshare.js) ------------------------------------
  const share = SS.convShare({ S, D, $, drawn, nodeId, headline, figures, fitted, paint, roundOf, PAD, HEAD, XCELL,
    OUT: () => OUT, slider: () => SLIDER,
    channelIds: () => { const ids = new Set(); for (const l of BASE.L) if (l.map) for (let c = 0; c < l.channels; c++) ids.add(chanId(l, c)); return ids; } });
  const exportTitle = share.exportTitle, exportCanvas = share.exportCanvas;

  // -- the round table ------------------------------------------------------------------------------
  const tbl = document.createElement("table");
  D.metrics.forEach((m, i) => {
    const tr = document.createElement("tr");
    tr.dataset.i = String(i);
    const cells = [String(m.round), (100 * m.density).toFixed(2) + "%", Object.values(m.weights_left || {}).join("/"),
                   typeof m.test_accuracy === "number" ? (100 * m.test_accuracy).toFixed(1) + "%" : "",
                   SLIDER.indexOf(i) >= 0 && SLIDER.length > 1 ? "\u25c6" : ""];
    for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.append(td); }
    if (SLIDER.indexOf(i) >= 0 && SLIDER.length > 1) { tr.style.cursor = "pointer"; tr.onclick = () => set({ round: i }); }
    tbl.append(tr);
  });
  $("round-table").append(tbl);

  // -- start ----------------------------------------------------------------------------------------
  resize();
  S.lv = SS.conv.live(C, null); S.sizes = SS.conv.sizes(C, S.lv);
  values();
  layout(); fit(); panel(); status(); draw();
  const link = location.hash.length > 1 ? share.readHash() : null;  /* a link: its view (another round or a test image once inflated) */
  if (link && !link.waits) set(link.opts);
  window.addEventListener("hashchange", () => { if (location.hash !== share.hashOf()) { const h = share.readHash(); if (!h.waits || api.ready) set(h.opts); } });
  const api = {
    ready: false, firstRenderMs: performance.now() - T0, firstFrameMs: 0,
    set, sizes: () => S.sizes, drawn: () => ({ lines: S.paths.lines, curves: S.paths.folded, cards: S.scene.cols.reduce((a, c) => a + c.cards.length, 0) }),
    cards: () => S.scene.cols.flatMap((c) => c.cards.map((cd) => cd.id)),
    value: (id) => { for (const l of L) for (let i = 0; i < l.size; i++) if (nodeId(l, i) === id) return S.vals ? S.vals[l.name][i] : null; return null; },
    outputs: () => (S.vals ? Array.from(S.vals[OUT.name]) : null),
    input: () => { const x = S.mode === "input" ? currentInput() : null; return x ? Array.from(x) : null; },
    state: () => ({ round: S.round, view: S.view, mode: S.mode, output: S.output, input: S.input, inputName: S.inputName, sel: S.sel }),
    slider: () => SLIDER.slice(),
    header: () => ({ title: $("title").textContent, subtitle: $("subtitle").textContent, label: $("round-label").textContent }),
    samples: () => ({ index: SAMPLES.index.slice(), thumbs: Array.from($("thumbs").children, (c) => Number(c.dataset.i)) }),
    simplified: () => (FACTS.simplified ? { sizes: FACTS.simplified.sizes, composed: FACTS.simplified.composed, on: !!C.simplified } : null),
    describe: (id) => { for (const col of S.scene.cols) for (const cd of col.cards) { const l = col.l; for (let i = 0; i < l.size; i++) if (nodeId(l, i) === id) return describe({ card: cd, layer: l, node: i }); } return null; },
    graph: () => L.slice(1).map((l) => ({ name: l.name, dst: Array.from(l.dst), src: Array.from(l.src), weight: Array.from(l.w),
      linear: l.linear ? Array.from(l.linear) : null,
      skips: (l.skips || []).map((g) => ({ source: g.srcLayer.name, dst: Array.from(g.dst), src: Array.from(g.src), weight: Array.from(g.w) })),
      weight_id: l.tie ? Array.from(l.tie) : null, bias: Array.from(l.bias), lo: l.lo ? Array.from(l.lo) : null, hi: l.hi ? Array.from(l.hi) : null })),
    exportTitle, pngDataURL: () => exportCanvas().toDataURL("image/png"), svgText: share.svgText, hash: share.hashOf,
    kind: "conv", setDrawn: (x) => set({ drawn: Float64Array.from(x), mode: "input" }),
    expanded: () => Array.from(S.expanded).sort(),
    /* what the drawing shows: lines [layer, dst, src] between drawn positions, curves [layer, dst channel card, src channel card] */
    drawnEdges: () => {
      const lines = [], curves = [];
      for (const g of SS.conv.groups(C)) {
        const m = S.lv.edges[g.key];
        for (let e = 0; e < m.length; e++) {
          if (!m[e]) continue;
          const a = anchor(g.srcLayer, g.src[e], 1), b = anchor(g.l, g.dst[e], -1);
          if (a && b && a[2] && b[2]) lines.push([g.l.name, nodeId(g.l, g.dst[e]), nodeId(g.srcLayer, g.src[e])]);
        }
      }
      for (const g of S.curves) curves.push(g.layer);
      return { lines, curves };
    },
    benchPanZoom(n) {
      const times = [];
      for (let i = 0; i < n; i++) { S.tx += 3; S.k *= i % 2 ? 1.01 : 0.99; const t = performance.now(); draw(); times.push(performance.now() - t); }
      times.sort((a, b) => a - b);
      return times[Math.floor(times.length / 2)];
    },
    benchFrames(n, full) {  // median interval between animation frames while panning/zooming (rasterising included);
      // full: redraw everything each frame instead of moving the snapshot (what a frame costs once motion stops)
      return new Promise((resolve) => {
        const ts = [];
        let i = 0;
        const step = (t) => {
          ts.push(t); S.tx += 3; S.k *= i % 2 ? 1.01 : 0.99; if (full) draw(); else drawMoving();
          if (++i < n) requestAnimationFrame(step);
          else { const d = []; for (let j = 1; j < ts.length; j++) d.push(ts[j] - ts[j - 1]); d.sort((a, b) => a - b); resolve(d[Math.floor(d.length / 2)]); }
        };
        requestAnimationFrame(step);
      });
    },
  };
  window.sparsescope = api;
  requestAnimationFrame(() => { api.firstFrameMs = performance.now() - T0; });
  /* the other rounds and the test images are deflated: inflate, then enable the slider and thumbnails */
  Promise.all([SS.conv.preload(D), SS.readSimplified()]).then(([, simp]) => {
    if (simp) { FACTS.simplified = simp; FACTS.facts = SS.factIndex(simp.facts); }
    SAMPLES = SS.samples(D.samples);
    buildThumbs();
    slider.disabled = false;
    if (link && link.waits) set(link.opts); else panel();
    api.ready = true;
  }).catch((err) => { $("status").textContent = "this browser cannot read the page's compressed data (" + err + ")"; });
})();
