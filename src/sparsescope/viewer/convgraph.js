/* sparsescope conv viewer -- the graph: a convolutional flowgraph (docs/flowgraph-schema.md,
   version 2) as typed arrays, another round unrolled from its compact form (_convembed.py),
   reachability, the live graph, the sizes and the node values (float64, sums in edge order).
   Plain data in, plain data out; no DOM. */
SS.conv = {};

/* A layer's fields; `e` the edges {dst, src, weight, weight_id?}, `b` its bounds {lo, hi} or null. */
SS.conv.layer = function (d, i, e, b, bias) {
  const size = d.shape.reduce((a, c) => a * c, 1);
  const map = d.shape.length === 3 ? d.shape : d.shape.length === 2 ? [1, d.shape[0], d.shape[1]] : null;
  const l = {
    i, name: d.name, kind: d.kind, shape: d.shape, size, map, act: d.activation || "identity",
    source: d.source || null, dst: Int32Array.from(e.dst), src: Int32Array.from(e.src), w: Float64Array.from(e.weight),
    tie: e.weight_id ? Int32Array.from(e.weight_id) : null, tieShape: d.weight_shape || null,
    bias: bias || new Float64Array(size), labels: d.labels || null,
    lo: b ? Float64Array.from(b.lo) : null, hi: b ? Float64Array.from(b.hi) : null,
  };
  l.channels = map ? (d.shape.length === 3 ? map[0] : 1) : size;
  l.plane = map ? map[1] * map[2] : 1;
  return l;
};

/* The edge groups into layer l: l itself (its own edges, from l.srcLayer) and, in a simplified
   graph, its skip groups (edges from an earlier, non-adjacent layer): {l, srcLayer, dst, src, w, tie, key}. */
SS.conv.into = (l) => (l.skips && l.skips.length ? [l, ...l.skips] : [l]);
SS.conv.groups = (C) => C.L.slice(1).flatMap(SS.conv.into);

/* The graph object of layers L: name index, output layer, forward reach and constants. */
SS.conv.graph = function (L, meta, box) {
  const C = { L, meta: meta || {}, box: box || null, byName: {} };
  for (const l of L) C.byName[l.name] = l;
  for (const l of L) { l.srcLayer = l.source ? C.byName[l.source] : null; l.l = l; l.key = l.name; }
  C.OUT = L[L.length - 1];
  C.FWD = {};
  C.FWD[L[0].name] = new Uint8Array(L[0].size).fill(1);
  for (const l of L.slice(1)) {
    const r = new Uint8Array(l.size);
    for (const g of SS.conv.into(l)) { const s = C.FWD[g.srcLayer.name]; for (let e = 0; e < g.dst.length; e++) if (s[g.src[e]]) r[g.dst[e]] = 1; }
    C.FWD[l.name] = r;
  }
  C.CONST = {};  // 1 where a node has no path from an input and a nonzero (constant) value
  const z = SS.conv.evaluate(C, new Float64Array(L[0].size));
  for (const l of L) { const c = new Uint8Array(l.size), f = C.FWD[l.name]; for (let i = 0; i < l.size; i++) c[i] = !f[i] && z[l.name][i] !== 0 ? 1 : 0; C.CONST[l.name] = c; }
  return C;
};

/* The opened round, from its exact flowgraph JSON. */
SS.conv.fromDoc = function (G) {
  const L = G.layers.map((d, i) => {
    const e = d.edges || { dst: [], src: [], weight: [] };
    return SS.conv.layer(d, i, e, G.bounds ? G.bounds.layers[d.name] : null, d.bias ? Float64Array.from(d.bias) : null);
  });
  return SS.conv.graph(L, G.meta, G.bounds ? G.bounds.box : null);
};

/* Another round from its compact form `p` (inflated by SS.conv.preload), unrolled on the shapes
   of `base` (the opened round) in the flowgraph's edge order, (dst, src): conv edges per output
   position and nonzero kernel weight whose input position lies inside the map (as conv_edges);
   dense edges per nonzero weight, row-major (as dense_layer); fixed layers (pools) as in `base`. */
