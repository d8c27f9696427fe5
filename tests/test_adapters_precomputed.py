"""PrecomputedAdapter: outputs of models topiceval does not run, from files or an AnnData."""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd
import pytest
from topiceval.adapters import PrecomputedAdapter

import topiceval as te
from topiceval import datasets
from topiceval.errors import InputError
from topiceval.protocol import TopicModel, TopicOutputs


@pytest.fixture(scope="module")
def shipped():
    """The shipped Yan NMF example (real outputs of a model run outside topiceval)."""
    from importlib.resources import files

    folder = files("topiceval.examples")
    beta = pd.read_csv(folder / "yan_nmf_topic_gene.csv.gz", index_col=0)
    theta = pd.read_csv(folder / "yan_nmf_cell_topic.csv.gz", index_col=0)
    labels = np.array((folder / "yan_nmf_labels.txt").read_text().split("\n"), dtype=object)
    labels = labels[labels != ""]
    return beta, theta, labels


def test_from_csv_and_npy_files(shipped, tmp_path, hallmark):
    beta, theta, labels = shipped
    beta.to_csv(tmp_path / "beta.csv")
    np.save(tmp_path / "theta.npy", theta.to_numpy())
    np.save(tmp_path / "embedding.npy", theta.to_numpy()[:, :3])
    model = PrecomputedAdapter.from_files(tmp_path / "beta.csv", cell_topic=tmp_path / "theta.npy",
                                          cell_embedding=tmp_path / "embedding.npy", name="yan_nmf")
    assert isinstance(model, TopicModel)
    np.testing.assert_allclose(model.topic_gene(), beta.to_numpy())
    assert model.gene_names == list(beta.columns)
    np.testing.assert_allclose(model.cell_topic(), theta.to_numpy())
    np.testing.assert_allclose(model.cell_embedding(), theta.to_numpy()[:, :3])
    # scored through the TopicModel protocol, the same numbers as the arrays themselves
    cells = anndata.AnnData(obs=pd.DataFrame({"cell_type": labels}, index=theta.index.astype(str)))
    via_model = te.evaluate(model, gene_sets=hallmark, labels="cell_type", adata=cells)
    direct = te.evaluate(TopicOutputs(beta.to_numpy(), np.asarray(beta.columns), theta.to_numpy()),
                         gene_sets=hallmark, labels=labels)
    assert via_model.scores.to_dict() == pytest.approx(direct.scores.to_dict())
    assert via_model.config["model"]["name"] == "yan_nmf"


def test_from_h5ad_written_by_topiceval(shipped, tmp_path):
    beta, theta, _ = shipped
    outputs = TopicOutputs(beta.to_numpy(), np.asarray(beta.columns), theta.to_numpy(), name="run1")
    te.write_outputs_h5ad(outputs, tmp_path / "outputs.h5ad")
    model = PrecomputedAdapter.from_files(tmp_path / "outputs.h5ad")
    assert model.name == "run1"
    np.testing.assert_array_equal(model.outputs().topic_gene, outputs.topic_gene)
    np.testing.assert_array_equal(model.outputs().cell_topic, outputs.cell_topic)
    assert model.cell_embedding() is None


def test_from_anndata_keys():
    pollen = datasets.load_default()
    rng = np.random.default_rng(0)
    pollen.varm["loadings"] = rng.normal(size=(pollen.n_vars, 4))
    pollen.obsm["X_topic"] = rng.dirichlet(np.ones(4), size=pollen.n_obs)
    model = PrecomputedAdapter.from_anndata(pollen, topic_gene_key="loadings", name="external")
    np.testing.assert_array_equal(model.topic_gene(), pollen.varm["loadings"].T)
    np.testing.assert_array_equal(model.cell_topic(pollen), pollen.obsm["X_topic"])
    assert model.cell_embedding(pollen) is None and model.gene_names == list(pollen.var_names)
    outputs = TopicOutputs.from_model(model, pollen)
    assert outputs.name == "external" and outputs.cell_topic.shape == (pollen.n_obs, 4)

    with pytest.raises(InputError, match="holds no topic-model outputs: none of varm\\['topic_gene'\\]"):
        PrecomputedAdapter.from_anndata(pollen)
    with pytest.raises(InputError, match="no 'X_other'"):
        PrecomputedAdapter.from_anndata(pollen, topic_gene_key="loadings", cell_topic_key="X_other")
    with pytest.raises(InputError, match="cannot be applied to other cells"):
        model.cell_topic(pollen[:10])
    with pytest.raises(InputError, match="needs TopicOutputs"):
        PrecomputedAdapter(pollen)
