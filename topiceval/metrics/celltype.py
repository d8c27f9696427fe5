"""Cell types and topics: which type each topic is specific to, and whether rare types get a topic.

* :func:`celltype_specificity` (per topic): the mean topic proportion in each cell type, the type
  with the highest mean, and the specificity of the topic for that type: the AUROC of the topic's
  proportion separating that type's cells from all others.
* :func:`rare_type_coverage` (per cell type, the scE2TM authors' tutorial "Consistency between
  rare types and topics"): for every type, the topic with the highest AUROC for it and that
  AUROC; the score is the share of rare types (fewer than ``threshold`` of the labelled cells)
  that some topic separates with AUROC >= ``min_auroc`` (0.9).

AUROCs are computed from ranks: ``AUROC = (R_type - n_type (n_type + 1) / 2) / (n_type n_rest)``
with ``R_type`` the sum of the type's cells' ranks (average ranks for ties), the Mann-Whitney
identity that :func:`sklearn.metrics.roc_auc_score` equals. One ranking per topic serves every
type, so ``K`` sorts replace ``K x types`` calls of ``roc_auc_score``.
Unlabelled cells (None / NaN) are left out with a warning, as for IP.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from dataclasses import dataclass

from topiceval.errors import InputError
from topiceval.metrics._family import MetricFamily, Options, ScoringInput, option
from topiceval.metrics._result import MetricResult
from topiceval.protocol import check_labels, check_matrix

__all__ = ["DEFAULT_MIN_AUROC", "DEFAULT_RARE_THRESHOLD", "FAMILY", "CelltypeOptions", "auroc_table",
           "celltype_specificity", "rare_type_coverage"]

#: A type is rare below this share of the labelled cells (the tutorial's 5 %).
DEFAULT_RARE_THRESHOLD = 0.05
#: AUROC at or above which a topic "captures" a type.
DEFAULT_MIN_AUROC = 0.9


def _prepare(cell_topic: Any, labels: Any, what: str) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    matrix = check_matrix(cell_topic, "cell-topic matrix")
    values = check_labels(labels, matrix.shape[0])
    labelled = np.array([v is not None for v in values], dtype=bool)
    if not labelled.any():
        raise InputError("no cell has a label")
    if not labelled.all():
        warnings.warn(f"{what}: {int((~labelled).sum())} of {matrix.shape[0]} cells have no label and are "
                      "left out", stacklevel=3)
    codes, classes = pd.factorize(pd.Series(values[labelled]).astype(str), sort=True)
    if len(classes) < 2:
        raise InputError(f"{what} needs at least two cell types, got {len(classes)}")
    return matrix[labelled], codes.astype(np.int64), pd.Index(classes, name="cell_type")


def auroc_table(cell_topic: np.ndarray, codes: np.ndarray, n_types: int) -> np.ndarray:
    """AUROC of every topic (column) for every type (code) vs the rest: ``(n_topics, n_types)``."""
    from scipy.stats import rankdata

    ranks = rankdata(cell_topic, axis=0, method="average")  # (n_cells, K)
    n = codes.size
    n_in = np.bincount(codes, minlength=n_types).astype(float)
    n_out = n - n_in
    rank_sums = np.zeros((cell_topic.shape[1], n_types))
    for k in range(cell_topic.shape[1]):
        rank_sums[k] = np.bincount(codes, weights=ranks[:, k], minlength=n_types)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rank_sums - n_in * (n_in + 1) / 2) / (n_in * n_out)


def celltype_specificity(cell_topic: np.ndarray, labels: Sequence[Any] | np.ndarray) -> MetricResult:
    """Per topic: the cell type with the highest mean proportion and the AUROC for that type.

    Parameters
    ----------
    cell_topic
        ``(n_cells, n_topics)`` proportions (any weights: means are of the given values, AUROCs
        depend only on their order).
    labels
        ``n_cells`` cell-type labels; None / NaN marks an unlabelled cell.

    Returns
    -------
    MetricResult
        ``name="celltype"``; ``score`` = mean specificity AUROC over topics; ``per_topic`` =
        DataFrame with ``best_type``, ``mean_in_type`` (mean proportion there), ``mean_elsewhere``
        and ``specificity`` (AUROC of the topic's proportion, best type vs the rest).
    """
    matrix, codes, classes = _prepare(cell_topic, labels, "cell-type specificity")
    n_types = len(classes)
    sums = np.zeros((matrix.shape[1], n_types))
    for k in range(matrix.shape[1]):
        sums[k] = np.bincount(codes, weights=matrix[:, k], minlength=n_types)
    counts = np.bincount(codes, minlength=n_types).astype(float)
    means = sums / counts  # (K, types)
    best = means.argmax(axis=1)  # ties: the first type in sorted order
    topics = np.arange(matrix.shape[1])
    rest = (sums.sum(axis=1) - sums[topics, best]) / (codes.size - counts[best])
    auroc = auroc_table(matrix, codes, n_types)[topics, best]
    per_topic = pd.DataFrame({"best_type": classes[best].to_numpy(), "mean_in_type": means[topics, best],
                              "mean_elsewhere": rest, "specificity": auroc},
                             index=pd.RangeIndex(matrix.shape[1], name="topic"))
    info = {"n_cells": int(codes.size), "n_types": n_types,
            "rule": "best type = highest mean proportion; specificity = AUROC best type vs the rest"}
    return MetricResult.single("celltype", float(np.mean(auroc)), per_topic, info)


def rare_type_coverage(
    cell_topic: np.ndarray,
    labels: Sequence[Any] | np.ndarray,
    *,
    threshold: float = DEFAULT_RARE_THRESHOLD,
    min_auroc: float = DEFAULT_MIN_AUROC,
) -> tuple[MetricResult, pd.DataFrame]:
    """Share of rare cell types that some topic separates from the other cells.

    Parameters
    ----------
    cell_topic, labels
        As :func:`celltype_specificity`.
    threshold
        A type is rare when its share of the labelled cells is below this (default 0.05).
    min_auroc
        A type is covered when its best topic reaches this AUROC (default 0.9).

    Returns
    -------
    (MetricResult, pandas.DataFrame)
        ``rare_type_coverage`` (NaN with a warning when no type is rare) and the per-type table:
        ``cell_type, n_cells, share, rare, best_topic, auroc, covered``.
    """
    for name, value in (("threshold", threshold), ("min_auroc", min_auroc)):
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating) or not 0 < value <= 1:
            raise InputError(f"{name} must be a number in (0, 1], got {value!r}")
    matrix, codes, classes = _prepare(cell_topic, labels, "rare-type coverage")
    table_auroc = auroc_table(matrix, codes, len(classes))  # (K, types)
    counts = np.bincount(codes, minlength=len(classes))
    share = counts / codes.size
    best_topic = table_auroc.argmax(axis=0)
    best = table_auroc.max(axis=0)
    rare = share < threshold
    table = pd.DataFrame({"cell_type": classes.to_numpy(), "n_cells": counts, "share": share, "rare": rare,
                          "best_topic": best_topic, "auroc": best, "covered": best >= min_auroc})
    n_rare = int(rare.sum())
    if n_rare:
        score = float(table.loc[rare, "covered"].mean())
    else:
        score = float("nan")
        warnings.warn(f"rare_type_coverage: no cell type has fewer than {threshold:g} of the cells; the score "
                      "is NaN", stacklevel=2)
    info = {"threshold": float(threshold), "min_auroc": float(min_auroc), "n_types": len(classes),
            "n_rare": n_rare, "n_rare_covered": int(table.loc[rare, "covered"].sum()),
            "rare_types": [str(c) for c in classes[rare]]}
    return MetricResult.single("rare_type_coverage", score, None, info), table


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class CelltypeOptions(Options):
    """Options of the ``celltype`` family."""

    rare_type_threshold: float = option(DEFAULT_RARE_THRESHOLD, "celltype: a cell type is rare below this share "
                                        "of the labelled cells (the authors' tutorial: 0.05)", kind="fraction",
                                        hashed_at_default=False)


def _compute(inputs: ScoringInput, options: CelltypeOptions) -> MetricResult:
    specificity = celltype_specificity(inputs.cell_topic, inputs.labels)
    coverage, table = rare_type_coverage(inputs.cell_topic, inputs.labels, threshold=options.rare_type_threshold)
    # Per-topic columns carry the family's prefix (celltype_best_type, celltype_specificity, ...).
    per_topic = specificity.per_topic.add_prefix("celltype_")
    info = {**coverage.info, "mean_specificity": specificity.score, "specificity": specificity.info}
    return MetricResult(coverage.scores, per_topic, table, info)


#: Cell-type specificity (per topic) and rare-type coverage, as the registry lists them.
FAMILY = MetricFamily("celltype", ("rare_type_coverage",), ("labels", "cell_topic"), CelltypeOptions, _compute,
                      detail="celltype")
