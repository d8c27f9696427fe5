"""The value every metric function returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MetricResult"]


@dataclass(frozen=True)
class MetricResult:
    """A metric's aggregate score, its per-topic values and what it needs to say about them.

    Attributes
    ----------
    name
        The score's key in results (``"TC"``, ``"TD"``, ...).
    score
        The aggregate value (NaN only with a warning, never a sentinel number).
    per_topic
        Per-topic values, or ``None`` when the metric has none. A DataFrame when there are several
        columns (indexed by topic).
    info
        JSON-friendly facts about the computation (counts, missing genes, options used).
    """

    name: str
    score: float
    per_topic: np.ndarray | pd.DataFrame | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __float__(self) -> float:
        return float(self.score)
