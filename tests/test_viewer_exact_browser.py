"""``view RUN --exact`` in headless Debian chromium: the selection card shows each unit's exact
range beside its interval bounds, equal (to the 4 digits shown) to ``analyse RUN --exact``'s."""

from __future__ import annotations

import json
import re

import pytest

from sparsescope.cli import main

from test_viewer_browser import opened, browser  # noqa: F401  (browser is a fixture)

pytestmark = pytest.mark.browser
NUM = r"(-?[0-9.]+(?:e[-+]?[0-9]+)?)"


def _card_rows(page) -> dict[str, str]:
    """The selection card's rows, ``{term: text}``."""
    return dict(page.evaluate("Array.from(document.querySelectorAll('#sel dt')).map(dt => "
                              "[dt.textContent, dt.nextElementSibling.textContent])"))


def test_card_shows_the_exact_range_that_analyse_finds(browser, tmp_path, small_config, capsys):  # noqa: F811
    runs = str(tmp_path / "runs")
    assert main(["run", str(small_config(rounds=3)), "--runs-dir", runs, "--quiet"]) == 0
    page_path = tmp_path / "exact.html"
    assert main(["view", "small", "--runs-dir", runs, "--exact", "--samples", "0-3", "-o", str(page_path)]) == 0
    capsys.readouterr()
    assert main(["analyse", "small", "--runs-dir", runs, "--exact", "--format", "json"]) == 0
    units = json.loads(capsys.readouterr().out)["exact"]["units"]
    # a few units of every layer whose two ends are exact and not both zero
    picked = {}
    for u in units:
        layer = u["node"].rsplit(".", 1)[0]
        if u["status"] == ["exact", "exact"] and u["exact"] != [0.0, 0.0] and len(picked.get(layer, [])) < 3:
            picked.setdefault(layer, []).append(u)
    assert len(picked) >= 2, picked
    with opened(browser, page_path.as_uri()) as page:
        for u in (u for us in picked.values() for u in us):
            page.evaluate(f"sparsescope.select({json.dumps(u['node'])})")
            rows = _card_rows(page)
            assert "exact sum" in rows, (u["node"], rows)
            m = re.match(rf"\[{NUM}, {NUM}\] exact, witnessed; sound \[{NUM}, {NUM}\]", rows["exact sum"])
            assert m, rows["exact sum"]
            lo, hi, slo, shi = map(float, m.groups())
            assert lo == pytest.approx(u["exact"][0], rel=6e-4, abs=1e-12), u["node"]
            assert hi == pytest.approx(u["exact"][1], rel=6e-4, abs=1e-12), u["node"]
            assert slo == pytest.approx(u["float32"][0], rel=6e-4) and shi == pytest.approx(u["float32"][1], rel=6e-4)
            assert "bounds" in rows  # the interval bounds sit beside it
