/* sparsescope conv viewer -- sharing the view: the URL hash holds the view state (round, view,
   mode, output, expanded channels, input), and export draws the whole scene fitted under a title
   block, as a PNG or as an SVG of the same lists the canvas strokes (conv.js: S.segs, S.curves,
   S.scene).  `K` is conv.js's context (state, data, drawing helpers).  Every data-derived string in
   the SVG goes through SS.xml.  Returns {hashOf, writeHash, readHash, svgText, exportTitle, exportCanvas}. */
SS.convShare = function (K) {
  const S = K.S, D = K.D, $ = K.$;
  const EXPORT_W = 1600, EXPORT_H = 1000, TITLE_H = 64;
  /* a node proven always on, in the simplified graph: framed in purple */
  const LIN = ' data-linear="1" stroke="#7b4fb0" stroke-width="1" vector-effect="non-scaling-stroke"';

  /* ---- URL hash ------------------------------------------------------------------------------- */
  function hashOf() {
    const p = ["r=" + S.round, "v=" + (S.view === "unrolled" ? "u" : "c"), "m=" + (S.mode === "input" ? "i" : "w")];
    if (S.output !== null) p.push("o=" + S.output);
    if (S.expanded.size) p.push("x=" + Array.from(S.expanded).sort().map(encodeURIComponent).join(","));
    if (S.input) p.push("i=" + (S.input.drawn ? "d" + SS.b64url(Uint8Array.from(K.drawn, (v) => Math.round(v * 255))) : "s" + S.input.sample));
    if (S.sel) p.push("sel=" + encodeURIComponent(S.sel));
    if (S.simp) p.push("s=1");
    return "#" + p.join("&");
  }
  function writeHash() {
    const h = hashOf();
    if (location.hash !== h) { try { history.replaceState(null, "", h); } catch (err) { /* sandboxed frame: no URL */ } }
    $("link-text").value = location.href;
  }
  /* The hash as options for set() (unknown or malformed parts are left out), and whether they need the
     inflated data (another round, a test image) before they can be applied. */
  function readHash() {
    const q = {}, o = {};
    location.hash.replace(/^#/, "").split("&").forEach((kv) => {
      const k = kv.indexOf("=");
      if (k > 0) q[kv.slice(0, k)] = kv.slice(k + 1);
    });
    const nat = (v) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : null);
    const r = nat(q.r);
    if (r !== null && K.slider().indexOf(r) >= 0) o.round = r;
    if (q.v === "u" || q.v === "c") o.view = q.v === "u" ? "unrolled" : "channels";
    const out = nat(q.o);
    o.output = out !== null && out < K.OUT().size ? out : null;
    o.expanded = [];
    if (q.x) {
      const known = K.channelIds();
      for (const part of q.x.split(",")) {
        try { const id = decodeURIComponent(part); if (known.has(id)) o.expanded.push(id); } catch (err) { /* malformed: skip */ }
      }
    }
    if (q.i && /^s\d+$/.test(q.i)) o.sample = Number(q.i.slice(1));
    else if (q.i && q.i[0] === "d") {
      try {
        const bin = atob(q.i.slice(1).replace(/-/g, "+").replace(/_/g, "/"));
        if (bin.length === K.drawn.length) o.drawn = Float64Array.from(bin, (ch) => ch.charCodeAt(0) / 255);
      } catch (err) { /* malformed drawing: ignore it */ }
    }
    if (q.m === "i" && ("sample" in o || "drawn" in o)) o.mode = "input";
    o.select = null;
    if (q.sel) { try { o.select = decodeURIComponent(q.sel); } catch (err) { /* malformed */ } }
    o.simp = q.s === "1";
    const waits = ("round" in o && o.round !== D.current) || "sample" in o || o.simp;
    return { opts: o, waits };
  }

  /* ---- export ------------------------------------------------------------------------------------ */
  function exportTitle() {
    const OUT = K.OUT(), what = [(S.simp ? "exactly simplified graph, " : "") + (S.view === "unrolled" ? "unrolled view" : "channel view")];
    what.push(S.output === null ? "all outputs" : "subgraph of " + K.nodeId(OUT, S.output) + (OUT.labels ? " \u201c" + OUT.labels[S.output] + "\u201d" : ""));
    what.push(S.vals ? "values on " + S.inputName : "weights");
    what.push(S.sizes.vertices + " vertices, " + S.sizes.edges + " edges");
    return [K.headline(), K.figures(), what.join(" \u00b7 ")];
  }
  function exportCanvas() {
    const c = document.createElement("canvas"), r = 2, g = c.getContext("2d");
    c.width = EXPORT_W * r; c.height = EXPORT_H * r;
    g.setTransform(r, 0, 0, r, 0, 0);
    g.fillStyle = "#fff"; g.fillRect(0, 0, EXPORT_W, EXPORT_H);
    g.fillStyle = "#222"; g.textBaseline = "top";
    exportTitle().forEach((line, i) => { g.font = i ? "14px system-ui, sans-serif" : "bold 18px system-ui, sans-serif"; g.fillText(line, 16, 12 + 22 * i, EXPORT_W - 32); });
    const v = K.fitted(EXPORT_W, EXPORT_H, TITLE_H + 12);
    g.setTransform(r * v.k, 0, 0, r * v.k, r * v.tx, r * v.ty);
    K.paint(g, v.k, null);
    return c;
  }
  /* The SVG: title block, then in world coordinates (one transform) the lines per layer and sign,
     the channel curves per layer, and every card (frame, feature-map image, label) with, for each
     drawn position of an expanded card and each unit of a dense layer, an invisible <rect
     class="node" data-id> carrying its id (a tooltip in an SVG viewer).  Coordinates to 0.01. */
  function svgText() {
    const v = K.fitted(EXPORT_W, EXPORT_H, TITLE_H + 12), r = (x) => String(Math.round(x * 100) / 100), x = SS.xml;
    const o = [];
    o.push('<svg xmlns="http://www.w3.org/2000/svg" width="' + EXPORT_W + '" height="' + EXPORT_H + '" viewBox="0 0 ' + EXPORT_W + " " + EXPORT_H +
      '" data-view="' + S.view + '" data-round="' + S.round + '" data-output="' + (S.output === null ? "" : S.output) + '">');
    o.push('<rect width="' + EXPORT_W + '" height="' + EXPORT_H + '" fill="#fff"/>');
    exportTitle().forEach((line, i) => o.push('<text x="16" y="' + (12 + 22 * i) + '" dominant-baseline="hanging" font-family="system-ui, sans-serif" font-size="' +
      (i ? 14 : 18) + '"' + (i ? "" : ' font-weight="bold"') + ' fill="#222">' + x(line) + "</text>"));
    o.push('<g transform="matrix(' + [v.k, 0, 0, v.k, v.tx, v.ty].map((t) => String(Math.round(t * 1e6) / 1e6)).join(" ") + ')">');
    for (const sg of S.segs) {
      const d = [];
      for (let k = 0; k < sg.xy.length; k += 4) d.push("M" + r(sg.xy[k]) + " " + r(sg.xy[k + 1]) + "L" + r(sg.xy[k + 2]) + " " + r(sg.xy[k + 3]));
      o.push('<path class="edges" data-layer="' + x(sg.layer) + '" data-sign="' + sg.sign + '" d="' + d.join("") + '" fill="none" stroke="' +
        (sg.sign === "pos" ? "#1a9641" : "#d7191c") + '" stroke-opacity="0.45" stroke-width="1" vector-effect="non-scaling-stroke"/>');
    }
    const byLayer = new Map();
    for (const g of S.curves) {
      const [x1, y1] = g.a, [x2, y2] = g.b, mx = (x1 + x2) / 2;
      if (!byLayer.has(g.layer)) byLayer.set(g.layer, []);
      byLayer.get(g.layer).push("M" + r(x1) + " " + r(y1) + "C" + r(mx) + " " + r(y1) + " " + r(mx) + " " + r(y2) + " " + r(x2) + " " + r(y2));
    }
    for (const [name, d] of byLayer) {
      o.push('<path class="curves" data-layer="' + x(name) + '" d="' + d.join("") + '" fill="none" stroke="#7a8699" stroke-opacity="0.7" stroke-width="' +
        r(1.2 * Math.sqrt(v.k)) + '" vector-effect="non-scaling-stroke"/>');
    }
    const showText = v.k > 0.35;
    for (const col of S.scene.cols) {
      const l = col.l, live = S.lv.nodes[l.name];
      for (const cd of col.cards) {
        o.push('<g class="card" data-id="' + x(cd.id) + '"><rect x="' + r(cd.x) + '" y="' + r(cd.y) + '" width="' + r(cd.w) + '" height="' + r(cd.h) +
          '" fill="#fff" stroke="#8c8c8c" stroke-width="1" vector-effect="non-scaling-stroke"/>');
        if (l.map) {
          o.push('<image href="' + S.images[cd.id].toDataURL("image/png") + '" x="' + r(cd.x + K.PAD) + '" y="' + r(cd.y + K.HEAD) + '" width="' + r(l.map[2] * cd.cell) +
            '" height="' + r(l.map[1] * cd.cell) + '" preserveAspectRatio="none" style="image-rendering:pixelated"/>');
          if (showText) o.push('<text x="' + r(cd.x + 5) + '" y="' + r(cd.y + 8) + '" font-size="10" font-family="system-ui, sans-serif" dominant-baseline="middle" fill="#222">' + x(cd.id) + "</text>");
          if (cd.cell === K.XCELL) {
            for (let p = 0; p < l.plane; p++) {
              const i = cd.c * l.plane + p;
              if (!live[i]) continue;
              const yy = Math.floor(p / l.map[2]), xx = p % l.map[2];
              o.push('<rect class="node" data-id="' + x(K.nodeId(l, i)) + '" x="' + r(cd.x + K.PAD + xx * cd.cell) + '" y="' + r(cd.y + K.HEAD + yy * cd.cell) +
                '" width="' + r(cd.cell) + '" height="' + r(cd.cell) + '" fill="none"' + (l.linear && l.linear[i] ? LIN : "") + "><title>" + x(K.nodeId(l, i)) + "</title></rect>");
            }
          }
        } else {
          let label = K.nodeId(l, cd.c);
          if (S.mode === "input" && S.vals) label += " " + SS.short(S.vals[l.name][cd.c]);
          if (showText) o.push('<text x="' + r(cd.x + 5) + '" y="' + r(cd.y + cd.h / 2) + '" font-size="10" font-family="system-ui, sans-serif" dominant-baseline="middle" fill="#222">' + x(label) + "</text>");
          o.push('<rect class="node" data-id="' + x(K.nodeId(l, cd.c)) + '" x="' + r(cd.x) + '" y="' + r(cd.y) + '" width="' + r(cd.w) + '" height="' + r(cd.h) +
            '" fill="none"' + (l.linear && l.linear[cd.c] ? LIN : "") + "><title>" + x(K.nodeId(l, cd.c)) + "</title></rect>");
        }
        o.push("</g>");
      }
    }
    o.push("</g></svg>\n");
    return o.join("\n");
  }
  function download(blob, name) {
    const a = document.createElement("a"), url = URL.createObjectURL(blob);
    a.href = url; a.download = name; document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 5000);
  }
  const base = () => "sparsescope-round" + K.roundOf(S.round) + (S.output !== null ? "-out" + S.output : "");
  $("png").onclick = () => exportCanvas().toBlob((b) => download(b, base() + ".png"), "image/png");
  $("svg").onclick = () => download(new Blob([svgText()], { type: "image/svg+xml" }), base() + ".svg");
  $("link").onclick = () => {
    const t = $("link-text"); t.hidden = false; t.value = location.href; t.select();
    try { navigator.clipboard.writeText(location.href).catch(() => {}); } catch (err) { /* no clipboard here */ }
  };
  return { hashOf, writeHash, readHash, svgText, exportTitle, exportCanvas };
};
