"""Atlas-scale paths (issue 19): kNN recall check, stratified ASW subsample, memory-mapped and
backed inputs read without copies, scE2TM's approximate mutual kNN and backed sparse input."""

from __future__ import annotations

import tracemalloc

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from topiceval.io import read_cell_matrix, read_label_column, read_obs, read_var_names
from topiceval.metrics import clustering as clustering_module
from topiceval.metrics.clustering import (
    clustering_scores,
    knn_graph,
    knn_recall,
    stratified_subsample,
)

pytest.importorskip("igraph")


def blobs(n: int, dims: int, n_types: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    types = rng.integers(0, n_types, n)
    centres = rng.normal(scale=3.0, size=(n_types, dims))
    return centres[types] + rng.normal(size=(n, dims)), np.array([f"t{t}" for t in types], dtype=object)


# --------------------------------------------------------------------------- recall check
def test_recall_is_one_for_the_exact_graph_and_counts_replaced_neighbours():
    cells, _ = blobs(800, 5, 4)
    graph = knn_graph(cells, 11, knn_method="exact")
    assert graph.recall is None  # exact: nothing to check
    assert knn_recall(cells, graph.indices, n_query=800) == 1.0
    # replace the last 3 of 10 neighbours of every cell by its farthest cell: recall 7 / 10
    far = np.argmax(((cells[:, None] - cells[None]) ** 2).sum(2), axis=1)
    broken = graph.indices.copy()
    broken[:, -3:] = far[:, None]
    assert knn_recall(cells, broken, n_query=800) == pytest.approx(0.7)
    # on a subsample: the same fraction, seeded
    assert knn_recall(cells, broken, n_query=100, seed=5) == pytest.approx(0.7)


def test_recall_does_not_count_an_equidistant_neighbour_as_missed():
    # every cell has exact duplicates: any duplicate is an equally good neighbour
    base = np.random.default_rng(1).normal(size=(100, 3))
    cells = np.repeat(base, 6, axis=0)  # 600 cells, 5 duplicates each
    graph = knn_graph(cells, 6, knn_method="exact")
    shuffled = graph.indices.copy()
    group = np.arange(600) // 6
    for i in range(600):  # list the duplicates in another order, cell itself first
        shuffled[i, 1:] = [j for j in range(group[i] * 6, group[i] * 6 + 6) if j != i][::-1]
    assert knn_recall(cells, shuffled, n_query=600) == 1.0


def test_blockwise_recall_equals_one_block():
    cells, _ = blobs(500, 4, 3)
    graph = knn_graph(cells, 8, knn_method="exact")
    noisy = graph.indices.copy()
    noisy[::3, -1] = (np.arange(500)[::3] + 250) % 500
    one = knn_recall(cells, noisy, n_query=200, seed=2)
    assert knn_recall(cells, noisy, n_query=200, seed=2, block=37) == one
    assert one < 1.0


def test_approximate_graph_is_checked_and_reported():
    pytest.importorskip("pynndescent")
    cells, labels = blobs(2000, 8, 5)
    result = clustering_scores(cells, labels, resolutions=[0.5, 1.0], knn_method="pynndescent",
                               knn_recall_cells=300)
    info = result.info_for("ARI")
    assert info["knn_method"] == "pynndescent"
    assert 0.9 <= info["knn_recall"] <= 1.0
    exact = clustering_scores(cells, labels, resolutions=[0.5, 1.0], knn_method="exact")
    assert "knn_recall" not in exact.info_for("ARI")


# --------------------------------------------------------------------------- ASW subsample
def test_stratified_subsample_keeps_each_types_share_and_rare_types():
    codes = np.repeat([0, 1, 2, 3], [6000, 3000, 999, 1])
    used = stratified_subsample(codes, 1000, seed=4)
    counts = np.bincount(codes[used], minlength=4)
    assert used.size == counts.sum() and np.all(np.diff(used) > 0)
    np.testing.assert_array_equal(counts[:3], [600, 300, 100])  # 99.9 rounds up by largest remainder
    assert counts[3] == 1  # a type of one cell keeps it
    np.testing.assert_array_equal(used, stratified_subsample(codes, 1000, seed=4))
    assert not np.array_equal(used, stratified_subsample(codes, 1000, seed=5))
    np.testing.assert_array_equal(stratified_subsample(codes, 20_000, seed=4), np.arange(codes.size))


def test_asw_above_the_cap_is_sklearns_silhouette_of_the_subsample():
    from sklearn.metrics import silhouette_score

    cells, labels = blobs(3000, 4, 3)
    labels[::50] = None  # unlabelled cells are left out before subsampling
    result = clustering_scores(cells, labels, resolutions=[1.0], seed=9, asw_max_cells=500)
    info = result.info_for("ASW")
    keep = np.array([v is not None for v in labels])
    codes = pd.factorize(pd.Series(labels[keep]).astype(str), sort=True)[0]
    used = stratified_subsample(codes, 500, 9)
    assert info["subsampled"] and info["n_cells"] == used.size == 500
    expected = silhouette_score(cells[keep][used], codes[used])
    assert result["ASW"] == pytest.approx(expected, abs=1e-12)
    # below the cap: the full silhouette, as before
    full = clustering_scores(cells, labels, resolutions=[1.0], seed=9, asw_max_cells=5000)
    assert full["ASW"] == pytest.approx(silhouette_score(cells[keep], codes), abs=1e-12)
    assert abs(result["ASW"] - full["ASW"]) < 0.05


def test_options_reach_clustering_through_the_registry():
    import topiceval as te
    from topiceval.protocol import TopicOutputs

    cells, labels = blobs(600, 4, 3)
    outputs = TopicOutputs(topic_gene=None, gene_names=None, cell_topic=np.abs(cells), name="m")
    small = te.evaluate(outputs, labels=labels, metrics=["clustering"], cluster_resolutions=(1.0,),
                        cluster_asw_max_cells=200, cluster_n_jobs=1)
    assert small.info["ASW"]["n_cells"] == 200 and small.info["ASW"]["subsampled"]
    with pytest.raises(te.InputError):
        te.evaluate(outputs, labels=labels, metrics=["clustering"], cluster_asw_max_cells=10)


# --------------------------------------------------------------------------- memory-mapped inputs
def test_npy_is_mapped_and_scored_without_a_copy(tmp_path):
    cells, labels = blobs(4000, 20, 4)
    path = tmp_path / "cells.npy"
    np.save(path, cells)
    mapped = read_cell_matrix(path)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    assert clustering_module._cell_matrix(mapped) is mapped  # validated, not copied
    big = tmp_path / "big.npy"
    np.save(big, np.random.default_rng(1).normal(size=(100_000, 20)))  # 16 MB
    big_mapped = read_cell_matrix(big)
    self_only = np.tile(np.arange(100_000)[:, None], (1, 5))
    tracemalloc.start()
    assert clustering_module._cell_matrix(big_mapped) is big_mapped
    recall = knn_recall(big_mapped, self_only, n_query=50, block=1000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert recall == 0.0  # a graph listing only the cell itself finds nothing
    assert peak < big_mapped.nbytes / 4, peak  # blocks of 1,000 rows, never the 16 MB matrix
    # the same scores as from the array in memory
    a = clustering_scores(mapped, labels, resolutions=[0.5, 1.0])
    b = clustering_scores(cells, labels, resolutions=[0.5, 1.0])
    assert a.scores.equals(b.scores)
    np.testing.assert_array_equal(a.memberships, b.memberships)


def test_h5ad_obsm_is_mapped_in_place_and_labels_come_from_obs_alone(tmp_path):
    n = 40_000
    rng = np.random.default_rng(0)
    topics = rng.random((n, 250))  # 80 MB
    obs = pd.DataFrame({"cell_type": pd.Categorical(rng.choice(["a", "b", "c"], n))},
                       index=[f"c{i}" for i in range(n)])
    adata = ad.AnnData(obs=obs)
    adata.obsm["X_topic"] = topics
    path = tmp_path / "out.h5ad"
    adata.write_h5ad(path)
    tracemalloc.start()
    mapped = read_cell_matrix(path)
    labels = read_label_column(path, "cell_type")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert isinstance(mapped, np.memmap)
    np.testing.assert_array_equal(mapped, topics)
    np.testing.assert_array_equal(labels, obs["cell_type"].astype(str).to_numpy())
    assert peak < topics.nbytes / 2, peak  # the 80 MB obsm was neither read nor copied
    pd.testing.assert_frame_equal(read_obs(path), obs)
    assert list(read_var_names(path)) == list(adata.var_names)
    genes = ad.AnnData(np.zeros((2, 3), dtype=np.float32), var=pd.DataFrame(index=["CCL5", "HLA-A", "X_ENSG00000000001"]))
    genes.write_h5ad(tmp_path / "genes.h5ad")
    assert list(read_var_names(tmp_path / "genes.h5ad")) == ["CCL5", "HLA-A", "X_ENSG00000000001"]


def test_h5ad_obsm_that_cannot_be_mapped_is_read_once(tmp_path):
    topics = np.random.default_rng(0).random((300, 4))
    path = tmp_path / "c.h5ad"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("obsm/X_topic_embedding", data=topics, compression="gzip", chunks=(100, 4))
    read = read_cell_matrix(path, "X_topic_embedding")
    assert not isinstance(read, np.memmap)
    np.testing.assert_array_equal(read, topics)
    with pytest.raises(Exception, match="not found"):
        read_cell_matrix(path, "X_topic")


def test_pickled_npy_is_refused(tmp_path):
    from topiceval.errors import InputError

    path = tmp_path / "o.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="never unpickled"):
        read_cell_matrix(path)


# --------------------------------------------------------------------------- scE2TM at scale
def test_sce2tm_approximate_mutual_knn_agrees_with_exact_on_sparse_input():
    pytest.importorskip("pynndescent")
    from models.sce2tm.distill import knn, mutual_knn_neighbours

    cells, _ = blobs(1500, 30, 5, seed=3)
    sparse = sp.csr_matrix(np.where(cells > 1.0, cells, 0.0).astype(np.float32))
    exact_d, exact_i = knn(sparse, 10, knn_method="exact")
    approx_d, approx_i = knn(sparse, 10, knn_method="pynndescent", seed=0)
    assert approx_i.shape == exact_i.shape == (1500, 9)
    overlap = np.mean([np.intersect1d(a, b).size / 9 for a, b in zip(approx_i, exact_i, strict=True)])
    assert overlap > 0.9
    assert np.all(np.diff(approx_d, axis=1) >= 0) and not np.any(approx_i == np.arange(1500)[:, None])
    sets = mutual_knn_neighbours(sparse, 10, knn_method="pynndescent")
    assert sets.n_cells == 1500 and (sets.mutual != sets.mutual.T).nnz == 0


def test_sce2tm_trains_from_a_backed_sparse_h5ad(tmp_path):
    from models.sce2tm import SCE2TM
    from models.sce2tm.api import _input_matrix

    rng = np.random.default_rng(0)
    x = sp.random(300, 60, density=0.2, format="csr", random_state=0, dtype=np.float32)
    x.data = np.log1p(x.data * 10)
    adata = ad.AnnData(x, var=pd.DataFrame(index=[f"g{j}" for j in range(60)]))
    adata.obsm["X_scGPT"] = rng.normal(size=(300, 8)).astype(np.float32)
    path = tmp_path / "expr.h5ad"
    adata.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    matrix = _input_matrix(backed, None)
    assert sp.issparse(matrix) and matrix.nnz == x.nnz  # read as CSR, not densified
    model = SCE2TM(n_topics=5, epochs=1, progress=False, n_threads=1)
    model.fit(backed, embedding_key="X_scGPT", key_added=None)
    assert model.info["input_sparse"] and model.topic_gene().shape == (5, 60)
    in_memory = SCE2TM(n_topics=5, epochs=1, progress=False, n_threads=1).fit(adata, embedding_key="X_scGPT",
                                                                              key_added=None)
    np.testing.assert_allclose(model.topic_gene(), in_memory.topic_gene(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- Louvain at scale
def _igraph_of(connectivities):
    edges, _ = clustering_module._graph_edges(connectivities)
    return clustering_module._build_igraph(connectivities.shape[0], edges, None)


def test_resolution_zero_is_igraphs_partition_the_connected_components():
    cells, _ = blobs(1200, 3, 4)
    cells = cells + np.repeat(np.arange(4) * 1000.0, 300)[:, None]  # four groups far apart
    graph = knn_graph(cells, 6, knn_method="exact")
    assert graph.n_components >= 4
    from_igraph = clustering_module.cluster_graph(_igraph_of(graph.connectivities), 0.0, seed=3)
    np.testing.assert_array_equal(clustering_module._components(graph.connectivities), from_igraph)


def test_compiled_louvain_equals_its_python_twin_and_is_seeded():
    from topiceval.metrics._louvain_numba import louvain

    cells, _ = blobs(600, 4, 5, seed=2)
    con = knn_graph(cells, 8, knn_method="exact").connectivities
    for weighted in (False, True):
        compiled = louvain(con, 1.0, seed=4, weighted=weighted)
        np.testing.assert_array_equal(compiled, louvain(con, 1.0, seed=4, weighted=weighted, compiled=False))
    assert not np.array_equal(louvain(con, 1.5, seed=4), louvain(con, 1.5, seed=5))


def test_compiled_louvain_optimises_modularity_as_well_as_igraph():
    from sklearn.metrics import adjusted_rand_score

    from topiceval.metrics._louvain_numba import louvain

    cells, labels = blobs(4000, 6, 6, seed=1)
    con = knn_graph(cells, 15, knn_method="exact").connectivities
    built = _igraph_of(con)
    truth = pd.factorize(labels)[0]
    for resolution in (0.5, 1.0, 1.5):
        ours = louvain(con, resolution, seed=0)
        q_ours = built.modularity(ours.tolist(), resolution=resolution)
        q_igraph = [built.modularity(clustering_module.cluster_graph(built, resolution, seed=s).tolist(),
                                     resolution=resolution) for s in range(3)]
        # igraph's seeds differ by ~1e-3 here; the compiled Louvain lands among them
        assert q_ours >= min(q_igraph) - 0.01, (resolution, q_ours, q_igraph)
        igraph_ari = adjusted_rand_score(truth, clustering_module.cluster_graph(built, resolution, seed=0))
        assert adjusted_rand_score(truth, ours) > igraph_ari - 0.05


def test_backend_switches_above_the_igraph_range_and_threads_change_nothing(monkeypatch):
    cells, labels = blobs(3000, 6, 4, seed=5)
    reference = clustering_scores(cells, labels, resolutions=[0.0, 0.5, 1.0], n_jobs=1)
    assert reference.info_for("ARI")["backend"] == "igraph"
    monkeypatch.setattr(clustering_module, "IGRAPH_MAX_CELLS", 2000)
    one = clustering_scores(cells, labels, resolutions=[0.0, 0.5, 1.0], n_jobs=1)
    two = clustering_scores(cells, labels, resolutions=[0.0, 0.5, 1.0], n_jobs=2)
    assert one.info_for("ARI")["backend"] == "numba"
    np.testing.assert_array_equal(one.memberships, two.memberships)
    np.testing.assert_array_equal(one.memberships[:, 0], reference.memberships[:, 0])  # components
    assert abs(one["ARI"] - reference["ARI"]) < 0.05
    leiden = clustering_scores(cells, labels, resolutions=[1.0], method="leiden")
    assert leiden.info_for("ARI")["backend"] == "igraph"  # Leiden stays on igraph
    from topiceval.errors import InputError

    with pytest.raises(InputError, match="Louvain only"):
        clustering_scores(cells, labels, resolutions=[1.0], method="leiden", backend="numba")


def test_faiss_search_is_checked_seeded_and_thread_count_free():
    faiss = pytest.importorskip("faiss")
    cells, labels = blobs(6000, 10, 5, seed=4)
    graph = knn_graph(cells, 15, knn_method="faiss", seed=1, recall_cells=500)
    assert graph.knn_method == "faiss" and graph.recall >= 0.9
    assert np.all(graph.indices[:, 0] == np.arange(6000))
    assert not np.any(graph.indices[:, 1:] == np.arange(6000)[:, None])
    # distances are exact float64 distances to the listed neighbours, ascending
    expected = np.linalg.norm(cells[graph.indices] - cells[:, None, :], axis=2)
    np.testing.assert_allclose(graph.distances, expected, rtol=1e-12, atol=1e-12)
    assert np.all(np.diff(graph.distances, axis=1) >= 0)
    before = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(1)
        single = knn_graph(cells, 15, knn_method="faiss", seed=1, recall_cells=0)
    finally:
        faiss.omp_set_num_threads(before)
    np.testing.assert_array_equal(single.indices, graph.indices)
    result = clustering_scores(cells, labels, resolutions=[0.5], knn_method="faiss")
    assert result.info_for("ARI")["knn_method"] == "faiss"
