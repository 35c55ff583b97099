"""The exactly simplified graph as the pages carry it (``view --exact``).

An exact analysis (:func:`sparsescope.exact.analyse_box` with ``exact=True``)
simplifies the opened round over its box: units proven always off removed,
constant units folded into their consumers' biases, units proven always on
marked linear and composed into their consumers where that saves edges (their
sources then feed the consumers directly: edges may skip layers).  The page
draws that graph beside the original, so it rides as one more escaped JSON
block, ``<script type="application/json" id="simplified">``:

* ``dag``: the simplified graph as ``sparsescope.dag`` JSON
  (docs/analysis-schema.md): ``layers``, ``nodes`` (``id``, ``layer``,
  ``activation`` ``input``/``relu``/``linear``, ``bias``) and ``edges``
  (``[source id, target id, weight]``), floats that round-trip exactly;
* ``facts``: the certificate, every fact as the analysis JSON lists it
  (``node``, ``fact``, ``how``, and ``pre_hi``/``pre_lo``/``value``/``exact``/
  ``witness``/``consumers``... as the fact has them);
* ``witnesses``: ``{row: [n_in floats]}``, the witness inputs the facts name
  (an input where the unit's sum takes its proven extreme: the page can load it);
* ``sizes`` (original and simplified live vertices and edges), ``composed``
  (ids in the order applied) and ``box`` (the box's name).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..graph import plain_json
from ._embed import deflate, dump_json


def _dag_doc(sim: Any) -> dict[str, Any]:
    from ..exact import dag_to_dict

    return dag_to_dict(sim.dag)


def simplified_block(doc: dict[str, Any] | None) -> str | None:
    """The page's block text for :func:`simplified_doc`'s ``doc``: ``{"z": base64 of the raw-deflated
    compact JSON}`` (node ids repeat: about a tenth of the size), escaped for its script element."""
    if doc is None:
        return None
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return dump_json({"z": deflate(text.encode("ascii"))})


def simplified_doc(analysis: Any) -> dict[str, Any]:
    """The page's ``simplified`` block from an exact :class:`~sparsescope.exact.BoxAnalysis`."""
    sim, ranges = analysis.simplified, analysis.ranges
    if sim is None or ranges is None:
        raise ValueError("the analysis has no simplified graph: analyse it with exact=True")
    facts = [plain_json(dict(f)) for f in sim.facts]
    rows = sorted({int(f["witness"]) for f in facts if isinstance(f.get("witness"), int) and f["witness"] >= 0})
    witnesses = {str(k): [float(v) for v in np.asarray(ranges.witnesses[k], dtype=np.float64)] for k in rows}
    return plain_json({"dag": _dag_doc(sim), "facts": facts, "witnesses": witnesses, "sizes": sim.sizes,
                       "composed": list(sim.composed), "box": analysis.box.name})
