"""Pre-ranked gene set enrichment analysis (GSEA) of every topic: GSEA_N, GSEA_U, GSEA_Q.

Each topic's full topic-gene vector is a ranking of all model genes (paper Supplementary Note 1;
the authors call ``gseapy.prerank`` once per topic). Three engines sit behind one function and
return one table (:data:`GSEA_COLUMNS`):

``engine="native"`` (default)
    gseapy's prerank statistics (version 1.x, ``method="permutation"``) computed by compiled
    kernels (:mod:`topiceval.metrics._gsea_numba`; ``device="cuda"`` walks the null with torch,
    :mod:`topiceval.metrics._gsea_torch`). The numpy implementation below (``_null_group``,
    ``_statistics``) is the reference the tests compare the kernels against:

    * genes sorted by decreasing ranking value (ties: lower gene index first, the rule of
      :func:`~topiceval.metrics.top_gene_indices`); hit weights ``|r|`` (weight 1);
    * ES: the running sum (hits add ``|r_i| / sum_hits |r|``, misses subtract ``1 / (N - m)``)
      evaluated just before and just after each hit; ES is the value of largest magnitude, the first
      one in walk order on a tie. Identical to gseapy's to rounding (1e-10 in the tests);
    * null: ``n_perm`` random relabellings of the genes (gene-set permutation, as gseapy): in
      each, every set is moved to the random places its own members are relabelled to, so every
      set gets its own null sample (sets of the same size never share one). The relabellings are
      drawn once and used for every topic (gseapy, called per topic with a fixed seed, also reuses
      one set of permutations). Null ES are computed in float32 (they are Monte Carlo samples);
      observed ES in float64;
    * NES: ES divided by the mean of the set's non-negative null ES (ES >= 0) or by the absolute
      mean of its negative null ES (ES < 0); nominal p: the fraction of same-signed null ES at
      least as extreme (no pseudo-count, as gseapy);
    * FDR: per topic, the null ES of all tested sets are normalised the same way and pooled;
      ``FDR(NES) = min(1, (#null NES >= NES / #null NES >= 0) / (#NES >= NES / #NES >= 0))``
      (mirrored for negative NES), as gseapy and the GSEA R code compute it;
    * a set (or null sample) whose hits all have weight 0 has no defined running sum (gseapy's
      output then depends on the order of tied genes); it is walked with equal hit weights, as
      fgsea does, and counted in ``info``.

``engine="gseapy"``
    ``gseapy.prerank`` once per topic (the reference), fed the same sorted ranking and the sets
    already cut to the model's genes. Its own random generator: same statistics, other null draws.

``engine="blitzgsea"``
    ``blitzgsea.gsea``: a gamma approximation of the null (faster, not a drop-in: it centres the
    ranking, and its NES, p-value and BH FDR are defined differently).

Ranking (``rank_by``): ``"topic_gene"`` (reference) uses the matrix as given (the probability
scale for most models, dominated by the top few genes); ``"log"`` uses the centred log
``log(beta_kg) - mean_g log(beta_kg)`` (needs positive values), which gives GSEA a signed ranking.
A topic whose ranking is mostly ties (over half the genes share a value, e.g. NMF zeros) is
warned about: the order of tied genes is a convention, not data.

Sets are cut to the model's genes and tested when ``min_size <= m <= max_size`` (gseapy's
defaults 15 and 500) and ``m < n_genes``. A (topic, set) pair is enriched when ``fdr <= fdr``
(paper: 0.01).
"""

from __future__ import annotations

import random
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm.auto import tqdm

from topiceval._utils import preview
from topiceval.errors import InputError
from topiceval.gene_sets import GeneSets
from topiceval.metrics._enrichment import enrichment_quality
from topiceval.metrics._family import MetricFamily, NJobsOption, ScoringInput, SeedOption, option
from topiceval.metrics._result import MetricResult
from topiceval.protocol import check_gene_names, check_matrix

__all__ = [
    "FAMILY",
    "GSEAOptions",
    "GSEA_COLUMNS",
    "GSEA_ENGINES",
    "RANK_BY",
    "gsea_rankings",
    "prerank_gsea",
    "topic_gsea",
]

#: Engines behind :func:`prerank_gsea`.
GSEA_ENGINES = ("native", "gseapy", "blitzgsea")
#: Devices of the native null (and ``"cuda:N"``).
GSEA_DEVICES = ("cpu", "cuda", "auto")
#: Rankings of a topic's genes.
RANK_BY = ("topic_gene", "log")
#: Columns of the GSEA long table, in order (the same for every engine).
GSEA_COLUMNS = ("topic", "term", "set_size", "es", "nes", "pval", "fdr", "significant", "leading_edge")



@dataclass(frozen=True)
class GSEAOptions(SeedOption, NJobsOption):
    """Options of GSEA (the module docstring explains them). ``seed`` seeds the null; ``n_jobs``
    threads change no number. A new GSEA option (an engine's device, ...) is one more field here."""

    gsea_engine: str = option("native", "GSEA engine: native, gseapy (reference, slow) or blitzgsea; "
                              'the last two need pip install "topiceval[gsea]"', kind="choice",
                              choices=GSEA_ENGINES)
    gsea_n_perm: int = option(1000, "GSEA permutations of the null (gseapy: 1000)", kind="int", low=1,
                              aliases=("--n-perm",))
    gsea_fdr: float = option(0.01, "GSEA FDR at or below which a pair is enriched (paper: 0.01)",
                             kind="fraction", parse=float)
    gsea_rank_by: str = option("topic_gene", "rank genes by the topic-gene values (reference) or "
                               "their centred log", kind="choice", choices=RANK_BY)
    gsea_min_size: int = option(15, "GSEA tests sets with at least this many model genes (gseapy: 15)",
                                kind="int", low=1)
    gsea_max_size: int = option(500, "GSEA tests sets with at most this many model genes (gseapy: 500)",
                                kind="int", low=1)
    gsea_device: str = option("cpu", "where the native null runs: cpu (compiled kernel), cuda, cuda:N or auto "
                              "(CUDA when present; needs torch); changes no number beyond float32 rounding",
                              kind="custom", parse=str, runtime=True)

    def _check(self) -> None:
        super()._check()
        low, high = self.gsea_min_size, self.gsea_max_size
        if isinstance(low, int) and isinstance(high, int) and low > high:
            raise InputError(f"gsea_min_size ({low}) is larger than gsea_max_size ({high})")
        device = self.gsea_device
        if not isinstance(device, str) or not (device in GSEA_DEVICES or device.startswith("cuda:")):
            raise InputError(f"gsea_device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")


