"""LDVAE (scvi-tools LinearSCVI) through its adapter: loadings, latent, seeding, scoring."""

from __future__ import annotations

import sys

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from topiceval.adapters import MissingExtraError, ldvae
from topiceval.adapters.registry import TrainParams

import topiceval as te
from topiceval import datasets

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


@pytest.fixture(scope="module")
def pollen():
    return datasets.preprocess(datasets.load_default(), n_top_genes=1000)


PARAMS = TrainParams(n_topics=5, epochs=6, seed=11, options={"n_hidden": 32})


@pytest.fixture(scope="module")
def trained(pollen):
    return ldvae.train(pollen, PARAMS)


def test_outputs_are_loadings_and_latent(trained, pollen, tmp_path, monkeypatch):
    import scvi

    out = trained.outputs
    assert out.topic_gene.shape == (5, pollen.n_vars)
    assert out.cell_topic.shape == out.cell_embedding.shape == (pollen.n_obs, 5)
    assert list(out.gene_names) == list(pollen.var_names)
    # signed loadings and a latent that is not a simplex, as documented
    assert (out.topic_gene < 0).any() and (out.cell_topic < 0).any()
    np.testing.assert_array_equal(out.cell_topic, out.cell_embedding)

    # reload the saved scvi-tools model and ask it directly
    monkeypatch.chdir(tmp_path)
    trained.save(tmp_path / "model")
    counts = anndata.AnnData(X=sp.csr_matrix(pollen.layers["counts"], dtype=np.float32))
    counts.obs_names = [str(i) for i in range(pollen.n_obs)]
    counts.var_names = list(pollen.var_names)
    model = scvi.model.LinearSCVI.load(str(tmp_path / "model"), adata=counts, accelerator="cpu")
    loadings = model.get_loadings()  # genes x latent
    np.testing.assert_allclose(out.topic_gene, loadings.to_numpy().T, rtol=1e-6)
    np.testing.assert_allclose(out.cell_topic, model.get_latent_representation(), rtol=1e-5, atol=1e-6)


def test_same_seed_same_numbers(trained, pollen):
    again = ldvae.train(pollen, PARAMS).outputs
    np.testing.assert_array_equal(again.topic_gene, trained.outputs.topic_gene)
    np.testing.assert_array_equal(again.cell_topic, trained.outputs.cell_topic)
    other = ldvae.train(pollen, TrainParams(n_topics=5, epochs=6, seed=12, options={"n_hidden": 32})).outputs
    assert not np.allclose(other.topic_gene, trained.outputs.topic_gene)


def test_scored_through_evaluate_with_argmax_of_latent(trained, pollen, c2):
    labels = pollen.obs["cell_type"].to_numpy()
    ev = te.evaluate(trained.outputs, gene_sets=c2, labels=labels)
    # IP assigns each cell to its largest (most positive) latent dimension
    table = pd.crosstab(trained.outputs.cell_topic.argmax(axis=1), labels)
    assert ev.scores["IP"] == pytest.approx(table.max(axis=1).sum() / len(labels))
    assert 0 < ev.scores["TD"] <= 1 and np.isfinite(ev.scores["TC"])
    assert trained.hyperparameters["gene_likelihood"] == "nb"
    assert trained.info["elbo_train"] is not None and np.isfinite(trained.info["elbo_train"])


def test_missing_library_names_the_extra(pollen, monkeypatch):
    monkeypatch.setitem(sys.modules, "scvi", None)
    with pytest.raises(MissingExtraError, match=r'pip install "topiceval\[ldvae\]"'):
        ldvae.fit(pollen, 3, epochs=1)
