"""The one value every metric function returns: :class:`MetricResult`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MetricResult"]


@dataclass(frozen=True, eq=False)
class MetricResult:
    """Aggregate scores, per-topic values, a detail table and facts of one metric family.

    Every metric function (:func:`~topiceval.metrics.topic_coherence`, ``topic_diversity``,
    ``topic_quality``, ``interpretation_purity``, ``topic_ora``, ``topic_gsea``,
    ``clustering_scores``) returns this type.

    Attributes
    ----------
    scores
        Aggregate value of each score key, in order (``TC``; ``ORA_N, ORA_U, ORA_Q``; ``ARI, NMI,
        ...``). NaN only with a warning, never a sentinel number.
    per_topic
        One row per topic (index ``topic``), or ``None`` when the metric has no per-topic values
        (TQ, clustering). A column named like a score key holds that score per topic (``TC``,
        ``ORA_N``); other columns are facts (``exclusive_share``, ``n_cells``, ``purity``).
    table
        The long detail table, or ``None``: ORA and GSEA one row per tested (topic, set) pair,
        clustering one row per resolution of the sweep.
    info
        JSON-friendly facts about the computation (options used, counts, missing genes).
    key_info
        Facts that belong to one score key only (the resolution ``ARI`` was read at), by key.
    arrays
        Large array outputs, by name (clustering: ``memberships``, ``(n_cells, n_resolutions)``).
    """

    scores: pd.Series
    per_topic: pd.DataFrame | None = None
    table: pd.DataFrame | None = None
    info: dict[str, Any] = field(default_factory=dict)
    key_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.scores, pd.Series):
            object.__setattr__(self, "scores", pd.Series(dict(self.scores), dtype=float))
        if len(self.scores) == 0:
            raise ValueError("a MetricResult needs at least one score")

    # ------------------------------------------------------------------ one-score convenience
    @property
    def name(self) -> str:
        """The first (for most families the only) score key."""
        return str(self.scores.index[0])

    @property
    def score(self) -> float:
        """The value of the first score key."""
        return float(self.scores.iloc[0])

    def __float__(self) -> float:
        return self.score

    def __getitem__(self, key: str) -> float:
        return float(self.scores[key])

    def info_for(self, key: str) -> dict[str, Any]:
        """Facts about score ``key``: its own (:attr:`key_info`) or the family's (:attr:`info`)."""
        return dict(self.key_info.get(key, self.info))

    @property
    def results(self) -> dict[str, MetricResult]:
        """One single-score :class:`MetricResult` per key, with that key's facts."""
        return {str(k): MetricResult(self.scores[[k]], None, None, self.info_for(str(k))) for k in self.scores.index}

    # ------------------------------------------------------------------ clustering names
    @property
    def sweep(self) -> pd.DataFrame | None:
        """The clustering sweep (the detail :attr:`table` of ``clustering_scores``)."""
        return self.table

    @property
    def memberships(self) -> np.ndarray | None:
        """Cluster ids ``(n_cells, n_resolutions)`` of ``clustering_scores``."""
        return self.arrays.get("memberships")

    def __repr__(self) -> str:
        scores = ", ".join(f"{k}={v:.4g}" for k, v in self.scores.items())
        return f"MetricResult({scores})"

    @classmethod
    def single(cls, key: str, value: float, per_topic: Mapping[str, Any] | pd.DataFrame | None = None,
               info: dict[str, Any] | None = None, n_topics: int | None = None) -> MetricResult:
        """A one-score result; ``per_topic`` columns (arrays of length ``n_topics``) become the table."""
        table = None
        if per_topic is not None:
            table = per_topic if isinstance(per_topic, pd.DataFrame) else pd.DataFrame(
                dict(per_topic), index=pd.RangeIndex(n_topics, name="topic"))
        return cls(pd.Series({key: float(value)}, dtype=float), table, None, dict(info or {}))
