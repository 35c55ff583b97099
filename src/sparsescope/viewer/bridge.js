/* sparsescope viewer -- notebook bridge.  When the page runs inside a frame (the Jupyter widget,
   sparsescope.widget), the parent sets the round, the output and the input with
   postMessage({sparsescope: "set", round, output, input}); the page answers with
   {sparsescope: "state", ready?, selected, round, output, drawn?}: the selected node id after every
   click or key, and the drawn input (flat, row-major, [0, 1]) after the user draws on the pad.
   Nothing happens in a page opened on its own.  Both pages (MLP and conv) carry it. */
(function () {
  if (window.parent === window) return;
  let api = null, lastSel = null, userDrew = false;
  /* the conv page (api.kind "conv") names the output `output`, the MLP page `out` */
  const outOf = function (st) { return api.kind === "conv" ? st.output : st.out; };
  function post(extra) {
    const st = api.state(), msg = { sparsescope: "state", selected: st.sel || "", round: st.round, output: outOf(st) };
    window.parent.postMessage(Object.assign(msg, extra || {}), "*");
  }
  function check() {
    const sel = api.state().sel || "";
    let extra = null;
    if (userDrew) { userDrew = false; const x = api.input(); if (x) extra = { drawn: x }; }
    if (sel !== lastSel || extra) { lastSel = sel; post(extra); }
  }
  function receive(ev) {
    const d = ev.data;
    if (ev.source !== window.parent || !d || d.sparsescope !== "set") return;
    const patch = {};
    if (Number.isInteger(d.round) && d.round >= 0) patch.round = d.round;
    if (d.output === null || (Number.isInteger(d.output) && d.output >= 0)) patch[api.kind === "conv" ? "output" : "out"] = d.output;
    if (Object.keys(patch).length) api.set(patch);
    if (Array.isArray(d.input) && d.input.length && d.input.every(Number.isFinite)) api.setDrawn(d.input);
    check();
  }
  function start() {
    api = window.sparsescope;
    if (!api || !api.ready) { setTimeout(start, 50); return; }
    const pad = document.getElementById("pad");
    if (pad) pad.addEventListener("mousedown", function () { userDrew = true; });
    ["click", "mouseup", "keyup"].forEach(function (t) { window.addEventListener(t, function () { setTimeout(check, 0); }); });
    window.addEventListener("message", receive);
    lastSel = api.state().sel || "";
    post({ ready: true });
  }
  start();
})();
