/* The anywidget front end of sparsescope.widget: the viewer page in a sandboxed frame, synced both
   ways through the page's bridge (bridge.js).  Python -> page: round, output, input; page -> Python:
   selected, drawn.  No network: the page and this module come inline from Python. */
function render({ model, el }) {
  const frame = document.createElement("iframe");
  frame.setAttribute("sandbox", "allow-scripts allow-downloads");
  frame.style.width = "100%";
  frame.style.height = model.get("height") + "px";
  frame.style.border = "1px solid #ddd";
  frame.srcdoc = model.get("_page");
  el.appendChild(frame);
  const push = function () {
    if (!frame.contentWindow) return;
    const input = model.get("input");
    frame.contentWindow.postMessage({ sparsescope: "set", round: model.get("round"), output: model.get("output"),
                                      input: input && input.length ? input : null }, "*");
  };
  const receive = function (ev) {
    const d = ev.data;
    if (ev.source !== frame.contentWindow || !d || d.sparsescope !== "state") return;
    if (d.ready) { push(); return; }
    if (typeof d.selected === "string") model.set("selected", d.selected);
    if (Array.isArray(d.drawn)) model.set("drawn", d.drawn);
    model.save_changes();
  };
  window.addEventListener("message", receive);
  model.on("change:round", push);
  model.on("change:output", push);
  model.on("change:input", push);
  model.on("change:_page", function () { frame.srcdoc = model.get("_page"); });
  return function () { window.removeEventListener("message", receive); };
}
export default { render };
