"""The registry of shared datasets, the embedded default dataset, and the synthetic generator."""

from __future__ import annotations

import hashlib
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from topiceval.gene_sets import load

import topiceval as te
from topiceval import datasets as ds
from topiceval.errors import InputError

REPO = Path(__file__).resolve().parents[1]

# Facts from shared/data/MANIFEST.md and MANIFEST-datasets.md.
MANIFEST = {
    "yan": ((90, 4656), {"blast": 30, "8cell": 20, "16cell": 16, "4cell": 12, "zygote": 6, "2cell": 6}),
    "wang": ((457, 0), {"alpha": 190, "beta": 111, "ductal": 96, "mesenchyme": 27, "gamma": 18, "delta": 9, "acinar": 6}),
    "pollen": ((299, 23794), {"HL60": 54, "K562": 42, "Kera": 40, "BJ": 37, "GW16": 25, "iPS": 24, "2338": 22, "2339": 17, "GW21+3": 15, "NPC": 15, "GW21": 8}),
    "darmanis": ((466, 22085), {"neurons": 131, "fetal_quiescent": 110, "astrocytes": 62, "hybrid": 46, "oligodendrocytes": 38, "fetal_replicating": 25, "endothelial": 20, "OPC": 18, "microglia": 16}),
    "kang_pbmc": ((1556, 1267), {"CD14+ Monocytes": 400, "CD4 T cells": 400, "B cells": 298, "FCGR3A+ Monocytes": 249, "CD8 T cells": 209}),
    "ting": ((149, 21677), {"CTC_cluster3": 41, "primary_tumor": 34, "CTC_cluster1": 24, "nb508_cell_line": 15, "WBC": 12, "MEF": 12, "CTC_cluster7": 11}),
}


@pytest.mark.parametrize("name", list(MANIFEST))
def test_registered_datasets_load_as_documented(full_shared_data, name):
    adata = ds.load_dataset(name, data_dir=full_shared_data)
    shape, types = MANIFEST[name]
    info = ds.DATASETS[name]
    assert adata.shape == shape == (info.n_cells, info.n_genes)
    counts = adata.obs[info.label_key].value_counts().to_dict()
    assert counts == types and len(types) == info.n_types
    assert adata.uns["topiceval_dataset"]["name"] == name
    assert adata.uns["topiceval_dataset"]["species"] == info.species
    assert info.citation and info.licence and info.accession
    if info.values == "counts":
        assert ds.check_counts(adata.X)["integer"]
        assert not adata.var_names.has_duplicates
    if name == "wang":
        assert adata.obsm["X_scgpt"].shape == (457, 512)
    if name == "yan":
        assert adata.var_names[0] == "MMP2" and adata.obs["cell_type"].iloc[0] == "zygote"


def test_gene_sets_match_species(shared_data):
    ting = ds.load_dataset("ting", data_dir=shared_data)
    mouse = load(ds.DATASETS["ting"].gene_sets).coverage(ting.var_names, warn=False).fraction
    human = load("hallmark").coverage(ting.var_names, warn=False).fraction
    assert ds.DATASETS["ting"].gene_sets == "mouse_hallmark" and mouse > 0.15 and mouse > human


