/* sparsescope viewer -- window.sparsescope: the hooks tests, benchmarks and the notebook
   bridge use (values, state, placed units, export, pan/zoom timing).  Sets A.api. */
SS.hooks = function (A) {
  const V = A.V, data = A.data, $ = A.$, el = A.el, canvas = A.canvas;
  const api = {
    ready: false,
    values: function () { if (!V.values) return null; const o = {}; V.G.layers.forEach(function (L) { o[L.name] = Array.from(V.values.post[L.name]); }); return o; },
    input: function () { const x = V.state.mode === "input" ? A.currentInput() : null; return x ? Array.from(x) : null; },
    state: function () { return JSON.parse(JSON.stringify(V.state)); },
    hash: function () { return A.hashOf(); },
    /* shown units with their screen position (CSS px in the canvas), whether live, whether proven always off */
    placed: function () {
      const out = [], geo = SS.geometry(V);
      V.G.layers.forEach(function (L) {
        if (L.kind === "input") return;
        for (let i = 0; i < L.size; i++) {
          const y = V.pos[L.name][i];
          if (y !== y) continue;
          const p = geo.port(L, i, false);
          out.push({ id: SS.nodeId(L, i), x: p[0] * V.view.s + V.view.tx, y: p[1] * V.view.s + V.view.ty, live: !!V.liveAll[L.name][i], off: !!V.off[L.name][i] });
        }
      });
      return out;
    },
    visibleEdges: function () {  /* [layer, dst, src], and the source layer after them for a skip edge */
      const out = [];
      SS.groups(V.G).forEach(function (L) { for (let e = 0; e < L.dst.length; e++) if (V.visible[L.name][L.dst[e]]) out.push(L.skip ? [L.name, L.dst[e], L.src[e], L.source] : [L.name, L.dst[e], L.src[e]]); });
      return out;
    },
    /* the edges the last full drawing drew, as [target id, source id] (every edge group, level of detail included) */
    drawnEdges: function () { V.recordEdges = []; A.draw(); const r = V.recordEdges; V.recordEdges = null; return r; },
    simplified: function () { return V.simplified ? { sizes: V.simplified.sizes, composed: V.simplified.composed, on: !!V.G.simplified } : null; },
    graph: function () {
      return V.G.layers.filter(function (L) { return L.kind === "affine"; }).map(function (L) {
        return { name: L.name, dst: Array.from(L.dst), src: Array.from(L.src), weight: Array.from(L.w), bias: Array.from(L.bias),
          linear: L.linear ? Array.from(L.linear) : null,
          skips: (L.skips || []).map(function (g) { return { source: g.source, dst: Array.from(g.dst), src: Array.from(g.src), weight: Array.from(g.w) }; }),
          lo: L.lo ? Array.from(L.lo) : null, hi: L.hi ? Array.from(L.hi) : null, pre_lo: L.preLo ? Array.from(L.preLo) : null, pre_hi: L.preHi ? Array.from(L.preHi) : null };
      });
    },
    set: function (patch) { Object.assign(V.state, patch); A.recompute(); },
    select: function (id) { A.select(id, true); },
    setDrawn: function (arr) { V.drawn.set(arr); A.showPad(); V.state.input = { drawn: true }; V.state.mode = "input"; A.recompute(); },
    pngDataURL: function () { return A.exportCanvas().toDataURL("image/png"); },
    svgText: function () { return A.svgText(); },
    draw: function () { return A.draw(); },
    pan: function (dx, dy) { V.view.tx += dx; V.view.ty += dy; },
    zoom: function (f) { A.zoomNow(f); },
    fit: function () { A.fit(); },
    frames: function () { return V.frames; },
    benchPanZoom: function (n, full) { return A.benchPanZoom(n, full); }
  };
  A.api = api;
  window.sparsescope = api;
};
