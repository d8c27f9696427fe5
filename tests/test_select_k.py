"""`topiceval select-k`: K x seeds through the leaderboard runner, one row per K, cached."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from topiceval.adapters import lda
from topiceval.adapters.registry import TrainParams

from topiceval import datasets, evaluate
from topiceval.cli import main
from topiceval.metrics.stability import topic_stability


def test_select_k_table_plot_and_cache(tmp_path, capsys):
    args = ["select-k", "--data", "pollen_hvg5000", "--model", "lda", "--topics", "3,5", "--seeds", "0,1",
            "--epochs", "30", "--n-top-genes", "500", "--no-clustering", "--backend", "sequential",
            "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), "--no-progress"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(args) == 0
    out = capsys.readouterr().out
    assert "stability" in out and "<- max stability x TQ" in out
    table = pd.read_csv(tmp_path / "out" / "select_k.csv", index_col="K")
    assert list(table.index) == [3, 5]
    assert table["marked"].sum() == 1
    assert table["marked"].idxmax() == (table["stability"] * table["TQ"]).idxmax()
    assert (tmp_path / "out" / "select_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # independent path for K = 5: preprocess, train both seeds directly (LDA: the seed changes the fit), stability and TD by hand
    adata = datasets.preprocess(datasets.load_default(), n_top_genes=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = [lda.train(adata, TrainParams(n_topics=5, epochs=30, seed=s)).outputs for s in (0, 1)]
    assert table.loc[5, "stability"] < 0.9999  # the seeds differ
    assert table.loc[5, "stability"] == pytest.approx(topic_stability(runs[0].topic_gene, runs[1].topic_gene).score,
                                                      rel=1e-9)
    td = [evaluate(r, metrics="td").scores["TD"] for r in runs]
    assert table.loc[5, "TD"] == pytest.approx(np.mean(td), rel=1e-9)

    # a second call reads every cell from the cache and prints the same table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(args) == 0
    assert capsys.readouterr().out == out


def test_select_k_errors(capsys):
    assert main(["select-k", "--data", "pollen_hvg5000", "--model", "nmf", "--topics", "3", "--seeds", "0"]) == 2
    assert "at least two seeds" in capsys.readouterr().err
