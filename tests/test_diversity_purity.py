"""Top genes, TD, TQ and IP against hand-worked examples and independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics.cluster import contingency_matrix

from topiceval.errors import InputError
from topiceval.metrics import (
    interpretation_purity,
    top_gene_indices,
    topic_diversity,
    topic_quality,
)


def test_top_genes_order_and_tie_rule():
    beta = np.array(
        [
            [0.1, 0.5, 0.5, 0.2, 0.5],  # three-way tie at the top: lower index first
            [0.0, 0.0, 0.0, 0.0, 0.0],  # all tied
            [-1.0, -3.0, 2.0, -2.0, 0.0],  # signed loadings
        ]
    )
    np.testing.assert_array_equal(top_gene_indices(beta, 2), [[1, 2], [0, 1], [2, 4]])
    np.testing.assert_array_equal(top_gene_indices(beta, 4), [[1, 2, 4, 3], [0, 1, 2, 3], [2, 4, 0, 3]])
    np.testing.assert_array_equal(top_gene_indices(beta, 5)[2], [2, 4, 0, 3, 1])


def test_top_genes_match_a_stable_sort(rng):
    # Rounded values produce many ties; a stable argsort of -beta is the rule written plainly.
    beta = np.round(rng.random((50, 300)), 1)
    expected = np.argsort(-beta, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(top_gene_indices(beta, 10), expected)


def test_topic_diversity_hand_example():
    # Top-2 lists: {0,1}, {1,2}, {3,4}: 5 distinct of 6; exclusive genes 0,2,3,4 -> 4 of 6.
    beta = np.array(
        [
            [9, 8, 0, 0, 0, 0],
            [0, 9, 8, 0, 0, 0],
            [0, 0, 0, 9, 8, 0],
        ],
        dtype=float,
    )
    unique = topic_diversity(beta, top_n=2)
    exclusive = topic_diversity(beta, top_n=2, method="exclusive")
    assert unique.score == pytest.approx(5 / 6)
    assert exclusive.score == pytest.approx(4 / 6)
    np.testing.assert_allclose(unique.per_topic["exclusive_share"], [0.5, 0.5, 1.0])
    assert unique.info["n_distinct"] == 5 and exclusive.info["n_exclusive"] == 4
    with pytest.raises(InputError, match="unknown TD method"):
        topic_diversity(beta, top_n=2, method="distinct")


def test_topic_diversity_extremes(rng):
    identical = np.tile(rng.random(50), (4, 1))
    assert topic_diversity(identical, 10).score == pytest.approx(10 / 40)
    assert topic_diversity(identical, 10, method="exclusive").score == 0.0
    disjoint = np.kron(np.eye(5), np.ones(10))  # topic k owns genes 10k..10k+9
    assert topic_diversity(disjoint, 10).score == 1.0
    assert topic_diversity(disjoint, 10, method="exclusive").score == 1.0


def test_topic_quality_is_the_product():
    assert topic_quality(0.25, 0.8).score == pytest.approx(0.2)
    assert topic_quality(0.25, 0.8).name == "TQ"


def reference_purity(labels, assigned):
    """The authors' purity (sklearn contingency matrix, max per predicted cluster)."""
    table = contingency_matrix(labels, assigned)
    return np.sum(np.amax(table, axis=0)) / np.sum(table)


def test_interpretation_purity_hand_example():
    theta = np.array(
        [
            [0.9, 0.1, 0.0],  # topic 0
            [0.8, 0.2, 0.0],  # topic 0
            [0.6, 0.4, 0.0],  # topic 0
            [0.1, 0.9, 0.0],  # topic 1
            [0.5, 0.5, 0.0],  # tie -> topic 0
        ]
    )
    labels = ["a", "a", "b", "b", "b"]
    # Topic 0 holds a, a, b, b -> majority 2; topic 1 holds b -> 1; IP = 3 / 5.
    result = interpretation_purity(theta, labels)
    assert result.score == pytest.approx(3 / 5)
    assert list(result.per_topic["n_cells"]) == [4, 1, 0]
    assert result.per_topic["majority_label"].tolist()[:2] == ["a", "b"]
    assert np.isnan(result.per_topic["purity"].iloc[2])


def test_interpretation_purity_matches_reference(rng):
    theta = rng.random((500, 20))
    labels = rng.choice(["alpha", "beta", "gamma", "delta"], size=500)
    expected = reference_purity(labels, theta.argmax(axis=1))
    assert interpretation_purity(theta, labels).score == pytest.approx(expected, rel=1e-15)


def test_interpretation_purity_unlabelled_and_errors():
    theta = np.eye(3)[[0, 0, 1, 2]]
    for missing in (None, float("nan")):
        with pytest.warns(UserWarning, match="1 of 4 cells have no label"):
            result = interpretation_purity(theta, ["a", missing, "b", "c"])
        assert result.score == 1.0 and result.info["n_cells"] == 3
    with pytest.raises(InputError, match="3 labels were given for 4 cells"):
        interpretation_purity(theta, ["a", "b", "c"])
    with pytest.raises(InputError, match="no cell has a label"):
        interpretation_purity(theta, [None] * 4)


@pytest.mark.parametrize("metric", ["tc", "td", "ip", "ora", "gsea"])
@pytest.mark.parametrize(
    ("matrix", "message"),
    [(np.ones(6), r"must be 2-d, got shape \(6,\)"), (np.array([["a", "b"], ["c", "d"]]), "must be numeric")],
)
def test_every_metric_refuses_a_matrix_that_is_not_numeric_and_2d(metric, matrix, message):
    from topiceval.gene_sets import GeneSets
    from topiceval.metrics import topic_coherence, topic_gsea, topic_ora

    genes = [f"G{i}" for i in range(6)]
    sets = GeneSets.from_dict({"S1": genes[:3], "S2": genes[2:]})
    calls = {
        "tc": lambda: topic_coherence(matrix, genes, sets, top_n=2),
        "td": lambda: topic_diversity(matrix, top_n=2),
        "ip": lambda: interpretation_purity(matrix, ["a"] * len(matrix)),
        "ora": lambda: topic_ora(matrix, genes, sets, top_n=2),
        "gsea": lambda: topic_gsea(matrix, genes, sets, min_size=1),
    }
    with pytest.raises(InputError, match=message):
        calls[metric]()