SS.conv.fromPacked = function (p, base, meta) {
  const by = {};
  for (const q of p.layers) by[q.name] = q;
  const bounds = p.bounds ? p.bounds.layers : null;
  const bnd = (name) => (bounds && bounds[name] ? { lo: SS.floats(bounds[name][0]), hi: SS.floats(bounds[name][1]) } : null);
  const L = base.L.map((b0, i) => {
    const d = { name: b0.name, kind: b0.kind, shape: b0.shape, activation: b0.act, source: b0.source, weight_shape: b0.tieShape, labels: b0.labels };
    const q = by[b0.name];
    if (!q) return SS.conv.layer(d, i, { dst: [], src: [], weight: [] }, bnd(b0.name), null);
    const bias = SS.floats(q.bias), w = q.kind === "fixed" ? null : SS.floats(q.weight);
    const dst = [], src = [], wt = [];
    if (q.kind === "conv") {  // in (dst, src) order: output node, then input channel, ky, kx
      const [O, I, k] = b0.tieShape, s = b0.srcLayer.map, h = s[1], wd = s[2], oh = b0.map[1], ow = b0.map[2];
      const st = q.stride, pad = q.padding, cap = O * oh * ow * I * k * k;
      const D = new Int32Array(cap), Sx = new Int32Array(cap), Wt = new Float64Array(cap), T = new Int32Array(cap);
      let n = 0;
      for (let o = 0; o < O; o++) for (let y = 0; y < oh; y++) for (let x = 0; x < ow; x++) {
        const node = o * oh * ow + y * ow + x;
        for (let ci = 0; ci < I; ci++) for (let ky = 0; ky < k; ky++) {
          const iy = y * st - pad + ky;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < k; kx++) {
            const id = ((o * I + ci) * k + ky) * k + kx, ix = x * st - pad + kx;
            if (w[id] === 0 || ix < 0 || ix >= wd) continue;
            D[n] = node; Sx[n] = ci * h * wd + iy * wd + ix; Wt[n] = w[id]; T[n] = id; n++;
          }
        }
      }
      return SS.conv.layer(d, i, { dst: D.subarray(0, n), src: Sx.subarray(0, n), weight: Wt.subarray(0, n), weight_id: T.subarray(0, n) },
                           bnd(b0.name), bias);
    }
    if (q.kind === "dense") {
      const n = b0.srcLayer.size;
      for (let e = 0; e < w.length; e++) if (w[e] !== 0) { dst.push(Math.floor(e / n)); src.push(e % n); wt.push(w[e]); }
      return SS.conv.layer(d, i, { dst, src, weight: wt }, bnd(b0.name), bias);
    }
    return SS.conv.layer(d, i, { dst: b0.dst, src: b0.src, weight: b0.w, weight_id: b0.tie }, bnd(b0.name), bias);
  });
  return SS.conv.graph(L, meta, p.bounds ? p.bounds.box : null);
};

/* Inflate every deflated block ({zf4|zf8|zu8|zu8f4: base64}) under `data`; the bytes land in .bytes. */
SS.conv.preload = function (data) {
  const jobs = [];
  const walk = (v) => {
    if (!v || typeof v !== "object") return;
    if (Array.isArray(v)) { v.forEach(walk); return; }
    const key = ["zf4", "zf8", "zu8", "zu8f4"].find((k) => typeof v[k] === "string");
    if (key) {
      const size = { zf4: 4, zf8: 8, zu8: 1, zu8f4: 1 }[key];
      jobs.push(SS.inflate(v[key]).then((u8) => { v.bytes = size > 1 ? SS.unshuffle(u8, size) : u8; }));
      return;
    }
    for (const k of Object.keys(v)) walk(v[k]);
  };
  walk(data.rounds); walk(data.samples);
  return Promise.all(jobs);
};

SS.conv.nodeId = function (l, i) {
  if (l.shape.length === 1) return l.name + "." + i;
  const c = [];
  let r = i;
  for (let k = l.shape.length - 1; k >= 0; k--) { c.unshift(r % l.shape[k]); r = Math.floor(r / l.shape[k]); }
  return l.name + "[" + c.join(",") + "]";
};
SS.conv.chanOf = (l, i) => (l.map ? Math.floor(i / l.plane) : i);
SS.conv.chanId = (l, c) => (l.shape.length === 3 ? l.name + "[" + c + "]" : l.shape.length === 2 ? l.name : SS.conv.nodeId(l, c));

/* The live graph, as analysis.live_mask: nodes with a path to the chosen outputs and either a
   path from an input or a nonzero constant value; edges joining two live nodes. */
