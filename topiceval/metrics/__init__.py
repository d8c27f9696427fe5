"""Metric functions: arrays (and :class:`~topiceval.gene_sets.GeneSets`) in, numbers out.

Each returns a :class:`MetricResult`: the aggregate scores, per-topic values, a detail table and
facts about the computation. None of them reads files, prints or plots. Each family declares its
options and inputs in its own module; :mod:`topiceval.metrics.registry` lists the families.
"""

from topiceval.metrics._enrichment import EnrichmentResult, enrichment_quality
from topiceval.metrics._family import MetricFamily, NJobsOption, Options, ScoringInput, SeedOption, TopNOption, option
from topiceval.metrics._result import MetricResult
from topiceval.metrics.clustering import (
    CLUSTER_METHODS,
    KNN_METHODS,
    PAPER_RESOLUTIONS,
    ClusteringOptions,
    ClusteringResult,
    KnnGraph,
    check_clustering_options,
    clustering_scores,
    knn_graph,
    umap_connectivities,
)
from topiceval.metrics.coherence import ZERO_COOCCURRENCE_RULES, TCOptions, npmi, topic_coherence
from topiceval.metrics.diversity import TD_METHODS, TDOptions, topic_diversity, topic_quality
from topiceval.metrics.gsea import (
    GSEA_COLUMNS,
    GSEA_ENGINES,
    RANK_BY,
    GSEAOptions,
    gsea_rankings,
    prerank_gsea,
    topic_gsea,
)
from topiceval.metrics.ora import BH_SCOPES, ORA_BACKGROUNDS, ORA_COLUMNS, ORAOptions, over_representation, topic_ora
from topiceval.metrics.purity import interpretation_purity
from topiceval.metrics.stability import pairwise_stability, topic_stability
from topiceval.metrics.celltype import celltype_specificity, rare_type_coverage
from topiceval.metrics.topgenes import top_gene_indices

__all__ = [
    "ClusteringOptions",
    "GSEAOptions",
    "MetricFamily",
    "NJobsOption",
    "ORAOptions",
    "Options",
    "ScoringInput",
    "SeedOption",
    "TCOptions",
    "TDOptions",
    "TopNOption",
    "option",
    "BH_SCOPES",
    "CLUSTER_METHODS",
    "ClusteringResult",
    "EnrichmentResult",
    "GSEA_COLUMNS",
    "GSEA_ENGINES",
    "KNN_METHODS",
    "KnnGraph",
    "MetricResult",
    "ORA_BACKGROUNDS",
    "ORA_COLUMNS",
    "PAPER_RESOLUTIONS",
    "RANK_BY",
    "TD_METHODS",
    "ZERO_COOCCURRENCE_RULES",
    "check_clustering_options",
    "clustering_scores",
    "enrichment_quality",
    "gsea_rankings",
    "interpretation_purity",
    "knn_graph",
    "npmi",
    "over_representation",
    "prerank_gsea",
    "top_gene_indices",
    "topic_coherence",
    "topic_diversity",
    "topic_gsea",
    "topic_ora",
    "topic_quality",
    "umap_connectivities",
    "celltype_specificity",
    "pairwise_stability",
    "rare_type_coverage",
    "topic_stability",
]
