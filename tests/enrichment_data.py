"""Seeded topic-gene matrices with planted pathway signal, for the ORA and GSEA tests.

Real gene names (the Yan et al. genes) and real collections; the topic-gene weights are synthetic
so that enrichment is present and its expected place is known.
"""

from __future__ import annotations

import numpy as np

from topiceval.gene_sets import GeneSets


def set_sizes_in(gene_sets: GeneSets, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column of each model gene (-1 if absent) and each set's number of model genes."""
    columns = gene_sets.gene_index(genes)
    present = np.zeros(gene_sets.n_genes, dtype=bool)
    present[columns[columns >= 0]] = True
    sizes = np.asarray(gene_sets.membership[:, present].sum(axis=1)).ravel()
    return columns, sizes


def planted_softmax(genes: np.ndarray, gene_sets: GeneSets, n_topics: int, n_planted: int,
                    boost: float, seed: int) -> tuple[np.ndarray, list[list[str]]]:
    """Softmax topics (like scE2TM's beta) whose logits are raised by ``boost`` on planted sets.

    Returns ``(n_topics, n_genes)`` probabilities (no ties) and each topic's planted set names.
    """
    rng = np.random.default_rng(seed)
    columns, sizes = set_sizes_in(gene_sets, genes)
    candidates = np.flatnonzero((sizes >= 15) & (sizes <= 500))
    logits = rng.normal(size=(n_topics, genes.size))
    planted = []
    for k in range(n_topics):
        chosen = rng.choice(candidates, n_planted, replace=False)
        for s in chosen:
            logits[k, np.isin(columns, gene_sets.membership[s].indices)] += boost
        planted.append([gene_sets.names[s] for s in chosen])
    beta = np.exp(logits - logits.max(axis=1, keepdims=True))
    return beta / beta.sum(axis=1, keepdims=True), planted


def planted_top_genes(genes: np.ndarray, gene_sets: GeneSets, n_topics: int, seed: int,
                      n_from_set: int = 8, top_n: int = 10, n_distinct: int | None = None) -> np.ndarray:
    """Topics whose top ``top_n`` genes hold ``n_from_set`` members of one set (ORA signal).

    Topic ``k`` uses planted set ``k % n_distinct`` (default: one set per topic), so that with
    fewer distinct sets than topics some pathways are enriched in several topics.
    """
    rng = np.random.default_rng(seed)
    columns, sizes = set_sizes_in(gene_sets, genes)
    candidates = np.flatnonzero((sizes >= 20) & (sizes <= 300))
    beta = rng.uniform(0.0, 1.0, size=(n_topics, genes.size))
    chosen_sets = rng.choice(candidates, n_distinct or n_topics, replace=False)
    for k in range(n_topics):
        s = chosen_sets[k % chosen_sets.size]
        members = np.flatnonzero(np.isin(columns, gene_sets.membership[s].indices))
        others = np.setdiff1d(np.arange(genes.size), members)
        chosen = np.concatenate([rng.choice(members, n_from_set, replace=False),
                                 rng.choice(others, top_n - n_from_set, replace=False)])
        beta[k, chosen] = 10.0 + rng.permutation(top_n)
    return beta / beta.sum(axis=1, keepdims=True)