#: Above this fraction of tied ranking values a topic is warned about.
MOSTLY_TIES = 0.5
#: Elements of one work block of the native null (float32): about 8 MB.
_BLOCK_ELEMENTS = 1 << 21
#: Memory for the null ES of one block of topics (float32).
_NULL_BYTES = 256 << 20
#: Memory for the sorted random places of one chunk of permutations.
_POSITION_BYTES = 256 << 20


# --------------------------------------------------------------------------- public API
def gsea_rankings(topic_gene: np.ndarray, rank_by: Literal["topic_gene", "log"] = "topic_gene") -> np.ndarray:
    """The ``(n_topics, n_genes)`` values each topic's genes are ranked by.

    ``"topic_gene"`` returns the matrix as float64; ``"log"`` its centred log,
    ``log(x) - mean(log(x))`` per topic, which needs every value to be positive.
    """
    if rank_by not in RANK_BY:
        raise InputError(f"rank_by must be one of {', '.join(RANK_BY)}, got {rank_by!r}")
    values = check_matrix(topic_gene, "topic-gene matrix")
    if rank_by == "topic_gene":
        return values.copy()
    if (values <= 0).any():
        bad = np.flatnonzero((values <= 0).any(axis=1))
        raise InputError(
            f"rank_by='log' needs positive topic-gene values; topic(s) {preview(bad)} have zeros or "
            "negative values (use rank_by='topic_gene')"
        )
    logs = np.log(values)
    return logs - logs.mean(axis=1, keepdims=True)


def prerank_gsea(
    topic_gene: np.ndarray,
    gene_names: np.ndarray | list[str],
    gene_sets: GeneSets,
    *,
    engine: Literal["native", "gseapy", "blitzgsea"] = "native",
    n_perm: int = 1000,
    rank_by: Literal["topic_gene", "log"] = "topic_gene",
    min_size: int = 15,
    max_size: int = 500,
    fdr: float = 0.01,
    seed: int = 0,
    n_jobs: int = 1,
    progress: bool | None = None,
    device: str = "cpu",
) -> pd.DataFrame:
    """Pre-ranked GSEA of every topic against every set.

    Parameters
    ----------
    topic_gene
        ``(n_topics, n_genes)`` finite weights (NaN is an error).
    gene_names
        ``n_genes`` symbols (matched with the collection's case rule).
    gene_sets
        The collection (paper: MSigDB C2).
    engine
        ``"native"``, ``"gseapy"`` or ``"blitzgsea"`` (module docstring); the last two need
        ``pip install "topiceval[gsea]"``.
    n_perm
        Permutations of the null (gseapy: 1000).
    rank_by
        ``"topic_gene"`` (reference) or ``"log"`` (centred log); see :func:`gsea_rankings`.
    min_size, max_size
        Sets with ``min_size <= m <= max_size`` genes in the model are tested (gseapy: 15, 500).
    fdr
        FDR at or below which a pair is ``significant`` (paper: 0.01).
    seed
        Seed of the null; the same seed gives identical output (for every ``n_jobs``).
    n_jobs
        Threads (native: over groups of sets; gseapy: its threads; blitzgsea: its processes).
    progress
        Show a progress bar: ``True``, ``False`` or ``None`` (only on a terminal).
    device
        Where the native engine computes the null: ``"cpu"`` (default: compiled kernels, numba),
        ``"cuda"`` / ``"cuda:N"`` (torch; needs a CUDA build of torch) or ``"auto"`` (CUDA when
        present, else the CPU). Both are fed the same permutations: the tables agree up to float32
        rounding of the null ES (ES, leading edges and the law of the null are identical).

    Returns
    -------
    DataFrame with :data:`GSEA_COLUMNS`: one row per tested (topic, set) pair, sorted by topic then
    collection order; ``set_size`` (genes of the set in the model), ``es``, ``nes``, ``pval``,
    ``fdr`` (float64), ``significant`` (bool), ``leading_edge`` (``;``-separated genes, from the
    extreme of the ranking inwards). ``info`` facts are in ``table.attrs["info"]``.
    """
    table, info = _gsea(topic_gene, gene_names, gene_sets, engine, n_perm, rank_by, min_size,
                        max_size, fdr, seed, n_jobs, progress, device)
    table.attrs["info"] = info
    return table


def topic_gsea(
    topic_gene: np.ndarray,
    gene_names: np.ndarray | list[str],
    gene_sets: GeneSets,
    *,
    engine: Literal["native", "gseapy", "blitzgsea"] = "native",
    n_perm: int = 1000,
    rank_by: Literal["topic_gene", "log"] = "topic_gene",
    min_size: int = 15,
    max_size: int = 500,
    fdr: float = 0.01,
    seed: int = 0,
    n_jobs: int = 1,
    progress: bool | None = None,
    device: str = "cpu",
) -> MetricResult:
    """GSEA_N, GSEA_U and GSEA_Q (paper Eq. 7) with the long table of tested pairs.

    Parameters are those of :func:`prerank_gsea`.

    Returns
    -------
    MetricResult
        ``scores`` ``GSEA_N``, ``GSEA_U``, ``GSEA_Q``; ``per_topic["GSEA_N"]``: enriched pathways
        per topic; ``table``: :func:`prerank_gsea`'s table; ``info``: options and counts.
    """
    table, info = _gsea(topic_gene, gene_names, gene_sets, engine, n_perm, rank_by, min_size,
                        max_size, fdr, seed, n_jobs, progress, device)
    significant = table[table["significant"]]
    return enrichment_quality(significant["topic"].to_numpy(), significant["term"].to_numpy(),
                              np.asarray(topic_gene).shape[0], "GSEA", info, table)


