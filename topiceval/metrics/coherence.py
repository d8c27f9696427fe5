"""Topic coherence (TC): mean NPMI of each topic's top genes, gene sets as documents.

Paper Eq. 1-2: for topic ``k`` with top genes ``g_1..g_h``,
``TC_k = 2 / (h (h - 1)) * sum_{i<j} NPMI(g_i, g_j)`` and TC is the mean over topics, with
``NPMI(a, b) = log(P(a, b) / (P(a) P(b))) / -log P(a, b)``, where ``P(a)`` is the fraction of
gene sets containing ``a`` and ``P(a, b)`` the fraction containing both.

Conventions, each matching the authors' reference code unless named otherwise:

* a gene found in no set scores 0 for all its pairs, which still count in the ``h (h - 1) / 2``
  denominator (a warning names such genes);
* a pair of known genes that never co-occurs scores ``zero_cooccurrence``: ``0`` (reference) or
  ``-1`` (the NPMI limit as ``P(a, b) -> 0``);
* a pair present in every set (``P(a, b) = 1``, where the formula is 0/0) scores 1, its limit;
* symbols are matched whole with the gene sets' case rule (the reference's ``CountVectorizer``
  split ``HLA-C`` into ``hla``; here it stays ``HLA-C``).

Only the co-occurrence among the at most ``K h`` distinct top genes is computed, by one sparse
product, so a whole-MSigDB corpus (35k sets x 45k genes) costs tens of MB, not the dense
sets x genes matrix of the reference.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from topiceval._utils import preview
from topiceval.errors import InputError
from topiceval.gene_sets import GeneSets
from topiceval.metrics._family import MetricFamily, ScoringInput, TopNOption, option
from topiceval.metrics._result import MetricResult
from topiceval.metrics.topgenes import top_gene_indices
from topiceval.protocol import check_gene_names, check_matrix, check_top_n

__all__ = ["FAMILY", "TCOptions", "topic_coherence", "npmi", "ZERO_COOCCURRENCE_RULES"]

#: Allowed scores for a pair of known genes that never co-occur.
ZERO_COOCCURRENCE_RULES = (0.0, -1.0)


def _zero_rule(text: str) -> float:
    return float(text)


@dataclass(frozen=True)
class TCOptions(TopNOption):
    """Options of TC (the module docstring explains them)."""

    tc_zero_cooccurrence: float = option(
        0.0, "TC of a pair of known genes that never co-occurs: 0 (reference) or -1 (NPMI limit)",
        kind="choice", choices=ZERO_COOCCURRENCE_RULES, parse=_zero_rule)

    def _check(self) -> None:
        if isinstance(self.tc_zero_cooccurrence, bool) or self.tc_zero_cooccurrence not in ZERO_COOCCURRENCE_RULES:
            raise InputError(f"tc_zero_cooccurrence must be 0 (reference) or -1 (NPMI limit), "
                             f"got {self.tc_zero_cooccurrence!r}")
        object.__setattr__(self, "tc_zero_cooccurrence", float(self.tc_zero_cooccurrence))


def npmi(
    df_a: np.ndarray,
    df_b: np.ndarray,
    co_freq: np.ndarray,
    n_docs: int,
    zero_cooccurrence: float = 0.0,
) -> np.ndarray:
    """NPMI of gene pairs from document counts, elementwise (arrays broadcast).

    Parameters
    ----------
    df_a, df_b
        Number of documents (gene sets) holding each gene of the pair.
    co_freq
        Number of documents holding both.
    n_docs
        Number of documents.
    zero_cooccurrence
        Value of pairs with ``co_freq == 0`` whose genes both occur somewhere.

    Returns
    -------
    NPMI in ``[-1, 1]``: 0 where a gene occurs in no document, 1 where both occur in every one.
    """
    df_a = np.asarray(df_a, dtype=np.float64)
    df_b = np.asarray(df_b, dtype=np.float64)
    co = np.asarray(co_freq, dtype=np.float64)
    known = (df_a > 0) & (df_b > 0)
    everywhere = known & (co >= n_docs)
    regular = known & (co > 0) & ~everywhere
    out = np.zeros(np.broadcast(df_a, df_b, co).shape, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p_ab = np.log(co / n_docs)
        value = (log_p_ab - np.log(df_a / n_docs) - np.log(df_b / n_docs)) / -log_p_ab
    out[regular] = value[regular]
    out[everywhere] = 1.0
    out[known & (co == 0)] = zero_cooccurrence
    # Rounding can push |NPMI| a hair past 1 for perfectly (anti-)associated pairs.
    return np.clip(out, -1.0, 1.0)


def topic_coherence(
    topic_gene: np.ndarray,
    gene_names: np.ndarray | list[str],
    gene_sets: GeneSets,
    top_n: int = 10,
    zero_cooccurrence: float = 0.0,
    *,
    top_genes: np.ndarray | None = None,
) -> MetricResult:
    """Topic coherence: per-topic mean NPMI of the top genes over gene-set co-occurrence.

    Parameters
    ----------
    topic_gene
        ``(n_topics, n_genes)`` weights.
    gene_names
        ``n_genes`` symbols.
    gene_sets
        The corpus; each set is one document (the paper uses the whole MSigDB).
    top_n
        Genes per topic (``h`` in Eq. 1), default 10.
    zero_cooccurrence
        Score of a never-co-occurring pair of known genes: ``0.0`` (reference) or ``-1.0``.
    top_genes
        Precomputed :func:`~topiceval.metrics.topgenes.top_gene_indices` (saves a pass).

    Returns
    -------
    MetricResult
        ``scores["TC"]``; ``per_topic["TC"]`` = each topic's mean NPMI; ``info`` lists genes found
        in no set and the number of pairs scored by each rule.
    """
    topic_gene = check_matrix(topic_gene, "topic-gene matrix")
    n_topics, n_genes = topic_gene.shape
    names = check_gene_names(gene_names, n_genes)
    top_n = check_top_n(top_n, n_genes)
    zero_cooccurrence = TCOptions(top_n=top_n, tc_zero_cooccurrence=zero_cooccurrence).tc_zero_cooccurrence
    top = top_gene_indices(topic_gene, top_n) if top_genes is None else np.asarray(top_genes)
    if top.shape != (n_topics, top_n):
        raise InputError(f"top_genes has shape {top.shape}, expected {(n_topics, top_n)}")

    # Columns in the membership matrix of the distinct top genes only.
    used, local = np.unique(top, return_inverse=True)
    local = local.reshape(top.shape)
    columns = gene_sets.gene_index(names[used])
    present = columns >= 0
    sub = gene_sets.membership[:, columns[present]].astype(np.int32)
    doc_freq = np.zeros(len(used), dtype=np.int64)
    doc_freq[present] = np.asarray(sub.sum(axis=0)).ravel()
    co = np.zeros((len(used), len(used)), dtype=np.int64)
    co[np.ix_(present, present)] = (sub.T @ sub).toarray()

    # All pairs i < j of each topic's top genes, gathered at once: (K, n_pairs).
    first, second = np.triu_indices(top_n, k=1)
    a, b = local[:, first], local[:, second]
    pair_npmi = npmi(doc_freq[a], doc_freq[b], co[a, b], gene_sets.n_sets, zero_cooccurrence)
    per_topic = pair_npmi.mean(axis=1)

    missing_local = np.flatnonzero(doc_freq == 0)
    missing = sorted(names[used[missing_local]].tolist())
    if missing:
        warnings.warn(
            f"TC: {len(missing)} top gene(s) appear in no gene set and score 0 for their pairs: "
            f"{preview(missing)}",
            stacklevel=2,
        )
    known = (doc_freq[a] > 0) & (doc_freq[b] > 0)
    info = {
        "top_n": top_n,
        "zero_cooccurrence": float(zero_cooccurrence),
        "n_documents": gene_sets.n_sets,
        "n_pairs": int(pair_npmi.size),
        "n_pairs_unknown_gene": int((~known).sum()),
        "n_pairs_never_cooccur": int((known & (co[a, b] == 0)).sum()),
        "top_genes_not_in_gene_sets": missing,
    }
    return MetricResult.single("TC", float(per_topic.mean()), {"TC": per_topic}, info, n_topics)


def _compute(inputs: ScoringInput, options: TCOptions) -> MetricResult:
    return topic_coherence(inputs.topic_gene, inputs.gene_names, inputs.gene_sets, options.top_n,
                           options.tc_zero_cooccurrence, top_genes=inputs.top_genes(options.top_n))


#: TC as the registry lists it.
FAMILY = MetricFamily("tc", ("TC",), ("topic_gene", "gene_sets"), TCOptions, _compute, default=True,
                      main=("TC",))
