"""The study report: numbers equal the runs' flowgraph measures, deterministic bytes, finding and frontier."""

from __future__ import annotations

import csv
import io
import json

import pytest

from sparsescope.cli import main
from sparsescope.study import load_sweep, run_sweep, write_study
from sparsescope.study._tables import finding, frontier

from test_sweep import TINY  # noqa: E402


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    base = tmp_path_factory.mktemp("study")
    p = base / "tiny.toml"
    p.write_text(TINY.replace("[experiment.prune]\nrounds = 3", "[experiment.prune]\nrounds = 3\n[study]\naccuracy_floor = 0.3"))
    sweep = load_sweep(p)
    run_sweep(sweep, base / "runs", executor="serial")
    return sweep, p, base


def test_report_numbers_files_and_determinism(swept, tmp_path):
    from sparsescope.analysis import readability
    from sparsescope.runs import RunStore, round_flowgraph

    sweep, path, base = swept
    index = write_study(sweep, base / "runs", tmp_path / "a", executor="serial")
    write_study(sweep, base / "runs", tmp_path / "b", executor="serial")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert {str(f) for f in files} >= {"index.html", "rows.csv", "classes.csv", "aggregate.csv", "runs.csv", "finding.json",
                                       "study.json", "figures/accuracy-density.svg", "figures/accuracy-readability.svg",
                                       "figures/per-class.svg"}
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a" / "rows.csv").read_text())))
    assert len(rows) == 2 * 2 * (3 + 2 * 2)  # schedules x seeds x (rounds + kinds x pruned rounds)
    assert {r["variant"] for r in rows} == {"ticket", "reinit", "random-mask"}
    # a control row holds the measures of that control's own flowgraph
    row = next(r for r in rows if r["variant"] == "random-mask" and r["round"] == "2")
    store = RunStore(base / "runs" / row["run_id"])
    folder = f"random-mask-r002-s{row['control_seed']}"
    rd = readability(round_flowgraph(store, control=folder))
    assert int(row["edges"]) == rd.edges and float(row["description_bits"]) == rd.description_bits
    assert float(row["out_edges"]) == pytest.approx(rd.mean_output("edges"), abs=1e-4)
    assert row["score"] == row["test_accuracy"] and row["eval_return"] == ""
    assert float(row["test_accuracy"]) == store.read_round_at(store.path / "controls" / folder, "c").metrics["test_accuracy"]
    classes = list(csv.DictReader(io.StringIO((tmp_path / "a" / "classes.csv").read_text())))
    assert len(classes) == 10 * len(rows)
    page = index.read_text()
    assert page.count("<svg") == 3 and "Content-Security-Policy" in page and "<script" not in page
    found = json.loads((tmp_path / "a" / "finding.json").read_text())
    assert found["floor"] == 0.3 and found["measure"] == "out_edges" and len(found["finding_text"]) == 1


