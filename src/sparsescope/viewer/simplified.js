/* sparsescope viewer -- the exactly simplified graph (view --exact; viewer/_simplified.py): reading
   its deflated block, turning its DAG (edges that may skip layers) into the page's graph, and the
   certificate's facts as card rows.  Shared by the MLP and conv pages; no DOM except the block
   and the witness button.  All data-derived text goes through textContent. */

/* The block, inflated and parsed: {dag, facts, witnesses, sizes, composed, box}, or null. */
SS.readSimplified = function () {
  const el = document.getElementById("simplified");
  if (!el) return Promise.resolve(null);
  const d = JSON.parse(el.textContent);
  return SS.inflate(d.z).then(function (u8) { return JSON.parse(new TextDecoder().decode(u8)); });
};

/* The DAG's nodes and edges on the layers of `base` (the opened round): per node its layer and flat
   index; edges grouped by (target layer, source layer).  Returns {bias, linear, present, groups} per
   layer name: biases, linear flags (ReLU units proven always on; an identity layer is not marked)
   and presence (Float64Array / Uint8Array of the layer's size; nodes not in the DAG keep bias 0 and
   no edges), and the edge groups by source layer name. */
SS.dagParts = function (dag, base) {
  const byName = {}, parts = {};
  base.layers.forEach(function (L) {
    byName[L.name] = L;
    parts[L.name] = { bias: new Float64Array(L.size), linear: new Uint8Array(L.size), present: new Uint8Array(L.size), groups: new Map() };
  });
  const where = function (id) {
    const loc = SS.locate(base, id);
    if (!loc) throw new Error("simplified graph: unknown node " + id);
    return loc;
  };
  const pos = new Map();
  dag.nodes.forEach(function (n) {
    const loc = where(n.id), p = parts[loc.layer.name];
    p.bias[loc.i] = n.bias; p.present[loc.i] = 1;
    if (n.activation === "linear" && loc.layer.act === "relu") p.linear[loc.i] = 1;  /* a ReLU proven always on */
    pos.set(n.id, loc);
  });
  dag.edges.forEach(function (e) {
    const s = pos.get(e[0]) || where(e[0]), d = pos.get(e[1]) || where(e[1]), p = parts[d.layer.name];
    let g = p.groups.get(s.layer.name);
    if (!g) { g = { source: s.layer.name, dst: [], src: [], w: [] }; p.groups.set(s.layer.name, g); }
    g.dst.push(d.i); g.src.push(s.i); g.w.push(e[2]);
  });
  return parts;
};

/* The MLP page's graph of the simplified DAG: the layers, labels and bounds of `base` (a node the DAG
   keeps takes the same values as in the original over the box), the DAG's biases and edges. */
SS.fromDag = function (dag, base) {
  const parts = SS.dagParts(dag, base), G = { layers: [], byName: Object.create(null), meta: base.meta, box: base.box, simplified: true };
  base.layers.forEach(function (B) {
    const L = Object.assign({}, B), p = parts[B.name];
    delete L.lodOrder; delete L.lodKey;
    if (B.kind === "affine") {
      const own = p.groups.get(B.source) || { dst: [], src: [], w: [] };
      L.bias = p.bias; L.linear = p.linear;
      L.dst = Int32Array.from(own.dst); L.src = Int32Array.from(own.src); L.w = Float64Array.from(own.w);
      L.skips = [];
      p.groups.forEach(function (g, name) {
        if (name !== B.source) L.skips.push({ name: B.name, shape: B.shape, size: B.size, kind: "affine", source: name,
          dst: Int32Array.from(g.dst), src: Int32Array.from(g.src), w: Float64Array.from(g.w), skip: true });
      });
    }
    G.layers.push(L); G.byName[L.name] = L;
  });
  SS.index(G);
  return G;
};

/* The certificate as {node id: [fact, ...]}. */
SS.factIndex = function (facts) {
  const m = new Map();
  facts.forEach(function (f) { if (!m.has(f.node)) m.set(f.node, []); m.get(f.node).push(f); });
  return m;
};
SS.HOW = { interval: "interval bounds over the box", greedy: "the greedy vertex of the box (exact, no program needed)",
  milp: "mixed-integer programming (HiGHS), proven optimal", structure: "structure: every live source is constant or off",
  box: "the box (its two ends are equal)", constant: "structure (constant sources)" };
/* Card rows [[term, text, witness row?]] for node `id` from V.facts (the certificate). */
SS.factRows = function (V, id) {
  const fs = V.facts.get(id);
  if (!fs) return [];
  const box = "\u201c" + V.simplified.box + "\u201d", how = function (f) { return "proven by " + (SS.HOW[f.how] || f.how); };
  return fs.map(function (f) {
    const w = typeof f.witness === "number" && f.witness >= 0 && V.simplified.witnesses[String(f.witness)] ? f.witness : undefined;
    const wit = w !== undefined ? "; the extreme " + SS.fmt(f.exact) + " is attained at witness input #" + w : "";
    switch (f.fact) {
      case "off": return ["certificate", "always off over box " + box + ": sum \u2264 " + SS.fmt(f.pre_hi) + " \u2264 0, so exactly 0 (removed); " + how(f) + wit, w];
      case "on": return ["certificate", "always on over box " + box + ": sum \u2265 " + SS.fmt(f.pre_lo) + " \u2265 0, so linear there; " + how(f) + wit, w];
      case "constant": return ["certificate", f.pre !== undefined ? "constant " + SS.fmt(f.value) + " (sum " + SS.fmt(f.pre) + "), folded into its consumers' biases; " + how(f)
        : "constant input " + SS.fmt(f.value) + " over box " + box + ", folded into its consumers' biases; " + how(f)];
      case "composed": return ["certificate", "composed into " + (f.consumers || []).join(", ") + " (" + f.sources + " sources; edges " +
        (f.edges ? f.edges[0] + " \u2192 " + f.edges[1] : "?") + "); linear because " + (f.how === "on" ? "proven always on" : "it has no activation")];
      case "unused": return ["certificate", "unused: no path to an output in the simplified graph"];
      case "ignored": return ["certificate", "ignored input: no path to an output in the simplified graph"];
      default: return ["certificate", f.fact + " (" + f.how + ")"];
    }
  });
};
/* The certificate's card rows for node `id` as shown at a displayed round: the facts (SS.factRows) only
   when `here` (the displayed round is the one the exact analysis belongs to, round `roundNo`); elsewhere
   one note row for a node the certificate names, since its facts say nothing about another round. */
SS.factRowsAt = function (V, id, here, roundNo) {
  if (!V.facts) return [];
  if (here) return SS.factRows(V, id);
  return V.facts.has(id) ? [["certificate", "exact analysis: round " + roundNo + " only"]] : [];
};
/* A <dd> with a button that loads witness input `row` as the drawn input (V.loadWitness). */
SS.witnessButton = function (V, row) {
  const dd = SS.el("dd"), b = SS.el("button", "small", "load witness #" + row + " as the input");
  b.onclick = function () { V.loadWitness(Float64Array.from(V.simplified.witnesses[String(row)])); };
  dd.appendChild(b);
  return dd;
};
