"""Metric functions: arrays (and :class:`~topiceval.gene_sets.GeneSets`) in, numbers out.

Each returns a :class:`MetricResult` with the aggregate score, per-topic values and facts about
the computation. None of them reads files, prints or plots.
"""

from topiceval.metrics._enrichment import EnrichmentResult, enrichment_quality
from topiceval.metrics._result import MetricResult
from topiceval.metrics.coherence import ZERO_COOCCURRENCE_RULES, npmi, topic_coherence
from topiceval.metrics.diversity import TD_METHODS, topic_diversity, topic_quality
from topiceval.metrics.gsea import (
    GSEA_COLUMNS,
    GSEA_ENGINES,
    RANK_BY,
    gsea_rankings,
    prerank_gsea,
    topic_gsea,
)
from topiceval.metrics.ora import BH_SCOPES, ORA_BACKGROUNDS, ORA_COLUMNS, over_representation, topic_ora
from topiceval.metrics.purity import interpretation_purity
from topiceval.metrics.topgenes import top_gene_indices

__all__ = [
    "BH_SCOPES",
    "EnrichmentResult",
    "GSEA_COLUMNS",
    "GSEA_ENGINES",
    "MetricResult",
    "ORA_BACKGROUNDS",
    "ORA_COLUMNS",
    "RANK_BY",
    "TD_METHODS",
    "ZERO_COOCCURRENCE_RULES",
    "enrichment_quality",
    "gsea_rankings",
    "interpretation_purity",
    "npmi",
    "over_representation",
    "prerank_gsea",
    "top_gene_indices",
    "topic_coherence",
    "topic_diversity",
    "topic_gsea",
    "topic_ora",
    "topic_quality",
]