# --------------------------------------------------------------------------- shared preparation
def _gsea(topic_gene, gene_names, gene_sets, engine, n_perm, rank_by, min_size, max_size, fdr,
          seed, n_jobs, progress, device="cpu"):  # noqa: ANN001, ANN202 - private; see prerank_gsea
    checked = GSEAOptions(gsea_engine=engine, gsea_n_perm=n_perm, gsea_rank_by=rank_by,
                          gsea_min_size=min_size, gsea_max_size=max_size, gsea_fdr=fdr, seed=seed,
                          n_jobs=n_jobs, gsea_device=device)  # the one validation of the options
    n_perm, min_size, max_size, seed = checked.gsea_n_perm, checked.gsea_min_size, checked.gsea_max_size, checked.seed
    backend = _resolve_device(checked.gsea_device) if engine == "native" else None

    ranking = gsea_rankings(topic_gene, rank_by)  # validates the matrix
    n_topics, n_genes = ranking.shape
    names = check_gene_names(gene_names, n_genes)
    tied = _tie_fraction(ranking)
    mostly_tied = np.flatnonzero(tied > MOSTLY_TIES).tolist()
    if mostly_tied:
        warnings.warn(
            f"GSEA: the ranking of {len(mostly_tied)} topic(s) is mostly ties (topics "
            f"{preview(mostly_tied)}; up to {tied.max():.0%} of genes share a value); tied genes "
            "are ordered by gene index, and their enrichment depends on that convention",
            stacklevel=3,
        )

    members, set_sizes, tested = _members(gene_sets, names, min_size, max_size)
    terms = np.asarray(gene_sets.names, dtype=object)[tested]
    if tested.size == 0:
        warnings.warn(
            f"GSEA: no gene set has between {min_size} and {max_size} genes among the model's "
            f"{n_genes}; nothing was tested",
            stacklevel=3,
        )
    info: dict = {
        "engine": engine,
        "n_perm": n_perm,
        "rank_by": rank_by,
        "min_size": min_size,
        "max_size": max_size,
        "fdr": float(fdr),
        "seed": seed,
        "n_sets_tested": int(tested.size),
        "n_pairs_tested": int(tested.size * n_topics),
        "topics_mostly_tied": mostly_tied,
    }
    if backend is not None:
        info["device"] = backend[1] if backend[0] == "torch" else "cpu"
    # Tied genes go in gene-index order: a stable sort of the negated values.
    order = np.argsort(-ranking, axis=1, kind="stable")
    if tested.size == 0:
        table = _empty_table()
    elif engine == "native":
        table = _native(ranking, order, names, members, terms, n_perm, seed, n_jobs, progress, info,
                        backend)
    elif engine == "gseapy":
        table = _gseapy(ranking, order, names, members, terms, n_perm, min_size, max_size, seed,
                        n_jobs, progress)
    else:
        table = _blitzgsea(ranking, order, names, members, terms, n_perm, min_size, max_size, seed,
                           n_jobs, progress)
    table["significant"] = (table["fdr"] <= fdr).to_numpy(dtype=bool)
    table = table.loc[:, list(GSEA_COLUMNS)].reset_index(drop=True)
    info["n_pairs_significant"] = int(table["significant"].sum())
    return table, info


def _tie_fraction(ranking: np.ndarray) -> np.ndarray:
    """Per topic, the fraction of genes whose value another gene shares."""
    ordered = np.sort(ranking, axis=1)
    equal = ordered[:, 1:] == ordered[:, :-1]
    tied = np.zeros(ordered.shape, dtype=bool)
    tied[:, 1:] |= equal
    tied[:, :-1] |= equal
    return tied.mean(axis=1)


def _members(gene_sets: GeneSets, names: np.ndarray, min_size: int, max_size: int):  # noqa: ANN202
    """Model-gene indices of every set (CSR over model genes), sizes, and the tested sets."""
    columns = gene_sets.gene_index(names)
    present = np.flatnonzero(columns >= 0)
    # sets x model genes: column j of the product is model gene present[j].
    cut = sp.csr_matrix(gene_sets.membership[:, columns[present]])
    cut.sort_indices()
    cut = sp.csr_matrix((cut.data, present[cut.indices], cut.indptr), shape=(gene_sets.n_sets, names.size))
    sizes = np.diff(cut.indptr)
    tested = np.flatnonzero((sizes >= min_size) & (sizes <= max_size) & (sizes < names.size))
    return cut[tested], sizes[tested], tested


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame({
        "topic": np.array([], dtype=np.int64),
        "term": np.array([], dtype=object),
        "set_size": np.array([], dtype=np.int64),
        "es": np.array([], dtype=np.float64),
        "nes": np.array([], dtype=np.float64),
        "pval": np.array([], dtype=np.float64),
        "fdr": np.array([], dtype=np.float64),
        "leading_edge": np.array([], dtype=object),
    })


def _table(n_topics: int, terms: np.ndarray, sizes: np.ndarray, es: np.ndarray, nes: np.ndarray,
           pval: np.ndarray, fdr: np.ndarray, leading: list[str]) -> pd.DataFrame:
    """Long table from ``(n_topics, n_sets)`` arrays, rows topic-major."""
    n_sets = terms.size
    return pd.DataFrame({
        "topic": np.repeat(np.arange(n_topics, dtype=np.int64), n_sets),
        "term": np.tile(terms, n_topics),
        "set_size": np.tile(np.asarray(sizes, dtype=np.int64), n_topics),
        "es": np.asarray(es, dtype=np.float64).ravel(),
        "nes": np.asarray(nes, dtype=np.float64).ravel(),
        "pval": np.asarray(pval, dtype=np.float64).ravel(),
        "fdr": np.asarray(fdr, dtype=np.float64).ravel(),
        "leading_edge": np.asarray(leading, dtype=object),
    })


