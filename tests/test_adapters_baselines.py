"""NMF and LDA baselines (scikit-learn) on the shipped Pollen data, scored through evaluate()."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from topiceval.adapters import lda, nmf
from topiceval.adapters.registry import TrainParams

import topiceval as te
from topiceval import datasets
from topiceval.errors import InputError


@pytest.fixture(scope="module")
def pollen():
    """Pollen (shipped), the paper's preprocessing with 1000 HVGs to keep the tests fast."""
    return datasets.preprocess(datasets.load_default(), n_top_genes=1000)


def purity(cell_topic: np.ndarray, labels: np.ndarray) -> float:
    """Interpretation purity by hand: majority label count per argmax topic over all cells."""
    table = pd.crosstab(cell_topic.argmax(axis=1), labels)
    return float(table.max(axis=1).sum() / len(labels))


def test_nmf_matches_sklearn_and_scores(pollen, c2):
    from sklearn.decomposition import NMF

    result = nmf.train(pollen, TrainParams(n_topics=11, epochs=150, seed=3))
    out = result.outputs
    assert out.topic_gene.shape == (11, pollen.n_vars)
    assert out.cell_topic.shape == (pollen.n_obs, 11)
    assert list(out.gene_names) == list(pollen.var_names)
    np.testing.assert_allclose(out.topic_gene.sum(axis=1), 1.0)
    np.testing.assert_allclose(out.cell_topic.sum(axis=1), 1.0)

    # the same fit by scikit-learn directly, normalised as documented
    reference = NMF(n_components=11, max_iter=150, random_state=3, beta_loss="kullback-leibler",
                    solver="mu", init="nndsvda")
    counts = sp.csr_matrix(pollen.layers["counts"], dtype=np.float64)
    W = reference.fit_transform(counts)
    H = reference.components_
    np.testing.assert_allclose(out.topic_gene, H / H.sum(axis=1, keepdims=True), rtol=1e-10)
    weighted = W * H.sum(axis=1)
    np.testing.assert_allclose(out.cell_topic, weighted / weighted.sum(axis=1, keepdims=True), rtol=1e-10)
    assert result.hyperparameters["input"] == "layers['counts']"

    labels = pollen.obs["cell_type"].to_numpy()
    ev = te.evaluate(out, gene_sets=c2, labels=labels)
    assert ev.scores["IP"] == pytest.approx(purity(out.cell_topic, labels))
    # the floor still separates cell types far above the largest type's share
    largest = pd.Series(labels).value_counts(normalize=True).iloc[0]
    assert ev.scores["IP"] > largest + 0.3
    assert 0 < ev.scores["TD"] <= 1 and np.isfinite(ev.scores["TC"])


def test_nmf_is_deterministic_and_seeded(pollen):
    a = nmf.fit(pollen, 6, epochs=60, seed=1)
    b = nmf.fit(pollen, 6, epochs=60, seed=1)
    np.testing.assert_array_equal(a.topic_gene, b.topic_gene)
    np.testing.assert_array_equal(a.cell_topic, b.cell_topic)
    # nndsvda does not use the seed; a random start does
    c = nmf.fit(pollen, 6, epochs=60, seed=1, init="random")
    d = nmf.fit(pollen, 6, epochs=60, seed=2, init="random")
    assert not np.allclose(c.topic_gene, d.topic_gene)


def test_nmf_options_layer_and_errors(pollen):
    # log-normalised X instead of counts, options as command-line strings
    out = nmf.train(pollen, TrainParams(n_topics=4, epochs=30, layer="X",
                                        options={"beta_loss": "frobenius", "solver": "cd", "tol": "1e-3"}))
    assert out.hyperparameters["input"] == "X" and out.hyperparameters["tol"] == 1e-3
    with pytest.raises(InputError, match="no option.*wrong.*options: alpha_H"):
        nmf.train(pollen, TrainParams(n_topics=4, options={"wrong": 1}))
    bare = pollen.copy()
    del bare.layers["counts"]
    with pytest.raises(InputError, match=r"layers\['counts'\].*preprocess"):
        nmf.fit(bare, 4)
    scaled = pollen.copy()
    scaled.layers["scaled"] = scaled.X.toarray() - 1.0
    with pytest.raises(InputError, match="negative"):
        nmf.fit(scaled, 4, layer="scaled")
    with pytest.raises(InputError, match=r"no layers\['missing'\]|layers\['missing'\]"):
        nmf.fit(pollen, 4, layer="missing")
    with pytest.raises(InputError, match="n_topics must be an integer >= 2"):
        nmf.fit(pollen, 1)


def test_count_models_use_raw_counts_in_x_without_a_counts_layer(pollen):
    """A counts file as it comes (raw counts in X, no layers): the same fit as from layers['counts']."""
    import anndata

    raw = anndata.AnnData(X=pollen.layers["counts"].copy(), var=pollen.var[[]].copy())
    for module in (nmf, lda):
        from_x = module.train(raw, TrainParams(n_topics=3, epochs=5, seed=1))
        from_layer = module.train(pollen, TrainParams(n_topics=3, epochs=5, seed=1))
        assert from_x.hyperparameters["input"] == "X"
        assert from_layer.hyperparameters["input"] == "layers['counts']"
        np.testing.assert_array_equal(from_x.outputs.topic_gene, from_layer.outputs.topic_gene)


def test_lda_matches_sklearn_and_scores(pollen, c2):
    from sklearn.decomposition import LatentDirichletAllocation

    out = lda.fit(pollen, 8, epochs=8, seed=5)
    assert out.topic_gene.shape == (8, pollen.n_vars) and out.cell_topic.shape == (pollen.n_obs, 8)
    assert list(out.gene_names) == list(pollen.var_names)
    reference = LatentDirichletAllocation(n_components=8, max_iter=8, random_state=5, learning_method="batch")
    counts = sp.csr_matrix(pollen.layers["counts"], dtype=np.float64)
    theta = reference.fit_transform(counts)
    beta = reference.components_
    np.testing.assert_allclose(out.topic_gene, beta / beta.sum(axis=1, keepdims=True), rtol=1e-10)
    np.testing.assert_allclose(out.cell_topic, theta, rtol=1e-10)
    np.testing.assert_allclose(out.cell_topic.sum(axis=1), 1.0)

    again = lda.fit(pollen, 8, epochs=8, seed=5)
    np.testing.assert_array_equal(out.topic_gene, again.topic_gene)
    other = lda.fit(pollen, 8, epochs=8, seed=6)
    assert not np.allclose(out.topic_gene, other.topic_gene)

    labels = pollen.obs["cell_type"].to_numpy()
    ev = te.evaluate(out, gene_sets=c2, labels=labels)
    assert ev.scores["IP"] == pytest.approx(purity(out.cell_topic, labels))
    assert 0 < ev.scores["TD"] <= 1


def test_lda_warns_on_non_integer_input(pollen):
    with pytest.warns(UserWarning, match="non-integer"):
        lda.fit(pollen, 3, epochs=2, layer="X")
