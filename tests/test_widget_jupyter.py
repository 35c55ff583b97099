"""sparsescope.widget in a real JupyterLab, driven by playwright with Debian chromium: Python sets the
output and the input, the page sends back the selected node and a drawn input (both ways, offline)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
SRC = Path(__file__).resolve().parents[1] / "src"

CELLS = [
    # 1: a small graph (4x4 image input, 3 outputs) and its widget
    "import numpy as np, sparsescope\n"
    "from sparsescope.graph import from_arrays\n"
    "from sparsescope.bounds import annotate\n"
    "rng = np.random.default_rng(0)\n"
    "g = annotate(from_arrays([rng.normal(size=(5, 16)), rng.normal(size=(3, 5))], [np.zeros(5), np.zeros(3)],\n"
    "             ['relu', 'identity'], (4, 4), output_labels=['a', 'b', 'c']))\n"
    "w = sparsescope.widget(g, height=520)\n"
    "w",
    # 2: Python -> page
    "w.output = 2\nw.input = [0.25] * 16",
    # 3: page -> Python
    "print('SEL=' + w.selected, 'DRAWN=%d' % sum(v > 0 for v in w.drawn), 'LEN=%d' % len(w.drawn))",
    # 4: a conv graph (8x8 input, 2 channels, 3 outputs): the conv page in the widget
    "import torch\n"
    "from sparsescope.graph import from_torch\n"
    "torch.manual_seed(0)\n"
    "m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(72, 3))\n"
    "gc = annotate(from_torch(m, (8, 8)))\n"
    "wc = sparsescope.widget(gc, height=520)\n"
    "wc",
    # 5: Python -> conv page
    "wc.output = 1\nwc.input = [0.5] * 64",
    # 6: conv page -> Python
    "print('CSEL=' + wc.selected, 'CDRAWN=%d' % sum(v > 0.5 for v in wc.drawn), 'CLEN=%d' % len(wc.drawn))",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook() -> dict:
    cell = lambda src: {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": src}  # noqa: E731
    return {"cells": [cell(c) for c in CELLS], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
            "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture
def lab(tmp_path):
    pytest.importorskip("anywidget")
    pytest.importorskip("jupyterlab")
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian chromium")
    (tmp_path / "w.ipynb").write_text(json.dumps(_notebook()))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
               IPYTHONDIR=str(tmp_path / "ipy"), OMP_NUM_THREADS="1")
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
         f"--LabApp.workspaces_dir={tmp_path / 'ws'}", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"]
        + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    pytest.fail("JupyterLab did not start: " + (tmp_path / "lab.log").read_text()[-2000:])
                time.sleep(0.5)
        yield f"{base}/lab/tree/w.ipynb?token={token}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(tmp_path / "rt", ignore_errors=True)


def _run_cell(page, k: int) -> None:
    cell = page.locator(".jp-Notebook .jp-Cell").nth(k)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Escape")  # command mode: Shift+Enter runs the selected cell
    page.keyboard.press("Shift+Enter")
    prompt = cell.locator(".jp-InputPrompt")
    _wait(lambda: "[ ]" not in prompt.inner_text(), 60, f"cell {k} to start")


def _viewer_frame(page, timeout_s: float = 90, kind: str | None = None):
    """The first ready viewer frame (``kind="conv"``: the conv page's)."""
    deadline = time.time() + timeout_s
    ready = "!!(window.sparsescope && window.sparsescope.ready" + (f" && window.sparsescope.kind === '{kind}')" if kind else ")")
    errors: list[str] = []
    while time.time() < deadline:
        handles = page.locator(".jp-OutputArea-output iframe").element_handles()
        for f in list(page.frames) + [h.content_frame() for h in handles]:
            if f is None or f is page.main_frame:
                continue
            try:
                if f.evaluate(ready):
                    return f
            except Exception as exc:  # a frame still loading or gone
                errors.append(f"{f.url[:40]}: {exc}"[:300])
        time.sleep(0.3)
    raise AssertionError(f"the widget's viewer frame never became ready: {len(page.frames)} frames, "
                         f"{page.locator('iframe').count()} iframes, {errors[-3:]}")


def _wait(fn, timeout_s: float = 60, what: str = ""):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _stroke(page, frame, a, b):
    """Draw one stroke on ``frame``'s pad from fraction ``a`` to ``b`` of its box; the input the page then holds."""
    frame.locator("#pad").scroll_into_view_if_needed()
    box = frame.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + box["width"] * a[0], box["y"] + box["height"] * a[1])
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * b[0], box["y"] + box["height"] * b[1], steps=8)
    page.mouse.up()
    return frame.evaluate("sparsescope.input()")


