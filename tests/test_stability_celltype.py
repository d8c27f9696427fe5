"""Topic stability (two NMF runs on the shipped Pollen data) and cell-type specificity / rare-type
coverage (against sklearn's roc_auc_score), alone and through evaluate()."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics.pairwise import cosine_similarity
from topiceval.adapters import nmf

import topiceval as te
from topiceval import datasets
from topiceval.errors import InputError
from topiceval.metrics.celltype import celltype_specificity, rare_type_coverage
from topiceval.metrics.stability import pairwise_stability, topic_stability


@pytest.fixture(scope="module")
def pollen():
    return datasets.preprocess(datasets.load_default(), n_top_genes=1000)


@pytest.fixture(scope="module")
def runs(pollen):
    """Two NMF runs differing only in the seed of their random start."""
    return [nmf.fit(pollen, 6, epochs=60, seed=s, init="random") for s in (1, 2)]


def brute_force(a: np.ndarray, b: np.ndarray) -> float:
    """Best mean cosine over every injective matching of the smaller run's topics."""
    sim = cosine_similarity(a, b)
    small, large = sorted(sim.shape)
    if sim.shape[0] > sim.shape[1]:
        sim = sim.T
    return max(np.mean([sim[i, j] for i, j in enumerate(p)]) for p in itertools.permutations(range(large), small))


def test_stability_of_two_nmf_runs_is_the_best_matching(runs):
    a, b = runs
    result = topic_stability(a.topic_gene, b.topic_gene)
    assert result.score == pytest.approx(brute_force(a.topic_gene, b.topic_gene), rel=1e-12)
    assert 0.3 < result.score < 1.0  # different seeds: similar, not identical topics
    sim = cosine_similarity(a.topic_gene, b.topic_gene)
    per = result.per_topic
    assert sorted(per["matched_topic"]) == list(range(6))  # one-to-one
    np.testing.assert_allclose(per["cosine"], sim[np.arange(6), per["matched_topic"]])
    assert result.score == pytest.approx(per["cosine"].mean())
    # on the cell-topic columns
    cells = topic_stability(a.cell_topic, b.cell_topic, on="cell_topic")
    assert cells.score == pytest.approx(brute_force(a.cell_topic.T, b.cell_topic.T), rel=1e-12)


def test_stability_of_a_permuted_copy_is_one(runs):
    a = runs[0].topic_gene
    order = np.array([3, 0, 5, 1, 4, 2])
    result = topic_stability(a, a[order])
    assert result.score == pytest.approx(1.0)
    np.testing.assert_array_equal(order[result.per_topic["matched_topic"]], np.arange(6))


def test_stability_with_different_k(runs, pollen):
    a = runs[0].topic_gene
    c = nmf.fit(pollen, 4, epochs=60, seed=3, init="random").topic_gene
    result = topic_stability(a, c)
    assert result.info["n_matched"] == 4 and "unmatched" in result.info
    assert result.per_topic["matched_topic"].eq(-1).sum() == 2
    assert result.per_topic["cosine"].isna().sum() == 2
    assert result.score == pytest.approx(brute_force(a, c), rel=1e-12)
    assert topic_stability(c, a).score == pytest.approx(result.score)
    with pytest.raises(InputError, match="genes"):
        topic_stability(a, a[:, :10])
    with pytest.raises(InputError):
        topic_stability(a, a, on="genes")


def test_pairwise_stability_is_deterministic(runs, pollen):
    third = nmf.fit(pollen, 6, epochs=60, seed=3, init="random")
    mats = [r.topic_gene for r in runs] + [third.topic_gene]
    table = pairwise_stability(mats, names=[1, 2, 3])
    assert list(zip(table["run_a"], table["run_b"], strict=True)) == [(1, 2), (1, 3), (2, 3)]
    assert table.loc[0, "stability"] == pytest.approx(topic_stability(mats[0], mats[1]).score)
    pd.testing.assert_frame_equal(table, pairwise_stability(mats, names=[1, 2, 3]))


def test_celltype_specificity_matches_roc_auc_score(runs, pollen):
    theta = runs[0].cell_topic
    labels = pollen.obs["cell_type"].astype(str).to_numpy()
    result = celltype_specificity(theta, labels)
    per = result.per_topic
    types = sorted(set(labels))
    for k in range(theta.shape[1]):
        means = {t: theta[labels == t, k].mean() for t in types}
        best = max(types, key=lambda t: means[t])
        assert per.loc[k, "best_type"] == best
        assert per.loc[k, "mean_in_type"] == pytest.approx(means[best])
        assert per.loc[k, "mean_elsewhere"] == pytest.approx(theta[labels != best, k].mean())
        assert per.loc[k, "specificity"] == pytest.approx(roc_auc_score(labels == best, theta[:, k]), rel=1e-12)
    assert result.score == pytest.approx(per["specificity"].mean())


