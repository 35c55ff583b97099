/* sparsescope conv viewer: the channel-level view of a convolutional flowgraph, channels that
   expand to their positions, the unrolled per-output subgraph, per-input feature maps.
   Everything is computed from the embedded flowgraph JSON (docs/flowgraph-schema.md, version 2):
   reachability, the channel view, the sizes, and the node values (float64, edge order). */
(function () {
  "use strict";
  const T0 = performance.now();
  const G = JSON.parse(document.getElementById("flowgraph").textContent);
  const D = JSON.parse(document.getElementById("sparsescope-data").textContent);
  const $ = (id) => document.getElementById(id);

  // -- the graph ---------------------------------------------------------------------------
  const byName = {};
  const L = G.layers.map((d, i) => {
    const size = d.shape.reduce((a, b) => a * b, 1);
    const map = d.shape.length === 3 ? d.shape : d.shape.length === 2 ? [1, d.shape[0], d.shape[1]] : null;
    const e = d.edges || { dst: [], src: [], weight: [] };
    const b = G.bounds ? G.bounds.layers[d.name] : null;
    const l = {
      i, name: d.name, kind: d.kind, shape: d.shape, size, map, act: d.activation || "identity",
      source: d.source, dst: Int32Array.from(e.dst), src: Int32Array.from(e.src), w: Float64Array.from(e.weight),
      tie: e.weight_id ? Int32Array.from(e.weight_id) : null, tieShape: d.weight_shape || null,
      bias: d.bias ? Float64Array.from(d.bias) : new Float64Array(size), labels: d.labels || null,
      lo: b ? Float64Array.from(b.lo) : null, hi: b ? Float64Array.from(b.hi) : null,
    };
    l.channels = map ? (d.shape.length === 3 ? map[0] : 1) : size;
    l.plane = map ? map[1] * map[2] : 1;
    byName[d.name] = l;
    return l;
  });
  for (const l of L) l.srcLayer = l.source ? byName[l.source] : null;
  const OUT = L[L.length - 1];

  function nodeId(l, i) {
    if (l.shape.length === 1) return l.name + "." + i;
    const c = [];
    let r = i;
    for (let k = l.shape.length - 1; k >= 0; k--) { c.unshift(r % l.shape[k]); r = Math.floor(r / l.shape[k]); }
    return l.name + "[" + c.join(",") + "]";
  }
  const chanOf = (l, i) => (l.map ? Math.floor(i / l.plane) : i);
  const chanId = (l, c) => (l.shape.length === 3 ? l.name + "[" + c + "]" : l.shape.length === 2 ? l.name : nodeId(l, c));

  // -- structure: the live graph, as analysis.live_mask: nodes with a path to the chosen outputs and
  //    either a path from an input or a nonzero constant value; edges joining two live nodes ---------
  const FWD = {};
  FWD[L[0].name] = new Uint8Array(L[0].size).fill(1);
  for (const l of L.slice(1)) {
    const r = new Uint8Array(l.size), s = FWD[l.source];
    for (let e = 0; e < l.dst.length; e++) if (s[l.src[e]]) r[l.dst[e]] = 1;
    FWD[l.name] = r;
  }
  const CONST = {};  // 1 where a node has no path from an input and a nonzero (constant) value
  {
    const z = evaluate(new Float64Array(L[0].size));
    for (const l of L) { const c = new Uint8Array(l.size), f = FWD[l.name]; for (let i = 0; i < l.size; i++) c[i] = !f[i] && z[l.name][i] !== 0 ? 1 : 0; CONST[l.name] = c; }
  }
  function live(output) {
    const bwd = {};
    for (const l of L) bwd[l.name] = new Uint8Array(l.size);
    if (output === null) bwd[OUT.name].fill(1); else bwd[OUT.name][output] = 1;
    for (let k = L.length - 1; k > 0; k--) {
      const l = L[k], t = bwd[l.name], s = bwd[l.source];
      for (let e = 0; e < l.dst.length; e++) if (t[l.dst[e]]) s[l.src[e]] = 1;
    }
    const nodes = {}, edges = {};
    for (const l of L) {
      const n = new Uint8Array(l.size), f = FWD[l.name], b = bwd[l.name], c = CONST[l.name];
      for (let i = 0; i < l.size; i++) n[i] = b[i] & (f[i] | c[i]);
      nodes[l.name] = n;
    }
    nodes[OUT.name] = bwd[OUT.name].slice();
    for (const l of L.slice(1)) {
      const m = new Uint8Array(l.dst.length), t = nodes[l.name], s = nodes[l.source];
      for (let e = 0; e < l.dst.length; e++) m[e] = t[l.dst[e]] & s[l.src[e]];
      edges[l.name] = m;
    }
    return { nodes, edges };
  }
  function sizes(lv) {
    let v = 0, e = 0, cv = 0, ce = 0, cw = 0;
    for (const l of L) {
      const n = lv.nodes[l.name], ch = new Uint8Array(l.channels);
      for (let i = 0; i < l.size; i++) if (n[i]) { v++; ch[chanOf(l, i)] = 1; }
      for (let c = 0; c < l.channels; c++) cv += ch[c];
      if (!l.srcLayer) continue;
      const m = lv.edges[l.name], pairs = new Set(), ties = new Set();
      const nsc = l.srcLayer.channels;
      for (let k = 0; k < m.length; k++) {
        if (!m[k]) continue;
        e++;
        pairs.add(chanOf(l, l.dst[k]) * nsc + chanOf(l.srcLayer, l.src[k]));
        ties.add(l.tie ? l.tie[k] : k);
      }
      ce += pairs.size;
      if (!l.tie || l.tieShape.length === 4) cw += ties.size;
    }
    return { vertices: v, edges: e, channelNodes: cv, channelEdges: ce, weights: cw };
  }

  // -- values: the graph evaluated in float64, sums in edge order ----------------------------
  function evaluate(x) {
    const vals = {};
    vals[L[0].name] = Float64Array.from(x);
    for (const l of L.slice(1)) {
      const a = vals[l.source], z = new Float64Array(l.size);
      for (let e = 0; e < l.dst.length; e++) z[l.dst[e]] += l.w[e] * a[l.src[e]];
      for (let i = 0; i < l.size; i++) { z[i] += l.bias[i]; if (l.act === "relu" && z[i] < 0) z[i] = 0; }
      vals[l.name] = z;
    }
    return vals;
  }
  function b64(s) { const bin = atob(s), u = new Uint8Array(bin.length); for (let i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i); return u.buffer; }
  const SAMPLES = (function () {
    const s = D.samples, x = s.x, out = [];
    let flat;
    if (x.u8) flat = Array.from(new Uint8Array(b64(x.u8)), (k) => k / 255);
    else if (x.u8f4) flat = Array.from(new Uint8Array(b64(x.u8f4)), (k) => Math.fround(k / 255));
    else flat = Array.from(x.f4 ? new Float32Array(b64(x.f4)) : new Float64Array(b64(x.f8)));
    for (let i = 0; i < s.n; i++) out.push(flat.slice(i * s.size, (i + 1) * s.size));
    return { x: out, y: s.y };
  })();

  // -- state -----------------------------------------------------------------------------------
  const S = { view: "channels", mode: "weights", output: null, sample: SAMPLES.x.length ? 0 : null, expanded: new Set(),
              tx: 0, ty: 0, k: 1, lv: null, vals: null, scene: null, hover: null };
  const CELL = 2.5, XCELL = 7, GAP = 150, PAD = 8, HEAD = 16;

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
  function buildEdges() {
    const pos = new Path2D(), neg = new Path2D(), folded = [];
    let lines = 0;
    for (const l of L.slice(1)) {
      const m = S.lv.edges[l.name], agg = new Map();
      for (let e = 0; e < m.length; e++) {
        if (!m[e]) continue;
        const a = anchor(l.srcLayer, l.src[e], 1), b = anchor(l, l.dst[e], -1);
        if (!a || !b) continue;
        if (a[2] && b[2]) {
          const p = l.w[e] > 0 ? pos : neg;
          p.moveTo(a[0], a[1]); p.lineTo(b[0], b[1]); lines++;
        } else {
          const key = chanOf(l, l.dst[e]) * 65536 + chanOf(l.srcLayer, l.src[e]) * 2 + (a[2] ? 1 : 0);
          const g = agg.get(key) || { a, b, n: 0, ties: new Set() };
          if (a[2]) g.a = a;  // an expanded source: one curve per channel pair, drawn from the card's side
          g.n++; g.ties.add(l.tie ? l.tie[e] : e); agg.set(key, g);
        }
      }
      for (const g of agg.values()) folded.push(g);
    }
    const curves = new Path2D();
    for (const g of folded) {
      const [x1, y1] = g.a, [x2, y2] = g.b, mx = (x1 + x2) / 2;
      curves.moveTo(x1, y1); curves.bezierCurveTo(mx, y1, mx, y2, x2, y2);
    }
    S.paths = { pos, neg, curves, lines, folded: folded.length };
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
  function draw() {
    const t = performance.now();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#fbfbfa"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(dpr * S.k, 0, 0, dpr * S.k, dpr * S.tx, dpr * S.ty);
    ctx.lineWidth = 1 / S.k;
    ctx.globalAlpha = 0.45;
    ctx.strokeStyle = "#1a9641"; ctx.stroke(S.paths.pos);
    ctx.strokeStyle = "#d7191c"; ctx.stroke(S.paths.neg);
    ctx.globalAlpha = 0.7; ctx.lineWidth = 1.2 / Math.sqrt(S.k);
    ctx.strokeStyle = "#7a8699"; ctx.stroke(S.paths.curves);
    ctx.globalAlpha = 1;
    ctx.imageSmoothingEnabled = false;
    const showText = S.k > 0.35;
    ctx.font = "10px system-ui, sans-serif"; ctx.textBaseline = "middle";
    for (const col of S.scene.cols) {
      for (const cd of col.cards) {
        ctx.fillStyle = "#fff"; ctx.strokeStyle = S.hover && S.hover.card === cd ? "#2b6cb0" : "#8c8c8c";
        ctx.lineWidth = 1 / S.k;
        ctx.fillRect(cd.x, cd.y, cd.w, cd.h); ctx.strokeRect(cd.x, cd.y, cd.w, cd.h);
        if (col.l.map) ctx.drawImage(S.images[cd.id], cd.x + PAD, cd.y + HEAD, col.l.map[2] * cd.cell, col.l.map[1] * cd.cell);
        if (showText) {
          ctx.fillStyle = "#222";
          let label = cd.id;
          if (!col.l.map) {
            label = nodeId(col.l, cd.c);
            if (S.mode === "input" && S.vals) label += " " + S.vals[col.l.name][cd.c].toFixed(2);
            ctx.fillText(label, cd.x + 5, cd.y + cd.h / 2);
          } else ctx.fillText(label, cd.x + 5, cd.y + 8);
        }
      }
    }
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
  function fit() {
    const w = canvas.clientWidth, h = canvas.clientHeight, sc = S.scene;
    S.k = Math.min((w - 40) / Math.max(sc.width, 1), (h - 60) / Math.max(sc.height, 1), 4);
    S.tx = (w - sc.width * S.k) / 2; S.ty = 40 + (h - 40 - sc.height * S.k) / 2;
  }
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
      if (S.vals) lines.push("value  " + fmt(S.vals[l.name][h.node]) + "  (sample " + S.sample + ")");
      if (l.srcLayer) { let k = 0; for (let e = 0; e < l.dst.length; e++) if (l.dst[e] === h.node) k++; lines.push("fan-in " + k + " edges"); }
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
    if (drag && !drag.moved) {
      const h = hit(...world(ev));
      if (h && h.layer.map && S.view === "channels") toggle(h.card.id);
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

  function toggle(id) { if (S.expanded.has(id)) S.expanded.delete(id); else S.expanded.add(id); layout(); status(); redraw(); }
  function status() {
    const sz = S.sizes;
    $("status").textContent = (S.view === "unrolled" ? "unrolled" : "channels") + " \u00b7 " + sz.vertices + " vertices, " + sz.edges +
      " edges \u00b7 drawn: " + S.paths.lines + " lines, " + S.paths.folded + " channel curves";
  }
  function panel() {
    const sz = S.sizes, f = $("sizes");
    f.textContent = "";
    const rows = [["vertices", sz.vertices], ["edges", sz.edges], ["channel nodes", sz.channelNodes],
                  ["channel edges", sz.channelEdges], ["kernel weights", sz.weights]];
    for (const [k, v] of rows) { const a = document.createElement("span"); a.className = "k"; a.textContent = k; const b = document.createElement("span"); b.textContent = String(v); f.append(a, b); }
    sel.value = S.output === null ? "" : String(S.output);
    $("view-channels").classList.toggle("on", S.view === "channels"); $("view-unrolled").classList.toggle("on", S.view === "unrolled");
    $("mode-weights").classList.toggle("on", S.mode === "weights"); $("mode-input").classList.toggle("on", S.mode === "input");
    for (const c of $("thumbs").children) c.classList.toggle("on", Number(c.dataset.i) === S.sample);
    const sc = $("scores"); sc.textContent = "";
    if (S.vals) {
      const o = S.vals[OUT.name], top = o.indexOf(Math.max(...o));
      $("input-info").textContent = "sample " + S.sample + ", label " + SAMPLES.y[S.sample] + ", prediction " + nodeId(OUT, top);
      for (let i = 0; i < o.length; i++) { const d = document.createElement("div"); d.textContent = nodeId(OUT, i) + " " + o[i].toFixed(3); if (i === top) d.style.fontWeight = "700"; sc.append(d); }
    }
  }
  function set(opts) {
    if ("view" in opts) S.view = opts.view;
    if ("mode" in opts) S.mode = opts.mode;
    if ("output" in opts) { S.output = opts.output; S.lv = live(S.output); S.sizes = sizes(S.lv); }
    if ("sample" in opts) { S.sample = opts.sample; S.vals = S.sample === null ? null : evaluate(SAMPLES.x[S.sample]); }
    if ("expand" in opts) { for (const id of opts.expand) S.expanded.add(id); }
    if ("fold" in opts) { for (const id of opts.fold) S.expanded.delete(id); }
    const refit = "view" in opts || "output" in opts;
    layout(); if (refit) fit(); panel(); status(); redraw();
  }
  $("view-channels").onclick = () => set({ view: "channels" });
  $("view-unrolled").onclick = () => set({ view: "unrolled" });
  $("mode-weights").onclick = () => set({ mode: "weights" });
  $("mode-input").onclick = () => set({ mode: "input" });
  const sel = $("output");
  for (let i = 0; i < OUT.size; i++) { const o = document.createElement("option"); o.value = String(i); o.textContent = nodeId(OUT, i) + (OUT.labels ? " \u201c" + OUT.labels[i] + "\u201d" : ""); sel.append(o); }
  sel.onchange = () => set({ output: sel.value === "" ? null : Number(sel.value) });
  // sample thumbnails
  const inL = L[0], side = inL.map ? [inL.map[1], inL.map[2]] : [1, inL.size];
  SAMPLES.x.forEach((x, i) => {
    const cv = document.createElement("canvas"); cv.width = side[1]; cv.height = side[0]; cv.dataset.i = String(i);
    cv.title = "sample " + i + ", label " + SAMPLES.y[i];
    const c2 = cv.getContext("2d"), img = c2.createImageData(side[1], side[0]);
    for (let p = 0; p < side[0] * side[1]; p++) { const g = Math.round(255 * Math.min(1, Math.max(0, x[p]))); img.data[4 * p] = g; img.data[4 * p + 1] = g; img.data[4 * p + 2] = g; img.data[4 * p + 3] = 255; }
    c2.putImageData(img, 0, 0);
    cv.onclick = () => set({ sample: i, mode: "input" });
    $("thumbs").append(cv);
  });
  // title and rounds
  $("title").textContent = D.title;
  const acc = G.meta.test_accuracy;
  $("subtitle").textContent = "round " + G.meta.round + (typeof acc === "number" ? " \u00b7 test accuracy " + (100 * acc).toFixed(2) + "%" : "") +
    (G.bounds ? " \u00b7 bounds over box '" + G.bounds.box + "'" : "");
  const tbl = document.createElement("table");
  for (const m of D.metrics) {
    const tr = document.createElement("tr");
    const cells = [String(m.round), (100 * m.density).toFixed(2) + "%", Object.values(m.weights_left || {}).join("/"),
                   typeof m.test_accuracy === "number" ? (100 * m.test_accuracy).toFixed(1) + "%" : ""];
    for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.append(td); }
    if (m.round === G.meta.round) tr.style.fontWeight = "700";
    tbl.append(tr);
  }
  $("round-table").append(tbl);

  // -- start ----------------------------------------------------------------------------------------
  resize();
  S.lv = live(null); S.sizes = sizes(S.lv);
  S.vals = S.sample === null ? null : evaluate(SAMPLES.x[S.sample]);
  layout(); fit(); panel(); status(); draw();
  const api = {
    firstRenderMs: performance.now() - T0, firstFrameMs: 0,
    set, sizes: () => S.sizes, drawn: () => ({ lines: S.paths.lines, curves: S.paths.folded, cards: S.scene.cols.reduce((a, c) => a + c.cards.length, 0) }),
    cards: () => S.scene.cols.flatMap((c) => c.cards.map((cd) => cd.id)),
    value: (id) => { for (const l of L) for (let i = 0; i < l.size; i++) if (nodeId(l, i) === id) return S.vals ? S.vals[l.name][i] : null; return null; },
    outputs: () => (S.vals ? Array.from(S.vals[OUT.name]) : null),
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
})();
