"""The viewer page built in Python: embedding contract, escaping, atomic write (no browser)."""

from __future__ import annotations

import html as htmlmod
import json
import re

import numpy as np
import pytest
import torch

from sparsescope.bounds import annotate
from sparsescope.graph import from_torch, to_json
from sparsescope.viewer import build_page, notebook_html, read_embedded, write_page
from sparsescope.viewer._embed import escape_json, pack_round, unescape_json
from sparsescope.viewer._layout import layout

HOSTILE = "<img src=x onerror=alert(1)>"


def _graph(seed: int, density: float, labels=None):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    with torch.no_grad():
        for lin in (m[1], m[3], m[5]):
            lin.weight.mul_(torch.rand(lin.weight.shape, generator=gen) < density)
    labels = labels or [str(k) for k in range(10)]
    return annotate(from_torch(m, (28, 28), output_labels=labels, meta={"run": "t", "round": seed}), "unit")


def _metrics(graphs):
    out = []
    for r, g in enumerate(graphs):
        left = {layer.name: layer.num_edges for layer in g.layers[1:]}
        out.append({"round": r, "density": sum(left.values()) / 26432, "weights_left": left,
                    "weights_total": {"h1": 25088, "h2": 1024, "out": 320}, "test_accuracy": 0.9 - 0.01 * r})
    return out


@pytest.fixture(scope="module")
def rounds():
    labels = [str(k) for k in range(10)]
    labels[3] = HOSTILE + '"&</script>'
    return [_graph(r, d, labels) for r, d in enumerate((1.0, 0.2, 0.02))]


def _page(rounds, title=HOSTILE):
    x = np.random.default_rng(0).integers(0, 256, (3, 28, 28)) / 255
    return build_page(rounds, _metrics(rounds), current=len(rounds) - 1, samples_x=x, samples_y=np.array([1, 2, 3]), title=title)


def test_embedded_json_is_exactly_to_json(rounds):
    page = _page(rounds)
    assert read_embedded(page) == to_json(rounds[-1])
    block = re.search(r'<script type="application/json" id="flowgraph">(.*?)</script>', page, re.S).group(1)
    assert not re.search(r"[<>&]", block)
    assert block == to_json(rounds[-1]).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    assert json.loads(block) == json.loads(to_json(rounds[-1]))


def test_escape_roundtrip_is_exact():
    for text in ['{"a":"<\\\\u003c>&\\\\"}', json.dumps(["</script><!--", "\\u003c", "a\\\\u003cb"])]:
        esc = escape_json(text)
        assert "<" not in esc and unescape_json(esc) == text and json.loads(esc) == json.loads(text)


def test_hostile_title_and_labels_stay_text(rounds):
    page = _page(rounds, title=HOSTILE + "{{CSS}}")
    assert HOSTILE not in page
    assert "<title>" + htmlmod.escape(HOSTILE + "{{CSS}}") + "</title>" in page
    assert page.count("</script>") == page.count("<script")  # no early close
    assert ".innerHTML" not in page and "eval(" not in page and "insertAdjacentHTML" not in page


def test_self_contained(rounds):
    page = _page(rounds)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_compact_rounds_are_exact(rounds):
    import base64

    import zlib

    def unpack(d):
        if "f4" in d:
            return np.frombuffer(base64.b64decode(d["f4"]), "<f4").astype(np.float64)
        raw = zlib.decompress(base64.b64decode(d["zf4"]), -15)  # raw deflate, bytes grouped by position
        n = len(raw) // 4
        return np.frombuffer(np.frombuffer(raw, np.uint8).reshape(4, n).T.copy().tobytes(), "<f4").astype(np.float64)

    packed = pack_round(rounds[1])
    kinds = set()
    for entry, layer in zip(packed["layers"], rounds[1].layers[1:]):
        kinds |= set(entry["weight"])
        assert np.array_equal(unpack(entry["weight"]), layer.weight)
        assert np.array_equal(unpack(entry["bias"]), layer.bias)
    assert kinds == {"f4", "zf4"}  # short arrays plain, long ones deflated
    assert pack_round(rounds[0])["layers"][0]["mask"] == "all"


def test_write_page_is_atomic_and_sized(rounds, tmp_path):
    path = write_page(tmp_path / "v" / "view.html", rounds, _metrics(rounds), current=2,
                      samples_x=np.zeros((0, 28, 28)), samples_y=np.zeros(0, int), title="t")
    assert path.read_text() and list(path.parent.iterdir()) == [path]


def test_bad_arguments(rounds):
    with pytest.raises(ValueError):
        build_page(rounds, _metrics(rounds)[:1], current=0, samples_x=np.zeros((0, 784)), samples_y=np.zeros(0), title="t")
    with pytest.raises(ValueError):
        build_page(rounds, _metrics(rounds), current=5, samples_x=np.zeros((0, 784)), samples_y=np.zeros(0), title="t")


def test_notebook_html_is_an_escaped_iframe(rounds):
    frag = notebook_html(rounds[-1])
    assert frag.startswith("<iframe srcdoc=") and "<script" not in frag
    inner = htmlmod.unescape(re.search(r'srcdoc="(.*?)"', frag, re.S).group(1))
    assert read_embedded(inner) == to_json(rounds[-1])


def test_layout_is_deterministic_and_complete(rounds):
    a, b = layout(rounds[-1]), layout(rounds[-1])
    assert a == b
    for layer in rounds[-1].layers[1:]:
        ys = a["layers"][layer.name]["y"]
        assert len(ys) == layer.size and len(set(ys)) == layer.size


def test_samples_pack_as_bytes_for_float64_and_float32_pixels():
    from sparsescope.viewer._embed import pack_samples

    k = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    assert "zu8" in pack_samples(k / 255.0, np.array([1]))["x"]
    f32 = (k.astype(np.float32) / np.float32(255)).astype(np.float64)
    assert "zu8f4" in pack_samples(f32, np.array([1]))["x"]
    # the page rounds k/255 to float32 (Math.fround): equal to float32 division for every byte
    assert np.array_equal((np.arange(256) / 255.0).astype(np.float32), np.arange(256, dtype=np.float32) / np.float32(255))
    assert set(pack_samples(f32 + 1e-3, np.array([1]))["x"]) & {"f4", "f8", "zf4", "zf8"}
