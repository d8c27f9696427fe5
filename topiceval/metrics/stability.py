"""Topic stability: how well the topics of two runs (seeds) match one another.

The topics of run A and run B are matched one-to-one by the Hungarian algorithm
(:func:`scipy.optimize.linear_sum_assignment`, maximising the total similarity) on the cosine
similarity of their topic-gene rows (or, as an option, their cell-topic columns); the score is
the mean cosine of the matched pairs. This is the procedure of the scE2TM authors' tutorial
``tutorial/Topic_number_selection_with_stability.ipynb`` (topics of repeated runs matched by
cosine similarity), computed the same way for every model here.

With different numbers of topics, ``min(K_a, K_b)`` pairs are matched and the other topics of
the larger run stay unmatched (``info["n_matched"]``, ``info["unmatched"]``). A topic whose row
is all zero has cosine 0 with every topic (it matches nothing).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from topiceval.errors import InputError
from topiceval.metrics._result import MetricResult
from topiceval.protocol import check_matrix

__all__ = ["STABILITY_ON", "pairwise_stability", "topic_stability"]

#: What the topics are compared on: their gene loadings or their cell proportions.
STABILITY_ON = ("topic_gene", "cell_topic")


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def topic_stability(a: np.ndarray, b: np.ndarray, *, on: str = "topic_gene") -> MetricResult:
    """Mean cosine of the topics of two runs after one-to-one (Hungarian) matching.

    Parameters
    ----------
    a, b
        Two runs' matrices: topic-gene ``(K, n_genes)`` (``on="topic_gene"``, rows are topics,
        genes in the same order) or cell-topic ``(n_cells, K)`` (``on="cell_topic"``, columns
        are topics, cells in the same order).
    on
        ``"topic_gene"`` (default, the tutorial's) or ``"cell_topic"``.

    Returns
    -------
    MetricResult
        ``name="stability"``; ``score`` = mean matched cosine in ``[-1, 1]`` (``[0, 1]`` for
        non-negative matrices); ``per_topic`` = DataFrame indexed by run A's topics with
        ``matched_topic`` (run B's topic, -1 when unmatched) and ``cosine`` (NaN when unmatched).
    """
    from scipy.optimize import linear_sum_assignment

    if on not in STABILITY_ON:
        raise InputError(f"on must be one of {', '.join(STABILITY_ON)}, got {on!r}")
    what = "topic-gene matrix" if on == "topic_gene" else "cell-topic matrix"
    a = check_matrix(a, f"run A's {what}")
    b = check_matrix(b, f"run B's {what}")
    if on == "cell_topic":
        a, b = a.T, b.T
    if a.shape[1] != b.shape[1]:
        unit = "genes" if on == "topic_gene" else "cells"
        raise InputError(f"the two runs have {a.shape[1]} and {b.shape[1]} {unit}; they must be the same, "
                         "in the same order")
    similarity = _unit_rows(a) @ _unit_rows(b).T
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    k_a, k_b = similarity.shape
    matched = np.full(k_a, -1, dtype=int)
    cosine = np.full(k_a, np.nan)
    matched[rows] = cols
    cosine[rows] = similarity[rows, cols]
    per_topic = pd.DataFrame({"matched_topic": matched, "cosine": cosine},
                             index=pd.RangeIndex(k_a, name="topic"))
    info = {"on": on, "n_topics_a": int(k_a), "n_topics_b": int(k_b), "n_matched": int(len(rows)),
            "matching": "Hungarian (scipy.optimize.linear_sum_assignment) on cosine similarity"}
    if k_a != k_b:
        info["unmatched"] = (f"the runs have {k_a} and {k_b} topics: {len(rows)} matched, "
                             f"{abs(k_a - k_b)} of run {'A' if k_a > k_b else 'B'} unmatched")
    return MetricResult.single("stability", float(similarity[rows, cols].mean()), per_topic, info)


def pairwise_stability(runs: Sequence[np.ndarray], *, on: str = "topic_gene",
                       names: Sequence[object] | None = None) -> pd.DataFrame:
    """:func:`topic_stability` of every pair of runs (e.g. seeds).

    Returns
    -------
    pandas.DataFrame
        One row per pair: ``run_a``, ``run_b`` (``names``, default 0, 1, ...), ``stability``,
        ``n_matched``.
    """
    names = list(range(len(runs))) if names is None else list(names)
    if len(names) != len(runs):
        raise InputError(f"{len(names)} names for {len(runs)} runs")
    rows = []
    for (i, x), (j, y) in itertools.combinations(enumerate(runs), 2):
        result = topic_stability(x, y, on=on)
        rows.append({"run_a": names[i], "run_b": names[j], "stability": result.score,
                     "n_matched": result.info["n_matched"]})
    return pd.DataFrame(rows, columns=["run_a", "run_b", "stability", "n_matched"])
