"""Over-representation analysis (ORA) of every topic's top genes: ORA_N, ORA_U, ORA_Q.

For topic ``t`` with query ``Q_t`` (its ``top_n`` genes inside the background) and set ``s`` with
``m_s`` genes inside the background of ``B`` genes, the overlap ``x = |Q_t & s|`` is tested with
the upper hypergeometric tail ``P(X >= x) = hypergeom.sf(x - 1, B, m_s, |Q_t|)``, exactly as
``gseapy.enrich`` does. All topics are tested against all sets at once: the overlaps are one
sparse product of top-gene indicators and the membership matrix, and the tail is evaluated once
per distinct ``(x, m, |Q|)``.

Options, each recorded by :func:`~topiceval.evaluate.evaluate`:

* ``background="gene_sets"`` (reference, ``gseapy.enrich``'s default): the universe is every gene
  of the collection; top genes found in no set are left out of the query, and ``m_s`` is the full
  set size. ``"vocabulary"``: the universe is the model's genes (what it could have chosen), sets
  are cut to the model's genes, and every top gene is in the query. Sound statistics prefer the
  vocabulary; published numbers used the gene sets.
* ``bh_scope="hit_sets"`` (reference): Benjamini-Hochberg per topic over the sets that share at
  least one gene with the topic's query (``gseapy.enrich`` only reports those). ``"all_sets"``:
  per topic over every tested set (a set without overlap has p = 1); stricter.
* ``min_size`` / ``max_size``: only sets with ``min_size <= m_s <= max_size`` (sizes inside the
  background) are tested; ``None`` leaves a bound open. The background itself does not shrink.
* ``alpha``: a pair is enriched when its adjusted p-value is at most ``alpha`` (paper: 0.01).

A topic whose top genes overlap no set is counted in ``info`` (and warned about), not an error.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.stats import hypergeom
from statsmodels.stats.multitest import multipletests

from topiceval._utils import preview
from topiceval.errors import InputError
from topiceval.gene_sets import GeneSets, normalize_symbols
from topiceval.metrics._enrichment import enrichment_quality
from topiceval.metrics._result import MetricResult
from topiceval.metrics._family import MetricFamily, ScoringInput, TopNOption, option
from topiceval.metrics.topgenes import top_gene_indices
from topiceval.protocol import check_gene_names, check_matrix, check_top_n

__all__ = ["FAMILY", "ORAOptions", "ORA_BACKGROUNDS", "BH_SCOPES", "ORA_COLUMNS", "over_representation",
           "topic_ora"]

#: Universes for the hypergeometric test (see the module docstring).
ORA_BACKGROUNDS = ("gene_sets", "vocabulary")
#: Which sets a topic's Benjamini-Hochberg correction runs over.
BH_SCOPES = ("hit_sets", "all_sets")
#: Columns of the ORA long table, in order.
ORA_COLUMNS = (
    "topic", "term", "overlap", "set_size", "n_query", "n_background", "pval", "padj", "significant",
    "genes",
)


@dataclass(frozen=True)
class ORAOptions(TopNOption):
    """Options of ORA (the module docstring explains them)."""

    ora_background: str = option(
        "gene_sets", "ORA universe: every gene of the gene sets (reference, gseapy.enrich) or the "
        "model's genes (vocabulary)", kind="choice", choices=ORA_BACKGROUNDS)
    ora_bh_scope: str = option(
        "hit_sets", "ORA Benjamini-Hochberg per topic over the sets sharing a gene with it (reference) "
        "or over all tested sets", kind="choice", choices=BH_SCOPES)
    ora_alpha: float = option(0.01, "ORA adjusted p-value at or below which a pair is enriched (paper: 0.01)",
                              kind="fraction", parse=float, aliases=("--alpha",))
    ora_min_size: int | None = option(None, "ORA tests only sets with at least this many background "
                                      "genes (none: no bound)", kind="int_or_none", low=1)
    ora_max_size: int | None = option(None, "ORA tests only sets with at most this many background "
                                      "genes (none: no bound)", kind="int_or_none", low=1)

    def _check(self) -> None:
        low, high = self.ora_min_size, self.ora_max_size
        if isinstance(low, int) and isinstance(high, int) and low > high:
            raise InputError(f"ora_min_size ({low}) is larger than ora_max_size ({high})")


def over_representation(
    topic_gene: np.ndarray,
    gene_names: np.ndarray | list[str],
    gene_sets: GeneSets,
    top_n: int = 10,
    *,
    background: Literal["gene_sets", "vocabulary"] = "gene_sets",
    bh_scope: Literal["hit_sets", "all_sets"] = "hit_sets",
    alpha: float = 0.01,
    min_size: int | None = None,
    max_size: int | None = None,
    top_genes: np.ndarray | None = None,
) -> pd.DataFrame:
    """Hypergeometric test of every topic's top genes against every set.

    Parameters
    ----------
    topic_gene
        ``(n_topics, n_genes)`` finite weights; each topic's ``top_n`` largest are its query.
    gene_names
        ``n_genes`` symbols (matched with the collection's case rule).
    gene_sets
        The collection (paper: MSigDB C2).
    top_n
        Query genes per topic (paper: 10).
    background, bh_scope, min_size, max_size
        See the module docstring.
    alpha
        Adjusted p-value at or below which a pair is ``significant``.
    top_genes
        Precomputed :func:`~topiceval.metrics.top_gene_indices` ``(n_topics, top_n)``.

    Returns
    -------
    DataFrame with :data:`ORA_COLUMNS`, one row per (topic, set) pair with at least one shared gene
    (the pairs ``gseapy.enrich`` reports), sorted by topic then collection order: ``overlap`` (x),
    ``set_size`` (m inside the background), ``n_query`` (query genes inside the background),
    ``n_background``, ``pval``, ``padj`` (BH within the topic), ``significant`` and ``genes`` (the
    shared genes, ``;``-separated, in the topic's rank order). Dtypes are fixed (int64, float64,
    bool, str) even when the table is empty.
    """
    return _ora(topic_gene, gene_names, gene_sets, top_n, background, bh_scope, alpha, min_size,
                max_size, top_genes)[0]


def topic_ora(
    topic_gene: np.ndarray,
    gene_names: np.ndarray | list[str],
    gene_sets: GeneSets,
    top_n: int = 10,
    *,
    background: Literal["gene_sets", "vocabulary"] = "gene_sets",
    bh_scope: Literal["hit_sets", "all_sets"] = "hit_sets",
    alpha: float = 0.01,
    min_size: int | None = None,
    max_size: int | None = None,
    top_genes: np.ndarray | None = None,
) -> MetricResult:
    """ORA_N, ORA_U and ORA_Q (paper Eq. 6) with the long table of tested pairs.

    Parameters are those of :func:`over_representation`.

    Returns
    -------
    MetricResult
        ``scores`` ``ORA_N``, ``ORA_U``, ``ORA_Q``; ``per_topic["ORA_N"]``: enriched pathways per
        topic; ``table``: :func:`over_representation`'s table; ``info``: options and counts.
    """
    table, info = _ora(topic_gene, gene_names, gene_sets, top_n, background, bh_scope, alpha,
                       min_size, max_size, top_genes)
    significant = table[table["significant"]]
    n_topics = np.asarray(topic_gene).shape[0]
    return enrichment_quality(significant["topic"].to_numpy(), significant["term"].to_numpy(),
                              n_topics, "ORA", info, table)


def _ora(topic_gene, gene_names, gene_sets, top_n, background, bh_scope, alpha, min_size, max_size,
         top_genes):  # noqa: ANN001, ANN202 - private; the public functions document the types
    topic_gene = check_matrix(topic_gene, "topic-gene matrix")
    n_topics, n_genes = topic_gene.shape
    names = check_gene_names(gene_names, n_genes)
    top_n = check_top_n(top_n, n_genes)
    ORAOptions(top_n=top_n, ora_background=background, ora_bh_scope=bh_scope, ora_alpha=alpha,
               ora_min_size=min_size, ora_max_size=max_size)  # the one validation of the options
    top = top_gene_indices(topic_gene, top_n) if top_genes is None else np.asarray(top_genes, dtype=np.int64)
    if top.shape != (n_topics, top_n):
        raise InputError(f"top_genes has shape {top.shape}, expected {(n_topics, top_n)}")

    membership = gene_sets.membership
    columns = gene_sets.gene_index(names)  # collection column of each model gene, -1 if absent
    if background == "gene_sets":
        in_collection = np.zeros(gene_sets.n_genes, dtype=bool)
        in_collection[membership.indices] = True
        n_background = int(in_collection.sum())
        local = np.where(in_collection, np.arange(gene_sets.n_genes), -1)  # column -> universe index
        universe = membership
        # Query: the distinct top genes the collection knows.
        query_key = columns[top]
        query_key = np.where(query_key >= 0, local[np.maximum(query_key, 0)], -1)
    else:
        normalized = normalize_symbols(names, gene_sets.case)
        n_background = int(pd.unique(normalized).size)
        present = np.unique(columns[columns >= 0])
        local = np.full(gene_sets.n_genes, -1, dtype=np.int64)
        local[present] = np.arange(present.size)
        universe = membership[:, present]
        # Query: every distinct top gene (all are in the vocabulary); those in no set get keys past
        # the universe's columns so that they count in |Q| but overlap nothing.
        codes = pd.factorize(normalized)[0]
        query_key = np.where(columns[top] >= 0, local[np.maximum(columns[top], 0)], present.size + codes[top])
    universe = sp.csr_matrix(universe)
    n_columns = universe.shape[1]

    # Query genes per topic, duplicates (two symbols equal after the case rule) kept once.
    rank = np.broadcast_to(np.arange(top_n), top.shape)
    topic_idx = np.broadcast_to(np.arange(n_topics)[:, None], top.shape)
    valid = query_key >= 0
    frame = pd.DataFrame({"topic": topic_idx[valid], "rank": rank[valid], "key": query_key[valid]})
    frame = frame.drop_duplicates(["topic", "key"])
    n_query = np.bincount(frame["topic"].to_numpy(), minlength=n_topics)
    in_sets = frame[frame["key"] < n_columns]

    set_sizes = np.diff(universe.indptr).astype(np.int64)
    tested = set_sizes >= max(1, min_size or 1)
    if max_size is not None:
        tested &= set_sizes <= max_size
    tested_rows = np.flatnonzero(tested)
    n_tested = tested_rows.size
    if n_tested == 0:
        warnings.warn(f"ORA: no gene set has between {min_size} and {max_size} genes in the background",
                      stacklevel=3)

    # One row per (topic, query gene in some set); its product with the tested sets' membership
    # lists, for every (topic, set) pair, the query genes they share.
    rows = np.arange(len(in_sets))
    query = sp.csr_matrix(
        (np.ones(len(in_sets), dtype=np.int32), (rows, in_sets["key"].to_numpy())),
        shape=(len(in_sets), n_columns),
    )
    shared = (query @ universe[tested_rows].T.astype(np.int32)).tocoo()
    hit_row, hit_set = shared.row, shared.col
    hit_topic = in_sets["topic"].to_numpy()[hit_row]
    hit_rank = in_sets["rank"].to_numpy()[hit_row]
    order = np.lexsort((hit_rank, hit_set, hit_topic))
    hit_topic, hit_set, hit_rank = hit_topic[order], hit_set[order], hit_rank[order]
    new_pair = np.ones(hit_topic.size, dtype=bool)
    new_pair[1:] = (hit_topic[1:] != hit_topic[:-1]) | (hit_set[1:] != hit_set[:-1])
    starts = np.flatnonzero(new_pair)
    pair_topic = hit_topic[starts]
    pair_set = hit_set[starts]
    overlap = np.diff(np.append(starts, hit_topic.size)).astype(np.int64)
    sizes = set_sizes[tested_rows][pair_set]
    queries = n_query[pair_topic].astype(np.int64)

    pvals = _hypergeom_tail(overlap, n_background, sizes, queries)
    padj = _bh_per_topic(pvals, pair_topic, n_topics, n_tested, bh_scope)

    if starts.size:
        gene_text = names[top[hit_topic, hit_rank]].astype(object) + ";"
        genes = np.add.reduceat(gene_text, starts)
        genes = np.array([g[:-1] for g in genes], dtype=object)
    else:
        genes = np.array([], dtype=object)
    table = pd.DataFrame({
        "topic": pair_topic.astype(np.int64),
        "term": np.asarray(gene_sets.names, dtype=object)[tested_rows[pair_set]],
        "overlap": overlap,
        "set_size": sizes.astype(np.int64),
        "n_query": queries,
        "n_background": np.full(pair_topic.size, n_background, dtype=np.int64),
        "pval": pvals.astype(np.float64),
        "padj": padj.astype(np.float64),
        "significant": padj <= alpha,
        "genes": genes,
    })

    no_overlap = sorted(set(range(n_topics)) - set(pair_topic.tolist()))
    no_query = np.flatnonzero(n_query == 0).tolist()
    if no_overlap:
        warnings.warn(
            f"ORA: {len(no_overlap)} of {n_topics} topic(s) share no gene with any tested set "
            f"(topics {preview(no_overlap)}); they enrich nothing",
            stacklevel=3,
        )
    info = {
        "background": background,
        "bh_scope": bh_scope,
        "alpha": float(alpha),
        "top_n": int(top_n),
        "min_size": min_size,
        "max_size": max_size,
        "n_background": n_background,
        "n_sets_tested": int(n_tested),
        "n_pairs_with_overlap": int(pair_topic.size),
        "n_pairs_significant": int(table["significant"].sum()),
        "topics_without_overlap": no_overlap,
        "topics_without_query": no_query,
    }
    return table, info


def _hypergeom_tail(overlap: np.ndarray, n_background: int, sizes: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``P(X >= x)`` for each pair, evaluated once per distinct ``(x, m, |Q|)``."""
    if overlap.size == 0:
        return np.array([], dtype=np.float64)
    # One int64 key per triple (x <= |Q| <= base, m < 2**40): a 1-d unique is much faster than
    # unique rows, and scipy's tail costs about 0.1 ms per evaluation.
    base = int(queries.max()) + 1
    keys = (sizes.astype(np.int64) * base + queries) * base + overlap
    unique, inverse = np.unique(keys, return_inverse=True)
    x = unique % base
    k = (unique // base) % base
    m = unique // (base * base)
    tail = hypergeom.sf(x - 1, n_background, m, k)
    return np.asarray(tail, dtype=np.float64)[inverse]


def _bh_per_topic(pvals: np.ndarray, topic: np.ndarray, n_topics: int, n_tested: int, scope: str) -> np.ndarray:
    """Benjamini-Hochberg within each topic (``pvals`` sorted by topic)."""
    padj = np.empty_like(pvals)
    bounds = np.searchsorted(topic, np.arange(n_topics + 1))
    for t in range(n_topics):
        lo, hi = bounds[t], bounds[t + 1]
        if lo == hi:
            continue
        p = pvals[lo:hi]
        if scope == "all_sets":
            # Sets without overlap have p = 1 and join the correction.
            p = np.concatenate([p, np.ones(n_tested - (hi - lo))])
        padj[lo:hi] = multipletests(p, method="fdr_bh")[1][: hi - lo]
    return padj


def _compute(inputs: ScoringInput, options: ORAOptions) -> MetricResult:
    return topic_ora(inputs.topic_gene, inputs.gene_names, inputs.gene_sets, options.top_n,
                     background=options.ora_background, bh_scope=options.ora_bh_scope,
                     alpha=options.ora_alpha, min_size=options.ora_min_size,
                     max_size=options.ora_max_size, top_genes=inputs.top_genes(options.top_n))


#: ORA as the registry lists it (asked for by name: ``metrics="ora"``).
FAMILY = MetricFamily("ora", ("ORA_N", "ORA_U", "ORA_Q"), ("topic_gene", "gene_sets"), ORAOptions, _compute,
                      main=("ORA_Q",), rank_by=("ORA_Q",), detail="ora")
