"""Interpretation purity (IP), paper Eq. 5.

Each cell is assigned to its argmax topic (ties: the lower topic index); IP is the purity of those
assignments against the cell-type labels:
``IP = 1/n * sum_k max_j |cells of topic k with label j|``. Cells without a label (None / NaN) are
left out with a warning. Argmax is the same on the encoder mean and on its softmax, so a
non-simplex cell representation gives the same IP as its proportions.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from topiceval.errors import InputError
from topiceval.metrics._family import BootstrapOption, MetricFamily, ScoringInput
from topiceval.metrics._result import MetricResult
from topiceval.protocol import check_labels, check_matrix

__all__ = ["FAMILY", "interpretation_purity"]


def interpretation_purity(cell_topic: np.ndarray, labels: Sequence[Any] | np.ndarray) -> MetricResult:
    """Purity of argmax-topic assignments against cell labels.

    Parameters
    ----------
    cell_topic
        ``(n_cells, n_topics)`` weights (proportions or any scores whose argmax picks the topic).
    labels
        ``n_cells`` cell-type labels; None / NaN marks an unlabelled cell.

    Returns
    -------
    MetricResult
        ``score`` = IP in ``[0, 1]``; ``per_topic`` = DataFrame with each topic's cell count,
        majority label and purity (NaN for topics no cell chose).
    """
    cell_topic = check_matrix(cell_topic, "cell-topic matrix")
    n_cells, n_topics = cell_topic.shape
    values = check_labels(labels, n_cells)
    labelled = np.array([v is not None for v in values], dtype=bool)
    if not labelled.any():
        raise InputError("no cell has a label")
    if not labelled.all():
        warnings.warn(
            f"IP: {int((~labelled).sum())} of {n_cells} cells have no label and are left out",
            stacklevel=2,
        )
    assigned = cell_topic.argmax(axis=1)[labelled]  # argmax first: no copy of the labelled rows
    codes, classes = pd.factorize(pd.Series(values[labelled]).astype(str), sort=True)
    n_classes = len(classes)
    table = np.bincount(assigned * n_classes + codes, minlength=n_topics * n_classes).reshape(
        n_topics, n_classes
    )  # contingency table, topics x labels
    n = int(labelled.sum())
    majority = table.max(axis=1)
    size = table.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        purity = np.where(size > 0, majority / np.maximum(size, 1), np.nan)
    per_topic = pd.DataFrame(
        {
            "n_cells": size,
            "majority_label": [classes[j] if s else None for j, s in zip(table.argmax(axis=1), size, strict=True)],
            "purity": purity,
        },
        index=pd.RangeIndex(n_topics, name="topic"),
    )
    info = {"n_cells": n, "n_unlabelled": int(n_cells - n), "n_labels": len(classes),
            "n_topics_used": int((size > 0).sum())}
    return MetricResult.single("IP", float(majority.sum() / n), per_topic, info)


def _compute(inputs: ScoringInput, options: BootstrapOption) -> MetricResult:
    result = interpretation_purity(inputs.cell_topic, inputs.labels)
    if options.n_boot:
        from topiceval.stats import partition_purity

        labelled = np.array([v is not None for v in inputs.labels], dtype=bool)
        codes = pd.factorize(pd.Series(inputs.labels[labelled]).astype(str), sort=True)[0]
        result.info["ci"] = options.interval(partition_purity, inputs.cell_topic[labelled].argmax(axis=1), codes)
    return result


#: IP as the registry lists it.
FAMILY = MetricFamily("ip", ("IP",), ("labels", "cell_topic"), BootstrapOption, _compute, default=True,
                      main=("IP",), rank_by=("IP",))
