"""topiceval.stats against hand-worked tables: Wilcoxon, Holm, Friedman, Nemenyi; bootstrap CIs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from topiceval import stats
from topiceval.errors import InputError


def test_wilcoxon_hand_worked():
    # differences a - b: |d| ranks 0.1->1, 0.2->2, 0.3->3, 0.4->4, 0.5->5, 0.8->6
    b = np.array([0.1, 0.5, 0.2, 0.1, 0.3, 0.2])
    d = np.array([0.5, -0.2, 0.3, 0.8, 0.1, 0.4])
    values = pd.DataFrame({"A": b + d, "B": b})
    table = stats.paired_comparisons(values, metric="TQ")
    assert list(table.columns) == ["metric", "model_a", "model_b", "n", "mean_diff", "statistic", "pvalue", "pvalue_holm"]
    row = table.iloc[0]
    assert (row["metric"], row["model_a"], row["model_b"], row["n"]) == ("TQ", "A", "B", 6)
    assert row["mean_diff"] == pytest.approx(d.mean())
    # W+ = 5+3+6+1+4 = 19, W- = 2; scipy reports min(W+, W-) for two-sided
    assert row["statistic"] == pytest.approx(2.0)
    # exact null: subsets of {1..6} with rank sum <= 2 are {}, {1}, {2}: p = 2 * 3 / 64
    assert row["pvalue"] == pytest.approx(6 / 64)
    assert row["pvalue_holm"] == pytest.approx(6 / 64)  # a single test


def test_pairs_use_shared_blocks_only_and_holm_per_metric():
    values = pd.DataFrame({
        "A": [1.0, 2.0, 3.0, 4.0, 5.0, np.nan],
        "B": [0.5, 1.0, 2.5, 3.0, 4.0, 9.0],
        "C": [np.nan, np.nan, np.nan, np.nan, np.nan, 1.0],
    })
    table = stats.paired_comparisons(values, metric="IP").set_index(["model_a", "model_b"])
    assert table.loc[("A", "B"), "n"] == 5
    assert table.loc[("A", "B"), "mean_diff"] == pytest.approx(np.mean([0.5, 1.0, 0.5, 1.0, 1.0]))
    assert table.loc[("B", "C"), "n"] == 1
    assert table.loc[("A", "C"), "n"] == 0 and math.isnan(table.loc[("A", "C"), "pvalue"])
    assert math.isnan(table.loc[("A", "C"), "pvalue_holm"])
    finite = table["pvalue"].dropna()
    np.testing.assert_allclose(table["pvalue_holm"].dropna(), stats.holm(finite.to_numpy()))


def test_holm_hand_worked():
    # sorted 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.03, 0.06, 0.06
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    out = stats.holm([0.2, np.nan, 0.9])
    assert math.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [0.4, 0.9])


TABLE = pd.DataFrame(
    {"A": [0.9, 0.8, 0.5, 0.6], "B": [0.5, 0.2, 0.7, 0.4], "C": [0.1, 0.4, 0.3, 0.2]},
    index=["d1", "d2", "d3", "d4"],
)


def test_friedman_hand_worked():
    result = stats.friedman_test(TABLE)
    # ranks A 1,1,2,1 / B 2,3,1,2 / C 3,2,3,3: mean 1.25, 2.0, 2.75
    assert list(result.mean_ranks.index) == ["A", "B", "C"]
    np.testing.assert_allclose(result.mean_ranks.to_numpy(), [1.25, 2.0, 2.75])
    # Demsar Eq.: 12 N / (k (k+1)) * (sum R^2 - k (k+1)^2 / 4) = 4 * (13.125 - 12) = 4.5
    assert result.statistic == pytest.approx(4.5)
    assert result.pvalue == pytest.approx(chi2.sf(4.5, 2))
    assert result.n_blocks == 4
    # CD = q_0.05(k=3) * sqrt(k (k+1) / (6 N)) with Demsar's q = 2.343
    assert result.critical_difference == pytest.approx(2.343 * math.sqrt(12 / 24), abs=1e-3)


def test_friedman_drops_incomplete_blocks_and_lower_is_better():
    table = pd.concat([TABLE, pd.DataFrame({"A": [np.nan], "B": [1.0], "C": [2.0]}, index=["d5"])])
    assert stats.friedman_test(table).n_blocks == 4
    flipped = stats.friedman_test(-TABLE, higher_is_better=False)
    np.testing.assert_allclose(flipped.mean_ranks.to_numpy(), [1.25, 2.0, 2.75])


def test_nemenyi_q_matches_demsar_table():
    demsar = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]  # Table 5(a), alpha 0.05
    for k, q in zip(range(2, 11), demsar, strict=True):
        assert stats.nemenyi_q(k) == pytest.approx(q, abs=1.5e-3)
    # alpha 0.10 (Table 5(a), second row): k = 2, 5, 10
    for k, q in ((2, 1.645), (5, 2.459), (10, 2.920)):
        assert stats.nemenyi_q(k, alpha=0.10) == pytest.approx(q, abs=1.5e-3)
    with pytest.raises(InputError):
        stats.nemenyi_q(1)


def _share(x: np.ndarray) -> float:
    return float(np.mean(x))


def test_bootstrap_ci_seeded_and_close_to_the_normal_interval():
    rng = np.random.default_rng(5)
    hits = (rng.random(2000) < 0.3).astype(float)
    low, high = stats.bootstrap_ci(_share, [hits], n_boot=2000, seed=3)
    assert (low, high) == stats.bootstrap_ci(_share, [hits], n_boot=2000, seed=3)
    assert (low, high) != stats.bootstrap_ci(_share, [hits], n_boot=2000, seed=4)
    p = hits.mean()
    half = 1.959964 * math.sqrt(p * (1 - p) / hits.size)  # Wald interval of a proportion
    assert low < p < high
    assert low == pytest.approx(p - half, abs=0.006)
    assert high == pytest.approx(p + half, abs=0.006)
    with pytest.raises(InputError):
        stats.bootstrap_ci(_share, [hits], n_boot=5)
    with pytest.raises(InputError):
        stats.bootstrap_ci(_share, [hits, hits[:10]])


def test_partition_scores_match_sklearn():
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    rng = np.random.default_rng(1)
    for n, k, c in ((50, 3, 4), (500, 10, 7), (2000, 2, 12)):
        labels = rng.integers(0, k, n)
        clusters = np.where(rng.random(n) < 0.6, labels, rng.integers(0, c, n)) + 5  # any integer ids
        assert stats.partition_ari(labels, clusters) == pytest.approx(adjusted_rand_score(labels, clusters), abs=1e-12)
        assert stats.partition_nmi(labels, clusters) == pytest.approx(
            normalized_mutual_info_score(labels, clusters), abs=1e-12)
        table = pd.crosstab(clusters, labels)
        assert stats.partition_purity(clusters, labels) == pytest.approx(table.max(axis=1).sum() / n)
    one = np.zeros(10, dtype=int)
    assert stats.partition_ari(one, one) == adjusted_rand_score(one, one)
    assert stats.partition_nmi(one, np.arange(10)) == normalized_mutual_info_score(one, np.arange(10))
