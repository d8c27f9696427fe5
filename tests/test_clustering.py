"""Clustering metrics: connectivities, Louvain / Leiden sweeps, ARI / NMI choices, ASW, evaluate, CLI.

References: scanpy's ``pp.neighbors`` (kNN distances and UMAP connectivities), UMAP's own
``fuzzy_simplicial_set``, networkx's Louvain on scanpy's graph (scanpy's ``tl.louvain`` needs the
unmaintained ``louvain`` package, which pins igraph < 0.12 and imports ``pkg_resources``), scanpy's
``tl.leiden`` (leidenalg), closed-form UMAP memberships, and hand-coded ARI / silhouette formulas.
"""

from __future__ import annotations

import json
import math
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from tolerances import EPS32

from topiceval import TopicOutputs, evaluate
from topiceval.cli import main
from topiceval.errors import InputError
from topiceval.evaluate import EvaluationOptions
from topiceval.examples import EXAMPLES
from topiceval.io import read_matrix
from topiceval.metrics import PAPER_RESOLUTIONS, clustering_scores, knn_graph, umap_connectivities
from topiceval.metrics import clustering as clustering_module

EX = EXAMPLES["yan_nmf"]
SEEDS = (0, 1, 2, 3)


# --------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def wang(shared_data):
    folder = shared_data / "datasets" / "wang"
    cells = pd.read_csv(folder / "wang_scgpt_embedding.csv", index_col=0).to_numpy(dtype=np.float64)
    labels = pd.read_csv(folder / "wang_cell_anno.csv", index_col=0).iloc[:, 0].to_numpy(dtype=object)
    assert cells.shape == (457, 512) and len(set(labels)) == 7
    return cells, labels


@pytest.fixture(scope="module")
def yan(shared_data, yan_labels):
    """The first 20 principal components of the Yan log-expression (90 cells, 6 stages)."""
    from sklearn.decomposition import PCA

    expression = pd.read_csv(shared_data / "datasets" / "yan" / "yan_HIGHPRE.csv", index_col=0)
    cells = PCA(n_components=20, svd_solver="full").fit_transform(expression.to_numpy(dtype=np.float64))
    return cells, yan_labels


def scanpy_graph(cells):
    import anndata as ad
    import scanpy as sc

    adata = ad.AnnData(cells)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.neighbors(adata, use_rep="X")  # the authors' call: defaults, n_neighbors = 15
    return adata


def ari_by_pair_counting(a, b):
    """Hubert-Arabie ARI from the contingency table, written out."""
    table = pd.crosstab(np.asarray(a), np.asarray(b)).to_numpy()
    comb = lambda x: x * (x - 1) / 2  # noqa: E731
    index = comb(table).sum()
    rows, cols, total = comb(table.sum(1)).sum(), comb(table.sum(0)).sum(), comb(table.sum())
    expected = rows * cols / total
    return (index - expected) / ((rows + cols) / 2 - expected)


# --------------------------------------------------------------------------- graph
def test_connectivities_equal_scanpy_on_wang(wang):
    cells, _ = wang
    ours = knn_graph(cells, 15)
    adata = scanpy_graph(cells)
    theirs = adata.obsp["connectivities"].tocsr()
    assert ours.knn_method == "exact"
    # the same edges, the same weights to float32 rounding
    assert ((ours.connectivities != 0) != (theirs != 0)).nnz == 0
    assert abs(ours.connectivities - theirs).max() < 1e-6
    # kNN distances: scanpy stores the 14 others (not the cell itself)
    their_distances = np.sort(adata.obsp["distances"].toarray(), axis=1)[:, -14:]
    # scanpy keeps the distances as float32: equal to float32 rounding
    np.testing.assert_allclose(ours.distances[:, 1:], their_distances, rtol=EPS32, atol=0)
    assert (ours.indices[:, 0] == np.arange(len(cells))).all()


def test_connectivities_equal_umap_with_duplicate_cells(yan):
    """Duplicated cells (zero distances besides the cell itself) follow UMAP's rules."""
    from umap.umap_ import fuzzy_simplicial_set

    cells = np.vstack([yan[0], yan[0][:5]])  # 5 cells twice
    graph = knn_graph(cells, 10)
    expected, _, _ = fuzzy_simplicial_set(
        sp.coo_matrix((len(cells), 1)), 10, None, None,
        knn_indices=graph.indices, knn_dists=graph.distances.astype(np.float32),
    )
    expected = expected.tocsr()
    assert ((graph.connectivities != 0) != (expected != 0)).nnz == 0
    assert abs(graph.connectivities - expected).max() < 1e-6


