/* sparsescope viewer -- boot: read the data block, inflate what is deflated, start. */
/* Inflate the deflated blocks, then start; a browser without DecompressionStream says so. */
(function () {
  SS.bootMs = performance.now();  /* navigation start -> this script (HTML parsed) */
  const data = JSON.parse(document.getElementById("sparsescope-data").textContent);
  let ready;
  try {
    ready = Promise.all([SS.preload(data), SS.readSimplified().then(function (d) { SS.simplifiedDoc = d; })]);
  } catch (err) { ready = Promise.reject(err); }
  ready = ready.then(function () { SS.preloadMs = performance.now() - SS.bootMs; });
  /* a link to another round or to a sample needs the inflated data before the first frame */
  const h = location.hash, cur = new RegExp("[#&]r=" + data.current + "(&|$)");
  const waits = /[#&](i=s|s=1)/.test(h) || (/[#&]r=/.test(h) && !cur.test(h));
  const fail = function (err) {
    document.getElementById("status").textContent = "this browser cannot read the page's compressed data (" + err + ")";
  };
  if (waits) ready.then(function () { SS.start(data, ready); }, fail);
  else { ready.catch(fail); SS.start(data, ready); }
})();