def _progress(total: int, desc: str, progress: bool | None) -> tqdm:
    disable = None if progress is None else not progress
    return tqdm(total=total, desc=desc, unit="topic" if desc.endswith("topics") else "it",
                disable=disable, leave=False)


# --------------------------------------------------------------------------- native engine
#: Devices of the native engine (``"cuda:N"`` also).


def _resolve_device(device: str) -> tuple[str, str | None]:
    """``("numba", None)`` for the CPU or ``("torch", "cuda[:N]")``; torch is imported only for CUDA.

    ``"auto"`` looks for an NVIDIA driver before importing torch, so that a machine without a GPU
    never pays torch's import.
    """
    import os

    if device == "cpu":  # validated by GSEAOptions
        return "numba", None
    if device == "auto":
        if not os.path.exists("/proc/driver/nvidia/version"):
            return "numba", None
        from topiceval.metrics import _gsea_torch

        return ("torch", "cuda") if _gsea_torch.cuda_available() else ("numba", None)
    from topiceval.metrics import _gsea_torch

    if not _gsea_torch.cuda_available():
        raise InputError(f"device={device!r} needs torch with CUDA and a GPU; use device='cpu'")
    return "torch", device


def _native(ranking, order, names, members, terms, n_perm, seed, n_jobs, progress, info,  # noqa: ANN001, ANN202
            backend=("numba", None)):
    """The native engine. ``backend``: ``("numba", None)``, ``("torch", device)`` or
    ``("numpy", None)`` (the reference implementation the tests compare the kernels against)."""
    n_topics, n_genes = ranking.shape
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.arange(n_genes)[None, :], axis=1)
    weights = np.abs(np.take_along_axis(ranking, order, axis=1))  # (K, N), weight 1: |r|

    # Sets in order of size, so that sets of one size are contiguous: (size, first, last) groups.
    sizes = np.diff(members.indptr)
    by_size = np.argsort(sizes, kind="stable")
    members = members[by_size]
    sizes = sizes[by_size]
    bounds = np.flatnonzero(np.diff(sizes)) + 1
    groups = [(int(sizes[a]), int(a), int(b))
              for a, b in zip(np.r_[0, bounds], np.r_[bounds, sizes.size], strict=True)]

    # Observed ES and leading edges (cheap: no permutations).
    es = np.empty((n_topics, sizes.size))

    def observe(group):  # noqa: ANN001, ANN202 - writes its own columns of es
        m, a, b = group
        genes = members.indices[members.indptr[a]:members.indptr[b]].reshape(b - a, m)
        hits = np.sort(position[:, genes], axis=-1)  # (K, g, m) positions, ascending
        es[:, a:b], peak, positive, flat = _observed_es(weights, hits, n_genes)
        return _leading_edge_genes(hits, peak, positive, order), int(flat.sum())

    # numpy releases the GIL in the sorts and sums: groups in threads, results in collection order
    threads = min(n_jobs if n_jobs > 0 else _cpu_count(), len(groups))
    if threads > 1 and n_topics * members.nnz >= 1 << 20:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            observed = list(pool.map(observe, groups))
    else:
        observed = [observe(group) for group in groups]
    edges = [edge for edge, _ in observed]
    info["n_pairs_zero_weight"] = sum(n for _, n in observed)
    leading = _join_leading_edges(edges, groups, n_topics, sizes.size, names)

    # Null: n_perm relabellings of the genes, the same for every topic (as gseapy's fixed seed).
    rng = np.random.default_rng(seed)
    index_type = np.int16 if n_genes <= np.iinfo(np.int16).max else np.int32
    relabel = rng.permuted(np.tile(np.arange(n_genes, dtype=index_type), (n_perm, 1)), axis=1)
    inverse = np.empty((n_perm, n_genes), dtype=np.int32)  # gene at each random place
    np.put_along_axis(inverse, relabel.astype(np.intp), np.arange(n_genes, dtype=np.int32)[None, :], axis=1)
    del relabel
    if backend[0] == "numpy":
        nes, pval, fdr, n_null_flat = _null_numpy(weights, es, members, sizes, groups, inverse,
                                                  index_type, n_jobs, progress)
    else:
        nes, pval, fdr, n_null_flat = _null_compiled(weights, es, members, sizes, inverse, index_type,
                                                     n_jobs, progress, backend[1])
    info["n_null_zero_weight"] = int(n_null_flat)

    back = np.empty_like(by_size)
    back[by_size] = np.arange(by_size.size)  # collection order again
    return _table(n_topics, terms, sizes[back], es[:, back], nes[:, back], pval[:, back],
                  fdr[:, back], leading[:, back].ravel().tolist())


