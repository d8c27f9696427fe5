"""Topic diversity (TD) and topic quality (TQ).

* ``method="unique"`` (paper Eq. 3, default): the number of distinct genes among all topics' top
  ``h`` lists divided by ``K h``.
* ``method="exclusive"`` (the authors' released code, TopMost, OCTIS): the number of genes that
  appear in exactly one topic's list divided by ``K h``. The published TD values were computed this
  way; use it to reproduce them.

Both lie in ``(0, 1]`` for ``unique`` and ``[0, 1]`` for ``exclusive``. Per topic, both report
the fraction of the topic's top genes found in no other topic's list.

TQ (Eq. 4) is TC x TD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from topiceval.errors import InputError
from topiceval.metrics._family import MetricFamily, ScoringInput, TopNOption, option
from topiceval.metrics._result import MetricResult
from topiceval.metrics.topgenes import top_gene_indices
from topiceval.protocol import check_matrix, check_top_n

__all__ = ["TD_FAMILY", "TQ_FAMILY", "TDOptions", "topic_diversity", "topic_quality", "TD_METHODS"]

TD_METHODS = ("unique", "exclusive")


@dataclass(frozen=True)
class TDOptions(TopNOption):
    """Options of TD (the module docstring explains them)."""

    td_method: str = option("unique", "TD as paper Eq. 3 (unique) or as the reference code and the "
                            "published values (exclusive)", kind="choice", choices=TD_METHODS)


def topic_diversity(
    topic_gene: np.ndarray,
    top_n: int = 10,
    method: Literal["unique", "exclusive"] = "unique",
    *,
    top_genes: np.ndarray | None = None,
) -> MetricResult:
    """Topic diversity of the top ``top_n`` genes of each topic.

    Parameters
    ----------
    topic_gene
        ``(n_topics, n_genes)`` weights.
    top_n
        Genes per topic (``h``), default 10.
    method
        ``"unique"`` (paper Eq. 3) or ``"exclusive"`` (reference code); see the module docstring.
    top_genes
        Precomputed top-gene indices ``(n_topics, top_n)``.

    Returns
    -------
    MetricResult
        ``score`` = TD; ``per_topic`` = DataFrame with ``exclusive_share``, the fraction of each
        topic's top genes found in no other topic's list.
    """
    if method not in TD_METHODS:
        raise InputError(f"unknown TD method {method!r}; use one of {', '.join(TD_METHODS)}")
    topic_gene = check_matrix(topic_gene, "topic-gene matrix")
    n_topics, n_genes = topic_gene.shape
    top_n = check_top_n(top_n, n_genes)
    top = top_gene_indices(topic_gene, top_n) if top_genes is None else np.asarray(top_genes)
    # Each gene occurs at most once per topic's list, so its count is the number of topics listing it.
    counts = np.bincount(top.ravel(), minlength=n_genes)
    total = top.size
    if method == "unique":
        score = np.count_nonzero(counts) / total
    else:
        score = np.count_nonzero(counts == 1) / total
    per_topic = pd.DataFrame(
        {"exclusive_share": (counts[top] == 1).mean(axis=1)},
        index=pd.RangeIndex(n_topics, name="topic"),
    )
    info = {"top_n": top_n, "method": method, "n_distinct": int(np.count_nonzero(counts)),
            "n_exclusive": int(np.count_nonzero(counts == 1)), "n_total": int(total)}
    return MetricResult.single("TD", float(score), per_topic, info)


def topic_quality(tc: MetricResult | float, td: MetricResult | float) -> MetricResult:
    """Topic quality, TQ = TC x TD (paper Eq. 4)."""
    value = float(tc) * float(td)
    return MetricResult.single("TQ", value, None, {"TC": float(tc), "TD": float(td)})


def _td(inputs: ScoringInput, options: TDOptions) -> MetricResult:
    return topic_diversity(inputs.topic_gene, options.top_n, options.td_method,
                           top_genes=inputs.top_genes(options.top_n))


def _tq(inputs: ScoringInput, options: None) -> MetricResult:
    return topic_quality(inputs.results["TC"], inputs.results["TD"])


#: TD and TQ as the registry lists them.
TD_FAMILY = MetricFamily("td", ("TD",), ("topic_gene",), TDOptions, _td, default=True, main=("TD",))
TQ_FAMILY = MetricFamily("tq", ("TQ",), ("topic_gene", "gene_sets"), None, _tq, after=("tc", "td"),
                         default=True, main=("TQ",), rank_by=("TQ",))
