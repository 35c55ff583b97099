/* sparsescope viewer -- the selection card (floating beside the selected node) and
   the hover magnifier.  Data-derived text only through textContent. */

SS.el = function (tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

/* Copy of a small canvas, shown at `px` CSS pixels (pixelated). */
SS.bigCopy = function (src, px) {
  const c = document.createElement("canvas");
  c.width = src.width; c.height = src.height; c.getContext("2d").drawImage(src, 0, 0);
  c.style.width = px + "px"; c.style.height = px + "px";
  return c;
};

/* The contributions of node i of layer L: bias, then each incoming edge's term
   (w x source value with values, else w), largest first.  The rows sum to the
   node's pre-activation sum; returns {rows, pre}. */
SS.contributions = function (G, L, i, values) {
  const rows = [];
  SS.inEdges(G, L, i).forEach(function (t) {
    const v = values ? values.post[t.S.name][t.s] : null;
    rows.push({ id: SS.nodeId(t.S, t.s), w: t.w, v: v, t: values ? t.w * v : t.w });
  });
  rows.sort(function (a, b) { return Math.abs(b.t) - Math.abs(a.t); });
  return { rows: rows, pre: values ? values.pre[L.name][i] : null };
};

/* The edges into node i of layer L, in edge order: [{S: source layer, s: source index, w}] (own edges,
   then skip edges of a simplified graph). */
SS.inEdges = function (G, L, i) {
  const out = [], S = G.byName[L.source];
  for (let e = L.start[i]; e < L.start[i + 1]; e++) out.push({ S: S, s: L.src[e], w: L.w[e] });
  (L.skips || []).forEach(function (g) { for (let e = 0; e < g.dst.length; e++) if (g.dst[e] === i) out.push({ S: G.byName[g.source], s: g.src[e], w: g.w[e] }); });
  return out;
};

/* MLP page: is the displayed round the one the exact analysis (view --exact) belongs to, the opened
   round data.current?  And that round's number (its metrics' round, else its index). */
SS.exactHere = function (V) { return V.state.round === V.data.current; };
SS.exactRound = function (V) { const m = V.data.metrics[V.data.current] || {}; return m.round !== undefined ? m.round : V.data.current; };

/* Fill `box` with the card of the highlighted node hl.sel. */
SS.renderCard = function (box, V, hl, labelOf) {
  const el = SS.el, G = V.G, L = hl.sel.layer, i = hl.sel.i, id = SS.nodeId(L, i), vals = V.values;
  box.textContent = "";
  box.appendChild(el("div", "id", id + (L.labels ? "  \u201c" + L.labels[i] + "\u201d" : "")));
  const dl = el("dl");
  const row = function (k, v) { dl.appendChild(el("dt", null, k)); dl.appendChild(el("dd", null, v)); };
  row("layer", L.name + " (" + (L.kind === "input" ? "input" : L.act) + ")");
  if (vals) row("value", SS.short(vals.post[L.name][i]));
  if (L.lo) row("bounds", "<" + SS.short(L.lo[i]) + ", " + SS.short(L.hi[i]) + ">" + (G.box ? " over box \u201c" + G.box + "\u201d" : ""));
  if (L.exLo) row("exact sum", "[" + SS.short(L.exLo[i]) + ", " + SS.short(L.exHi[i]) + "] " + (L.exSt[i] ? "exact, witnessed" : "bound only") +
                  "; sound [" + SS.short(L.preLo[i]) + ", " + SS.short(L.preHi[i]) + "] in float32 too");
  if (L.kind === "affine" && !V.liveAll[L.name][i]) row("note", "contributes nothing to any output");
  if (V.off && V.off[L.name][i]) row("note", "always off over box “" + G.box + "”: pre-activation ≤ " + SS.short(L.preHi[i]) + " ≤ 0, so exactly 0");
  if (L.kind === "affine" && V.constant[L.name][i]) row("note", "constant: no input path, bias only");
  let na = 0, nd = 0;
  G.layers.forEach(function (M) { for (let k = 0; k < M.size; k++) { na += hl.anc[M.name][k]; nd += hl.desc[M.name][k]; } });
  SS.factRowsAt(V, id, SS.exactHere(V), SS.exactRound(V)).forEach(function (f) { row(f[0], f[1]); if (f[2] !== undefined) dl.appendChild(SS.witnessButton(V, f[2])); });
  row("fan-in / out", L.fanIn[i] + " / " + L.fanOut[i]);
  row("ancestors", String(na - 1) + ", descendants " + String(nd - 1));
  box.appendChild(dl);
  if (L.kind === "affine") {
    const c = SS.contributions(G, L, i, vals), top = 12, tb = el("table", "contrib"), hd = el("tr");
    box.appendChild(el("div", "small muted", vals ? "contributions: bias + w \u00d7 value (sum = value before " + (L.act === "relu" ? "ReLU)" : "activation)")
      : "terms: bias and weights (largest first)"));
    (vals ? ["term", "weight", "value", "w \u00d7 value"] : ["term", "weight"]).forEach(function (h) { hd.appendChild(el("td", "muted", h)); });
    tb.appendChild(hd);
    const add = function (cells, cls) {
      const tr = el("tr", cls || "");
      cells.forEach(function (t, k) {
        const v = typeof t === "number" ? t : null;
        tr.appendChild(el("td", k === cells.length - 1 && v !== null ? (v > 0 ? "pos" : v < 0 ? "neg" : "") : "", v !== null ? SS.short(v) : t));
      });
      tb.appendChild(tr);
    };
    add(vals ? ["bias", "", "", L.bias[i]] : ["bias", L.bias[i]], "bias");
    c.rows.slice(0, top).forEach(function (r) { add(vals ? [r.id, r.w, r.v, r.t] : [r.id, r.w]); });
    if (c.rows.length > top) {
      let rest = 0; c.rows.slice(top).forEach(function (r) { rest += r.t; });
      add(vals ? [(c.rows.length - top) + " more terms", "", "", rest] : [(c.rows.length - top) + " more weights", ""], "rest");
    }
    if (vals) {
      add(["sum", "", "", c.pre], "sum");
      if (L.act === "relu") add([L.linear && L.linear[i] ? "value = sum (linear here)" : "value = relu(sum)", "", "", vals.post[L.name][i]], "sum");
    }
    box.appendChild(tb);
    const terms = [];
    SS.inEdges(G, L, i).forEach(function (t) {
      terms.push((t.w < 0 ? " \u2212 " : " + ") + SS.fmt(Math.abs(t.w)) + " \u00d7 " + SS.nodeId(t.S, t.s));
    });
    const body = SS.fmt(L.bias[i]) + terms.join("");
    const det = el("details"), sum = el("summary", "small muted", "expression (full precision)");
    det.appendChild(sum);
    det.appendChild(el("pre", null, id + " = " + (L.act === "relu" && !(L.linear && L.linear[i]) ? "relu(" + body + ")" : body)));
    box.appendChild(det);
    if (V.layout.layers[L.name].image) {
      const imgs = el("div", "imgs"), fig = function (src, cap) {
        if (!src) return;
        const f = el("figure"); f.appendChild(SS.bigCopy(src, 112)); f.appendChild(el("figcaption", null, cap)); imgs.appendChild(f);
      };
      fig(V.weightImages[i], "weights");
      if (V.productImages) fig(V.productImages[i], "input \u00d7 weights");
      box.appendChild(imgs);
    }
  } else {
    const cols = V.layout.input.cols, r = Math.floor(i / cols), cc = i % cols;
    box.appendChild(el("pre", null, id + " = input pixel (row " + r + ", column " + cc + ")"));
  }
  if (L.feeds.length) {
    const outs = [];
    L.feeds.forEach(function (M) { for (let e = 0; e < M.dst.length; e++) if (M.src[e] === i) outs.push(SS.nodeId(M, M.dst[e]) + " (" + SS.short(M.w[e]) + ")"); });
    if (outs.length) { box.appendChild(el("div", "small muted", "feeds")); box.appendChild(el("pre", null, outs.join(", "))); }
  }
};

/* The hover tip: a short summary, and for a first-layer image unit its weights
   (and input x weights) magnified to 128 px. */
SS.renderTip = function (tip, V, loc) {
  const el = SS.el, L = loc.layer, i = loc.i;
  tip.textContent = "";
  const lines = [SS.nodeId(L, i) + (L.labels ? "  \u201c" + L.labels[i] + "\u201d" : "")];
  if (V.values) lines.push("value  " + SS.short(V.values.post[L.name][i]));
  if (L.lo) lines.push("bounds <" + SS.short(L.lo[i]) + ", " + SS.short(L.hi[i]) + ">");
  if (L.bias) lines.push("bias " + SS.short(L.bias[i]));
  if (V.off && V.off[L.name][i]) lines.push("always off over box (exactly 0)");
  SS.factRowsAt(V, SS.nodeId(L, i), SS.exactHere(V), SS.exactRound(V)).forEach(function (f) { lines.push(f[0] + ": " + f[1]); });
  lines.push("fan-in " + L.fanIn[i] + "  fan-out " + L.fanOut[i]);
  tip.appendChild(el("div", "txt", lines.join("\n")));
  if (L.kind !== "input" && V.layout.layers[L.name].image) {
    const imgs = el("div", "imgs"), fig = function (src, cap) {
      const f = el("figure"); f.appendChild(SS.bigCopy(src, 128)); f.appendChild(el("figcaption", null, cap)); imgs.appendChild(f);
    };
    fig(V.weightImages[i], "weights");
    if (V.productImages) fig(V.productImages[i], "input \u00d7 weights");
    tip.appendChild(imgs);
  }
};

/* The two title lines of an exported figure: run and round, then density, accuracy,
   box and what is shown (subgraph, input).  `m`: the round's metrics. */
SS.exportTitle = function (V, m, headline, labelOf) {
  const pct = function (v) { return typeof v === "number" ? (100 * v).toFixed(2) + "%" : "\u2014"; };
  const bits = ["density " + pct(m.density), "test accuracy " + pct(m.test_accuracy)];
  if (V.G.box) bits.push("bounds over box \u201c" + V.G.box + "\u201d");
  const outL = V.G.layers[V.G.layers.length - 1], what = [];
  if (V.G.simplified) what.push("exactly simplified graph over box \u201c" + V.G.box + "\u201d");
  if (V.state.out !== null) what.push("subgraph of " + SS.nodeId(outL, V.state.out) + (outL.labels ? " \u201c" + outL.labels[V.state.out] + "\u201d" : ""));
  if (V.state.mode === "input" && V.values) what.push("values on " + (V.inputName || "the input") + ", predicted " + labelOf(V.pred));
  return [headline, bits.join(" \u00b7 ") + (what.length ? " \u00b7 " + what.join(" \u00b7 ") : "")];
};
