"""topiceval: score single-cell embedded topic models on interpretability and clustering.

Quick start::

    import topiceval as te

    outputs = te.read_outputs("run/outputs.h5ad")        # a topiceval train run folder
    result = te.evaluate(outputs, gene_sets="hallmark", labels="cell_type")
    result = te.evaluate(adata, topic_gene_key="nmf", cell_topic_key="X_nmf", labels="cell_type",
                         gene_sets="hallmark")            # a model's results in your own AnnData
    result.scores      # TC, TD, TQ, IP
    result.per_topic   # top genes and per-topic values
    result.to_uns(adata); te.get_table(adata, "per_topic")

``import topiceval`` never imports torch or any model library; models live in
:mod:`topiceval.models` and :mod:`topiceval.adapters`, each an optional extra. Data reading,
preprocessing and the shipped dataset are in :mod:`topiceval.datasets` (``te.datasets``, imported
on first use).
"""

from importlib.metadata import PackageNotFoundError, version

from topiceval.errors import GeneSetFormatError, InputError, TopicEvalError
from topiceval.evaluate import METRICS, Evaluation, EvaluationOptions, evaluate, get_table
from topiceval.gene_sets import GeneSets, read_gmt
from topiceval.io import read_outputs, write_outputs_h5ad
from topiceval.metrics import (
    MetricResult,
    clustering_scores,
    interpretation_purity,
    top_gene_indices,
    topic_coherence,
    topic_diversity,
    topic_gsea,
    topic_ora,
    topic_quality,
)
from topiceval.protocol import TopicModel, TopicOutputs, TrainableTopicModel

try:
    __version__ = version("topiceval")
except PackageNotFoundError:  # pragma: no cover - source tree without installation
    __version__ = "0.0.0+unknown"


def __getattr__(name: str):
    # topiceval.datasets is imported on first use, so that ``import topiceval`` stays light.
    if name == "datasets":
        import importlib

        return importlib.import_module("topiceval.datasets")
    raise AttributeError(f"module 'topiceval' has no attribute {name!r}")


__all__ = [
    "METRICS",
    "Evaluation",
    "EvaluationOptions",
    "GeneSetFormatError",
    "GeneSets",
    "InputError",
    "MetricResult",
    "TopicEvalError",
    "TopicModel",
    "TopicOutputs",
    "TrainableTopicModel",
    "__version__",
    "clustering_scores",
    "evaluate",
    "get_table",
    "interpretation_purity",
    "read_gmt",
    "read_outputs",
    "top_gene_indices",
    "topic_coherence",
    "topic_diversity",
    "topic_gsea",
    "topic_ora",
    "topic_quality",
    "write_outputs_h5ad",
]
