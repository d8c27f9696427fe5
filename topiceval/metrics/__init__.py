"""Metric functions: arrays (and :class:`~topiceval.gene_sets.GeneSets`) in, numbers out.

Each returns a :class:`MetricResult` with the aggregate score, per-topic values and facts about
the computation. None of them reads files, prints or plots.
"""

from topiceval.metrics._result import MetricResult
from topiceval.metrics.clustering import (
    CLUSTER_METHODS,
    KNN_METHODS,
    PAPER_RESOLUTIONS,
    ClusteringResult,
    KnnGraph,
    check_clustering_options,
    clustering_scores,
    knn_graph,
    umap_connectivities,
)
from topiceval.metrics.coherence import ZERO_COOCCURRENCE_RULES, npmi, topic_coherence
from topiceval.metrics.diversity import TD_METHODS, topic_diversity, topic_quality
from topiceval.metrics.purity import interpretation_purity
from topiceval.metrics.topgenes import top_gene_indices

__all__ = [
    "CLUSTER_METHODS",
    "ClusteringResult",
    "KNN_METHODS",
    "KnnGraph",
    "MetricResult",
    "PAPER_RESOLUTIONS",
    "TD_METHODS",
    "ZERO_COOCCURRENCE_RULES",
    "check_clustering_options",
    "clustering_scores",
    "interpretation_purity",
    "knn_graph",
    "npmi",
    "top_gene_indices",
    "topic_coherence",
    "topic_diversity",
    "topic_quality",
    "umap_connectivities",
]