def test_data_folder_resolution(shared_data, monkeypatch, tmp_path):
    monkeypatch.setenv("TOPICEVAL_SHARED_DATA", str(shared_data))
    assert ds.shared_data_dir() == shared_data
    assert ds.load_dataset("kang_pbmc").n_obs == 1556
    monkeypatch.setenv("TOPICEVAL_SHARED_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    beside = REPO.parent / "shared" / "data"
    if (beside / "datasets").is_dir():  # the env folder has no datasets/: the neighbour is used
        assert ds.shared_data_dir() == beside
    else:
        with pytest.raises(InputError, match=r"TOPICEVAL_SHARED_DATA.*beside the repository"):
            ds.shared_data_dir()
    with pytest.raises(InputError, match=r"not found; tried .*nowhere.*data_dir argument.*load_default\(\)"):
        ds.load_dataset("pollen", data_dir=tmp_path / "nowhere")
    (tmp_path / "datasets").mkdir()
    with pytest.raises(InputError, match=r"dataset 'pollen': file\(s\) not found"):
        ds.load_dataset("pollen", data_dir=tmp_path)
    with pytest.raises(InputError, match="unknown dataset 'pbmc3k'; registered: yan, wang, pollen"):
        ds.load_dataset("pbmc3k")


# --------------------------------------------------------------------------- default dataset
def test_default_dataset_is_small_labelled_and_cited():
    path = REPO / "topiceval" / "datasets" / ds.DEFAULT.files[0]
    assert path.stat().st_size < 5_000_000
    adata = ds.load_default()
    assert adata.shape == (299, 5000) and sp.isspmatrix_csr(adata.X) and adata.X.dtype == np.float32
    assert adata.obs["cell_type"].value_counts().to_dict() == MANIFEST["pollen"][1]
    info = adata.uns["topiceval_dataset"]
    assert info["name"] == "pollen_hvg5000" and "Pollen" in info["citation"] and "MIT" in info["licence"]
    assert info["made_by"] == "scripts/make_default_dataset.py"
    assert ds.check_counts(adata.X)["integer"]
    # decent overlap with the shipped human collections
    assert load("reactome").coverage(adata.var_names, warn=False).fraction > 0.5
    assert load("hallmark").coverage(adata.var_names, warn=False).fraction > 0.2
    prepared = ds.preprocess(adata)
    assert prepared.shape == (299, 5000)


def test_default_dataset_is_what_the_script_makes(full_shared_data, c2, tmp_path):
    """The shipped genes are pollen's top 5000 HVGs and their counts are pollen's, unchanged; the
    script rebuilds the same file."""
    spec = importlib.util.spec_from_file_location("make_default", REPO / "scripts" / "make_default_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rebuilt = module.build(full_shared_data)
    shipped = ds.load_default()
    pollen = ds.load_dataset("pollen", data_dir=full_shared_data)
    hvg = ds.preprocess(pollen, n_top_genes=5000)
    assert set(shipped.var_names) == set(hvg.var_names)
    assert list(rebuilt.var_names) == list(shipped.var_names)
    assert (pollen[:, shipped.var_names].X != shipped.X).nnz == 0
    np.testing.assert_array_equal(shipped.obs["total_counts_all_genes"], np.asarray(pollen.X.sum(axis=1)).ravel())
    assert list(shipped.obs_names) == list(pollen.obs_names)
    assert c2.coverage(shipped.var_names, warn=False).fraction > 0.85
    module.write(rebuilt, tmp_path / "rebuilt.h5ad")
    shipped_file = REPO / "topiceval" / "datasets" / ds.DEFAULT.files[0]
    assert hashlib.sha256((tmp_path / "rebuilt.h5ad").read_bytes()).digest() == hashlib.sha256(shipped_file.read_bytes()).digest()


# --------------------------------------------------------------------------- synthetic
@pytest.fixture(scope="module")
def toy():
    return ds.synthetic(n_cells=400, n_cell_types=5, n_topics=8, seed=7)


def test_synthetic_layout_and_reproducibility(toy, hallmark):
    assert toy.n_obs == 400 and sp.isspmatrix_csr(toy.X)
    assert ds.check_counts(toy.X)["integer"]
    assert toy.obs["cell_type"].value_counts().to_dict() == {f"type{c}": 80 for c in range(5)}
    names = toy.uns["synthetic"]["topic_sets"]
    assert len(names) == 8 and all(n in hallmark for n in names)
    assert hallmark.coverage(toy.var_names, warn=False).fraction == 1.0  # real symbols only
    beta = toy.varm["true_topic_gene"]
    np.testing.assert_allclose(beta.sum(axis=0), 1.0)
    # each topic's mass (all but the background share) sits on its gene set
    for k, name in enumerate(names):
        members = np.isin(toy.var_names, hallmark[name])
        assert beta[members, k].sum() >= 1 - toy.uns["synthetic"]["background"]
    again = ds.synthetic(n_cells=400, n_cell_types=5, n_topics=8, seed=7)
    assert (again.X != toy.X).nnz == 0 and list(again.var_names) == list(toy.var_names)
    other = ds.synthetic(n_cells=400, n_cell_types=5, n_topics=8, seed=8)
    assert other.uns["synthetic"]["topic_sets"] != names or (other.X != toy.X).nnz > 0
    # the counts follow the model: per-gene totals track the expected rates
    rates = toy.obsm["true_cell_topic"] @ beta.T
    expected = (rates * np.asarray(toy.X.sum(axis=1))).sum(axis=0)
    observed = np.asarray(toy.X.sum(axis=0)).ravel()
    assert np.corrcoef(expected, observed)[0, 1] > 0.95


def test_perfect_model_scores_high_and_shuffled_low(toy):
    labels = toy.obs["cell_type"]
    truth = ds.true_outputs(toy)
    rng = np.random.default_rng(0)
    shuffled = te.TopicOutputs(
        topic_gene=truth.topic_gene[:, rng.permutation(truth.n_genes)],
        gene_names=truth.gene_names,
        cell_topic=truth.cell_topic[rng.permutation(truth.n_cells)],
        name="shuffled",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        good = te.evaluate(truth, gene_sets="hallmark", labels=labels).scores
        bad = te.evaluate(shuffled, gene_sets="hallmark", labels=labels).scores
    assert good["TC"] > 0.5 and good["IP"] > 0.9 and good["TD"] == 1.0
    assert bad["TC"] < 0.2 and bad["IP"] < 0.4
    assert good["TQ"] > 3 * bad["TQ"]


def test_synthetic_through_preprocess(toy):
    out = ds.preprocess(toy, n_top_genes=600)
    assert out.n_vars == 600
    # topic-set genes carry the structure, so they are over-represented among the HVGs
    assert out.var["in_topic_set"].mean() > toy.var["in_topic_set"].mean()
    truth = ds.true_outputs(out)  # the subset's truth
    assert truth.topic_gene.shape == (8, 600)


def test_synthetic_bad_arguments():
    with pytest.raises(InputError, match="cannot exceed n_topics"):
        ds.synthetic(n_cell_types=9, n_topics=4)
    with pytest.raises(InputError, match="topic_sets not in the collection"):
        ds.synthetic(n_topics=2, n_cell_types=2, topic_sets=["HALLMARK_HYPOXIA", "NOPE"])
    with pytest.raises(InputError, match="not made by topiceval.datasets.synthetic"):
        ds.true_outputs(ds.load_default())
