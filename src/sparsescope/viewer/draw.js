/* sparsescope viewer -- drawing: two painters (canvas, SVG) behind one small
   interface, and the scene, drawn in screen pixels from world positions. */

SS.COLORS = { pos: [26, 152, 80], neg: [215, 48, 39], zero: [160, 160, 160], sel: "#2b6cb0", ink: "#222" };
SS.rgb = function (c, a) { return a === undefined ? "rgb(" + c.join(",") + ")" : "rgba(" + c.join(",") + "," + a + ")"; };

SS.CanvasPainter = function (ctx) { this.ctx = ctx; };
SS.CanvasPainter.prototype = {
  clear: function (w, h, bg) { const c = this.ctx; c.fillStyle = bg; c.fillRect(0, 0, w, h); },
  lines: function (xy, color, width, alpha) {
    const c = this.ctx; c.beginPath();
    for (let k = 0; k < xy.length; k += 4) { c.moveTo(xy[k], xy[k + 1]); c.lineTo(xy[k + 2], xy[k + 3]); }
    c.strokeStyle = color; c.lineWidth = width; c.globalAlpha = alpha; c.stroke(); c.globalAlpha = 1;
  },
  circle: function (x, y, r, fill, stroke, lw, alpha) {
    const c = this.ctx; c.globalAlpha = alpha; c.beginPath(); c.arc(x, y, r, 0, 2 * Math.PI);
    if (fill) { c.fillStyle = fill; c.fill(); }
    if (stroke) { c.strokeStyle = stroke; c.lineWidth = lw; c.stroke(); }
    c.globalAlpha = 1;
  },
  rect: function (x, y, w, h, fill, stroke, lw, alpha) {
    const c = this.ctx; c.globalAlpha = alpha === undefined ? 1 : alpha;
    if (fill) { c.fillStyle = fill; c.fillRect(x, y, w, h); }
    if (stroke) { c.strokeStyle = stroke; c.lineWidth = lw; c.strokeRect(x, y, w, h); }
    c.globalAlpha = 1;
  },
  image: function (img, x, y, w, h, alpha) {
    const c = this.ctx; c.globalAlpha = alpha; c.imageSmoothingEnabled = false; c.drawImage(img, x, y, w, h); c.globalAlpha = 1;
  },
  measure: function (s, size, bold) { const c = this.ctx; c.font = (bold ? "600 " : "") + size + "px system-ui, sans-serif"; return c.measureText(s).width; },
  text: function (s, x, y, size, color, align, bold) {
    const c = this.ctx; c.font = (bold ? "600 " : "") + size + "px system-ui, sans-serif";
    c.textAlign = align || "left"; c.textBaseline = "middle";
    c.lineWidth = 3; c.strokeStyle = "rgba(251,251,250,0.9)"; c.strokeText(s, x, y);
    c.fillStyle = color; c.fillText(s, x, y);
  }
};

