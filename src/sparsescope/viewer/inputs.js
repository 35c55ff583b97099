/* sparsescope viewer -- the inputs: test-image thumbnails (numbered by their test-set index,
   each marked when the round misclassifies it), the drawing pad and the output scores.
   Adds to the context A: buildThumbs, inputPanel, showPad. */
SS.inputs = function (A) {
  const V = A.V, data = A.data, $ = A.$, el = A.el, canvas = A.canvas;
  const L0 = A.L0, inRows = A.inRows, inCols = A.inCols, labelOf = A.labelOf;
  const recompute = function () { A.recompute(); };
  // samples
  /* Thumbnails (and each sample's prediction) are made right after the first frame,
     so the graph shows first; `ready` is set once they exist. */
  const thumbs = $("thumbs"), thumbEls = [];
  function buildThumbs() {
    for (let i = 0; i < V.samples.n; i++) {
      const c = SS.greyImage(document.createElement("canvas"), V.samples.x(i), inRows, inCols), t = V.samples.index[i];
      c.dataset.i = String(t);
      c.onclick = function () { V.state.input = { sample: t }; V.state.mode = "input"; recompute(); };
      thumbs.appendChild(c); thumbEls.push(c);
    }
    inputPanel();
  }
  let predRound = null, preds = [];
  function samplePreds() {
    if (predRound === V.state.round) return preds;
    const G = V.G, out = G.layers[G.layers.length - 1];
    preds = [];
    for (let i = 0; i < V.samples.n; i++) preds.push(SS.argmax(SS.evaluate(G, V.samples.x(i)).post[out.name]));
    predRound = V.state.round;
    thumbEls.forEach(function (c, i) {
      c.classList.toggle("wrong", preds[i] !== V.samples.y[i]);
      c.title = "test image #" + V.samples.index[i] + "  true " + labelOf(V.samples.y[i]) + "  predicted " + labelOf(preds[i]);
    });
    return preds;
  }

  // drawing pad
  const pad = $("pad"), padCtx = pad.getContext("2d");
  let painting = null;
  function showPad() { SS.greyImage(pad, V.drawn, inRows, inCols); }
  function paint(px, py) { SS.paint(V.drawn, inRows, inCols, px, py); }
  function padPos(ev) { const b = pad.getBoundingClientRect(); return [(ev.clientX - b.left) / b.width * inCols, (ev.clientY - b.top) / b.height * inRows]; }
  function strokeTo(p) {
    const q = painting.last, n = Math.max(1, Math.ceil(Math.hypot(p[0] - q[0], p[1] - q[1]) * 2));
    for (let k = 1; k <= n; k++) paint(q[0] + (p[0] - q[0]) * k / n, q[1] + (p[1] - q[1]) * k / n);
    painting.last = p;
    V.state.input = { drawn: true }; V.state.mode = "input";
    showPad(); recompute();
  }
  pad.addEventListener("mousedown", function (ev) { ev.preventDefault(); const p = padPos(ev); painting = { last: p }; paint(p[0], p[1]); strokeTo(p); });
  window.addEventListener("mousemove", function (ev) { if (painting) strokeTo(padPos(ev)); });
  window.addEventListener("mouseup", function () { painting = null; });
  $("pad-clear").onclick = function () { V.drawn.fill(0); showPad(); if (V.state.input && V.state.input.drawn) recompute(); };
  showPad();
  if (!V.samples.n) thumbs.hidden = true;

  function inputPanel() {
    const info = $("input-info"), st = V.state, scores = $("scores");
    scores.textContent = "";
    thumbEls.forEach(function (c) { c.classList.remove("on"); });
    if (thumbEls.length) samplePreds();
    if (!st.input || st.mode !== "input" || !V.values) { info.textContent = V.samples.n ? "Pick a test image or draw a digit to see every node's value." : "Draw a digit to see every node's value."; return; }
    const p = V.pred;
    if (st.input.sample !== undefined) {
      const t = st.input.sample, k = V.samples.pos(t), y = V.samples.y[k];
      thumbEls[k] && thumbEls[k].classList.add("on");
      if (data.episode) {  /* an RL run: the samples are the steps of its recorded greedy episode */
        V.inputName = "episode step " + t + " (action taken " + labelOf(y) + ")";
        info.textContent = "episode step " + t + " \u00b7 action taken " + labelOf(y) + " \u00b7 argmax Q " + labelOf(p);
      } else {
        V.inputName = "test image #" + t + " (true " + labelOf(y) + ")";
        info.textContent = "test image #" + t + " \u00b7 true " + labelOf(y) + " \u00b7 predicted " + labelOf(p) + (p === y ? "  \u2713" : "  \u2717");
      }
    } else { V.inputName = "drawn input"; info.textContent = "drawn input \u00b7 predicted " + labelOf(p); }
    const out = V.G.layers[V.G.layers.length - 1], v = V.values.post[out.name];
    let lo = Math.min.apply(null, v), hi = Math.max.apply(null, v);
    for (let k = 0; k < v.length; k++) {
      const row = el("div", "bar" + (k === p ? " top" : "")), bar = el("i");
      row.appendChild(el("span", "lab", labelOf(k)));
      bar.style.width = Math.round(4 + 90 * (v[k] - lo) / ((hi - lo) || 1)) + "px";
      row.appendChild(bar); row.appendChild(el("span", null, SS.short(v[k])));
      scores.appendChild(row);
    }
  }

  A.buildThumbs = buildThumbs; A.inputPanel = inputPanel; A.showPad = showPad;
};