def test_umap_memberships_closed_form():
    """k = 3: the nearest other neighbour gets 1, the second log2(3) - 1; union P + P' - P o P'."""
    x = np.array([0.0, 1.0, 3.0, 6.0, 10.0, 15.0])
    distance = np.abs(x[:, None] - x[None, :])
    order = np.argsort(distance, axis=1, kind="stable")[:, :3]  # self, nearest, second (no ties)
    connectivities = umap_connectivities(order, np.take_along_axis(distance, order, 1)).toarray()
    directed = np.zeros((6, 6))
    for i, (_, first, second) in enumerate(order):
        directed[i, first] = 1.0
        directed[i, second] = math.log2(3) - 1
    expected = directed + directed.T - directed * directed.T
    np.testing.assert_allclose(connectivities, expected, atol=2e-5)
    assert (np.diag(connectivities) == 0).all()


def test_knn_graph_errors(yan):
    cells, _ = yan
    with pytest.raises(InputError, match="fewer than n_neighbors"):
        knn_graph(cells[:10], 15)
    with pytest.raises(InputError, match="NaN"):
        knn_graph(np.where(np.eye(90, 20, dtype=bool), np.nan, cells), 15)
    with pytest.raises(InputError, match="at least 2"):
        knn_graph(cells, 1)
    with pytest.raises(InputError, match="kNN method"):
        knn_graph(cells, 15, knn_method="annoy")


def test_drop_self_keeps_the_nearest_others():
    """An approximate search may list the cell itself anywhere or not at all."""
    indices = np.array([[0, 4, 2, 3], [3, 1, 0, 2], [4, 3, 1, 0]])
    distances = np.array([[0.0, 1, 2, 3], [1.0, 0, 2, 3], [1.0, 2, 3, 4]])
    others, others_d = clustering_module._drop_self(indices, distances, 3)
    np.testing.assert_array_equal(others, [[4, 2, 3], [3, 0, 2], [4, 3, 1]])
    np.testing.assert_array_equal(others_d, [[1, 2, 3], [1, 2, 3], [1, 2, 3]])


# --------------------------------------------------------------------------- agreement
def networkx_louvain_best_ari(adata, labels, seed):
    import networkx as nx
    from sklearn.metrics import adjusted_rand_score

    graph = nx.from_scipy_sparse_array(adata.obsp["connectivities"])
    best = -1.0
    for resolution in PAPER_RESOLUTIONS:
        communities = nx.community.louvain_communities(graph, weight=None, resolution=resolution, seed=seed)
        membership = np.empty(len(labels), dtype=np.int64)
        for cluster, nodes in enumerate(communities):
            membership[list(nodes)] = cluster
        best = max(best, adjusted_rand_score(labels, membership))
    return best


@pytest.mark.parametrize("dataset", ["wang", "yan"])
def test_louvain_agrees_with_networkx_on_scanpy_graph(dataset, request):
    """Best ARI over the paper's sweep, averaged over seeds, within 0.02 of the reference."""
    cells, labels = request.getfixturevalue(dataset)
    adata = scanpy_graph(cells)
    graph = knn_graph(cells, 15)
    ours = [clustering_scores(cells, labels, seed=s, graph=graph, asw=False)["ARI"] for s in SEEDS]
    theirs = [networkx_louvain_best_ari(adata, labels, s) for s in SEEDS]
    assert abs(np.mean(ours) - np.mean(theirs)) <= 0.02, (ours, theirs)
    assert max(ours) > 0.2  # not two equally broken implementations