SS.conv.live = function (C, output) {
  const L = C.L, OUT = C.OUT, bwd = {};
  for (const l of L) bwd[l.name] = new Uint8Array(l.size);
  if (output === null) bwd[OUT.name].fill(1); else bwd[OUT.name][output] = 1;
  for (let k = L.length - 1; k > 0; k--) {
    const l = L[k], t = bwd[l.name];
    for (const g of SS.conv.into(l)) { const s = bwd[g.srcLayer.name]; for (let e = 0; e < g.dst.length; e++) if (t[g.dst[e]]) s[g.src[e]] = 1; }
  }
  const nodes = {}, edges = {};
  for (const l of L) {
    const n = new Uint8Array(l.size), f = C.FWD[l.name], b = bwd[l.name], c = C.CONST[l.name];
    for (let i = 0; i < l.size; i++) n[i] = b[i] & (f[i] | c[i]);
    nodes[l.name] = n;
  }
  nodes[OUT.name] = bwd[OUT.name].slice();
  for (const g of SS.conv.groups(C)) {  /* keyed by group: a layer's name, or "name<source" for skip edges */
    const m = new Uint8Array(g.dst.length), t = nodes[g.l.name], s = nodes[g.srcLayer.name];
    for (let e = 0; e < g.dst.length; e++) m[e] = t[g.dst[e]] & s[g.src[e]];
    edges[g.key] = m;
  }
  return { nodes, edges };
};

/* Vertices and edges of a live graph, unrolled and channel-level, and the kernel weights it uses. */
SS.conv.sizes = function (C, lv) {
  const chanOf = SS.conv.chanOf;
  let v = 0, e = 0, cv = 0, ce = 0, cw = 0;
  for (const l of C.L) {
    const n = lv.nodes[l.name], ch = new Uint8Array(l.channels);
    for (let i = 0; i < l.size; i++) if (n[i]) { v++; ch[chanOf(l, i)] = 1; }
    for (let c = 0; c < l.channels; c++) cv += ch[c];
    if (!l.srcLayer) continue;
    for (const g of SS.conv.into(l)) {
      const m = lv.edges[g.key], pairs = new Set(), ties = new Set();
      const nsc = g.srcLayer.channels;
      for (let k = 0; k < m.length; k++) {
        if (!m[k]) continue;
        e++;
        pairs.add(chanOf(l, g.dst[k]) * nsc + chanOf(g.srcLayer, g.src[k]));
        ties.add(g.tie ? g.tie[k] : k);
      }
      ce += pairs.size;
      if (!g.tie || g.tieShape.length === 4) cw += ties.size;
    }
  }
  /* a simplified graph's edges are plain (composition mixes kernel weights): no kernel-weight count */
  return { vertices: v, edges: e, channelNodes: cv, channelEdges: ce, weights: C.simplified ? "\u2014" : cw };
};

/* Every node's value for input x, float64, sums in edge order then the bias (as graph.evaluate). */
SS.conv.evaluate = function (C, x) {
  const vals = {}, L = C.L;
  vals[L[0].name] = Float64Array.from(x);
  for (const l of L.slice(1)) {
    const z = new Float64Array(l.size), lin = l.linear;
    for (const g of SS.conv.into(l)) { const a = vals[g.srcLayer.name]; for (let e = 0; e < g.dst.length; e++) z[g.dst[e]] += g.w[e] * a[g.src[e]]; }
    for (let i = 0; i < l.size; i++) { z[i] += l.bias[i]; if (l.act === "relu" && z[i] < 0 && !(lin && lin[i])) z[i] = 0; }
    vals[l.name] = z;
  }
  return vals;
};

/* The exactly simplified graph (view --exact) from its DAG (SS.dagParts) on the layers of `base`:
   the DAG's biases, linear marks and edges (own, and skip groups from earlier layers; plain weights,
   no kernel ids), base's bounds (a node the DAG keeps takes the same values over the box). */
SS.conv.fromDag = function (dag, base) {
  const parts = SS.dagParts(dag, { layers: base.L, byName: base.byName });
  const L = base.L.map((b0, i) => {
    const d = { name: b0.name, kind: b0.kind, shape: b0.shape, activation: b0.act, source: b0.source, weight_shape: null, labels: b0.labels };
    const p = parts[b0.name], own = b0.source ? p.groups.get(b0.source) || { dst: [], src: [], w: [] } : { dst: [], src: [], w: [] };
    const l = SS.conv.layer(d, i, { dst: own.dst, src: own.src, weight: own.w }, b0.lo ? { lo: b0.lo, hi: b0.hi } : null, b0.kind === "input" ? null : p.bias);
    l.linear = p.linear;
    l.skipParts = [];
    p.groups.forEach((g, name) => { if (name !== b0.source) l.skipParts.push({ name, g }); });
    return l;
  });
  const C = SS.conv.graph(L, base.meta, base.box);  /* own edges first; then the skip groups, and reach again */
  for (const l of L) {
    l.skips = l.skipParts.map(({ name, g }) => ({ l, srcLayer: C.byName[name], dst: Int32Array.from(g.dst), src: Int32Array.from(g.src),
      w: Float64Array.from(g.w), tie: null, key: l.name + "<" + name, skip: true }));
    delete l.skipParts;
  }
  const S = SS.conv.graph(L, base.meta, base.box);
  S.simplified = true;
  return S;
};