SS.SvgPainter = function (w, h) { this.w = w; this.h = h; this.out = []; this.urls = new Map(); };
SS.SvgPainter.prototype = {
  r: function (v) { return Math.round(v * 100) / 100; },
  measure: function (s, size, bold) {  /* text is laid out by a canvas context, so the SVG matches the screen */
    const c = SS.measureCtx || (SS.measureCtx = document.createElement("canvas").getContext("2d"));
    c.font = (bold ? "600 " : "") + size + "px system-ui, sans-serif"; return c.measureText(s).width;
  },
  clear: function (w, h, bg) { this.out.push('<rect width="' + w + '" height="' + h + '" fill="' + bg + '"/>'); },
  lines: function (xy, color, width, alpha) {
    const d = [];
    for (let k = 0; k < xy.length; k += 4) d.push("M" + this.r(xy[k]) + " " + this.r(xy[k + 1]) + "L" + this.r(xy[k + 2]) + " " + this.r(xy[k + 3]));
    this.out.push('<path d="' + d.join("") + '" fill="none" stroke="' + color + '" stroke-width="' + this.r(width) + '" stroke-opacity="' + alpha + '"/>');
  },
  circle: function (x, y, r, fill, stroke, lw, alpha) {
    this.out.push('<circle cx="' + this.r(x) + '" cy="' + this.r(y) + '" r="' + this.r(r) + '" fill="' + (fill || "none") + '"' +
      (stroke ? ' stroke="' + stroke + '" stroke-width="' + lw + '"' : "") + ' opacity="' + alpha + '"/>');
  },
  rect: function (x, y, w, h, fill, stroke, lw, alpha) {
    this.out.push('<rect x="' + this.r(x) + '" y="' + this.r(y) + '" width="' + this.r(w) + '" height="' + this.r(h) + '" fill="' + (fill || "none") + '"' +
      (stroke ? ' stroke="' + stroke + '" stroke-width="' + lw + '"' : "") + ' opacity="' + (alpha === undefined ? 1 : alpha) + '"/>');
  },
  image: function (img, x, y, w, h, alpha) {
    let url = this.urls.get(img);
    if (!url) { url = img.toDataURL("image/png"); this.urls.set(img, url); }
    this.out.push('<image href="' + url + '" x="' + this.r(x) + '" y="' + this.r(y) + '" width="' + this.r(w) + '" height="' + this.r(h) +
      '" preserveAspectRatio="none" style="image-rendering:pixelated" opacity="' + alpha + '"/>');
  },
  text: function (s, x, y, size, color, align, bold) {
    const anchor = { left: "start", right: "end", center: "middle" }[align || "left"];
    this.out.push('<text x="' + this.r(x) + '" y="' + this.r(y) + '" font-size="' + size + '" font-family="system-ui, sans-serif"' +
      (bold ? ' font-weight="600"' : "") + ' fill="' + color + '" text-anchor="' + anchor + '" dominant-baseline="middle"' +
      ' stroke="#fbfbfa" stroke-width="3" stroke-opacity="0.9" paint-order="stroke">' + SS.xml(s) + "</text>");
  },
  svg: function () {
    return '<svg xmlns="http://www.w3.org/2000/svg" width="' + this.w + '" height="' + this.h + '" viewBox="0 0 ' + this.w + " " + this.h + '">' +
      this.out.join("\n") + "</svg>\n";
  }
};

/* A 28x28 (or any 2-D) image of values: green +, red -, grey exactly 0,
   intensity proportional to |v| / vmax. */