def test_widget_syncs_both_ways_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.set_default_timeout(120_000)
        page.goto(lab)
        page.locator(".jp-Notebook .jp-Cell").first.wait_for()
        _wait(lambda: any("Idle" in t for t in page.locator("#jp-main-statusbar").all_inner_texts()), 120,
              "the kernel to start")
        _run_cell(page, 0)
        try:
            frame = _viewer_frame(page)
        except AssertionError:
            page.screenshot(path=os.environ.get("SPARSESCOPE_WIDGET_SHOT", "/tmp/widget-fail.png"))
            raise
        assert frame.evaluate("sparsescope.state().out") is None

        # Python -> page: the output and the input
        _run_cell(page, 1)
        _wait(lambda: frame.evaluate("sparsescope.state().out") == 2, what="output 2 in the page")
        x = _wait(lambda: frame.evaluate("sparsescope.input()"), what="the input in the page")
        assert x == [0.25] * 16

        # page -> Python: select a node, draw on the pad
        frame.evaluate("sparsescope.select('h1.3')")
        frame.evaluate("window.dispatchEvent(new MouseEvent('mouseup'))")
        drawn = _stroke(page, frame, (0.3, 0.3), (0.7, 0.6))
        assert max(drawn) == 1.0 and min(drawn) == 0.25  # strokes over the input Python set
        frame.evaluate("sparsescope.select('h1.3'); window.dispatchEvent(new MouseEvent('mouseup'))")
        _run_cell(page, 2)
        out = _wait(lambda: [t for t in page.locator(".jp-OutputArea-output").all_inner_texts() if "SEL=" in t],
                    what="the printed state")[0]
        assert "SEL=h1.3" in out and "LEN=16" in out, out
        assert int(out.split("DRAWN=")[1].split()[0]) == sum(v > 0 for v in drawn), out

        # a conv graph gets the conv page (channel view), synced the same way
        _run_cell(page, 3)
        conv = _viewer_frame(page, kind="conv")
        assert conv.evaluate("sparsescope.state().view") == "channels" and conv.evaluate("sparsescope.cards()")[:2] == ["in", "c1[0]"]
        _run_cell(page, 4)
        _wait(lambda: conv.evaluate("sparsescope.state().output") == 1, what="output 1 in the conv page")
        x = _wait(lambda: conv.evaluate("sparsescope.input()"), what="the input in the conv page")
        assert x == [0.5] * 64
        conv.evaluate("sparsescope.set({select: 'c1[1,2,3]'}); window.dispatchEvent(new MouseEvent('mouseup'))")
        cdrawn = _stroke(page, conv, (0.2, 0.2), (0.8, 0.7))
        assert max(cdrawn) == 1.0 and min(cdrawn) == 0.5
        _run_cell(page, 5)
        out = _wait(lambda: [t for t in page.locator(".jp-OutputArea-output").all_inner_texts() if "CSEL=" in t],
                    what="the printed conv state")[0]
        assert "CSEL=c1[1,2,3]" in out and "CLEN=64" in out, out
        assert int(out.split("CDRAWN=")[1].split()[0]) == sum(v > 0.5 for v in cdrawn), out
        browser.close()
    # offline: nothing but the local server (and the page's own data) was requested
    assert all(u.startswith(("http://127.0.0.1", "data:", "blob:", "about:")) for u in requests), \
        [u for u in requests if not u.startswith(("http://127.0.0.1", "data:", "blob:", "about:"))][:5]