def test_rare_type_coverage_matches_roc_auc_score(runs, pollen):
    theta = runs[0].cell_topic
    labels = pollen.obs["cell_type"].astype(str).to_numpy()
    result, table = rare_type_coverage(theta, labels)
    shares = pd.Series(labels).value_counts(normalize=True)
    rare = [t for t in shares.index if shares[t] < 0.05]
    assert rare  # Pollen has types below 5 % of the 299 cells
    covered = 0
    table = table.set_index("cell_type")
    for t in sorted(set(labels)):
        aurocs = [roc_auc_score(labels == t, theta[:, k]) for k in range(theta.shape[1])]
        assert table.loc[t, "auroc"] == pytest.approx(max(aurocs), rel=1e-12)
        assert table.loc[t, "best_topic"] == int(np.argmax(aurocs))
        assert bool(table.loc[t, "rare"]) == (t in rare)
        covered += t in rare and max(aurocs) >= 0.9
    assert result.score == pytest.approx(covered / len(rare))
    assert result.info["n_rare"] == len(rare)
    # a threshold above every share makes every type rare
    everything, _ = rare_type_coverage(theta, labels, threshold=1.0)
    assert everything.info["n_rare"] == len(shares)
    with pytest.warns(UserWarning, match="no cell type"):
        none, _ = rare_type_coverage(theta, labels, threshold=0.001)
    assert math.isnan(none.score)
    with pytest.raises(InputError):
        rare_type_coverage(theta, labels, threshold=0)
    with pytest.raises(InputError, match="two cell types"):
        celltype_specificity(theta, np.array(["a"] * len(labels)))


def test_evaluate_celltype_family_and_bootstrap(runs, pollen):
    out = runs[0]
    labels = pollen.obs["cell_type"].astype(str).to_numpy()
    ev = te.evaluate(out, labels=labels, metrics="td,ip,celltype", rare_type_threshold=0.06)
    direct, table = rare_type_coverage(out.cell_topic, labels, threshold=0.06)
    assert ev.scores["rare_type_coverage"] == pytest.approx(direct.score)
    pd.testing.assert_frame_equal(ev.details["celltype"], table)
    assert "celltype_specificity" in ev.per_topic and "celltype_best_type" in ev.per_topic
    # new options at their defaults leave the configuration hash of earlier results unchanged
    plain = te.evaluate(out, labels=labels, metrics="td,ip")
    same = te.evaluate(out, labels=labels, metrics="td,ip", n_boot=0, rare_type_threshold=0.05)
    assert plain.config["config_sha256"] == same.config["config_sha256"]
    booted = te.evaluate(out, labels=labels, metrics="td,ip", n_boot=300, seed=4)
    assert booted.config["config_sha256"] != plain.config["config_sha256"]
    assert booted.scores["IP"] == plain.scores["IP"]
    ci = booted.info["IP"]["ci"]
    assert ci["low"] <= booted.scores["IP"] <= ci["high"] and ci["low"] < ci["high"]
    again = te.evaluate(out, labels=labels, metrics="td,ip", n_boot=300, seed=4)
    assert again.info["IP"]["ci"] == ci
    assert list(booted.details["bootstrap"]["metric"]) == ["IP"]
    with pytest.raises(InputError, match="n_boot"):
        te.evaluate(out, labels=labels, metrics="ip", n_boot=3)


def test_evaluate_bootstrap_ari_nmi(runs, pollen):
    out = runs[0]
    labels = pollen.obs["cell_type"].astype(str).to_numpy()
    ev = te.evaluate(out, labels=labels, metrics="clustering", n_boot=100, cluster_resolutions=(0.5, 1.0))
    table = ev.details["bootstrap"].set_index("metric")
    assert list(table.index) == ["ARI", "NMI"]
    for key in ("ARI", "NMI"):
        assert table.loc[key, "low"] <= ev.scores[key] <= table.loc[key, "high"]


def test_score_cli_shows_bootstrap_intervals(tmp_path, capsys):
    from topiceval.cli import main

    args = ["score", "--example", "yan_nmf", "--metrics", "td,ip,celltype", "--n-boot", "200", "--seed", "2",
            "--rare-type-threshold", "0.1", "--out", str(tmp_path / "s.json"), "--details", str(tmp_path / "d")]
    assert main(args) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().startswith("IP "))
    import json

    saved = json.loads((tmp_path / "s.json").read_text())
    ci = saved["config"]["info"]["IP"]["ci"]
    assert f"[{ci['low']:.4f}, {ci['high']:.4f}] 95% CI" in line
    assert "rare_type_coverage" in out
    table = pd.read_csv(tmp_path / "d" / "celltype.csv")
    assert set(table.columns) == {"cell_type", "n_cells", "share", "rare", "best_topic", "auroc", "covered"}
    assert (tmp_path / "d" / "bootstrap.csv").is_file()
    assert main(args[:-4] + ["--n-boot", "5"]) == 2  # too few resamples: a clear error
