"""What ORA and GSEA share: the N / U / Q scores of enriched (topic, pathway) pairs and the result type.

Paper Eq. 6-7: with ``P`` the multiset of enriched pathways over all topics (one entry per
significant (topic, pathway) pair),

* ``N = |Unique(P)|`` (distinct pathways enriched in any topic),
* ``U = |Unique(P)| / |P|`` (1 when no pathway is enriched in two topics),
* ``Q = N x U``.

With no enriched pair at all, ``U`` is 0/0: it is NaN with a warning, and ``N`` and ``Q`` are 0
(no pathway, no quality), never a sentinel number.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from topiceval.metrics._result import MetricResult

__all__ = ["EnrichmentResult", "enrichment_quality"]


@dataclass(frozen=True)
class EnrichmentResult:
    """Scores and long table of an enrichment analysis of every topic.

    Attributes
    ----------
    scores
        ``[N, U, Q]`` as :class:`MetricResult` (``ORA_N``, ``ORA_U``, ``ORA_Q`` or the GSEA keys).
        ``N.per_topic`` holds each topic's number of enriched pathways.
    table
        One row per tested (topic, pathway) pair, with a boolean ``significant`` column.
    info
        JSON-friendly facts (options, counts of tested and enriched pairs, topics with no overlap).
    """

    scores: list[MetricResult]
    table: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> float:
        for result in self.scores:
            if result.name == key:
                return float(result.score)
        raise KeyError(key)


def enrichment_quality(
    topics: np.ndarray,
    terms: np.ndarray,
    n_topics: int,
    prefix: str,
    info: dict[str, Any] | None = None,
) -> list[MetricResult]:
    """``N``, ``U`` and ``Q`` (paper Eq. 6-7) of the significant (topic, term) pairs.

    Parameters
    ----------
    topics, terms
        The significant pairs: topic index and pathway name of each (same length; a pair given
        twice counts once).
    n_topics
        Number of topics (for the per-topic counts).
    prefix
        ``"ORA"`` or ``"GSEA"``: the scores are named ``{prefix}_N``, ``_U``, ``_Q``.
    info
        Facts added to every result's ``info``.

    Returns
    -------
    ``[N, U, Q]``; ``N.per_topic`` is the number of enriched pathways of each topic.
    """
    pairs = pd.DataFrame({"topic": np.asarray(topics, dtype=np.int64), "term": np.asarray(terms, dtype=object)})
    pairs = pairs.drop_duplicates()
    n_pairs = len(pairs)
    n_unique = int(pairs["term"].nunique())
    per_topic = np.bincount(pairs["topic"].to_numpy(), minlength=n_topics).astype(np.float64)
    facts = dict(info or {})
    facts.update({"n_enriched_pairs": n_pairs, "n_unique_terms": n_unique})
    if n_pairs == 0:
        warnings.warn(
            f"{prefix}: no (topic, pathway) pair is significant, so {prefix}_U is undefined (NaN) "
            f"and {prefix}_N = {prefix}_Q = 0",
            stacklevel=2,
        )
        uniqueness = float("nan")
        quality = 0.0
    else:
        uniqueness = n_unique / n_pairs
        quality = n_unique * uniqueness
    return [
        MetricResult(f"{prefix}_N", float(n_unique), per_topic, dict(facts)),
        MetricResult(f"{prefix}_U", uniqueness, None, dict(facts)),
        MetricResult(f"{prefix}_Q", quality, None, dict(facts)),
    ]
