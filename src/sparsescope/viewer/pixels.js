/* sparsescope viewer -- images of inputs, shared by the MLP and conv pages: greyscale
   pictures of an input and the drawing pad's brush. */
/* A greyscale image, white ink on black like MNIST. */
SS.greyImage = function (canvas, values, rows, cols) {
  canvas.width = cols; canvas.height = rows;
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(cols, rows), d = img.data;
  for (let k = 0; k < rows * cols; k++) {
    const g = Math.round(255 * Math.max(0, Math.min(1, values[k])));
    d[4 * k] = d[4 * k + 1] = d[4 * k + 2] = g; d[4 * k + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
};

/* A brush stroke at (px, py) on a rows x cols drawing: full ink at the pixel, less around it. */
SS.paint = function (drawn, rows, cols, px, py) {
  const r = Math.floor(py), c = Math.floor(px);
  const put = function (rr, cc, v) { if (rr >= 0 && rr < rows && cc >= 0 && cc < cols) { const k = rr * cols + cc; if (drawn[k] < v) drawn[k] = v; } };
  put(r, c, 1);
  put(r - 1, c, 160 / 255); put(r + 1, c, 160 / 255); put(r, c - 1, 160 / 255); put(r, c + 1, 160 / 255);
  put(r - 1, c - 1, 64 / 255); put(r - 1, c + 1, 64 / 255); put(r + 1, c - 1, 64 / 255); put(r + 1, c + 1, 64 / 255);
};
