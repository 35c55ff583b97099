"use strict";
/* sparsescope viewer -- core: decode the embedded data, evaluate, reach.
   Everything here is plain data in, plain data out; no DOM except reading
   the two JSON blocks. */
const SS = {};

SS.bytes = function (s) {
  const bin = atob(s), u = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
  return u;
};
/* Deflated blocks ({zf4|zf8|zu8|zu8f4: base64}) are inflated once before the page
   starts (SS.preload); the bytes land in d.bytes. */
SS.floats = function (d) {
  if (d.zf4 !== undefined) return Float64Array.from(new Float32Array(d.bytes.buffer));
  if (d.zf8 !== undefined) return new Float64Array(d.bytes.buffer);
  if (d.f4 !== undefined) return Float64Array.from(new Float32Array(SS.bytes(d.f4).buffer));
  return new Float64Array(SS.bytes(d.f8).buffer);
};
SS.inflate = function (b64) {
  const stream = new Blob([SS.bytes(b64)]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Response(stream).arrayBuffer().then(function (buf) { return new Uint8Array(buf); });
};
/* Undo the byte grouping of _embed.shuffled: item k's byte b sits at b * n + k. */
SS.unshuffle = function (u8, size) {
  const n = u8.length / size, out = new Uint8Array(u8.length);
  for (let b = 0; b < size; b++) for (let k = 0; k < n; k++) out[k * size + b] = u8[b * n + k];
  return out;
};
SS.preload = function (data) {
  const jobs = [], blocks = [];
  (data.rounds || []).forEach(function (r) { if (r) r.layers.forEach(function (L) { blocks.push(L.bias, L.weight); }); });
  if (data.samples && data.samples.x) blocks.push(data.samples.x);
  blocks.forEach(function (d) {
    const key = ["zf4", "zf8", "zu8", "zu8f4"].find(function (k) { return d[k] !== undefined; });
    if (!key) return;
    const size = { zf4: 4, zf8: 8, zu8: 1, zu8f4: 1 }[key];
    jobs.push(SS.inflate(d[key]).then(function (u8) { d.bytes = size > 1 ? SS.unshuffle(u8, size) : u8; }));
  });
  return Promise.all(jobs);
};
SS.f8 = function (s) { return new Float64Array(SS.bytes(s).buffer); };

/* Node id of flat index i in a layer (same rules as Layer.node_id). */
SS.nodeId = function (layer, i) {
  if (layer.shape.length === 1) return layer.name + "." + i;
  const c = [];
  for (let k = layer.shape.length - 1; k >= 0; k--) { c.unshift(i % layer.shape[k]); i = Math.floor(i / layer.shape[k]); }
  return layer.name + "[" + c.join(",") + "]";
};
SS.locate = function (G, id) {
  const m = /^\s*([A-Za-z][A-Za-z0-9_]*)(?:\.(\d+)|\[(\d+(?:,\d+)*)\])\s*$/.exec(id);
  if (!m || !Object.prototype.hasOwnProperty.call(G.byName, m[1])) return null;
  const L = G.byName[m[1]];
  let i;
  if (m[2] !== undefined) { if (L.shape.length !== 1) return null; i = +m[2]; }
  else {
    const c = m[3].split(",").map(Number);
    if (c.length !== L.shape.length) return null;
    i = 0;
    for (let k = 0; k < c.length; k++) { if (c[k] >= L.shape[k]) return null; i = i * L.shape[k] + c[k]; }
  }
  return i < L.size ? { layer: L, i: i } : null;
};

function relu(z) { return z > 0 ? z : 0; }

/* Graph from the to_json document (the exact current round). */
SS.fromDoc = function (doc) {
  const G = { layers: [], byName: Object.create(null), meta: doc.meta || {}, box: null };
  doc.layers.forEach(function (d, k) {
    const size = d.shape.reduce(function (a, b) { return a * b; }, 1);
    const L = { name: d.name, kind: d.kind, shape: d.shape, size: size, index: k, labels: d.labels || null,
      act: d.activation || "identity", source: d.source || null };
    if (d.kind === "affine") {
      L.bias = Float64Array.from(d.bias);
      L.dst = Int32Array.from(d.edges.dst); L.src = Int32Array.from(d.edges.src);
      L.w = Float64Array.from(d.edges.weight);
    }
    G.layers.push(L); G.byName[L.name] = L;
  });
  if (doc.bounds) {
    G.box = doc.bounds.box;
    G.layers.forEach(function (L) {
      const b = doc.bounds.layers[L.name];
      L.lo = Float64Array.from(b.lo); L.hi = Float64Array.from(b.hi);
      L.preLo = Float64Array.from(b.pre_lo); L.preHi = Float64Array.from(b.pre_hi);
      if (b.exact) {  /* schema version 2: exact ranges of the sums, with their status */
        const num = function (v) { return v === null ? NaN : v; };
        L.exLo = Float64Array.from(b.exact.lo.map(num)); L.exHi = Float64Array.from(b.exact.hi.map(num));
        L.exSt = b.exact.lo_status.map(function (s, k) { return s === "exact" && b.exact.hi_status[k] === "exact"; });
      }
    });
  }
  SS.index(G);
  return G;
};

/* Graph of another round from its compact form; names/labels from `base`. */
SS.fromPacked = function (p, base) {
  const G = { layers: [], byName: Object.create(null), meta: {}, box: null };
  base.layers.forEach(function (B) {
    const L = { name: B.name, kind: B.kind, shape: B.shape, size: B.size, index: B.index, labels: B.labels, act: B.act, source: B.source };
    G.layers.push(L); G.byName[L.name] = L;
  });
  p.layers.forEach(function (e) {
    const L = G.byName[e.name], nsrc = G.byName[L.source].size;
    L.bias = SS.floats(e.bias); L.w = SS.floats(e.weight);
    const n = L.w.length, dst = new Int32Array(n), src = new Int32Array(n);
    if (e.mask === "all") {
      for (let k = 0; k < n; k++) { dst[k] = Math.floor(k / nsrc); src[k] = k % nsrc; }
    } else {
      const bits = SS.bytes(e.mask);
      let k = 0;
      for (let byte = 0; byte < bits.length; byte++) {
        let v = bits[byte];
        while (v) {
          const b = 31 - Math.clz32(v & -v), flat = byte * 8 + b;
          dst[k] = Math.floor(flat / nsrc); src[k] = flat % nsrc; k++;
          v &= v - 1;
        }
      }
      if (k !== n) throw new Error("round data: mask and weights disagree in layer " + L.name);
    }
    L.dst = dst; L.src = src;
  });
  if (p.bounds) {
    G.box = p.bounds.box;
    const inp = G.layers[0], box = p.bounds.in;
    if (typeof box[0] === "number") { inp.lo = new Float64Array(inp.size).fill(box[0]); inp.hi = new Float64Array(inp.size).fill(box[1]); }
    else { inp.lo = SS.f8(box[0]); inp.hi = SS.f8(box[1]); }
    inp.preLo = inp.lo; inp.preHi = inp.hi;
    G.layers.slice(1).forEach(function (L) {
      const pr = p.bounds.pre[L.name];
      L.preLo = SS.f8(pr[0]); L.preHi = SS.f8(pr[1]);
      L.lo = L.act === "relu" ? L.preLo.map(relu) : L.preLo;
      L.hi = L.act === "relu" ? L.preHi.map(relu) : L.preHi;
    });
  }
  SS.index(G);
  return G;
};

/* The edge groups into affine layer L: its own edges (from L.source) and, in a simplified graph,
   its skip groups L.skips (edges from an earlier, non-adjacent layer).  A group is shaped like a
   layer for the edge loops: name (the target layer), source, dst, src, w. */
SS.into = function (L) { return L.skips && L.skips.length ? [L].concat(L.skips) : [L]; };
/* Every edge group, in layer order. */
SS.groups = function (G) {
  const out = [];
  G.layers.forEach(function (L) { if (L.kind === "affine") SS.into(L).forEach(function (g) { out.push(g); }); });
  return out;
};

/* Fan-in/fan-out counts and per-node edge lists (L.start: the layer's own edges by target). */
SS.index = function (G) {
  let edges = 0;
  G.layers.forEach(function (L) { L.fanIn = new Int32Array(L.size); L.fanOut = new Int32Array(L.size); L.feeds = []; });
  G.layers.forEach(function (L) {
    if (L.kind !== "affine") return;
    L.start = new Int32Array(L.size + 1);
    for (let e = 0; e < L.dst.length; e++) L.start[L.dst[e] + 1]++;
    for (let j = 0; j < L.size; j++) L.start[j + 1] += L.start[j];
    SS.into(L).forEach(function (g) {
      const S = G.byName[g.source];
      S.feeds.push(g);
      for (let e = 0; e < g.dst.length; e++) { L.fanIn[g.dst[e]]++; S.fanOut[g.src[e]]++; }
      edges += g.dst.length;
    });
  });
  G.edges = edges;
};

/* Node values in float64: value[j] = act(bias[j] + sum_e w[e] * source[src[e]]); L.linear marks
   ReLU units proven always on (a simplified graph): those pass their sum. */
SS.evaluate = function (G, x) {
  const post = {}, pre = {};
  post[G.layers[0].name] = pre[G.layers[0].name] = Float64Array.from(x);
  G.layers.forEach(function (L) {
    if (L.kind !== "affine") return;
    const z = Float64Array.from(L.bias);
    SS.into(L).forEach(function (g) { const a = post[g.source]; for (let e = 0; e < g.dst.length; e++) z[g.dst[e]] += g.w[e] * a[g.src[e]]; });
    pre[L.name] = z;
    const lin = L.linear;
    post[L.name] = L.act === "relu" ? z.map(function (v, i) { return lin && lin[i] ? v : relu(v); }) : z;
  });
  return { pre: pre, post: post };
};

SS.argmax = function (v) { let b = 0; for (let i = 1; i < v.length; i++) if (v[i] > v[b]) b = i; return b; };

SS.masks = function (G) { const m = {}; G.layers.forEach(function (L) { m[L.name] = new Uint8Array(L.size); }); return m; };

/* Nodes with a path to the marked nodes of `seed` (marked in place, returned). */
SS.reachBack = function (G, seed) {
  for (let k = G.layers.length - 1; k >= 1; k--) {
    const L = G.layers[k];
    if (L.kind !== "affine") continue;
    const r = seed[L.name];
    SS.into(L).forEach(function (g) { const s = seed[g.source]; for (let e = 0; e < g.dst.length; e++) if (r[g.dst[e]]) s[g.src[e]] = 1; });
  }
  return seed;
};
/* Nodes with a path from the marked nodes of `seed`. */
SS.reachFwd = function (G, seed) {
  for (let k = 1; k < G.layers.length; k++) {
    const L = G.layers[k];
    if (L.kind !== "affine") continue;
    const r = seed[L.name];
    SS.into(L).forEach(function (g) { const s = seed[g.source]; for (let e = 0; e < g.dst.length; e++) if (s[g.src[e]]) r[g.dst[e]] = 1; });
  }
  return seed;
};

/* The samples block: {n, x(k) -> Float64Array, y, index}; k is the position in the
   page, index[k] the image's test-set index (what `graph --input N` takes). */
SS.samples = function (d) {
  const n = d.n, size = d.size;
  let raw = null, scale = 1;
  /* u8: pixel k stands for k/255, in float64 or (u8f4) rounded to float32 */
  const f4 = d.x && (d.x.u8f4 !== undefined || d.x.zu8f4 !== undefined);
  function bytes() {  /* on first use: deflated pixels are inflated after the page starts */
    if (raw !== null || !n) return;
    if (d.x.zu8 !== undefined || d.x.zu8f4 !== undefined) { raw = d.x.bytes; scale = 255; }
    else if (d.x.u8 !== undefined || f4) { raw = SS.bytes(f4 ? d.x.u8f4 : d.x.u8); scale = 255; }
    else raw = SS.floats(d.x);
    if (!raw) throw new Error("sample images are not inflated yet");
  }
  const index = d.index || Array.from({ length: n }, function (_, k) { return k; }), pos = new Map();
  index.forEach(function (t, k) { pos.set(t, k); });
  return { n: n, y: d.y, index: index, pos: function (t) { return pos.has(t) ? pos.get(t) : -1; }, x: function (i) {
    bytes();
    const v = new Float64Array(size);
    for (let k = 0; k < size; k++) {
      const r = raw[i * size + k];
      v[k] = scale === 1 ? r : (f4 ? Math.fround(r / scale) : r / scale);
    }
    return v;
  } };
};

/* Text for SVG/XML (shared by both pages' SVG export). */
SS.xml = function (s) {  /* escape, and replace what XML cannot hold (controls, U+FFFE/F) with U+FFFD */
  return String(s).replace(/[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "\uFFFD").replace(/[&<>"']/g, function (ch) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[ch]; });
};

SS.fmt = function (v) { return String(v); };           /* shortest round trip, like Python repr */
/* A number for display: 4 significant digits (full precision stays in the data, the
   expression and the JSON). */
SS.short = function (v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(3) : v.toPrecision(4);
};

/* The live graph of the outputs seeded in `back` (a reachBack result), as
   analysis.live_mask: nodes with a path to those outputs that have a path from an
   input or a nonzero constant value (bias-only units); the outputs always count. */
SS.live = function (G, back) {
  const fromIn = SS.masks(G);
  fromIn[G.layers[0].name].fill(1);
  const fwd = SS.reachFwd(G, fromIn), out = G.layers[G.layers.length - 1], live = {};
  const zero = SS.evaluate(G, new Float64Array(G.layers[0].size)).post;  /* constants' values */
  G.layers.forEach(function (L) {
    const a = back[L.name], f = fwd[L.name], c = zero[L.name], m = new Uint8Array(L.size);
    for (let i = 0; i < L.size; i++) m[i] = a[i] && (f[i] || c[i] !== 0 || L === out) ? 1 : 0;
    live[L.name] = m;
  });
  return live;
};

/* Bytes as URL-safe base64 without padding (for links). */
SS.b64url = function (u8) {
  let s = "";
  for (let i = 0; i < u8.length; i++) s += String.fromCharCode(u8[i]);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
};
