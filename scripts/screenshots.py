"""Screenshots of the default viewer and of static figures, as a reader sees them in chromium.

    python3 scripts/screenshots.py [RUN] [--runs-dir DIR] [--out docs/screenshots] [--cnn CNN_RUN]

RUN: a finished MLP run (id, name or folder); without it, the default experiment
(configs/mnist-mlp.toml) is run into a temporary runs folder first.  Writes
viewer.png (the page as it opens), viewer-input.png (input mode with the
selection card), figure-input.png and figure-output.png (the SVG figures drawn by
chromium, clipped to 1600 px wide) and prints their paths.  ``--cnn CNN_RUN``
(a finished conv run in the same runs folder) also writes cnn-channel-view.png
(the conv page as it opens), cnn-channel-expanded.png (the input, c1[0] and
c2[0] expanded), cnn-unrolled-out7.png and cnn-input-values.png (the first
embedded test image); ``--cnn-only`` skips the MLP.  ``--simplified`` writes only the
``view --exact`` pages on their Simplified toggle: viewer-simplified.png (RUN, a unit proven
always on selected) and cnn-simplified-out7.png (--cnn, unrolled, output 7).  Uses /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


def _wait_ready(page) -> None:
    end = time.monotonic() + 30
    while not page.evaluate("!!(window.sparsescope && window.sparsescope.ready)"):  # the page's CSP forbids eval polling
        if time.monotonic() > end:
            raise TimeoutError("viewer did not become ready")
        time.sleep(0.02)


def _opened(p, view: Path):
    """A chromium and a 1400x900 page of ``view``, once the viewer is ready."""
    b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
    page = b.new_page(viewport={"width": 1400, "height": 900})
    page.goto(view.as_uri())
    _wait_ready(page)
    page.wait_for_timeout(200)
    return b, page


def _quantize(paths) -> None:
    from PIL import Image

    for path in paths:
        img = Image.open(path).convert("RGB")  # 256 colours: small enough to commit, still exact text
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def cnn_shots(run: str, runs: Path, out: Path, work: Path) -> list[Path]:
    """The conv page of ``run`` (its last round, every round on the slider) in four states."""
    view = work / "cnn.html"
    subprocess.run([sys.executable, "-m", "sparsescope", "view", run, "--runs-dir", str(runs), "-o", str(view)], check=True)
    from playwright.sync_api import sync_playwright

    shots = []
    with sync_playwright() as p:
        b, page = _opened(p, view)
        for name, state in (("cnn-channel-view.png", None),
                            ("cnn-channel-expanded.png", "{expand: ['in', 'c1[0]', 'c2[0]']}"),
                            ("cnn-unrolled-out7.png", "{fold: ['in', 'c1[0]', 'c2[0]'], view: 'unrolled', output: 7}"),
                            ("cnn-input-values.png", "{view: 'channels', output: null, mode: 'input', "
                                                     "sample: sparsescope.samples().index[0]}")):
            if state:
                page.evaluate(f"sparsescope.set({state})")
                page.wait_for_timeout(200)
            page.screenshot(path=str(out / name))
            shots.append(out / name)
        b.close()
    _quantize(shots)
    return shots


def simplified_shots(mlp: str | None, cnn: str | None, runs: Path, out: Path, work: Path) -> list[Path]:
    """``view --exact`` pages on their Simplified toggle: viewer-simplified.png (the MLP run, a unit
    proven always on selected: its certificate in the card) and cnn-simplified-out7.png (the conv
    run's simplified graph, unrolled, output 7)."""
    from playwright.sync_api import sync_playwright

    shots = []
    for run, name in ((mlp, "viewer-simplified.png"), (cnn, "cnn-simplified-out7.png")):
        if run is None:
            continue
        view = work / f"exact-{name}.html"
        subprocess.run([sys.executable, "-m", "sparsescope", "view", run, "--runs-dir", str(runs), "--exact", "-o", str(view)],
                       check=True)
        with sync_playwright() as p:
            b, page = _opened(p, view)
            page.locator("#graph-simp").click()
            if name.startswith("cnn"):
                page.evaluate("sparsescope.set({view: 'unrolled', output: 7})")
            else:
                lin = page.evaluate("sparsescope.graph().flatMap(l => (l.linear || []).map((v, i) => v ? l.name + '.' + i : null))"
                                    ".filter(Boolean)")
                placed = {q["id"] for q in page.evaluate("sparsescope.placed()")}
                pick = next((u for u in lin if u in placed), None)
                if pick:
                    page.evaluate(f"sparsescope.select('{pick}')")
            page.wait_for_timeout(300)
            page.screenshot(path=str(out / name))
            shots.append(out / name)
            b.close()
    _quantize(shots)
    return shots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?")
    ap.add_argument("--runs-dir", default=None)
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--cnn", default=None, metavar="CNN_RUN", help="also the conv viewer's screenshots of this run")
    ap.add_argument("--cnn-only", action="store_true", help="only the conv viewer's screenshots (needs --cnn)")
    ap.add_argument("--simplified", action="store_true",
                    help="only the exactly simplified graph's screenshots (view --exact) of RUN and of --cnn")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sparsescope-shots-"))
    runs = Path(args.runs_dir) if args.runs_dir else work / "runs"
    if args.simplified:
        for path in simplified_shots(args.run, args.cnn, runs, out, work):
            print(path)
        return
    if args.cnn is not None:
        for path in cnn_shots(args.cnn, runs, out, work):
            print(path)
    if args.cnn_only:
        return
    run = args.run
    py = [sys.executable, "-m", "sparsescope"]
    if run is None:
        subprocess.run(py + ["run", str(ROOT / "configs" / "mnist-mlp.toml"), "--quiet", "--runs-dir", str(runs)], check=True)
        run = "mnist-mlp"
    view = work / "view.html"
    subprocess.run(py + ["view", run, "--runs-dir", str(runs), "-o", str(view)], check=True)
    fig_in, fig_out = work / "figure-input.svg", work / "figure-output.svg"
    subprocess.run(py + ["graph", run, "--runs-dir", str(runs), "--input", "3", "--format", "svg", "-o", str(fig_in)], check=True)
    subprocess.run(py + ["graph", run, "--runs-dir", str(runs), "--output", "3", "--format", "svg", "-o", str(fig_out)], check=True)

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b, page = _opened(p, view)
        page.screenshot(path=str(out / "viewer.png"))
        first = page.evaluate("sparsescope.state()")
        sample = page.evaluate("+document.querySelector('#thumbs canvas').dataset.i")
        page.evaluate(f"sparsescope.set({{mode: 'input', input: {{sample: {sample}}}}})")
        h2 = next(p_["id"] for p_ in page.evaluate("sparsescope.placed()") if p_["id"].startswith("h2."))
        page.evaluate(f"sparsescope.set({{sel: '{h2}'}})")
        page.wait_for_timeout(200)
        page.screenshot(path=str(out / "viewer-input.png"))
        for svg, name in ((fig_in, "figure-input.png"), (fig_out, "figure-output.png")):
            import xml.etree.ElementTree as ET

            root = ET.parse(svg).getroot()
            w, h = (int(float(root.get(k))) + 1 for k in ("width", "height"))
            page = b.new_page(viewport={"width": min(w, 1600), "height": min(h, 2400)})
            page.goto(svg.as_uri())
            page.screenshot(path=str(out / name), timeout=120000)
        b.close()
    _quantize([out / name for name in ("viewer.png", "viewer-input.png", "figure-input.png", "figure-output.png")])
    for name in ("viewer.png", "viewer-input.png", "figure-input.png", "figure-output.png"):
        print(out / name)
    print(f"(viewer opened in state {first})")


if __name__ == "__main__":
    main()
