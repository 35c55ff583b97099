/* sparsescope viewer -- sharing the view: the URL hash holds the view state (round, mode,
   output, input, selection, toggles); export draws the whole graph fitted with a title block.
   Adds to the context A: hashOf, writeHash, readHashSafely, svgText, exportCanvas. */
SS.share = function (A) {
  const V = A.V, data = A.data, $ = A.$, el = A.el, canvas = A.canvas;
  const labelOf = A.labelOf, nR = A.nR, outL = A.outL;
  const recompute = function () { A.recompute(); };
  const showPad = function () { A.showPad(); }, headline = function () { return A.headline(); };
  /* ---- URL hash: the view state ---------------------------------------- */
  const b64url = SS.b64url;
  function hashOf() {
    const st = V.state, p = ["r=" + st.round, "m=" + (st.mode === "input" ? "i" : "w")];
    if (st.out !== null) p.push("o=" + st.out);
    if (st.input) p.push("i=" + (st.input.sample !== undefined ? "s" + st.input.sample : "d" + b64url(Uint8Array.from(V.drawn, function (v) { return Math.round(v * 255); }))));
    if (st.sel) p.push("sel=" + encodeURIComponent(st.sel));
    p.push("e=" + (st.inEdges ? 1 : 0));
    if (st.unused) p.push("u=1");
    if (st.simp) p.push("s=1");
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
    st.simp = q.s === "1" && !!SS.simplifiedDoc && st.round === data.current;  /* a link with s=1 waits for it (boot.js) */
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

  A.hashOf = hashOf; A.writeHash = writeHash; A.readHashSafely = readHashSafely; A.svgText = svgText; A.exportCanvas = exportCanvas;
};
