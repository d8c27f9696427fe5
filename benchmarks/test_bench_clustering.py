"""pytest-benchmark: clustering metrics on 50k cells x 100 dimensions, 20 resolutions.

    pytest benchmarks/test_bench_clustering.py --benchmark-only

Target (issue 6): the whole sweep (kNN graph + 20 Louvain resolutions + ARI / NMI) at most 60 s on
2 cores; the kNN search is timed on its own. ``bench_clustering.py`` prints each step and the
scanpy side by side. One round each: a round takes tens of seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from bench_clustering import synthetic_cells  # noqa: E402

from topiceval.metrics.clustering import PAPER_RESOLUTIONS, clustering_scores, knn_graph  # noqa: E402


@pytest.fixture(scope="module")
def cells_50k():
    return synthetic_cells(50_000, 100, 15)


def test_knn_graph_50k(benchmark, cells_50k):
    cells, _ = cells_50k
    graph = benchmark.pedantic(knn_graph, args=(cells, 15), rounds=1, iterations=1)
    assert graph.knn_method == "exact" and graph.connectivities.shape == (50_000, 50_000)


def test_louvain_sweep_50k(benchmark, cells_50k):
    cells, labels = cells_50k
    result = benchmark.pedantic(
        clustering_scores, args=(cells, labels, PAPER_RESOLUTIONS), kwargs={"asw": False},
        rounds=1, iterations=1,
    )
    assert len(result.sweep) == 20 and result["ARI"] > 0.9
