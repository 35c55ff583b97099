/* sparsescope viewer -- episode mode, for a run on an environment (the CartPole DQN).
   The page data's `episode` is the recorded greedy episode of the round the page opened at:
   its states (the network's inputs, float32 values), its Q-values and the actions taken.
   A timeline slider steps through it; each step's state becomes the graph's input (the
   graph shows the values flowing, computed in the page in float64), beside the Q-values
   and the action taken, and a drawing of the cart and pole.  Everything from data is
   written with textContent. */
(function () {
  const start = SS.start;
  SS.start = function (data, loaded) {
    start(data, loaded);
    /* the episode's states are the page's samples: wait until they are inflated */
    if (data.episode) Promise.resolve(loaded).then(function () { if (window.sparsescope) SS.episodeMode(data, window.sparsescope); });
  };
})();

/* The cart on its track and the pole at angle theta (radians, 0 = upright, positive leans right).
   The track spans the termination limits of the cart position (|x| <= xMax). */
SS.drawCartPole = function (canvas, x, theta, action, xMax, thetaMax) {
  const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height;
  ctx.clearRect(0, 0, W, H);
  const pad = 14, scale = (W - 2 * pad) / (2 * xMax), ground = H - 22;
  const px = W / 2 + x * scale;
  ctx.strokeStyle = "#999"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(pad, ground); ctx.lineTo(W - pad, ground); ctx.stroke();
  ctx.fillStyle = "#c33";  /* the termination limits */
  ctx.fillRect(pad - 1, ground - 8, 2, 16); ctx.fillRect(W - pad - 1, ground - 8, 2, 16);
  const cw = 40, ch = 18;
  ctx.fillStyle = "#334"; ctx.fillRect(px - cw / 2, ground - ch, cw, ch);
  const len = ground - ch - 8;  /* the pole: drawn long enough to read the angle */
  const tx = px + len * Math.sin(theta), ty = ground - ch - len * Math.cos(theta);
  ctx.strokeStyle = Math.abs(theta) > thetaMax * 0.75 ? "#c33" : "#b8862b"; ctx.lineWidth = 6; ctx.lineCap = "round";
  ctx.beginPath(); ctx.moveTo(px, ground - ch); ctx.lineTo(tx, ty); ctx.stroke();
  ctx.fillStyle = "#2a6f3a";  /* the push of the action taken */
  const dir = action === 0 ? -1 : 1, ax = px + dir * (cw / 2 + 4), ay = ground - ch / 2;
  ctx.beginPath(); ctx.moveTo(ax, ay - 6); ctx.lineTo(ax + dir * 14, ay); ctx.lineTo(ax, ay + 6); ctx.closePath(); ctx.fill();
};

SS.episodeMode = function (data, api) {
  const ep = data.episode, T = ep.states.length;
  const $ = function (id) { return document.getElementById(id); };
  const el = SS.el;
  const sec = el("section"); sec.id = "episode";
  const h = el("h2", null, "Greedy episode \u00b7 step "); const stepLab = el("span"); stepLab.id = "ep-label"; h.appendChild(stepLab);
  sec.appendChild(h);
  sec.appendChild(el("div", "muted small", "recorded with round " + ep.round + "'s agent: return " + ep["return"] +
    " (seed " + ep.seed + "); each step's state is the graph's input"));
  const slider = el("input"); slider.type = "range"; slider.id = "ep-step"; slider.min = "0"; slider.max = String(Math.max(T - 1, 0));
  slider.step = "1"; slider.value = "0"; slider.setAttribute("aria-label", "episode step");
  sec.appendChild(slider);
  const row = el("div", "row");
  const prev = el("button", null, "\u25c0"), play = el("button", null, "Play"), next = el("button", null, "\u25b6");
  prev.id = "ep-prev"; play.id = "ep-play"; next.id = "ep-next";
  [prev, play, next].forEach(function (b) { row.appendChild(b); });
  sec.appendChild(row);
  const cv = el("canvas"); cv.id = "ep-cart"; cv.width = 320; cv.height = 110; sec.appendChild(cv);
  const tbl = el("div", "figures"); tbl.id = "ep-state"; sec.appendChild(tbl);
  const qs = el("div"); qs.id = "ep-q"; sec.appendChild(qs);
  const panel = $("panel"), after = $("rounds");
  panel.insertBefore(sec, after);
  /* a CartPole state is not an image: the thumbnails and the drawing pad do not apply */
  if ($("thumbs")) $("thumbs").hidden = true;
  const pad = document.querySelector(".drawrow"); if (pad) pad.hidden = true;
  const xMax = (ep.limits && ep.limits[0]) || 2.4, thetaMax = (ep.limits && ep.limits[2]) || 0.2094;
  const names = ep.inputs, acts = ep.actions_names;

  let t = 0, timer = null;
  function show(k) {
    t = Math.max(0, Math.min(T - 1, k | 0));
    slider.value = String(t);
    api.set({ mode: "input", input: { sample: t } });
    const s = ep.states[t], q = ep.q[t], a = ep.actions[t];
    stepLab.textContent = t + " / " + (T - 1);
    SS.drawCartPole(cv, s[0], s[2], a, xMax, thetaMax);
    tbl.textContent = "";
    names.forEach(function (n, i) { tbl.appendChild(el("span", "k", "in." + i + " " + n)); tbl.appendChild(el("span", null, SS.short(s[i]))); });
    qs.textContent = "";
    const live = api.values(), out = live ? live[Object.keys(live).pop()] : null;
    const lo = Math.min.apply(null, q), hi = Math.max.apply(null, q);
    q.forEach(function (v, k2) {
      const r = el("div", "bar" + (k2 === a ? " top" : "")), bar = el("i");
      r.appendChild(el("span", "lab", "Q(" + acts[k2] + ")"));
      bar.style.width = Math.round(4 + 90 * (v - lo) / ((hi - lo) || 1)) + "px";
      r.appendChild(bar); r.appendChild(el("span", null, SS.short(v) + (out ? "  (graph " + SS.short(out[k2]) + ")" : "")));
      qs.appendChild(r);
    });
    qs.appendChild(el("div", "small", "action taken: " + acts[a] + " (argmax of the recorded Q-values)"));
  }
  function stop() { if (timer) { clearInterval(timer); timer = null; play.textContent = "Play"; } }
  slider.addEventListener("input", function () { stop(); show(+this.value); });
  prev.onclick = function () { stop(); show(t - 1); };
  next.onclick = function () { stop(); show(t + 1); };
  play.onclick = function () {
    if (timer) { stop(); return; }
    if (t >= T - 1) t = -1;
    play.textContent = "Pause";
    timer = setInterval(function () { if (t >= T - 1) { stop(); return; } show(t + 1); }, 40);
  };
  api.episodeStep = show;  /* for tests */
  api.episodeLength = T;
  if (T) show(0);
};