def test_leiden_agrees_with_scanpy_on_wang(wang):
    import scanpy as sc
    from sklearn.metrics import adjusted_rand_score

    cells, labels = wang
    adata = scanpy_graph(cells)
    graph = knn_graph(cells, 15)
    ours, theirs = [], []
    for seed in SEEDS:
        ours.append(clustering_scores(cells, labels, seed=seed, method="leiden", graph=graph, asw=False)["ARI"])
        aris = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scanpy's FutureWarning about the default flavour
            for resolution in PAPER_RESOLUTIONS:
                sc.tl.leiden(adata, resolution=resolution, random_state=seed)  # leidenalg, weighted
                aris.append(adjusted_rand_score(labels, adata.obs["leiden"]))
        theirs.append(max(aris))
    assert abs(np.mean(ours) - np.mean(theirs)) <= 0.02, (ours, theirs)


# --------------------------------------------------------------------------- hand-checkable cases
def test_two_separated_blobs(rng):
    cells = np.vstack([rng.normal(size=(60, 5)), rng.normal(size=(60, 5)) + 100.0])
    labels = np.repeat(["a", "b"], 60)
    result = clustering_scores(cells, labels, resolutions=[0.0, 0.5, 1.0])
    assert result.info["n_components"] == 2
    first = result.sweep.iloc[0]
    assert first["n_clusters"] == 2 and first["ARI"] == 1.0 and first["NMI"] == pytest.approx(1.0)
    assert result["ARI"] == 1.0 and result.info["best_resolution"] == 0.0
    assert result["ARI_label_free"] == 1.0 and result.info["label_free_resolution"] == 0.0
    assert result["ASW"] > 0.9


def test_resolution_zero_gives_one_cluster_per_component(rng, wang):
    cells = rng.normal(size=(200, 5))  # one connected blob
    labels = rng.choice(["a", "b"], size=200)
    result = clustering_scores(cells, labels, resolutions=[0.0])
    assert result.sweep.at[0, "n_clusters"] == 1
    assert result["ARI"] == 0.0 and result["NMI"] == 0.0 and result["ARI_label_free"] == 0.0
    assert (result.memberships == 0).all()
    graph = knn_graph(wang[0], 15)
    wang_result = clustering_scores(wang[0], wang[1], resolutions=[0.0], graph=graph, asw=False)
    assert wang_result.sweep.at[0, "n_clusters"] == graph.n_components


def test_sweep_table_and_choices(wang):
    from sklearn.metrics import normalized_mutual_info_score

    cells, labels = wang
    result = clustering_scores(cells, labels)
    sweep = result.sweep
    assert list(sweep.columns) == ["resolution", "n_clusters", "ARI", "NMI", "AMI"]
    assert sweep["resolution"].tolist() == [i / 10 for i in range(20)]
    for column, resolution in enumerate(PAPER_RESOLUTIONS):
        clusters = result.memberships[:, column]
        assert sweep.at[column, "n_clusters"] == len(np.unique(clusters))
        assert sweep.at[column, "ARI"] == pytest.approx(ari_by_pair_counting(labels, clusters), abs=1e-12)
        assert sweep.at[column, "NMI"] == pytest.approx(normalized_mutual_info_score(labels, clusters))
    # paper: the first maximum of ARI; NMI read at the same resolution
    best = int(np.flatnonzero(sweep["ARI"] == sweep["ARI"].max())[0])
    assert result["ARI"] == sweep.at[best, "ARI"] and result["NMI"] == sweep.at[best, "NMI"]
    # label-free: n_clusters nearest the 7 types, the lowest such resolution
    gap = (sweep["n_clusters"] - 7).abs()
    free = int(np.flatnonzero(gap == gap.min())[0])
    assert result.info["label_free_resolution"] == sweep.at[free, "resolution"]
    assert result["ARI_label_free"] == sweep.at[free, "ARI"] <= result["ARI"]
    assert result.results["NMI"].info["resolution"] == result.info["best_resolution"]


def test_asw_is_the_silhouette_of_cell_types(rng):
    cells = np.vstack([rng.normal(size=(20, 3)), rng.normal(size=(20, 3)) + 1.5, rng.normal(size=(20, 3)) + 3])
    labels = np.repeat(["x", "y", "z"], 20)
    distance = np.linalg.norm(cells[:, None] - cells[None], axis=2)
    same = labels[:, None] == labels[None]
    a = (distance * same).sum(1) / (same.sum(1) - 1)
    b = np.min([distance[:, labels == t].mean(1) + np.where(labels == t, np.inf, 0) for t in "xyz"], axis=0)
    expected = np.mean((b - a) / np.maximum(a, b))
    result = clustering_scores(cells, labels, resolutions=[1.0])
    assert result["ASW"] == pytest.approx(expected, abs=1e-12)
    assert result.results["ASW"].info["scaled"] == pytest.approx((expected + 1) / 2)
    assert not result.results["ASW"].info["subsampled"]


