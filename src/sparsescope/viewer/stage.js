/* sparsescope viewer -- the graph canvas: drawing, pan/zoom (with a snapshot for heavy
   scenes), hit testing and the canvas's mouse, wheel and key events.  Adds to the context A:
   redraw, draw, frame, motion, fit, zoomAt, zoomNow, pan, benchPanZoom. */
SS.stage = function (A) {
  const V = A.V, data = A.data, $ = A.$, el = A.el, canvas = A.canvas;
  const ctx = A.ctx, t0 = A.t0, loaded = A.loaded;
  const recompute = function () { A.recompute(); }, placeCard = function () { A.placeCard(); };
  const buildThumbs = function () { A.buildThumbs(); };
  /* ---- drawing ------------------------------------------------------- */
  let pending = false;
  function redraw() { if (!pending) { pending = true; requestAnimationFrame(frame); } }
  function size() {
    const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
    return { w: w, h: h, dpr: dpr };
  }
  function draw() {
    const z = size(), t = performance.now();
    ctx.setTransform(z.dpr, 0, 0, z.dpr, 0, 0);
    const P = new SS.CanvasPainter(ctx);
    SS.drawScene(P, V, z.w, z.h, true);
    takeSnapshot();  /* the graph without the screen-fixed legend */
    SS.drawLegend(P, V, z.w, z.h);
    V.frames++;
    V.lastDrawMs = performance.now() - t;
    return V.lastDrawMs;
  }
  /* While the user pans or zooms a heavy scene (dense graphs: the browser's
     raster of thousands of curves costs ~50 ms a frame), move a snapshot of
     the last full drawing instead, and redraw in full once the motion stops. */
  const HEAVY_EDGES = 3000, SETTLE_MS = 140;
  const snap = new SS.Snapshot();
  let moving = false, settle = null;
  /* Heavy: many edges, or frames measured slow while moving (the rasterizer, not the draw call,
     can be the cost: e.g. hundreds of input edges converging on a few units). */
  A.slowFrames = 0;
  let lastFrameAt = 0;
  function heavy() { return V.G.edges >= HEAVY_EDGES || A.slowFrames >= 2; }
  function takeSnapshot() { if (!heavy()) snap.drop(); else snap.take(canvas, V.view); }
  function drawMoved() {
    const z = size(), P = new SS.CanvasPainter(ctx);
    ctx.setTransform(z.dpr, 0, 0, z.dpr, 0, 0);
    snap.paint(P, V.view, z.w, z.h);
    SS.drawLegend(P, V, z.w, z.h);
    V.frames++;
  }
  function motion() {
    moving = true;
    clearTimeout(settle);
    settle = setTimeout(function () { moving = false; redraw(); }, SETTLE_MS);
  }
  function frame() {
    pending = false;
    const now = performance.now();
    if (moving && !snap.fits(canvas) && now - lastFrameAt < 200) A.slowFrames += now - lastFrameAt > 40 ? 1 : 0;
    lastFrameAt = now;
    if (moving && snap.fits(canvas)) {
      drawMoved();
    } else {
      draw();
    }
    if (A.api.firstRenderMs === undefined) {
      A.api.firstRenderMs = performance.now(); A.api.initMs = performance.now() - t0;
      A.api.bootMs = SS.bootMs; A.api.preloadMs = SS.preloadMs;
      requestAnimationFrame(function () {
        A.api.firstFrameMs = performance.now();
        loaded.then(function () {
          $("round").disabled = false;
          buildThumbs();
          A.api.ready = true;
        }).catch(function (err) { console.error(err); $("status").textContent = String(err); });
      });
    }
    placeCard();
    $("status").textContent = V.G.edges.toLocaleString() + " edges \u00b7 " + Math.round(V.view.s * 100) + "%";
  }
  function fit() {
    const w = canvas.clientWidth, h = canvas.clientHeight, lay = V.layout;
    V.view = fitted(w, h, 40, 72);
    redraw();
  }
  const fitted = function (w, h, top, bottom) { return SS.fitted(V, w, h, top, bottom); };
  function zoomAt(f, cx, cy) {
    const v = V.view, s = Math.max(0.05, Math.min(40, v.s * f));
    v.tx = cx - (cx - v.tx) * s / v.s; v.ty = cy - (cy - v.ty) * s / v.s; v.s = s;
    redraw();
  }

  /* ---- hit testing ----------------------------------------------------- */
  function hit(sx, sy) {
    const G = V.G, wx = (sx - V.view.tx) / V.view.s, wy = (sy - V.view.ty) / V.view.s, inp = V.layout.input;
    const c = Math.floor((wx - inp.x) / inp.cell), r = Math.floor((wy - inp.y) / inp.cell);
    if (c >= 0 && c < inp.cols && r >= 0 && r < inp.rows) return { layer: G.layers[0], i: r * inp.cols + c };
    const img = V.layout.image;
    let best = null, bd = Infinity;
    G.layers.forEach(function (L) {
      if (L.kind === "input") return;  /* layer objects differ between rounds: test the kind */
      const ll = V.layout.layers[L.name], py = V.pos[L.name];
      for (let i = 0; i < L.size; i++) {
        if (py[i] !== py[i]) continue;  /* not shown */
        if (ll.image) {
          const wmax = V.state.mode === "input" ? 2 * img + 6 : img;
          if (wx >= ll.x && wx <= ll.x + wmax && Math.abs(wy - py[i]) <= img / 2) return (best = { layer: L, i: i }, bd = 0);
        } else {
          const d = Math.hypot(wx - ll.x, wy - py[i]), lim = Math.max(V.R * 1.4, 8 / V.view.s);
          if (d <= lim && d < bd) { bd = d; best = { layer: L, i: i }; }
        }
      }
    });
    return best;
  }

  /* ---- events on the graph canvas ------------------------------------ */
  let drag = null;
  canvas.addEventListener("mousedown", function (ev) { drag = { x: ev.clientX, y: ev.clientY, moved: 0 }; canvas.classList.add("drag"); });
  window.addEventListener("mousemove", function (ev) {
    if (drag) {
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      drag.moved += Math.abs(dx) + Math.abs(dy); drag.x = ev.clientX; drag.y = ev.clientY;
      V.view.tx += dx; V.view.ty += dy; motion(); redraw();
      return;
    }
    if (ev.target !== canvas) return;
    const b = canvas.getBoundingClientRect(), loc = hit(ev.clientX - b.left, ev.clientY - b.top), tip = $("tip");
    if (!loc) { tip.hidden = true; return; }
    const key = V.state.round + "|" + V.state.mode + "|" + SS.nodeId(loc.layer, loc.i) + "|" + JSON.stringify(V.state.input);
    if (tip.dataset.key !== key || tip.hidden) { SS.renderTip(tip, V, loc); tip.dataset.key = key; }
    tip.hidden = false;
    tip.style.left = Math.max(4, Math.min(ev.clientX - b.left + 14, b.width - tip.offsetWidth - 4)) + "px";
    tip.style.top = Math.max(4, Math.min(ev.clientY - b.top + 14, b.height - tip.offsetHeight - 4)) + "px";
  });
  window.addEventListener("mouseup", function (ev) {
    if (!drag) return;
    const click = drag.moved < 4 && ev.target === canvas;
    drag = null; canvas.classList.remove("drag");
    if (click) {
      const b = canvas.getBoundingClientRect(), loc = hit(ev.clientX - b.left, ev.clientY - b.top);
      V.state.sel = loc ? SS.nodeId(loc.layer, loc.i) : null;
      recompute();
    }
  });
  canvas.addEventListener("mouseleave", function () { $("tip").hidden = true; });
  canvas.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    const b = canvas.getBoundingClientRect();
    motion();
    zoomAt(Math.exp(-ev.deltaY * 0.0015), ev.clientX - b.left, ev.clientY - b.top);
  }, { passive: false });
  window.addEventListener("resize", redraw);
  window.addEventListener("keydown", function (ev) {
    const t = ev.target, typing = t.tagName === "SELECT" || t.tagName === "TEXTAREA" ||
      (t.tagName === "INPUT" && ["range", "checkbox", "button", "radio"].indexOf(t.type) < 0);
    if (typing) return;
    if (ev.key === "f") fit();
    if (ev.key === "Escape") { V.state.sel = null; recompute(); }
  });
  $("fit").onclick = fit;
  $("zoomin").onclick = function () { zoomAt(1.25, canvas.clientWidth / 2, canvas.clientHeight / 2); };
  $("zoomout").onclick = function () { zoomAt(0.8, canvas.clientWidth / 2, canvas.clientHeight / 2); };

  A.redraw = redraw; A.draw = draw; A.frame = frame; A.motion = motion; A.fit = fit; A.zoomAt = zoomAt;
  A.zoomNow = function (f) { zoomAt(f, canvas.clientWidth / 2, canvas.clientHeight / 2); pending = false; };
  /* n animation frames of pan + zoom; resolves to per-frame times (ms):
     `frame` between successive animation frames, `draw` in the draw call */
  A.benchPanZoom = function (n, full) {  /* full: redraw everything each frame, no snapshot */
    return new Promise(function (resolve) {
      const frameMs = [], drawMs = [];
      let last = null, k = 0;
      function step(ts) {
        if (last !== null) frameMs.push(ts - last);
        last = ts;
        if (k++ >= n) { resolve({ frame: frameMs, draw: drawMs }); return; }
        const f = k % 20 < 10 ? 1.03 : 1 / 1.03;
        V.view.tx += 3; V.view.ty += k % 2 ? 2 : -2;
        if (!full) motion();  /* the same path as a user's drag or wheel */
        zoomAt(f, canvas.clientWidth / 2, canvas.clientHeight / 2); pending = false;
        const t = performance.now(); if (full) draw(); else frame(); drawMs.push(performance.now() - t);
        requestAnimationFrame(step);
      }
      requestAnimationFrame(step);
    });
  };
};
