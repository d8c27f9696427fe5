"""`topiceval demo`, the README's main job, on tiny settings (the full demo is timed by hand)."""

from __future__ import annotations

import re

import pytest

from topiceval.cli import main
from topiceval.leaderboard import demo


def test_demo_config_is_the_documented_one():
    config = demo.demo_config()
    assert [m.name for m in config.models] == ["sce2tm", "nmf", "lda"]
    assert {m.n_topics for m in config.models} == {20}
    assert [d.name for d in config.datasets] == ["pollen_hvg5000"] and config.seeds == (0,)
    reactome = config.collections[0]
    assert reactome.sources == {"human": "reactome"}
    assert reactome.metrics == ("tc", "td", "tq", "ip", "ora", "gsea", "clustering")
    assert config.evaluation["seed"] == 0
    with pytest.raises(Exception, match="unknown model"):
        demo.demo_config("nmf,nope")


def test_demo_quick_runs_every_metric_and_writes_the_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--n-jobs", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    header = "model   metric rank   TC     TD     TQ     IP     ORA_Q  GSEA_Q  ARI    NMI    seeds"
    assert "pollen_hvg5000 (reactome gene sets)" in printed and header.split() == printed.splitlines()[1].split()
    rows = {line.split()[0] for line in printed.splitlines()[3:6]}
    assert rows == {"sce2tm", "nmf", "lda"}
    assert re.search(r"wrote .*index\.html", printed)
    for name in ("index.html", "summary.md", "scores.csv", "results.json", "run.log"):
        assert (out / name).is_file()
    html = (out / "index.html").read_text()
    assert html.count("data:image/png;base64,") >= 4
    import pandas as pd

    scores = pd.read_csv(out / "scores.csv")
    reactome = scores[scores["collection"] == "reactome"]
    assert set(reactome["metric"]) == {"TC", "TD", "TQ", "IP", "ORA_N", "ORA_U", "ORA_Q", "GSEA_N", "GSEA_U",
                                       "GSEA_Q", "ARI", "NMI", "ARI_label_free", "NMI_label_free", "ASW"}
    assert set(reactome["model"]) == {"sce2tm", "nmf", "lda"}