def test_asw_subset_above_the_cap(rng):
    cells = np.vstack([rng.normal(size=(100, 3)), rng.normal(size=(100, 3)) + 2])
    labels = np.repeat(["x", "y"], 100)
    first = clustering_scores(cells, labels, resolutions=[1.0], seed=3, asw_max_cells=50)
    again = clustering_scores(cells, labels, resolutions=[1.0], seed=3, asw_max_cells=50)
    assert first.results["ASW"].info == {**again.results["ASW"].info} and first["ASW"] == again["ASW"]
    assert first.results["ASW"].info["n_cells"] == 50 and first.results["ASW"].info["subsampled"]


# --------------------------------------------------------------------------- determinism
def test_same_seed_same_results_any_split(yan):
    cells, labels = yan
    first = clustering_scores(cells, labels, seed=7)
    again = clustering_scores(cells, labels, seed=7)
    parallel = clustering_scores(cells, labels, seed=7, n_jobs=2)
    for other in (again, parallel):
        np.testing.assert_array_equal(first.memberships, other.memberships)
        pd.testing.assert_frame_equal(first.sweep, other.sweep)
        assert first.scores.equals(other.scores)
    # one resolution alone gives the same partition as inside the sweep
    alone = clustering_scores(cells, labels, resolutions=[1.3], seed=7)
    np.testing.assert_array_equal(alone.memberships[:, 0], first.memberships[:, 13])


def test_the_seed_reaches_igraph_without_touching_global_random(wang):
    import random

    cells, labels = wang
    graph = knn_graph(cells, 15)
    state = random.getstate()
    runs = {s: clustering_scores(cells, labels, seed=s, graph=graph, asw=False).memberships for s in (0, 1)}
    assert random.getstate() == state
    assert not np.array_equal(runs[0], runs[1])  # Wang's weak structure: seeds move some cells


# --------------------------------------------------------------------------- errors
def test_clear_errors(yan, monkeypatch):
    cells, labels = yan
    with pytest.raises(InputError, match="at least two labelled types.*'blast'"):
        clustering_scores(cells, ["blast"] * 90)
    with pytest.raises(InputError, match="no cell has a label"):
        clustering_scores(cells, [None] * 90)
    with pytest.raises(InputError, match="80 labels were given for 90 cells"):
        clustering_scores(cells, labels[:80])
    for bad, message in [([], "at least one"), ([-0.1], ">= 0"), ([0.5, 0.5], "repeat"), (["x"], "numbers")]:
        with pytest.raises(InputError, match=message):
            clustering_scores(cells, labels, resolutions=bad)
    with pytest.raises(InputError, match="louvain, leiden"):
        clustering_scores(cells, labels, method="kmeans")
    monkeypatch.setitem(sys.modules, "igraph", None)
    with pytest.raises(InputError, match=r"topiceval\[cluster\]"):
        clustering_scores(cells, labels)


def test_unlabelled_cells_are_clustered_not_scored(yan):
    cells, labels = yan
    partial = labels.copy()
    partial[:6] = None  # the zygotes
    with pytest.warns(UserWarning, match="6 of 90 cells have no label"):
        result = clustering_scores(cells, partial, resolutions=[0.5, 1.0])
    full = clustering_scores(cells, labels, resolutions=[0.5, 1.0])
    np.testing.assert_array_equal(result.memberships, full.memberships)
    expected = ari_by_pair_counting(labels[6:], result.memberships[6:, 0])
    assert result.sweep.at[0, "ARI"] == pytest.approx(expected)
    assert result.results["ARI"].info["n_unlabelled"] == 6 and result.info["n_types"] == 5


# --------------------------------------------------------------------------- evaluate and CLI
@pytest.fixture(scope="module")
def example_outputs(yan):
    beta, _, genes = read_matrix(EX.topic_gene)
    theta = read_matrix(EX.cell_topic)[0]
    return TopicOutputs(beta, genes, cell_topic=theta, cell_embedding=yan[0], name="yan_nmf")