SS.valueImage = function (canvas, values, rows, cols, vmax) {
  canvas.width = cols; canvas.height = rows;
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(cols, rows), d = img.data, C = SS.COLORS;
  for (let k = 0; k < rows * cols; k++) {
    const v = values[k];
    let c;
    if (v === 0 || !(vmax > 0)) c = [236, 236, 236];
    else {
      const t = 0.1 + 0.9 * Math.min(1, Math.abs(v) / vmax), tg = v > 0 ? C.pos : C.neg;
      c = [255 + (tg[0] - 255) * t, 255 + (tg[1] - 255) * t, 255 + (tg[2] - 255) * t];
    }
    d[4 * k] = c[0]; d[4 * k + 1] = c[1]; d[4 * k + 2] = c[2]; d[4 * k + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
};
/* Place the shown units: per layer, in the Python layout's order (rank), the live
   units of the whole graph (or every unit with "show unused units"); outputs always.
   Sets V.pos[name] (world y, NaN when not shown), V.height and V.inputY. */
SS.place = function (V) {
  const G = V.G, lay = V.layout, last = G.layers[G.layers.length - 1], shown = {};
  let tallest = 1;
  G.layers.forEach(function (L) {
    if (L.kind === "input") return;
    const rank = lay.layers[L.name].rank, order = Array.from({ length: L.size }, function (_, i) { return i; });
    order.sort(function (a, b) { return rank[a] - rank[b]; });
    shown[L.name] = order.filter(function (i) { return L === last || V.state.unused || V.liveAll[L.name][i]; });
    tallest = Math.max(tallest, shown[L.name].length);
  });
  const inp = lay.input, gridH = inp.rows * inp.cell, H = Math.max(tallest * lay.pitch, gridH + 40);
  V.pos = {};
  G.layers.forEach(function (L) {
    if (L.kind === "input") return;
    const y = new Float64Array(L.size).fill(NaN), list = shown[L.name];
    list.forEach(function (i, k) { y[i] = (k + 0.5) * H / list.length; });
    V.pos[L.name] = y;
  });
  V.height = H; V.inputY = (H - gridH) / 2;
};

/* Where things are, in world units. */
SS.geometry = function (V) {
  const lay = V.layout, L0 = V.G.layers[0], inp = lay.input, img = lay.image;
  return {
    pixel: function (i) { const r = Math.floor(i / inp.cols), c = i % inp.cols; return [inp.x + (c + 0.5) * inp.cell, V.inputY + (r + 0.5) * inp.cell]; },
    isImage: function (L) { return L.kind !== "input" && lay.layers[L.name].image; },
    y: function (L, i) { return V.pos[L.name][i]; },
    /* point where edges leave (out=true) or enter a node */
    port: function (L, i, out) {
      if (L === L0) return this.pixel(i);
      const ll = lay.layers[L.name], y = V.pos[L.name][i];
      if (ll.image) return [out ? ll.x + (V.state.mode === "input" ? 2 * img + 6 : img) : ll.x, y];
      return [ll.x + (out ? V.R : -V.R), y];
    }
  };
};

SS.FADED = "#c9c9c9";
SS.LINEAR = "#7b4fb0";  /* the ring of a unit proven always on (linear over the box) in the simplified graph */
SS.OFF_FILL = "#ececec";  /* as the static figures' card of a unit proven always off (render/_colour.py) */

/* Units proven always off over the box (analysis.box_states: a ReLU whose pre-activation upper
   bound is <= 0, so its value is exactly 0 there): {layer name: Uint8Array}. */
SS.alwaysOff = function (G) {
  const off = {};
  G.layers.forEach(function (L) {
    const m = new Uint8Array(L.size);
    if (L.act === "relu" && L.preHi) for (let i = 0; i < L.size; i++) m[i] = L.preHi[i] <= 0 ? 1 : 0;
    off[L.name] = m;
  });
  return off;
};
/* Hatching: diagonal strokes (/) inside a circle (r > 0) or a square of side `sz` at (x, y) top-left. */
SS.hatchCircle = function (P, x, y, r, alpha) {
  const xy = [];
  for (let k = -2; k <= 2; k++) {
    const d = k * r / 2.5, half = Math.sqrt(Math.max(0, r * r - d * d)), ox = d / Math.SQRT2, oy = d / Math.SQRT2;
    xy.push(x + ox - half / Math.SQRT2, y + oy + half / Math.SQRT2, x + ox + half / Math.SQRT2, y + oy - half / Math.SQRT2);
  }
  P.lines(xy, "#8a8a8a", 1, alpha);
};
SS.hatchSquare = function (P, x, y, sz, alpha) {
  const xy = [], n = 6;
  for (let k = 1; k < 2 * n; k++) {  /* lines x' + y' = c over the square, from its left/bottom edge to its top/right edge */
    const c = k * sz / n, x0 = Math.max(0, c - sz), y0 = Math.min(sz, c), x1 = Math.min(sz, c), y1 = Math.max(0, c - sz);
    xy.push(x + x0, y + y0, x + x1, y + y1);
  }
  P.lines(xy, "#8a8a8a", 1, alpha);
};

/* Draw everything visible with painter P at the current view of V. */
SS.drawScene = function (P, V, w, h, noLegend) {
  const G = V.G, s = V.view.s, tx = V.view.tx, ty = V.view.ty, geo = SS.geometry(V), C = SS.COLORS;
  const X = function (x) { return x * s + tx; }, Y = function (y) { return y * s + ty; };
  const vis = V.visible, hl = V.highlight, mode = V.state.mode, vals = V.values, L0 = G.layers[0];
  const inputEdges = V.state.inEdges, pos = V.pos;
  P.clear(w, h, "#fbfbfa");

  /* edges, bucketed by colour / width / alpha so each bucket is one path.  Level of detail: a layer
     draws its on-screen edges strongest first (|weight|, or |weight x value| in input mode) and at most
     SS.EDGE_BUDGET of them (highlighted edges always); the legend says how many were left out. */
  const buckets = new Map();
  V.lod = { drawn: 0, skipped: 0 };
  SS.groups(G).forEach(function (L) {  /* L: an edge group (a layer's own edges, or its skip edges) */
    const S = G.byName[L.source], first = S === L0;
    if (first && !inputEdges && !(hl && (hl.sel.layer === L0 || hl.sel.layer === L))) return;
    let norm = 0;
    const carried = mode === "input" && vals ? vals.post[L.source] : null;
    for (let e = 0; e < L.dst.length; e++) {
      const m = Math.abs(carried ? L.w[e] * carried[L.src[e]] : L.w[e]);
      if (m > norm) norm = m;
    }
    const vl = vis[L.name], crowded = L.dst.length > 600;  /* thin lines keep software raster fast */
    const py = pos[L.name], sy = first ? null : pos[S.name];
    const lod = L.dst.length > SS.EDGE_BUDGET, order = lod ? SS.strongestFirst(L, carried) : null;
    let drawn = 0;
    for (let k = 0; k < L.dst.length; k++) {
      const e = lod ? order[k] : k, d = L.dst[e], sidx = L.src[e];
      if (!vl[d] || py[d] !== py[d] || (sy && sy[sidx] !== sy[sidx])) continue;  /* hidden: NaN position */
      let a = first ? 0.3 : V.off[S.name][sidx] ? 0.15 : 0.65, on = false;
      if (hl) {
        on = (hl.anc[L.name][d] && hl.anc[S.name][sidx]) || (hl.desc[S.name][sidx] && hl.desc[L.name][d]);
        if (first && !on) continue;
        a = on ? 0.9 : 0.07;
      }
      const p = geo.port(S, sidx, true), q = geo.port(L, d, false);
      const x0 = X(p[0]), y0 = Y(p[1]), x1 = X(q[0]), y1 = Y(q[1]);
      if (lod && ((y0 < 0 && y1 < 0) || (y0 > h && y1 > h) || (x0 < 0 && x1 < 0) || (x0 > w && x1 > w))) continue;
      if (lod && !on && drawn >= SS.EDGE_BUDGET) { V.lod.skipped++; continue; }
      drawn++;
      if (V.recordEdges) V.recordEdges.push([SS.nodeId(G.byName[L.name], d), SS.nodeId(S, sidx)]);
      const v = carried ? L.w[e] * carried[sidx] : L.w[e];
      const col = v > 0 ? 0 : v < 0 ? 1 : 2;
      const wid = v === 0 ? 0.6 : Math.round((first || crowded ? 0.3 + 1.2 * Math.abs(v) / (norm || 1) : 0.5 + 3.5 * Math.abs(v) / (norm || 1)) * 4) / 4;
      if (crowded && !hl) a = 0.4;
      const key = col + "|" + wid + "|" + a;
      let b = buckets.get(key);
      if (!b) { b = { col: col, wid: wid, a: a, xy: [] }; buckets.set(key, b); }
      b.xy.push(x0, y0, x1, y1);
    }
    V.lod.drawn += drawn;
  });
  const order = Array.from(buckets.values()).sort(function (a, b) { return a.a - b.a || a.wid - b.wid; });
  order.forEach(function (b) { P.lines(b.xy, SS.rgb([C.pos, C.neg, C.zero][b.col]), b.wid, b.a); });

  /* input grid */
  const inp = V.layout.input, gx = X(inp.x), gy = Y(V.inputY), gw = inp.cols * inp.cell * s, gh = inp.rows * inp.cell * s;
  P.image(V.inputCanvas, gx, gy, gw, gh, 1);
  if (V.ancCanvas) P.image(V.ancCanvas, gx, gy, gw, gh, 1);
  P.rect(gx, gy, gw, gh, null, "#888", 1);
  const inTitle = mode === "input" ? (V.inputName || "input") : "input (pixels read by the shown units)";
  P.text(inTitle, gx, gy - 10, 11, "#555", "left", true);
  if (L0.labels && L0.shape.length === 1) {  /* named inputs (an RL state): name and value left of each cell */
    const vin = mode === "input" && vals ? vals.post[L0.name] : null;
    for (let i = 0; i < L0.size; i++) {
      const p = geo.pixel(i);
      P.text(SS.nodeId(L0, i) + " " + L0.labels[i] + (vin ? "  [" + SS.short(vin[i]) + "]" : ""), gx - 6, Y(p[1]), 11, "#333", "right", false);
    }
  }
  if (hl && hl.sel.layer === L0) {
    const p = geo.pixel(hl.sel.i), c = inp.cell * s;
    P.rect(X(p[0]) - c / 2, Y(p[1]) - c / 2, c, c, null, C.sel, 2);
  }

  /* units: id always, and [value] beside it in input mode; faded (text too) outside the chosen subgraph */
  const sub = V.state.out !== null;
  const textOK = function (L) { return (V.height / Math.max(1, V.shownCount[L.name])) * s >= 12; };
  const valColour = function (v, faded) { return faded ? SS.FADED : v > 0 ? SS.rgb(C.pos) : v < 0 ? SS.rgb(C.neg) : "#888"; };
  G.layers.forEach(function (L) {
    if (L === L0) return;
    const ll = V.layout.layers[L.name], x = X(ll.x), showText = textOK(L), py = pos[L.name];
    P.text(L.name, x + (ll.image ? V.layout.image * s / 2 : 0), Y(0) - 12, 12, "#555", "center", true);
    const isOut = L === G.layers[G.layers.length - 1];
    for (let i = 0; i < L.size; i++) {
      if (py[i] !== py[i]) continue;
      const y = Y(py[i]);
      if (y < -80 || y > h + 80) continue;
      const off = V.off[L.name][i];  /* proven always off over the box: grey and hatched (its text stays) */
      let faded = (sub && !vis[L.name][i]) || !V.liveAll[L.name][i];
      if (hl && !(hl.anc[L.name][i] || hl.desc[L.name][i])) faded = true;
      const a = faded ? 0.22 : 1;
      const selected = hl && hl.sel.layer === L && hl.sel.i === i;
      const v = vals ? vals.post[L.name][i] : null;
      const ink = faded ? SS.FADED : "#333";
      if (ll.image) {
        const sz = V.layout.image * s;
        P.image(V.weightImages[i], x, y - sz / 2, sz, sz, a);
        P.rect(x, y - sz / 2, sz, sz, null, selected ? C.sel : "#999", selected ? 2.5 : 0.6, a);
        if (L.linear && L.linear[i]) P.rect(x - 3, y - sz / 2 - 3, sz + 6, sz + 6, null, SS.LINEAR, 1.6, a);
        if (off) { P.rect(x, y - sz / 2, sz, sz, SS.OFF_FILL, null, 0, 0.6 * a); SS.hatchSquare(P, x, y - sz / 2, sz, 0.8 * a); }
        if (mode === "input" && V.productImages) {
          P.image(V.productImages[i], x + sz + 6 * s, y - sz / 2, sz, sz, a);
          P.rect(x + sz + 6 * s, y - sz / 2, sz, sz, null, "#bbb", 0.6, a);
        }
        if (showText) {
          if (v === null) P.text(SS.nodeId(L, i), x - 5, y, 10.5, ink, "right");
          else {
            const vs = "[" + SS.short(v) + "]";
            P.text(vs, x - 5, y, 10.5, valColour(v, faded), "right", true);
            P.text(SS.nodeId(L, i), x - 9 - P.measure(vs, 10.5, true), y, 10.5, ink, "right");
          }
        }
      } else {
        const r = Math.max(3.5, V.R * s);
        let fill = off ? SS.OFF_FILL : "#fff";
        if (v !== null && !off) {
          const m = V.valueMax[L.name] || 1, t = Math.min(1, Math.abs(v) / m), tg = v > 0 ? C.pos : C.neg;
          fill = v === 0 ? "#ddd" : SS.rgb([255 + (tg[0] - 255) * t, 255 + (tg[1] - 255) * t, 255 + (tg[2] - 255) * t].map(Math.round));
        }
        P.circle(x, y, r, fill, selected ? C.sel : V.constant[L.name][i] ? "#3b6fb6" : "#555", selected ? 3 : 1.2, a);
        if (L.linear && L.linear[i]) P.circle(x, y, r + 3, null, SS.LINEAR, 1.6, a);  /* proven always on: linear */
        if (off) SS.hatchCircle(P, x, y, r, 0.9 * a);
        if (showText || isOut) {
          const label = isOut && L.labels ? "  " + L.labels[i] : "";
          const id = SS.nodeId(L, i) + label;
          P.text(id, x + r + 4, y, 10.5, ink, "left", isOut);
          if (v !== null) P.text("[" + SS.short(v) + "]", x + r + 8 + P.measure(id, 10.5, isOut), y, 10.5, valColour(v, faded), "left", true);
        }
        if (isOut && V.pred === i && mode === "input") P.circle(x, y, r + 4, null, "#2b6cb0", 2, 1);
      }
    }
  });
  if (!noLegend) SS.drawLegend(P, V, w, h);
};

/* Edge indices of layer L, strongest first (|w|, or |w x carried value|); cached per layer and values. */
SS.EDGE_BUDGET = 4000;
SS.strongestFirst = function (L, carried) {
  if (L.lodOrder && L.lodKey === carried) return L.lodOrder;
  const n = L.dst.length, mag = new Float64Array(n), order = new Uint32Array(n);
  for (let e = 0; e < n; e++) { mag[e] = Math.abs(carried ? L.w[e] * carried[L.src[e]] : L.w[e]); order[e] = e; }
  order.sort(function (a, b) { return mag[b] - mag[a] || a - b; });
  L.lodOrder = order; L.lodKey = carried;
  return order;
};

SS.drawLegend = function (P, V, w, h) {
  const C = SS.COLORS, simp = V.G.simplified, extra = (V.offCount ? 16 : 0) + (simp ? 16 : 0);
  const x = 10, y = h - 64 - extra, input = V.state.mode === "input";
  P.rect(x, y, 360, 56 + extra, "rgba(255,255,255,0.92)", "#ccc", 1);
  if (V.offCount) {  /* legend entry for the units proven always off */
    P.circle(x + 16, y + 62, 5, SS.OFF_FILL, "#555", 1.2, 1); SS.hatchCircle(P, x + 16, y + 62, 5, 0.9);
    P.text("always off over box “" + (V.G.box || "") + "” (ReLU, exactly 0): " + V.offCount + " units", x + 26, y + 62, 11, "#333");
  }
  if (simp) {  /* the simplified graph: linear units and skip edges */
    const ly = y + 62 + (V.offCount ? 16 : 0);
    P.circle(x + 16, ly, 5, "#fff", "#555", 1.2, 1); P.circle(x + 16, ly, 8, null, SS.LINEAR, 1.6, 1);
    P.text("always on (linear over the box); edges may skip a layer (composed units)", x + 30, ly, 11, "#333");
  }
  P.lines([x + 10, y + 14, x + 34, y + 14], SS.rgb(C.pos), 3, 0.9); P.text("positive", x + 40, y + 14, 11, "#333");
  P.lines([x + 100, y + 14, x + 124, y + 14], SS.rgb(C.neg), 3, 0.9); P.text("negative", x + 130, y + 14, 11, "#333");
  P.circle(x + 200, y + 14, 5, "#fff", "#3b6fb6", 1.2, 1); P.text("constant (bias only)", x + 210, y + 14, 11, "#333");
  P.rect(x + 10, y + 26, 10, 10, "rgb(236,236,236)", "#999", 0.5); P.text("pruned / zero pixel", x + 26, y + 31, 11, "#333");
  P.text(input ? "h1: weights | input \u00d7 weights" : "h1: 28\u00d728 weight images (hover to enlarge)", x + 150, y + 31, 11, "#333");
  P.text(input ? "edge width \u221d |weight \u00d7 value carried| (per layer); [v] node value" : "edge width \u221d |weight| (per layer)", x + 10, y + 46, 11, "#333");
  if (V.lod && V.lod.skipped) {  /* level of detail: say what is not drawn */
    P.rect(x, y - 22, 360, 18, "rgba(255,255,255,0.92)", "#ccc", 1);
    P.text("strongest " + V.lod.drawn + " edges drawn, " + V.lod.skipped + " weaker hidden: zoom in or pick a node", x + 8, y - 13, 11, "#333");
  }
};

/* The view (scale s, offsets tx, ty) that shows the whole placed graph in w x h
   with margins top and bottom. */
SS.fitted = function (V, w, h, top, bottom) {
  const lay = V.layout, x0 = -150, x1 = lay.width + 20, y0 = -30, y1 = V.height + 10;
  const s = Math.min(w / (x1 - x0), (h - top - bottom) / (y1 - y0));
  return { s: s, tx: (w - (x1 - x0) * s) / 2 - x0 * s, ty: top + ((h - top - bottom) - (y1 - y0) * s) / 2 - y0 * s };
};

/* Export: the whole graph fitted into w x h under a two-line title, whatever the
   user's pan and zoom (the view is restored afterwards). */
SS.exportDraw = function (P, V, w, h, title) {
  const saved = V.view;
  V.view = SS.fitted(V, w, h, 86, 72);
  try {
    SS.drawScene(P, V, w, h);
    P.text(title[0], 16, 24, 20, "#222", "left", true);
    P.text(title[1], 16, 50, 13, "#555", "left");
  } finally { V.view = saved; }
};

/* A copy of the last full drawing (without the screen-fixed legend), moved and
   scaled while the user pans or zooms a large graph; see ui.js frame(). */
SS.Snapshot = function () { this.canvas = null; this.view = null; };
SS.Snapshot.prototype = {
  take: function (src, view) {
    if (!this.canvas) this.canvas = document.createElement("canvas");
    this.canvas.width = src.width; this.canvas.height = src.height;
    this.canvas.getContext("2d").drawImage(src, 0, 0);
    this.view = { s: view.s, tx: view.tx, ty: view.ty };
  },
  drop: function () { this.canvas = null; this.view = null; },
  fits: function (c) { return !!this.canvas && this.canvas.width === c.width && this.canvas.height === c.height; },
  /* world -> screen is p * s + t, so a pixel p of the copy now lies at p * k + (t - t0 * k), k = s / s0 */
  paint: function (P, view, w, h) {
    const k = view.s / this.view.s;
    P.clear(w, h, "#fbfbfa");
    P.ctx.drawImage(this.canvas, view.tx - this.view.tx * k, view.ty - this.view.ty * k, w * k, h * k);
  }
};

/* The small accuracy (blue) and density (grey) chart over the rounds, with the current round marked. */
SS.drawSpark = function (c, ms, current) {
  const g = c.getContext("2d"), W = c.width, H = c.height;
  g.clearRect(0, 0, W, H);
  const px = function (i) { return 26 + (W - 34) * (ms.length > 1 ? i / (ms.length - 1) : 0.5); };
  const acc = ms.map(function (m) { return m.test_accuracy; }), den = ms.map(function (m) { return m.density; });
  const line = function (vals, lo, hi, color) {
    g.beginPath(); let started = false;
    vals.forEach(function (v, i) {
      if (typeof v !== "number") return;
      const y = 8 + (H - 22) * (1 - (v - lo) / ((hi - lo) || 1));
      if (started) g.lineTo(px(i), y); else { g.moveTo(px(i), y); started = true; }
    });
    g.strokeStyle = color; g.lineWidth = 1.5; g.stroke();
  };
  const fin = acc.filter(function (v) { return typeof v === "number"; });
  const alo = fin.length ? Math.min.apply(null, fin) : 0, ahi = fin.length ? Math.max.apply(null, fin) : 1;
  g.strokeStyle = "#eee"; g.strokeRect(26, 8, W - 34, H - 22);
  line(den, 0, 1, "#aaa"); line(acc, alo - 0.002, ahi + 0.002, "#2b6cb0");
  g.fillStyle = "#2b6cb0"; g.font = "10px system-ui"; g.fillText("accuracy", 30, H - 3);
  g.fillStyle = "#999"; g.fillText("density", 84, H - 3);
  g.fillStyle = "#555"; g.fillText(fin.length ? (100 * ahi).toFixed(1) : "", 0, 14); g.fillText(fin.length ? (100 * alo).toFixed(1) : "", 0, H - 16);
  const x = px(current);
  g.strokeStyle = "#d98c00"; g.lineWidth = 1; g.beginPath(); g.moveTo(x, 6); g.lineTo(x, H - 12); g.stroke();
};
