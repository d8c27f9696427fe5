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
from typing import Any

import numpy as np
import pandas as pd

from topiceval.metrics._result import MetricResult

__all__ = ["EnrichmentResult", "enrichment_quality"]


#: ORA and GSEA return the one result type of every metric (kept under this name for imports).
EnrichmentResult = MetricResult


def enrichment_quality(
    topics: np.ndarray,
    terms: np.ndarray,
    n_topics: int,
    prefix: str,
    info: dict[str, Any] | None = None,
    table: pd.DataFrame | None = None,
) -> MetricResult:
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
        Facts added to the result's ``info``.
    table
        The long table of tested pairs (the result's ``table``).

    Returns
    -------
    MetricResult
        ``scores`` ``{prefix}_N``, ``_U``, ``_Q``; ``per_topic["{prefix}_N"]``: the number of
        enriched pathways of each topic.
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
    scores = pd.Series({f"{prefix}_N": float(n_unique), f"{prefix}_U": uniqueness, f"{prefix}_Q": quality},
                       dtype=float)
    frame = pd.DataFrame({f"{prefix}_N": per_topic}, index=pd.RangeIndex(n_topics, name="topic"))
    return MetricResult(scores, frame, table, facts)