def test_evaluate_uses_the_embedding_and_records_it(example_outputs, yan):
    labels = yan[1]
    result = evaluate(example_outputs, labels=labels, metrics="ari")
    keys = ["ARI", "NMI", "ARI_label_free", "NMI_label_free", "ASW"]
    assert list(result.scores.index) == keys
    direct = clustering_scores(yan[0], labels)
    for key in keys:
        assert result[key] == direct[key]
        assert result.info[key]["representation"] == "cell_embedding"
    pd.testing.assert_frame_equal(result.details["clustering"], direct.sweep)
    assert list(result.config["options"]["cluster_resolutions"]) == list(PAPER_RESOLUTIONS)
    assert result.to_dict()["config"]["info"]["ARI"]["sweep"][3]["resolution"] == 0.3
    # nmi and clustering request the same family, once
    assert evaluate(example_outputs, labels=labels, metrics="nmi,ari").scores.equals(result.scores)
    without = TopicOutputs(example_outputs.topic_gene, example_outputs.gene_names,
                           cell_topic=example_outputs.cell_topic)
    on_topics = evaluate(without, labels=labels, metrics="clustering,ip")
    assert on_topics.info["ARI"]["representation"] == "cell_topic"
    assert on_topics["ARI"] == clustering_scores(example_outputs.cell_topic, labels)["ARI"]


def test_evaluate_options_and_errors(example_outputs, yan):
    labels = yan[1]
    leiden = evaluate(example_outputs, labels=labels, metrics="ari", cluster_method="leiden",
                      cluster_resolutions=[0.5, 1.0], cluster_n_neighbors=10)
    assert leiden.info["ARI"]["method"] == "leiden" and leiden.info["ARI"]["weighted"] is True
    assert leiden.info["ARI"]["n_neighbors"] == 10
    assert leiden.details["clustering"]["resolution"].tolist() == [0.5, 1.0]
    assert EvaluationOptions(cluster_resolutions=[1, 2]).cluster_resolutions == (1.0, 2.0)
    with pytest.raises(InputError, match=">= 0"):
        EvaluationOptions(cluster_resolutions=[-1])
    with pytest.raises(InputError, match="cluster method"):
        EvaluationOptions(cluster_method="kmeans")
    with pytest.raises(InputError, match="needs cell labels"):
        evaluate(example_outputs, metrics="ari")
    embedding_only = TopicOutputs(example_outputs.topic_gene, example_outputs.gene_names,
                                  cell_embedding=yan[0])
    assert evaluate(embedding_only, labels=labels, metrics="ari")["ARI"] > 0
    with pytest.raises(InputError, match="needs .*a cell-topic matrix"):
        evaluate(embedding_only, labels=labels, metrics="ip")
    with pytest.raises(InputError, match="valid: .*clustering.*ari, nmi"):
        evaluate(example_outputs, labels=labels, metrics="rand")


def test_cli_scores_a_cell_embedding(tmp_path, capsys, yan):
    embedding = tmp_path / "embedding.csv"
    pd.DataFrame(yan[0]).to_csv(embedding)
    out = tmp_path / "r.json"
    code = main(["score", "--topic-gene", str(EX.topic_gene), "--cell-embedding", str(embedding),
                 "--labels", str(EX.labels), "--metrics", "ari,nmi", "--out", str(out),
                 "--cluster-resolutions", "0:2:0.1"])
    printed = capsys.readouterr().out
    assert code == 0 and "ARI_label_free" in printed
    data = json.loads(out.read_text())
    direct = clustering_scores(yan[0], yan[1])
    for key in ("ARI", "NMI", "ARI_label_free", "NMI_label_free", "ASW"):
        assert data[key] == pytest.approx(direct[key], abs=1e-12)
    assert data["config"]["info"]["ARI"]["representation"] == "cell_embedding"

    code = main(["score", "--topic-gene", str(EX.topic_gene), "--cell-embedding", str(embedding),
                 "--metrics", "ari"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == "topiceval: error: metric 'clustering' needs cell labels (labels=...)"
    with pytest.raises(SystemExit) as exit_info:
        main(["score", "--example", "yan_nmf", "--metrics", "ari", "--cluster-resolutions", "low"])
    assert exit_info.value.code == 2 and "START:STOP:STEP" in capsys.readouterr().err