def test_cli_study_and_missing_runs(swept, tmp_path, capsys):
    sweep, path, base = swept
    assert main(["study", str(path), "--runs-dir", str(base / "runs"), "-o", str(tmp_path / "r"), "--executor", "serial",
                 "--floor", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "at test accuracy >= 0.200" in out and out.strip().endswith("index.html")
    assert main(["study", str(path), "--runs-dir", str(tmp_path / "none"), "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run 'sparsescope sweep' first" in err[0]
    assert main(["study", str(path), "--runs-dir", str(base / "runs"), "--measure", "beauty"]) == 2
    assert "unknown measure 'beauty'" in capsys.readouterr().err


def test_study_of_an_rl_sweep_ranks_by_evaluation_return(tmp_path, capsys):
    """An RL sweep's report calls its score the evaluation return, takes its floor in return units (default the
    environment's reward_threshold) and its rows hold each round's own eval_return."""
    pytest.importorskip("gymnasium")
    import tomllib

    from sparsescope.runs import RunStore
    from sparsescope.study import sweep_from_dict
    from sparsescope.study._report import default_floor

    from test_sweep import RL

    path = tmp_path / "rl.toml"
    path.write_text(RL)
    sweep = sweep_from_dict(tomllib.loads(RL))
    assert default_floor(sweep) == 475.0  # CartPole-v1's reward_threshold
    run_sweep(sweep, tmp_path / "runs", executor="serial")
    assert main(["study", str(path), "--runs-dir", str(tmp_path / "runs"), "-o", str(tmp_path / "r"),
                 "--executor", "serial", "--floor", "5"]) == 0
    out = capsys.readouterr().out
    assert "at evaluation return >= 5.000" in out or "no schedule reaches evaluation return 5.000" in out
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r" / "rows.csv").read_text())))
    assert rows and all(r["test_accuracy"] == "" for r in rows)
    for r in rows:
        if r["variant"] == "ticket":
            got = RunStore(tmp_path / "runs" / r["run_id"]).read_round(int(r["round"])).metrics["eval_return"]
            assert r["score"] == r["eval_return"] == ("" if got is None else str(got))
    page = (tmp_path / "r" / "index.html").read_text()
    assert "Evaluation return against density" in page and "test accuracy" not in page
    assert json.loads((tmp_path / "r" / "finding.json").read_text())["score"] == "return"
    searching = tmp_path / "search.toml"
    searching.write_text(RL + "[search]\nrates = { h1 = [0.5, 0.7] }\n")
    assert main(["search", str(searching), "--runs-dir", str(tmp_path / "s")]) == 2
    assert "classification sweep" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text(RL + '[study]\nreturn_floor = "high"\n')
    assert main(["study", str(bad), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "return_floor must be a number" in capsys.readouterr().err


def test_frontier_keeps_exactly_the_undominated_points():
    pts = [(5, 0.9), (3, 0.8), (3, 0.85), (10, 0.95), (7, 0.9), (1, 0.5), (10, 0.94)]
    keep = frontier(pts)
    want = [i for i, (m, a) in enumerate(pts)
            if not any((m2 <= m and a2 >= a) and (m2, a2) != (m, a) for m2, a2 in pts)]
    assert sorted(keep) == sorted(want) == [0, 2, 3, 5]


def test_finding_chooses_per_seed_and_needs_every_seed():
    def row(s, seed, r, acc, edges):
        return {"dataset": "d", "schedule": s, "variant": "ticket", "seed": seed, "round": r, "score": acc,
                "out_edges": edges, "density": 1.0 / (r + 1)}

    rows = [row("a", 0, 0, 0.95, 100), row("a", 0, 1, 0.91, 40), row("a", 0, 2, 0.80, 10),
            row("a", 1, 0, 0.96, 110), row("a", 1, 1, 0.93, 60), row("a", 1, 2, 0.92, 20),
            row("b", 0, 0, 0.95, 100), row("b", 0, 1, 0.90, 5), row("b", 1, 0, 0.95, 90), row("b", 1, 1, 0.7, 4),
            {**row("a", 0, 1, 0.99, 1), "variant": "reinit"}, {**row("b", 0, 3, None, 1)}]  # no score: never chosen
    f = {x["schedule"]: x for x in finding(rows, ["a", "b"], 0.9, "out_edges")}
    assert f["a"]["rounds"] == [1, 2] and f["a"]["out_edges_mean"] == 30 and f["a"]["best"]
    assert f["b"]["reached"] == 2 and f["b"]["rounds"] == [1, 0] and f["b"]["out_edges_mean"] == 47.5
    assert not f["b"]["best"]


SEARCH = """
name = "ts"
seeds = [0, 1]
datasets = ["mnist5k"]
[experiment.model]
sizes = [784, 6, 6, 10]
[experiment.train]
epochs = 1
batch_size = 100
[schedules.a]
rates = { h1 = 0.5 }
rounds = 2
[search]
rates = { h1 = [0.0, 0.5, 0.8], h2 = [0.3] }
rungs = [2, 3]
eta = 2
finalists = 1
"""


def test_search_halves_resumes_runs_and_scores_faithfully(tmp_path):
    from sparsescope.analysis import readability
    from sparsescope.runs import RunStore, round_flowgraph
    from sparsescope.study import search_from_dict, search_schedule, sweep_from_dict
    import tomllib

    sweep = sweep_from_dict(tomllib.loads(SEARCH))
    res = search_schedule(sweep, search_from_dict(sweep.search), tmp_path, floor=0.2, measure="out_edges",
                          executor="serial")
    assert [len(r) for r in res.rungs] == [3, 2]  # ceil(3 / 2) survive rung 0
    first = {tuple(x["rates"].items()): x["run_id"] for x in res.rungs[0]}
    for x in res.rungs[1]:  # the same run, resumed to more rounds
        assert first[tuple(x["rates"].items())] == x["run_id"] and x["rounds_trained"] == 3
    assert len(res.finalists) == 1 and res.best is res.finalists[0]
    best = res.best
    per_seed = []
    for run_id in best["run_ids"]:
        store = RunStore(tmp_path / run_id)
        assert store.finished_rounds() == [0, 1, 2]
        ok = [readability(round_flowgraph(store, r)).mean_output("edges") for r in store.finished_rounds()
              if store.read_round(r).metrics["test_accuracy"] >= 0.2]
        per_seed.append(min(ok))
    assert best["per_seed_best"] == pytest.approx(sum(per_seed) / 2)
    assert best["seeds_reaching"] == 2