def _null_compiled(weights, es, members, sizes, inverse, index_type, n_jobs, progress, device):  # noqa: ANN001, ANN202
    """Null, NES, p and FDR with the compiled kernels (:mod:`._gsea_numba`); ``device``: ``None``
    (numba walks the null) or a torch device (torch walks it, fed the same random places).

    The random places of every set are computed once for all topics (chunks of permutations
    when they exceed ``_POSITION_BYTES``); topics go in blocks whose null fits ``_NULL_BYTES``.
    """
    from topiceval.metrics import _gsea_numba as kernels

    n_topics, n_genes = weights.shape
    n_perm = inverse.shape[0]
    n_sets = sizes.size
    by_gene = sp.csr_matrix(members.T)  # genes x sets
    gene_ptr = by_gene.indptr.astype(np.int64)
    gene_sets = by_gene.indices.astype(np.int32)
    set_ptr = members.indptr.astype(np.int64)
    set_size = sizes.astype(np.int64)
    # topics in blocks whose null fits _NULL_BYTES, whole groups of SIMD lanes where it allows
    block = max(1, min(n_topics, _NULL_BYTES // max(n_sets * n_perm * 4, 1)))
    if block >= kernels.LANES:
        block -= block % kernels.LANES
    perm_chunk = max(1, min(n_perm, _POSITION_BYTES // max(members.nnz * np.dtype(index_type).itemsize, 1)))
    # a few calls per block so that the progress bar moves; results do not depend on the split
    call_chunk = max(1, min(perm_chunk, -(-n_perm // 8)))
    places_once = perm_chunk >= n_perm
    threads = n_jobs if n_jobs > 0 else _cpu_count()
    nes = np.empty_like(es)
    pval = np.empty_like(es)
    fdr = np.empty_like(es)
    n_null_flat = 0
    bar = _progress(n_topics, "GSEA topics", progress)
    walker = None
    if device is not None:
        from topiceval.metrics import _gsea_torch

        walker = _gsea_torch.NullWalker(set_ptr, set_size, n_genes, device)

    def places_of(p0: int, p1: int) -> np.ndarray:
        out = np.empty((p1 - p0, members.nnz), dtype=index_type)
        kernels.random_places(inverse[p0:p1], gene_ptr, gene_sets, set_ptr, out)
        return out

    # one buffer for the null of every block (fresh memory costs page faults on every block)
    max_lanes = block if walker is not None else -(-block // kernels.LANES) * kernels.LANES
    buffer = np.empty(n_perm * n_sets * max_lanes, dtype=np.float32)
    with _numba_threads(threads) as numba_threads:
        places = places_of(0, n_perm) if places_once else None
        for start in range(0, n_topics, block):
            stop = min(n_topics, start + block)
            kb = stop - start
            weights_t = np.ascontiguousarray(weights[start:stop].T, dtype=np.float32)  # (N, kb)
            if walker is None:
                weights_p = kernels.lane_groups(weights_t)  # (N, lanes)
                lanes = weights_p.shape[1]
            else:
                lanes = kb
            null = buffer[:n_perm * n_sets * lanes].reshape(n_perm, n_sets, lanes)  # (P, S, lanes)
            for q0 in range(0, n_perm, perm_chunk):
                q1 = min(n_perm, q0 + perm_chunk)
                chunk_places = places[q0:q1] if places_once else places_of(q0, q1)
                for p0 in range(q0, q1, call_chunk):
                    p1 = min(q1, p0 + call_chunk)
                    rows = chunk_places[p0 - q0:p1 - q0]
                    if walker is None:
                        flat = np.zeros(p1 - p0, dtype=np.int64)
                        kernels.null_es(weights_p, rows, set_ptr, set_size, n_genes, kb, null[p0:p1], flat)
                    else:
                        null[p0:p1], flat = walker.null_es(weights_t, rows)
                    n_null_flat += int(flat.sum())
                    bar.update(kb * (p1 - p0) / n_perm)
            kernels.statistics(es[start:stop], null, nes[start:stop], pval[start:stop], fdr[start:stop],
                               numba_threads)
    bar.close()
    return nes, pval, fdr, n_null_flat


#: numba's default threading layer launches parallel kernels from one thread at a time.
_NUMBA_LOCK = threading.Lock()


class _numba_threads:  # noqa: N801 - used as a context manager
    """Run numba's parallel kernels with ``n`` threads (at most numba's pool), one caller at a time:
    a lock serialises callers from several Python threads (numba's default threading layer
    allows a single launching thread); the caller's thread count is restored afterwards."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self) -> int:
        import numba

        _NUMBA_LOCK.acquire()
        self.previous = numba.get_num_threads()
        n = max(1, min(self.n, numba.config.NUMBA_NUM_THREADS))
        numba.set_num_threads(n)
        return n

    def __exit__(self, *exc: object) -> None:
        import numba

        numba.set_num_threads(self.previous)
        _NUMBA_LOCK.release()


def _null_numpy(weights, es, members, sizes, groups, inverse, index_type, n_jobs, progress):  # noqa: ANN001, ANN202
    """The reference null and statistics in numpy (the engine of version 0.1): the tests compare
    the compiled kernels against it. Topics in blocks and permutations in chunks bound memory."""
    n_topics, n_genes = weights.shape
    n_perm = inverse.shape[0]
    by_gene = sp.csr_matrix(members.T)  # genes x sets
    block = max(1, min(n_topics, _NULL_BYTES // max(sizes.size * n_perm * 4, 1)))
    perm_chunk = max(1, min(n_perm, _POSITION_BYTES // max(members.nnz * np.dtype(index_type).itemsize, 1)))
    nes = np.empty_like(es)
    pval = np.empty_like(es)
    fdr = np.empty_like(es)
    run = _runner(n_jobs)
    bar = _progress(n_topics, "GSEA topics", progress)
    work = float(n_perm * members.nnz)
    n_null_flat = 0
    for start in range(0, n_topics, block):
        stop = min(n_topics, start + block)
        weights_t = np.ascontiguousarray(weights[start:stop].T, dtype=np.float32)  # (N, kb)
        null = np.empty((stop - start, sizes.size, n_perm), dtype=np.float32)
        for p0 in range(0, n_perm, perm_chunk):
            p1 = min(n_perm, p0 + perm_chunk)
            places = _random_places(by_gene, inverse[p0:p1], index_type)  # (pc, nnz) sorted per set

            def task(group, places=places, null=null, p0=p0, p1=p1):  # noqa: ANN001, ANN202
                m, a, b = group
                lo, hi = members.indptr[a], members.indptr[b]
                return _null_group(weights_t, places[:, lo:hi], m, null[:, a:b, p0:p1], n_genes)

            def done(group, p0=p0, p1=p1, kb=stop - start):  # noqa: ANN001, ANN202
                m, a, b = group
                bar.update(kb * (p1 - p0) * m * (b - a) / work)

            n_null_flat += sum(run(task, groups, done))
        nes[start:stop], pval[start:stop], fdr[start:stop] = _statistics(es[start:stop], null)
        del null
    bar.close()
    return nes, pval, fdr, n_null_flat


def _random_places(by_gene: sp.csr_matrix, inverse: np.ndarray, dtype: type) -> np.ndarray:
    """For each relabelling, the places its genes land on, set by set and sorted within a set.

    ``by_gene``: ``(n_genes, n_sets)`` membership; ``inverse[j, p]``: the gene relabelling ``j``
    puts at place ``p``. Reordering the rows by place and converting to columns lists each set's
    places in increasing order (a counting sort in scipy, no comparison sort).
    Returns ``(n_relabellings, nnz)`` in the set-major order of the membership.
    """
    out = np.empty((inverse.shape[0], by_gene.nnz), dtype=dtype)
    for j, genes_at in enumerate(inverse):
        out[j] = by_gene[genes_at].tocsc().indices
    return out


def _leading_edge_genes(hits: np.ndarray, peak: np.ndarray, positive: np.ndarray,
                        order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leading-edge genes of one group of sets (gseapy's rule), pair-major and flat.

    ES >= 0: the hits up to the peak of the running sum, in rank order; ES < 0: the hits from the
    trough to the end, from the bottom of the ranking upwards. Returns the gene indices of all
    ``(K, g)`` pairs one after the other and each pair's count.
    """
    n_topics, g, m = hits.shape
    genes = np.take_along_axis(order, hits.reshape(n_topics, -1), axis=1).reshape(hits.shape)
    arranged = np.where(positive[..., None], genes, genes[..., ::-1])
    count = np.where(positive, peak + 1, m - peak)
    chosen = np.arange(m) < count[..., None]
    return arranged[chosen], count.ravel()


def _join_leading_edges(edges: list, groups: list, n_topics: int, n_sets: int, names: np.ndarray) -> np.ndarray:
    """``(K, S)`` ``;``-joined leading edges: one join of every group's genes (their order and
    counts come from array operations), then the one string slice each pair's Python string needs."""
    names = np.asarray(names, dtype=object)
    with_sep = np.array([f"{name};" for name in names], dtype=object)
    lengths = np.array([len(x) for x in with_sep], dtype=np.int64)
    out = np.empty((n_topics, n_sets), dtype=object)
    for (m, a, b), (genes, count) in zip(groups, edges, strict=True):
        text = "".join(with_sep[genes].tolist())
        ends = np.cumsum(np.add.reduceat(lengths[genes], np.r_[0, np.cumsum(count)[:-1]]))
        starts = np.r_[0, ends[:-1]]
        out[:, a:b] = np.array([text[i:j - 1] for i, j in zip(starts.tolist(), ends.tolist())],
                               dtype=object).reshape(n_topics, b - a)
    return out


def _runner(n_jobs: int) -> Callable:
    """``run(fn, tasks, done)``: calls ``fn`` on every task (in threads when ``n_jobs != 1``)."""
    if n_jobs == 1:
        def run(fn, tasks, done):  # noqa: ANN001, ANN202
            out = []
            for task in tasks:
                out.append(fn(task))
                done(task)
            return out
        return run
    from joblib import Parallel, delayed

    def run_parallel(fn, tasks, done):  # noqa: ANN001, ANN202
        def call(task):  # noqa: ANN001, ANN202
            result = fn(task)
            done(task)
            return result
        # numpy releases the GIL in the gathers, sums and reductions that dominate, so threads
        # scale without copying arrays to other processes; results land in disjoint slices.
        return Parallel(n_jobs=n_jobs, prefer="threads")(delayed(call)(t) for t in tasks)
    return run_parallel


def _observed_es(weights: np.ndarray, hits: np.ndarray, n_genes: int):  # noqa: ANN202
    """ES of every (topic, set) of one size, exactly as gseapy walks it.

    ``hits``: ``(K, g, m)`` sorted positions. Returns ES ``(K, g)``, the peak hit index, whether
    the ES is the positive peak, and where every hit had weight 0.
    """
    n_topics, _, m = hits.shape
    w = weights[np.arange(n_topics)[:, None, None], hits]
    total = w.sum(axis=-1, keepdims=True)
    flat = total[..., 0] == 0
    if flat.any():
        w = np.where(flat[..., None], 1.0, w)
        total = np.where(flat[..., None], float(m), total)
    tops = np.cumsum(w, axis=-1) / total - (hits - np.arange(m)) / (n_genes - m)
    bottoms = tops - w / total
    # Walk order: before hit 0, after hit 0, before hit 1, ...; the first largest |value| wins.
    walk = np.stack([bottoms, tops], axis=-1).reshape(*tops.shape[:-1], 2 * m)
    first = np.argmax(np.abs(walk), axis=-1)
    es = np.take_along_axis(walk, first[..., None], axis=-1)[..., 0]
    positive = es >= 0
    peak = np.where(positive, np.argmax(tops, axis=-1), np.argmin(bottoms, axis=-1))
    return es, peak, positive, flat


def _null_group(weights_t: np.ndarray, places: np.ndarray, m: int, out: np.ndarray, n_genes: int) -> int:
    """Null ES of ``g`` same-size sets under ``pc`` relabellings, for a block of topics.

    ``weights_t``: ``(N, kb)`` float32 sorted weights, topics last; ``places``: ``(pc, g * m)``
    sorted random places; ``out``: ``(kb, g, pc)`` view of the null, filled. Work arrays are
    ``(m, samples, kb)`` so that the running sum over a set's hits adds whole contiguous rows, and
    are float32 (the null is Monte Carlo; the observed ES are float64). Returns the number of
    null samples whose hits all had weight 0 (walked with equal weights).
    """
    n_relabel = places.shape[0]
    g = places.shape[1] // m
    kb = weights_t.shape[1]
    samples = places.reshape(n_relabel * g, m)  # rows: (relabelling, set)
    n_samples = samples.shape[0]
    chunk = max(1, _BLOCK_ELEMENTS // (m * kb))
    result = np.empty((n_samples, kb), dtype=np.float32)
    steps = np.arange(m, dtype=np.float32)[:, None]
    n_flat = 0
    for lo in range(0, n_samples, chunk):
        hi = min(n_samples, lo + chunk)
        pos = np.ascontiguousarray(samples[lo:hi].T, dtype=np.intp)  # (m, s)
        # misses before each hit over (N - m): c_i; gaps between hits: c_i - c_{i-1}
        misses = (pos - steps) * np.float32(1.0 / (n_genes - m))
        run = np.take(weights_t, pos, axis=0)  # (m, s, kb)
        for i in range(1, m):
            np.add(run[i - 1], run[i], out=run[i])
        total = run[-1].copy()
        flat = total == 0
        with np.errstate(divide="ignore"):
            scale = np.where(flat, np.float32(0), np.float32(1) / total).astype(np.float32)
        run *= scale
        run -= misses[:, :, None]  # tops: after each hit
        top = run.max(axis=0)
        # before hit i = after hit i - 1, less the misses in between; before hit 0: -c_0
        run[:-1] -= (misses[1:] - misses[:-1])[:, :, None]
        bottom = np.minimum(run[:-1].min(axis=0), -misses[0][:, None]) if m > 1 else -misses[0][:, None]
        value = np.where(top > -bottom, top, bottom)
        if flat.any():
            value = np.where(flat, _unit_es(pos, n_genes)[:, None], value)
            n_flat += int(flat.sum())
        result[lo:hi] = value
    out[...] = result.reshape(n_relabel, g, kb).transpose(2, 1, 0)
    return n_flat


def _unit_es(pos: np.ndarray, n_genes: int) -> np.ndarray:
    """ES with equal hit weights for ``(m, s)`` sorted positions (the zero-weight convention)."""
    m = pos.shape[0]
    steps = np.arange(m, dtype=np.float64)[:, None]
    tops = (steps + 1) / m - (pos - steps) / (n_genes - m)
    bottoms = tops - 1.0 / m
    top, bottom = tops.max(axis=0), bottoms.min(axis=0)
    return np.where(top > -bottom, top, bottom).astype(np.float32)


def _statistics(es: np.ndarray, null: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NES, nominal p and FDR (gseapy / GSEA R definitions) of a block of topics.

    ``es``: ``(kb, S)``; ``null``: ``(kb, S, P)``, overwritten with the normalised null. One topic
    at a time, so that temporaries stay the size of one topic's null.
    """
    nes = np.empty_like(es)
    pval = np.empty_like(es)
    fdr = np.empty_like(es)
    for k in range(es.shape[0]):
        nes[k], pval[k] = _normalise(es[k], null[k])
        fdr[k] = _fdr(nes[k], null[k].ravel())
    return nes, pval, fdr


def _normalise(es: np.ndarray, null: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NES and nominal p of each set; ``null`` ``(S, P)`` is divided in place into NES units."""
    positive = null >= 0
    n_pos = positive.sum(axis=-1)
    n_neg = null.shape[-1] - n_pos
    sum_pos = np.where(positive, null, 0).sum(axis=-1, dtype=np.float64)
    sum_neg = null.sum(axis=-1, dtype=np.float64) - sum_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        # gseapy: a side with no null ES is "normalised" by the ES itself.
        pos_mean = np.where(n_pos > 0, sum_pos / np.maximum(n_pos, 1), es)
        neg_mean = np.abs(np.where(n_neg > 0, sum_neg / np.maximum(n_neg, 1), es))
        nes = np.where(es >= 0, es / pos_mean, es / neg_mean)
        nes = np.where(es == 0, 0.0, nes)
        more_pos = (null >= es[:, None]).sum(axis=-1)
        more_neg = (null <= es[:, None]).sum(axis=-1)
        pval = np.where(es < 0, more_neg / np.maximum(n_neg, 1), more_pos / np.maximum(n_pos, 1))
        pval = np.where(np.where(es < 0, n_neg, n_pos) == 0, 1.0, pval)
        scale = np.where(positive, pos_mean[:, None].astype(np.float32), neg_mean[:, None].astype(np.float32))
        np.divide(null, scale, out=null)
    return nes, pval


def _fdr(nes: np.ndarray, nes_null: np.ndarray) -> np.ndarray:
    """gseapy's FDR of each NES against the pooled normalised null of its topic."""
    out = np.full(nes.shape, np.nan)
    ok = np.isfinite(nes)
    observed = np.sort(nes[ok])
    pooled = np.sort(nes_null[np.isfinite(nes_null)]).astype(np.float64)
    e = nes[ok]
    n_obs, n_null = observed.size, pooled.size
    neg_obs = np.searchsorted(observed, 0.0, side="left")
    neg_null = np.searchsorted(pooled, 0.0, side="left")
    negative = e < 0
    obs_more = np.where(negative, np.searchsorted(observed, e, side="right"),
                        n_obs - np.searchsorted(observed, e, side="left"))
    null_more = np.where(negative, np.searchsorted(pooled, e, side="right"),
                         n_null - np.searchsorted(pooled, e, side="left"))
    null_side = np.where(negative, neg_null, n_null - neg_null)
    obs_side = np.where(negative, neg_obs, n_obs - neg_obs)
    with np.errstate(divide="ignore", invalid="ignore"):
        phi_null = np.where(null_side > 0, null_more / np.maximum(null_side, 1), 0.0)
        phi_obs = np.where(obs_side > 0, obs_more / np.maximum(obs_side, 1), 0.0)
        value = np.where(phi_obs == 0, 1.0, np.clip(phi_null / np.where(phi_obs == 0, 1, phi_obs), 0, 1))
    out[ok] = value
    return out


# --------------------------------------------------------------------------- reference engines
def _require(module: str):  # noqa: ANN202
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(
            f"engine={module!r} needs the {module} package: pip install \"topiceval[gsea]\""
        ) from None


def _gseapy(ranking, order, names, members, terms, n_perm, min_size, max_size, seed, n_jobs, progress):  # noqa: ANN001, ANN202
    """``gseapy.prerank`` per topic on the same sorted ranking and the same cut sets.

    Genes and sets are passed under neutral ids (``g12``, ``s3``) so that gseapy changes no
    symbol (it may upper-case) and does not split FDR by a ``__`` in set names.
    """
    gseapy = _require("gseapy")
    n_topics, n_genes = ranking.shape
    ids = np.array([f"g{j}" for j in range(n_genes)], dtype=object)
    library = {f"s{i}": list(ids[members.indices[members.indptr[i]:members.indptr[i + 1]]])
               for i in range(terms.size)}
    sizes = np.diff(members.indptr)
    shape = (n_topics, terms.size)
    es, nes, pval, fdr = (np.full(shape, np.nan) for _ in range(4))
    leading = [[""] * terms.size for _ in range(n_topics)]
    threads = n_jobs if n_jobs > 0 else max(1, _cpu_count())
    for k in tqdm(range(n_topics), desc="gseapy topics", disable=None if progress is None else not progress,
                  leave=False):
        series = pd.Series(ranking[k, order[k]], index=ids[order[k]], name="topic")
        result = gseapy.prerank(
            rnk=series, gene_sets=library, min_size=min_size, max_size=max_size,
            permutation_num=n_perm, weight=1.0, ascending=None, threads=threads, seed=seed,
            outdir=None, no_plot=True, verbose=False,
        ).res2d
        index = result["Term"].str.slice(1).astype(int).to_numpy()
        es[k, index] = result["ES"].astype(float)
        nes[k, index] = result["NES"].astype(float)
        pval[k, index] = result["NOM p-val"].astype(float)
        fdr[k, index] = result["FDR q-val"].astype(float)
        for i, genes in zip(index, result["Lead_genes"], strict=True):
            leading[k][i] = _rename(genes, ";", names)
    return _table(n_topics, terms, sizes, es, nes, pval, fdr, [x for row in leading for x in row])


def _blitzgsea(ranking, order, names, members, terms, n_perm, min_size, max_size, seed, n_jobs, progress):  # noqa: ANN001, ANN202
    """``blitzgsea.gsea`` per topic; it reseeds the global RNGs, which are restored afterwards."""
    blitz = _require("blitzgsea")
    n_topics, n_genes = ranking.shape
    ids = np.array([f"g{j}" for j in range(n_genes)], dtype=object)
    library = {f"s{i}": list(ids[members.indices[members.indptr[i]:members.indptr[i + 1]]])
               for i in range(terms.size)}
    sizes = np.diff(members.indptr)
    shape = (n_topics, terms.size)
    es, nes, pval, fdr = (np.full(shape, np.nan) for _ in range(4))
    leading = [[""] * terms.size for _ in range(n_topics)]
    # blitzgsea 1.3's single-process path fails (estimate_anchor() misses ks_disable), so it always
    # gets a pool of at least two processes.
    processes = max(2, n_jobs if n_jobs > 0 else _cpu_count())
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        for k in tqdm(range(n_topics), desc="blitzgsea topics",
                      disable=None if progress is None else not progress, leave=False):
            signature = pd.DataFrame({"i": ids[order[k]], "v": ranking[k, order[k]]})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                result = blitz.gsea(signature, library, permutations=n_perm, min_size=min_size,
                                    max_size=max_size, processes=processes, seed=seed,
                                    signature_cache=False, verbose=False, progress=False)
            index = result.index.str.slice(1).astype(int).to_numpy()
            es[k, index] = result["es"].astype(float)
            nes[k, index] = result["nes"].astype(float)
            pval[k, index] = result["pval"].astype(float)
            fdr[k, index] = result["fdr"].astype(float)
            rank_of = np.empty(n_genes, dtype=np.int64)
            rank_of[order[k]] = np.arange(n_genes)
            for i, genes, value in zip(index, result["leading_edge"], result["es"], strict=True):
                # blitzgsea lists leading-edge genes unordered: order them from the extreme inwards.
                chosen = np.array([int(g[1:]) for g in genes.split(",") if g], dtype=np.int64)
                chosen = chosen[np.argsort(rank_of[chosen] * (1 if value >= 0 else -1))]
                leading[k][i] = ";".join(names[chosen])
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return _table(n_topics, terms, sizes, es, nes, pval, fdr, [x for row in leading for x in row])


def _rename(genes: str, sep: str, names: np.ndarray) -> str:
    if not isinstance(genes, str) or not genes:
        return ""
    return ";".join(names[[int(g[1:]) for g in genes.split(sep)]])


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _compute(inputs: ScoringInput, options: GSEAOptions) -> MetricResult:
    return topic_gsea(inputs.topic_gene, inputs.gene_names, inputs.gene_sets, engine=options.gsea_engine,
                      n_perm=options.gsea_n_perm, rank_by=options.gsea_rank_by,
                      min_size=options.gsea_min_size, max_size=options.gsea_max_size,
                      fdr=options.gsea_fdr, seed=options.seed, n_jobs=options.n_jobs,
                      device=options.gsea_device)


#: GSEA as the registry lists it (asked for by name: ``metrics="gsea"``).
FAMILY = MetricFamily("gsea", ("GSEA_N", "GSEA_U", "GSEA_Q"), ("topic_gene", "gene_sets"), GSEAOptions,
                      _compute, main=("GSEA_Q",), rank_by=("GSEA_Q",), detail="gsea")
