"""Top genes of each topic: the one place where they are chosen.

Rule: a topic's top ``n`` genes are its ``n`` largest topic-gene values, in decreasing order; equal
values are ordered by the lower gene (column) index first. The rule makes results independent of
sorting algorithms and platforms.
"""

from __future__ import annotations

import numpy as np

__all__ = ["top_gene_indices"]


def top_gene_indices(topic_gene: np.ndarray, top_n: int) -> np.ndarray:
    """Indices of each topic's ``top_n`` largest genes.

    Parameters
    ----------
    topic_gene
        ``(n_topics, n_genes)`` finite weights.
    top_n
        Genes per topic, ``1 <= top_n <= n_genes``.

    Returns
    -------
    ``(n_topics, top_n)`` int64 array; row ``k`` lists topic ``k``'s genes from the largest weight
    down, ties broken by the lower gene index.

    Notes
    -----
    Cost is ``O(K V)`` (a partition per row) plus a sort of the candidates at or above each row's
    ``top_n``-th largest value, so a whole MSigDB-sized vocabulary is cheap.
    """
    weights = np.asarray(topic_gene, dtype=np.float64)
    n_topics, n_genes = weights.shape
    if not 1 <= top_n <= n_genes:
        raise ValueError(f"top_n must be in [1, {n_genes}], got {top_n}")
    # The top_n-th largest value of each row; every gene at or above it is a candidate, so ties at
    # the boundary are all seen before the tie rule picks among them.
    threshold = np.partition(weights, n_genes - top_n, axis=1)[:, n_genes - top_n]
    rows, cols = np.nonzero(weights >= threshold[:, None])
    # Sort candidates by row, then decreasing weight, then increasing column (lexsort: last key first).
    order = np.lexsort((cols, -weights[rows, cols], rows))
    rows, cols = rows[order], cols[order]
    starts = np.searchsorted(rows, np.arange(n_topics))
    take = starts[:, None] + np.arange(top_n)[None, :]
    return cols[take].astype(np.int64)
