"""Clustering metrics: ARI and NMI over a Louvain (or Leiden) resolution sweep, and cell-type ASW.

The paper (scE2TM, section 4.1.1) clusters the cells with Louvain on a kNN graph of the cell
representation, sweeps the resolution from 0.0 to 1.9 in steps of 0.1 and reports the best ARI over
the sweep with the NMI at that resolution. The authors' tutorial does exactly that with scanpy
(``sc.pp.neighbors(use_rep="X")`` with its defaults, then ``sc.tl.louvain(resolution=r,
random_state=0)`` for each ``r``). Choosing the resolution by looking at the labels is optimistic,
so :func:`clustering_scores` also reports a label-free choice (the resolution whose number of
clusters is closest to the number of labelled types) and the whole sweep.

Steps, each written to agree with scanpy's defaults:

1. kNN graph, built once: ``n_neighbors`` nearest neighbours of every cell, the cell itself
   counted as the first (so 14 others for the default 15), Euclidean distance. Exact
   (scikit-learn brute force) up to :data:`EXACT_KNN_MAX_CELLS` cells; above that approximate
   (faiss's inverted-file index, else pynndescent, whichever is installed; see :func:`knn_graph`),
   whose recall is then checked against an
   exact search of a seeded subsample of query cells (:func:`knn_recall`, ``info["knn_recall"]``).
2. Connectivities: UMAP's fuzzy simplicial set (:func:`umap_connectivities`), as
   ``scanpy.pp.neighbors(method="umap")`` computes them, vectorised.
3. Communities: python-igraph's ``community_multilevel`` (Louvain) or ``community_leiden``
   (modularity objective, iterated until stable) at each resolution, igraph's random generator
   seeded with ``random.Random(seed)`` before every resolution, so that a resolution's partition
   does not depend on which other resolutions were swept (nor on how many worker processes share
   the sweep). Like ``sc.tl.louvain`` (``use_weights=False``), Louvain ignores the edge weights by
   default; Leiden uses them, like ``sc.tl.leiden``. scanpy's Louvain runs the ``louvain``
   package, which is no longer maintained (it pins igraph < 0.12 and needs ``pkg_resources``);
   igraph's multilevel optimises the same modularity, and its partitions score the same within
   the seed-to-seed spread (tested against networkx's Louvain on scanpy's graph).
   Above :data:`IGRAPH_MAX_CELLS` cells Louvain runs compiled instead
   (:mod:`topiceval.metrics._louvain_numba`, ``backend``), and resolution 0 is computed as the
   graph's connected components, the partition Louvain returns there.
4. ARI and NMI (arithmetic normalisation) from scikit-learn against the labelled cells; AMI is
   added to the sweep table because the authors' tutorial prints ``adjusted_mutual_info_score``
   under the name NMI.
5. ASW: scikit-learn's silhouette of the cell representation with the cell types as clusters
   (Euclidean), in ``[-1, 1]``; scib's ``silhouette_label`` reports ``(ASW + 1) / 2``, which is
   given in the result's ``info`` as ``scaled``. Above :data:`ASW_MAX_CELLS` labelled cells
   (``cluster_asw_max_cells``) on a seeded subsample stratified by cell type.

Nothing takes O(n^2) memory: the graph has ``n * n_neighbors`` edges, the sweep's worker processes
each build the igraph graph once from its edge array, and a float32 / float64 cell matrix
(a memory-mapped ``.npy``, see :func:`topiceval.io.read_cell_matrix`) is not copied whole.

Cells without a label (None / NaN) take part in the graph and the clustering but not in the scores
(a warning says how many). Labels with fewer than two types are an error.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from topiceval.errors import InputError
from topiceval.metrics._family import BootstrapOption, MetricFamily, ScoringInput, option
from topiceval.metrics._result import MetricResult
from topiceval.protocol import check_labels, check_matrix

__all__ = [
    "FAMILY",
    "ClusteringOptions",
    "parse_resolutions",
    "CLUSTER_METHODS",
    "LOUVAIN_BACKENDS",
    "IGRAPH_MAX_CELLS",
    "EXACT_KNN_MAX_CELLS",
    "FAISS_NPROBE",
    "ASW_MAX_CELLS",
    "KNN_RECALL_CELLS",
    "KNN_RECALL_WARN",
    "KNN_METHODS",
    "PARALLEL_MIN_CELLS",
    "PAPER_RESOLUTIONS",
    "ClusteringResult",
    "KnnGraph",
    "check_clustering_options",
    "cluster_graph",
    "clustering_scores",
    "knn_graph",
    "knn_recall",
    "stratified_subsample",
    "umap_connectivities",
]

#: The paper's sweep: 0.0, 0.1, ..., 1.9 (the authors' ``range(0, 20)`` divided by 10).
PAPER_RESOLUTIONS: tuple[float, ...] = tuple(i / 10 for i in range(20))

#: Community detection methods: igraph's multilevel (Louvain) or Leiden (modularity objective).
CLUSTER_METHODS: tuple[str, ...] = ("louvain", "leiden")

#: Louvain implementations: ``"auto"`` (igraph up to :data:`IGRAPH_MAX_CELLS` cells, then numba),
#: ``"igraph"`` (python-igraph's ``community_multilevel``, the reference) or ``"numba"``
#: (:mod:`topiceval.metrics._louvain_numba`).
LOUVAIN_BACKENDS: tuple[str, ...] = ("auto", "igraph", "numba")

#: Largest number of cells for which ``cluster_backend="auto"`` runs igraph's Louvain. Above it the
#: compiled Louvain of :mod:`topiceval.metrics._louvain_numba`: on the kNN graph of a million cells
#: (synthetic, K = 100) one igraph call took 392 s on a shared 2-core machine, the compiled one
#: 13-17 CPU seconds; at 100,000 cells igraph takes about 4.5 CPU seconds per resolution and the
#: compiled one 0.4-2. Both optimise the same modularity (their partitions differ within the
#: seed-to-seed spread). At 100,000 cells (K = 20, 12 types, exact kNN, quiet 2-core machine) the
#: 20-resolution sweep took 44.7 s on igraph and 5.0 s compiled (ARI 0.848 and 0.843): with igraph
#: the whole score would miss the one-minute budget at that size (74 s against 24 s), so the
#: compiled Louvain takes over above 50,000 cells; up to there igraph's numbers are kept.
IGRAPH_MAX_CELLS = 50_000

#: kNN search: ``"auto"`` (exact up to :data:`EXACT_KNN_MAX_CELLS`), ``"exact"``, ``"faiss"``,
#: ``"pynndescent"``.
KNN_METHODS: tuple[str, ...] = ("auto", "exact", "faiss", "pynndescent")

#: Inverted lists probed per query by the faiss search (of ``4 sqrt(n)`` lists). Measured on
#: 1,000,000 synthetic cells x 100 topics (shared 2-core machine): 10 probes 88 CPU seconds at a
#: recall of 0.892, 16 probes 127 CPU seconds at 0.926 (index build 69 CPU seconds); at 100,000
#: cells 16 probes reach 0.914. pynndescent spent 200-265 s compiling in every new process alone.
FAISS_NPROBE = 16

#: Largest number of cells for which ``knn_method="auto"`` searches exactly. Brute force costs
#: O(n^2 d): about 11 s for 50,000 cells x 100 dimensions on 2 cores, where pynndescent took 32 s
#: at a recall of 0.84, plus 30-60 s of numba compilation in every new process; the exact search
#: reaches that cost near 100,000 cells. (scanpy switches to pynndescent at 8,192 cells.)
EXACT_KNN_MAX_CELLS = 100_000

#: ASW is computed on at most this many labelled cells: above it on a seeded subsample stratified
#: by cell type (each type keeps its share, at least two cells), since the silhouette costs
#: O(n^2 d) time. At 10,000 cells it costs about a second and the sampling error of the mean
#: silhouette is about ``sd(s_i) / sqrt(10,000)``, i.e. below 0.005 for silhouettes spread with
#: sd <= 0.5. Measured (``benchmarks/bench_scale.py --asw-check 100000``: 100,000 cells x 100
#: topics, 12 types): full ASW 0.19595 (396 s on a shared 2-core machine), subsample errors
#: +0.00095, -0.00471, +0.00048 for seeds 0, 1, 2 (about 1.5 s each). The subset size is recorded
#: in the result.
ASW_MAX_CELLS = 10_000

#: Query cells whose approximate neighbours are checked against an exact search (the recall is
#: recorded as ``knn_recall`` in the result's info); the check costs O(m n d) for m query cells.
KNN_RECALL_CELLS = 1_000

#: An approximate search whose recall on the check falls below this warns.
KNN_RECALL_WARN = 0.8

#: With ``n_jobs=None`` the resolution sweep runs in parallel worker processes (one per available
#: core) from this many cells on; below it, starting the workers costs more than they save.
PARALLEL_MIN_CELLS = 10_000

_EXTRA_HINT = 'pip install "topiceval[cluster]"'

# UMAP's constants (umap.umap_): bisection tolerance and the floor of sigma relative to the mean
# distance, and the number of bisection steps.
_SMOOTH_K_TOLERANCE = 1e-5
_MIN_K_DIST_SCALE = 1e-3
_N_BISECTION = 64
_FLOAT32_MAX = float(np.finfo(np.float32).max)


# --------------------------------------------------------------------------- validation
def check_clustering_options(
    resolutions: Sequence[float],
    n_neighbors: int,
    method: str,
    knn_method: str = "auto",
) -> tuple[float, ...]:
    """Validate clustering options; returns the resolutions as a tuple of floats.

    Raises
    ------
    InputError
        An empty, negative, non-finite or repeated resolution, ``n_neighbors`` below 2, an unknown
        method.
    """
    if method not in CLUSTER_METHODS:
        raise InputError(f"cluster method must be one of {', '.join(CLUSTER_METHODS)}, got {method!r}")
    if knn_method not in KNN_METHODS:
        raise InputError(f"kNN method must be one of {', '.join(KNN_METHODS)}, got {knn_method!r}")
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, int | np.integer):
        raise InputError(f"n_neighbors must be an integer, got {n_neighbors!r}")
    if n_neighbors < 2:
        raise InputError(f"n_neighbors must be at least 2 (the cell itself counts as one), got {n_neighbors}")
    if isinstance(resolutions, str | bytes) or np.ndim(resolutions) == 0:
        resolutions = [resolutions]  # type: ignore[list-item]
    try:
        values = tuple(float(r) for r in resolutions)
    except (TypeError, ValueError):
        raise InputError(f"resolutions must be numbers, got {resolutions!r}") from None
    if not values:
        raise InputError("give at least one resolution")
    bad = [r for r in values if not math.isfinite(r) or r < 0]
    if bad:
        raise InputError(f"resolutions must be finite and >= 0, got {bad}")
    if len(set(values)) != len(values):
        raise InputError(f"resolutions must not repeat, got {list(values)}")
    return values


def parse_resolutions(text: str) -> tuple[float, ...]:
    """``"0.5,1,1.5"`` or ``"START:STOP:STEP"`` (STOP excluded, like the paper's ``0:2:0.1``)."""
    try:
        if ":" in text:
            start, stop, step = (float(part) for part in text.split(":"))
            if step <= 0:
                raise ValueError
            count = int(round((stop - start) / step))
            values = [round(start + i * step, 10) for i in range(count)]
        else:
            values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"expected numbers separated by commas or START:STOP:STEP, got {text!r}") from None
    return tuple(values)


@dataclass(frozen=True)
class ClusteringOptions(BootstrapOption):
    """Options of the clustering metrics (the module docstring explains them); ``seed`` seeds igraph."""

    cluster_method: str = option("louvain", "community detection for ARI / NMI: louvain (paper) or leiden",
                                 kind="choice", choices=CLUSTER_METHODS)
    cluster_resolutions: tuple[float, ...] = option(
        PAPER_RESOLUTIONS, "resolutions swept for ARI / NMI: 0.5,1.0 or START:STOP:STEP (paper: 0:2:0.1, "
        "i.e. 0.0 .. 1.9)", kind="custom", parse=parse_resolutions, metavar="R")
    cluster_n_neighbors: int = option(15, "kNN graph size for clustering, the cell itself included "
                                      "(scanpy: 15)", kind="int", low=2, metavar="K")
    cluster_knn: str = option("auto", "kNN search: auto (exact up to 100,000 cells, then faiss, else "
                              "pynndescent), exact, faiss or pynndescent", kind="choice", choices=KNN_METHODS)
    cluster_backend: str = option(
        "auto", "Louvain implementation: auto (igraph up to 50,000 cells, then numba), igraph or numba",
        kind="choice", choices=LOUVAIN_BACKENDS, hashed_at_default=False)
    cluster_weighted: bool | None = option(
        None, "community detection on connectivity-weighted edges (yes) or not (no); auto (None) "
        "follows scanpy: Louvain unweighted, Leiden weighted", kind="bool_or_none")
    cluster_asw_max_cells: int = option(
        ASW_MAX_CELLS, "ASW on all labelled cells up to this many, above it on a seeded subsample "
        "stratified by cell type", kind="int", low=100, metavar="N", hashed_at_default=False)
    cluster_knn_recall_cells: int = option(
        KNN_RECALL_CELLS, "cells whose approximate neighbours are checked against exact search "
        "(knn_recall in the info; 0: no check); changes no score", kind="int", low=0, metavar="N",
        runtime=True)
    cluster_n_jobs: int | None = option(
        None, "worker processes for the resolution sweep (-1: all cores; auto: all cores from "
        "10,000 cells on); changes no number", kind="int_or_none", runtime=True)

    def _check(self) -> None:
        resolutions = check_clustering_options(self.cluster_resolutions, self.cluster_n_neighbors,
                                               self.cluster_method, self.cluster_knn)
        object.__setattr__(self, "cluster_resolutions", resolutions)
        if self.cluster_n_jobs is not None and self.cluster_n_jobs == 0:
            raise InputError("cluster_n_jobs must be a non-zero integer or None")
        _louvain_backend(self.cluster_backend, self.cluster_method, 0)


# --------------------------------------------------------------------------- kNN graph
@dataclass(frozen=True)
class KnnGraph:
    """A kNN graph of the cells and its UMAP connectivities.

    Attributes
    ----------
    indices
        ``(n_cells, n_neighbors)`` neighbour indices, nearest first; column 0 is the cell itself.
    distances
        ``(n_cells, n_neighbors)`` Euclidean distances to them (column 0 is 0).
    connectivities
        ``(n_cells, n_cells)`` symmetric CSR matrix of UMAP connectivities (zero diagonal).
    knn_method
        ``"exact"``, ``"faiss"`` or ``"pynndescent"``: the search that was used.
    seconds
        Wall time of the search, of the connectivities and of the recall check,
        ``{"knn": s, "connectivities": s, "recall": s}``.
    recall
        For an approximate search, its recall against an exact search on a seeded subsample of
        query cells (:func:`knn_recall`); ``None`` for an exact search or when not checked.
    """

    indices: np.ndarray
    distances: np.ndarray
    connectivities: sp.csr_matrix
    knn_method: str
    seconds: dict[str, float] = field(default_factory=dict)
    recall: float | None = None

    @property
    def n_cells(self) -> int:
        return int(self.indices.shape[0])

    @property
    def n_components(self) -> int:
        """Number of connected components of the connectivity graph."""
        return int(sp.csgraph.connected_components(self.connectivities, directed=False)[0])


def _cell_matrix(cells: Any, what: str = "cell matrix (n_cells x n_dims)") -> np.ndarray:
    """The cell representation, validated, without copying a float32 / float64 array.

    A memory-mapped ``.npy`` or an h5ad ``obsm`` mapped by :func:`topiceval.io.read_cell_matrix`
    stays mapped (finiteness is checked block by block); anything else goes through
    :func:`topiceval.protocol.check_matrix` (float64).
    """
    if isinstance(cells, np.ndarray) and cells.ndim == 2 and cells.dtype in (np.float32, np.float64):
        step = max(1, (1 << 22) // max(1, cells.shape[1]))
        for start in range(0, cells.shape[0], step):
            if not np.isfinite(cells[start:start + step]).all():
                return check_matrix(cells[start:start + step], what)  # raises, naming the problem
        return cells
    return check_matrix(cells, what)


def _exact_knn(cells: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.neighbors import NearestNeighbors

    # float64 as before (an exact search's copy is small: at most EXACT_KNN_MAX_CELLS rows)
    cells = np.asarray(cells, dtype=np.float64)
    search = NearestNeighbors(n_neighbors=n_neighbors - 1, algorithm="brute", metric="euclidean")
    # kneighbors() without a query excludes each cell from its own neighbours (also when it has
    # duplicates), so the cell is put back in front explicitly.
    distances, indices = search.fit(cells).kneighbors()
    return indices, distances


def _pynndescent_knn(cells: np.ndarray, n_neighbors: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        from pynndescent import NNDescent
    except ImportError:
        raise InputError(
            f'knn_method="pynndescent" needs the pynndescent package: {_EXTRA_HINT}'
        ) from None
    n_cells = cells.shape[0]
    # UMAP's (and scanpy's) settings for the forest and the number of descent iterations.
    index = NNDescent(
        cells,
        n_neighbors=n_neighbors + 1,
        metric="euclidean",
        random_state=seed,
        n_trees=min(64, 5 + int(round(n_cells**0.5 / 20.0))),
        n_iters=max(5, int(round(np.log2(n_cells)))),
        low_memory=True,
        verbose=False,
    )
    indices, distances = index.neighbor_graph
    return _drop_self(indices, distances, n_neighbors - 1)


def _faiss_knn(cells: np.ndarray, n_neighbors: int, seed: int, block: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """Approximate neighbours from faiss's inverted-file index (``IndexIVFFlat``), seeded.

    ``4 sqrt(n)`` lists from k-means (10 iterations, faiss seeded with ``seed``) on a seeded
    sample of 40 cells per list; each cell searches :data:`FAISS_NPROBE` lists. The search runs
    on a float32 copy (``n x d x 4`` bytes); the distances of the neighbours found are then
    recomputed in float64 from ``cells`` and each list sorted by them. Each query is searched on
    its own, so the result does not depend on the number of threads.
    """
    try:
        import faiss
    except ImportError:
        raise InputError(f'knn_method="faiss" needs the faiss-cpu package: {_EXTRA_HINT}') from None
    n_cells, n_dims = cells.shape
    x = np.empty((n_cells, n_dims), dtype=np.float32)
    for start in range(0, n_cells, block):
        x[start:start + block] = cells[start:start + block]
    n_lists = max(1, min(n_cells // 40, int(round(4 * math.sqrt(n_cells)))))
    quantizer = faiss.IndexFlatL2(n_dims)
    index = faiss.IndexIVFFlat(quantizer, n_dims, n_lists)
    index.cp.niter = 10
    index.cp.seed = int(seed)
    index.cp.max_points_per_centroid = 40
    sample = np.random.default_rng(seed).choice(n_cells, min(n_cells, 40 * n_lists), replace=False)
    index.train(x[np.sort(sample)])
    index.add(x)
    index.nprobe = min(FAISS_NPROBE, n_lists)
    k = min(n_neighbors + 1, n_cells)
    indices = np.empty((n_cells, k), dtype=np.int64)
    for start in range(0, n_cells, block):
        indices[start:start + block] = index.search(x[start:start + block], k)[1]
    del index, x
    # exact float64 distances of the neighbours found (-1: fewer than k found in the lists probed)
    distances = np.full(indices.shape, np.inf)
    for start in range(0, n_cells, block // 8):
        stop = min(n_cells, start + block // 8)
        found = indices[start:stop]
        ok = found >= 0
        rows = np.asarray(cells[start:stop], dtype=np.float64)
        neighbours = np.asarray(cells[np.where(ok, found, 0).ravel()], dtype=np.float64).reshape(*found.shape, n_dims)
        d = np.sqrt(((neighbours - rows[:, None, :]) ** 2).sum(2))
        distances[start:stop] = np.where(ok, d, np.inf)
    order = np.argsort(distances, axis=1, kind="stable")
    indices = np.take_along_axis(indices, order, 1)
    distances = np.take_along_axis(distances, order, 1)
    if (indices < 0).any():
        raise InputError("the faiss search found fewer neighbours than asked for some cells; "
                         'use knn_method="pynndescent" or "exact"')
    return _drop_self(indices, distances, n_neighbors - 1)


def _drop_self(indices: np.ndarray, distances: np.ndarray, n_others: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each cell from its own neighbour list (wherever it is) and keep ``n_others``.

    An approximate search may list the cell first, later, or not at all; the order of the others
    (nearest first) is kept.
    """
    others = indices != np.arange(indices.shape[0])[:, None]
    order = np.argsort(~others, axis=1, kind="stable")[:, :n_others]
    return np.take_along_axis(indices, order, 1), np.take_along_axis(distances, order, 1)


def knn_recall(
    cells: np.ndarray,
    indices: np.ndarray,
    distances: np.ndarray | None = None,
    *,
    n_query: int = KNN_RECALL_CELLS,
    seed: int = 0,
    block: int = 65_536,
) -> float:
    """Recall of a kNN graph against an exact search, on a seeded subsample of query cells.

    For each of ``n_query`` cells drawn without replacement (``numpy.random.default_rng(seed)``),
    the exact ``k - 1`` nearest other cells are found by brute force (Euclidean, float64, over
    blocks of ``block`` cells, so memory stays O(n_query x block)); a listed neighbour counts as
    found when its exact distance is within the exact ``(k - 1)``-th distance (so ties between
    equidistant cells do not count as misses). The recall is the found fraction over all query
    cells, in ``[0, 1]``; 1 for an exact graph.

    Parameters
    ----------
    cells
        ``(n_cells, n_dims)`` the cells the graph was built on.
    indices
        ``(n_cells, k)`` neighbour indices, column 0 the cell itself (as in :class:`KnnGraph`).
    distances
        Unused (the exact distances are recomputed); accepted for symmetry with the graph.
    n_query
        Query cells (all cells when there are fewer).
    seed
        Seed of the query subsample.
    block
        Cells per block of the brute-force search.

    Returns
    -------
    float
    """
    n_cells, k = indices.shape
    n_others = k - 1
    rng = np.random.default_rng(seed)
    query = np.sort(rng.choice(n_cells, min(int(n_query), n_cells), replace=False))
    q = np.asarray(cells[query], dtype=np.float64)
    q_sq = (q * q).sum(1)
    best = np.full((query.size, n_others), np.inf)
    for start in range(0, n_cells, block):
        stop = min(start + block, n_cells)
        chunk = np.asarray(cells[start:stop], dtype=np.float64)
        d2 = q_sq[:, None] + (chunk * chunk).sum(1)[None, :] - 2.0 * (q @ chunk.T)
        np.maximum(d2, 0.0, out=d2)
        inside = (query >= start) & (query < stop)
        d2[np.flatnonzero(inside), query[inside] - start] = np.inf  # the cell itself
        take = min(n_others, stop - start)
        part = np.partition(d2, take - 1, axis=1)[:, :take]
        best = np.partition(np.hstack([best, part]), n_others - 1, axis=1)[:, :n_others]
    threshold = best.max(axis=1)  # exact (k-1)-th squared distance of each query cell
    listed = np.asarray(indices[query, 1:], dtype=np.int64)
    diff = q[:, None, :] - np.asarray(cells[listed.ravel()], dtype=np.float64).reshape(query.size, n_others, -1)
    listed_d2 = (diff * diff).sum(2)
    # relative slack for the rounding of |x|^2 + |y|^2 - 2 x.y against the direct difference
    slack = 1e-9 * (1.0 + q_sq)[:, None] + 1e-12
    found = (listed_d2 <= threshold[:, None] + slack) & (listed != query[:, None])
    return float(found.sum() / found.size)


def knn_graph(
    cells: np.ndarray,
    n_neighbors: int = 15,
    *,
    knn_method: str = "auto",
    seed: int = 0,
    recall_cells: int = KNN_RECALL_CELLS,
) -> KnnGraph:
    """kNN graph of the cells (the cell itself counted as its first neighbour) and connectivities.

    Parameters
    ----------
    cells
        ``(n_cells, n_dims)`` cell representation (embedding or cell-topic matrix).
    n_neighbors
        Neighbours per cell, the cell itself included (scanpy's convention; default 15).
    knn_method
        ``"exact"``: brute-force Euclidean search (scikit-learn). ``"faiss"``: faiss's inverted-file
        index, seeded (:data:`FAISS_NPROBE` lists probed). ``"pynndescent"``: approximate
        nearest-neighbour descent with UMAP's settings, seeded. ``"auto"``: exact up to
        :data:`EXACT_KNN_MAX_CELLS` cells, faiss above it when installed, else pynndescent (else exact, with a
        warning about the time).
    seed
        Seed of the approximate search (and of the recall check's query cells).
    recall_cells
        After an approximate search, check this many query cells against an exact search
        (:func:`knn_recall`; ``KnnGraph.recall``), warning below :data:`KNN_RECALL_WARN`; 0 skips
        the check.

    Returns
    -------
    KnnGraph
    """
    cells = _cell_matrix(cells)
    check_clustering_options([1.0], n_neighbors, "louvain", knn_method)
    n_cells = cells.shape[0]
    if n_cells < n_neighbors:
        raise InputError(
            f"{n_cells} cells are fewer than n_neighbors = {n_neighbors} (the cell itself counts as one)"
        )
    method = knn_method
    if method == "auto":
        method = "exact"
        if n_cells > EXACT_KNN_MAX_CELLS:
            import importlib.util

            if importlib.util.find_spec("faiss") is not None:
                method = "faiss"
            elif importlib.util.find_spec("pynndescent") is not None:
                method = "pynndescent"
            else:
                warnings.warn(
                    f"{n_cells} cells: searching neighbours exactly, which grows with the square of "
                    f"the number of cells; install faiss-cpu ({_EXTRA_HINT}) for an approximate "
                    "search",
                    stacklevel=2,
                )
    start = time.perf_counter()
    if method == "exact":
        others, other_distances = _exact_knn(cells, n_neighbors)
    elif method == "faiss":
        others, other_distances = _faiss_knn(cells, n_neighbors, seed)
    else:
        others, other_distances = _pynndescent_knn(cells, n_neighbors, seed)
    indices = np.hstack([np.arange(n_cells)[:, None], others]).astype(np.int64)
    distances = np.hstack([np.zeros((n_cells, 1)), other_distances]).astype(np.float64)
    knn_seconds = time.perf_counter() - start
    start = time.perf_counter()
    connectivities = umap_connectivities(indices, distances)
    seconds = {"knn": knn_seconds, "connectivities": time.perf_counter() - start}
    recall = None
    if method != "exact" and recall_cells > 0:
        start = time.perf_counter()
        recall = knn_recall(cells, indices, n_query=recall_cells, seed=seed)
        seconds["recall"] = time.perf_counter() - start
        if recall < KNN_RECALL_WARN:
            warnings.warn(
                f"the approximate kNN search found {recall:.1%} of the exact neighbours of "
                f"{min(recall_cells, n_cells)} cells checked; clusters may differ from an exact "
                'graph (knn_method="exact" searches exactly, at O(n^2) cost)',
                stacklevel=2,
            )
    return KnnGraph(indices, distances, connectivities, method, seconds, recall)


def umap_connectivities(indices: np.ndarray, distances: np.ndarray) -> sp.csr_matrix:
    """UMAP's fuzzy simplicial set of a kNN graph, as ``scanpy.pp.neighbors`` computes it.

    For each cell ``i`` with neighbour distances ``d_ij`` (sorted, the cell itself first):
    ``rho_i`` is the distance to the nearest neighbour at a non-zero distance, ``sigma_i`` solves
    ``sum_{j >= 1} exp(-max(d_ij - rho_i, 0) / sigma_i) = log2(k)`` by 64 bisection steps (tolerance
    1e-5, floored at 1e-3 times the mean distance), and the directed membership is
    ``w_ij = exp(-max(d_ij - rho_i, 0) / sigma_i)`` (0 for the cell itself). The symmetric
    connectivity is the fuzzy union ``W + W^T - W * W^T`` (elementwise product). Arithmetic follows
    UMAP's float32 storage, so the result agrees with scanpy's to float32 rounding.

    Parameters
    ----------
    indices
        ``(n_cells, k)`` neighbour indices, nearest first.
    distances
        ``(n_cells, k)`` distances, ascending per row.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n_cells, n_cells)`` float32, symmetric, zero diagonal.
    """
    indices = np.asarray(indices, dtype=np.int64)
    dist = np.asarray(distances, dtype=np.float32)
    n_cells, k = dist.shape
    target = np.log2(k)

    # rho: the first non-zero distance of each row (local_connectivity = 1).
    positive = dist > 0
    has_positive = positive.any(axis=1)
    rho = np.where(has_positive, dist[np.arange(n_cells), positive.argmax(axis=1)], 0).astype(np.float32)

    # sigma: bisection on all rows at once; a row stops where its sum is within the tolerance.
    excess = (dist[:, 1:] - rho[:, None]).astype(np.float64)  # float32 difference, as in UMAP
    above = excess > 0
    lo = np.zeros(n_cells)
    hi = np.full(n_cells, _FLOAT32_MAX)
    mid = np.ones(n_cells)
    active = np.arange(n_cells)
    for _ in range(_N_BISECTION):
        if active.size == 0:
            break
        m = mid[active]
        terms = np.where(above[active], np.exp(-(excess[active] / m[:, None])), 1.0)
        psum = terms.sum(axis=1)
        moving = np.abs(psum - target) >= _SMOOTH_K_TOLERANCE
        active, psum, m = active[moving], psum[moving], m[moving]
        high = psum > target
        down, up = active[high], active[~high]
        hi[down] = m[high]
        mid[down] = (lo[down] + hi[down]) / 2.0
        lo[up] = m[~high]
        unbounded = hi[up] >= _FLOAT32_MAX
        mid[up] = np.where(unbounded, m[~high] * 2.0, (lo[up] + hi[up]) / 2.0)
    sigma = mid.astype(np.float32)
    floor = np.where(
        rho > 0,
        np.float32(_MIN_K_DIST_SCALE) * dist.mean(axis=1, dtype=np.float32),
        np.float32(_MIN_K_DIST_SCALE) * dist.mean(dtype=np.float32),
    ).astype(np.float32)
    sigma = np.maximum(sigma, floor)

    # Directed memberships in float32, as UMAP computes and stores them.
    diff = dist - rho[:, None]
    with np.errstate(over="ignore", under="ignore"):
        vals = np.where(
            (diff <= 0) | (sigma[:, None] == 0),
            np.float32(1.0),
            np.exp(-(diff / sigma[:, None])),
        ).astype(np.float32)
    vals[indices == np.arange(n_cells)[:, None]] = 0
    rows = np.repeat(np.arange(n_cells), k)
    membership = sp.coo_matrix((vals.ravel(), (rows, indices.ravel())), shape=(n_cells, n_cells)).tocsr()
    membership.eliminate_zeros()
    transpose = membership.T.tocsr()
    union = (membership + transpose - membership.multiply(transpose)).tocsr()
    union.eliminate_zeros()
    union.sort_indices()
    return union


# --------------------------------------------------------------------------- communities
def _igraph():
    try:
        import igraph
    except ImportError:
        raise InputError(f"clustering metrics need python-igraph: {_EXTRA_HINT}") from None
    return igraph


def _graph_edges(connectivities: sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """Each undirected edge once (upper triangle) and its connectivity."""
    upper = sp.triu(connectivities, k=1).tocoo()
    return np.column_stack([upper.row, upper.col]).astype(np.int64), upper.data.astype(np.float64)


def _build_igraph(n_cells: int, edges: np.ndarray, weights: np.ndarray | None):  # noqa: ANN202
    igraph = _igraph()
    # igraph reads an (m, 2) integer array directly (no list of Python ints at ~70 bytes an edge)
    graph = igraph.Graph(n=n_cells, edges=np.ascontiguousarray(edges, dtype=np.int64), directed=False)
    if weights is not None:
        graph.es["weight"] = np.asarray(weights).tolist()
    return graph


def _sweep(
    n_cells: int,
    edges: np.ndarray,
    weights: np.ndarray | None,
    resolutions: Sequence[float],
    method: str,
    seed: int,
) -> np.ndarray:
    """Memberships ``(n_cells, len(resolutions))``; runs in a worker process when parallel."""
    graph = _build_igraph(n_cells, edges, weights)
    columns = [
        cluster_graph(graph, r, method=method, seed=seed, weighted=weights is not None) for r in resolutions
    ]
    return np.column_stack(columns) if columns else np.empty((n_cells, 0), dtype=np.int64)


def cluster_graph(
    graph: Any,
    resolution: float,
    *,
    method: str = "louvain",
    seed: int = 0,
    weighted: bool = False,
) -> np.ndarray:
    """Communities of an igraph graph at one resolution, deterministic for a seed.

    Parameters
    ----------
    graph
        An undirected ``igraph.Graph`` (with a ``weight`` edge attribute if ``weighted``).
    resolution
        Modularity resolution gamma (0 puts each connected component into one cluster).
    method
        ``"louvain"`` (``community_multilevel``) or ``"leiden"`` (``community_leiden`` with the
        modularity objective, iterated until the partition is stable).
    seed
        igraph's random generator is set to ``random.Random(seed)`` for the call and restored to
        Python's ``random`` module afterwards; the global ``random`` state is not touched.
    weighted
        Use the edge weights (connectivities) or count every edge as 1.

    Returns
    -------
    numpy.ndarray
        ``(n_cells,)`` int cluster ids, numbered by size (0 = the largest; ties by first cell).
    """
    igraph = _igraph()
    weights = "weight" if weighted else None
    igraph.set_random_number_generator(random.Random(seed))
    try:
        if method == "louvain":
            part = graph.community_multilevel(weights=weights, return_levels=False, resolution=resolution)
        elif method == "leiden":
            part = graph.community_leiden(
                objective_function="modularity", weights=weights, resolution=resolution, n_iterations=-1
            )
        else:
            raise InputError(f"cluster method must be one of {', '.join(CLUSTER_METHODS)}, got {method!r}")
    finally:
        igraph.set_random_number_generator(random)
    return _relabel_by_size(np.asarray(part.membership, dtype=np.int64))


def _relabel_by_size(membership: np.ndarray) -> np.ndarray:
    _, first, inverse, counts = np.unique(membership, return_index=True, return_inverse=True, return_counts=True)
    order = np.lexsort((first, -counts))  # largest first, ties by the first cell
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[inverse.ravel()]


def _n_workers(n_jobs: int | None, n_cells: int, n_resolutions: int) -> int:
    if n_jobs is None:
        if n_cells < PARALLEL_MIN_CELLS:
            return 1
        n_jobs = -1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs == 0:
        raise InputError(f"n_jobs must be a non-zero integer or None, got {n_jobs!r}")
    if n_jobs < 0:
        available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        n_jobs = max(1, available + 1 + n_jobs)
    return int(min(n_jobs, n_resolutions))


def _louvain_backend(backend: str, method: str, n_cells: int) -> str:
    """``"igraph"`` or ``"numba"``: the implementation that runs ``method`` on ``n_cells`` cells."""
    if backend not in LOUVAIN_BACKENDS:
        raise InputError(f"cluster backend must be one of {', '.join(LOUVAIN_BACKENDS)}, got {backend!r}")
    if backend == "numba" and method != "louvain":
        raise InputError(f'cluster backend "numba" runs Louvain only; {method} runs on igraph')
    if backend == "auto":
        return "numba" if method == "louvain" and n_cells > IGRAPH_MAX_CELLS else "igraph"
    return backend


def _components(connectivities: sp.spmatrix) -> np.ndarray:
    """Connected components, numbered by size: Louvain's partition at resolution 0."""
    labels = sp.csgraph.connected_components(connectivities, directed=False)[1]
    return _relabel_by_size(labels.astype(np.int64))


def _memberships(
    graph: KnnGraph,
    resolutions: Sequence[float],
    method: str,
    seed: int,
    weighted: bool,
    n_jobs: int | None,
    progress: bool,
    backend: str = "igraph",
) -> np.ndarray:
    """Cluster ids ``(n_cells, n_resolutions)``, the same for any number of workers.

    At resolution 0 Louvain's modularity counts only the edges inside communities, so that every
    merge of connected communities gains and the partition is the graph's connected components:
    they are computed directly (the same partition, numbered the same way).
    """
    from tqdm.auto import tqdm

    out = np.empty((graph.n_cells, len(resolutions)), dtype=np.int64)
    todo = list(range(len(resolutions)))
    if method == "louvain":
        for column in [c for c in todo if resolutions[c] == 0]:
            out[:, column] = _components(graph.connectivities)
            todo.remove(column)
    bar = tqdm(total=len(resolutions), desc="clustering", disable=not progress, leave=False)
    bar.update(len(resolutions) - len(todo))
    if not todo:
        bar.close()
        return out
    workers = _n_workers(n_jobs, graph.n_cells, len(todo))
    if backend == "numba":
        from concurrent.futures import ThreadPoolExecutor

        from topiceval.metrics import _louvain_numba

        arrays = _louvain_numba.prepare(graph.connectivities, weighted)

        def one(column: int) -> np.ndarray:
            return _relabel_by_size(_louvain_numba.louvain(arrays, resolutions[column], seed))

        # the kernels release the GIL: threads share one copy of the graph
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for column, membership in zip(todo, pool.map(one, todo), strict=True):
                out[:, column] = membership
                bar.update()
        bar.close()
        return out
    edges, weights = _graph_edges(graph.connectivities)
    weights = weights if weighted else None
    # Resolutions dealt round-robin to the workers, so that each gets low and high ones; every
    # resolution is seeded on its own, so the split does not change any partition.
    chunks = [todo[i::workers] for i in range(workers)]
    if workers == 1:
        built = _build_igraph(graph.n_cells, edges, weights)
        for column in todo:
            out[:, column] = cluster_graph(built, resolutions[column], method=method, seed=seed, weighted=weighted)
            bar.update()
    else:
        from joblib import Parallel, delayed

        jobs = (
            delayed(_sweep)(graph.n_cells, edges, weights, [resolutions[i] for i in chunk], method, seed)
            for chunk in chunks
        )
        for chunk, columns in zip(chunks, Parallel(n_jobs=workers, return_as="generator")(jobs), strict=True):
            out[:, chunk] = columns
            bar.update(len(chunk))
    bar.close()
    return out


# --------------------------------------------------------------------------- scores
#: ``clustering_scores`` returns the one result type of every metric (kept under this name).
ClusteringResult = MetricResult


def _label_codes(labels: Any, n_cells: int) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    values = check_labels(labels, n_cells)
    labelled = np.array([v is not None for v in values], dtype=bool)
    if not labelled.any():
        raise InputError("no cell has a label")
    codes, classes = pd.factorize(pd.Series(values[labelled]).astype(str), sort=True)
    if len(classes) < 2:
        raise InputError(
            f"clustering metrics need cells of at least two labelled types; all labelled cells are "
            f"{classes[0]!r}"
        )
    return labelled, codes, classes


def stratified_subsample(codes: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted positions of a seeded subsample of ``size`` cells stratified by ``codes``.

    Each type gets its share ``size * n_type / n`` rounded by largest remainder (ties by type
    code), at least ``min(n_type, 2)`` cells (so a rare type keeps a silhouette); the cells of a
    type are drawn without replacement by ``numpy.random.default_rng(seed)``. All cells when
    ``size >= n``.
    """
    codes = np.asarray(codes)
    n = codes.size
    if size >= n:
        return np.arange(n)
    types, counts = np.unique(codes, return_counts=True)
    exact = size * counts / n
    take = np.floor(exact).astype(np.int64)
    order = np.lexsort((types, -(exact - take)))  # largest remainder first, ties by type code
    take[order[: size - int(take.sum())]] += 1
    take = np.minimum(np.maximum(take, np.minimum(counts, 2)), counts)
    rng = np.random.default_rng(seed)
    by_type = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    chosen = [by_type[starts[i] + rng.choice(counts[i], take[i], replace=False)] for i in range(types.size)]
    return np.sort(np.concatenate(chosen))


def _silhouette(cells: np.ndarray, rows: np.ndarray, codes: np.ndarray, seed: int,
                max_cells: int = ASW_MAX_CELLS) -> tuple[float, dict[str, Any]]:
    """ASW of ``cells[rows]`` (the labelled cells, types ``codes``), subsampled above ``max_cells``."""
    from sklearn.metrics import silhouette_score

    n = rows.size
    used = np.arange(n)
    if n > max_cells:
        used = stratified_subsample(codes, max_cells, seed)
    n_types = np.unique(codes[used]).size
    info = {"n_cells": int(used.size), "subsampled": bool(used.size < n), "metric": "euclidean",
            "max_cells": int(max_cells)}
    if used.size < n:
        info["subsample"] = "stratified by cell type, seeded"
    if not 2 <= n_types <= used.size - 1:
        warnings.warn(f"ASW: {n_types} types among {used.size} cells; the silhouette is undefined", stacklevel=3)
        return math.nan, info
    subset = np.asarray(cells[rows[used]], dtype=np.float64)  # only the used rows are read / copied
    value = float(silhouette_score(subset, codes[used], metric="euclidean"))
    info["scaled"] = (value + 1.0) / 2.0
    return value, info


def clustering_scores(
    cells: np.ndarray,
    labels: Sequence[Any] | np.ndarray | pd.Series,
    resolutions: Sequence[float] = PAPER_RESOLUTIONS,
    n_neighbors: int = 15,
    seed: int = 0,
    method: str = "louvain",
    *,
    knn_method: str = "auto",
    weighted: bool | None = None,
    asw: bool = True,
    graph: KnnGraph | None = None,
    n_jobs: int | None = None,
    progress: bool = False,
    asw_max_cells: int = ASW_MAX_CELLS,
    knn_recall_cells: int = KNN_RECALL_CELLS,
    backend: str = "auto",
) -> MetricResult:
    """ARI and NMI of graph clusters against cell types over a resolution sweep, plus ASW.

    Parameters
    ----------
    cells
        ``(n_cells, n_dims)`` cell representation: a model's cell embedding (the encoder mean, what
        the authors cluster) or its cell-topic matrix.
    labels
        ``n_cells`` cell-type labels; None / NaN marks an unlabelled cell (clustered, not scored).
    resolutions
        Resolutions to sweep (default: the paper's 0.0, 0.1, ..., 1.9).
    n_neighbors
        kNN graph size, the cell itself included (scanpy's default 15).
    seed
        Seed of the community detection (and of an approximate kNN search, and of the ASW
        subset above :data:`ASW_MAX_CELLS` cells).
    method
        ``"louvain"`` (the paper's) or ``"leiden"``.
    knn_method
        ``"auto"``, ``"exact"``, ``"faiss"`` or ``"pynndescent"`` (see :func:`knn_graph`).
    weighted
        Whether community detection uses the connectivities as edge weights. ``None`` follows
        scanpy's defaults, which the authors used: unweighted for Louvain
        (``sc.tl.louvain(use_weights=False)``), weighted for Leiden.
    asw
        Compute the cell-type silhouette (O(n^2 d); subsampled above :data:`ASW_MAX_CELLS`).
    graph
        A :class:`KnnGraph` of these cells already built (then ``n_neighbors`` and ``knn_method``
        are taken from it).
    n_jobs
        Worker processes for the sweep (joblib; -1 = all cores). ``None``: all available cores from
        :data:`PARALLEL_MIN_CELLS` cells on, else 1. The partitions do not depend on it.
    progress
        Show a progress bar over the resolutions.
    asw_max_cells
        ASW on all labelled cells up to this many, above it on a seeded subsample of this many
        stratified by cell type (:func:`stratified_subsample`).
    knn_recall_cells
        Query cells of the recall check after an approximate kNN search (:func:`knn_recall`);
        0 skips it. The recall is ``info["knn_recall"]``.
    backend
        Louvain implementation (:data:`LOUVAIN_BACKENDS`): ``"auto"`` runs igraph up to
        :data:`IGRAPH_MAX_CELLS` cells and the compiled :mod:`topiceval.metrics._louvain_numba`
        above; Leiden always runs on igraph. Recorded as ``info["backend"]``.

    Returns
    -------
    MetricResult
        ``scores`` ``ARI``, ``NMI``, ``ARI_label_free``, ``NMI_label_free``, ``ASW`` (each key's
        chosen resolution in ``key_info``); ``table`` (also ``sweep``): one row per resolution,
        ``resolution, n_clusters, ARI, NMI, AMI``; ``arrays["memberships"]`` (also
        ``memberships``): ``(n_cells, n_resolutions)`` cluster ids (0 = largest cluster).

    Raises
    ------
    InputError
        Labels of fewer than two types, shapes that disagree, NaN, bad options, python-igraph not
        installed.

    Notes
    -----
    The paper's choice is the resolution with the highest ARI (ties: the lowest resolution, as
    ``list.index(max(...))`` in the authors' code); NMI is taken there, not maximised separately.
    The label-free choice is the resolution whose number of clusters is nearest the number of
    labelled types (ties: the lowest resolution); it looks at the labels only to count the types.
    Resolution 0 puts each connected component of the graph into one cluster; a single cluster
    scores ARI = NMI = 0.
    """
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, normalized_mutual_info_score
    cells = _cell_matrix(cells)
    resolutions = check_clustering_options(resolutions, n_neighbors, method, knn_method)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise InputError(f"seed must be an integer, got {seed!r}")
    n_cells = cells.shape[0]
    labelled, codes, classes = _label_codes(labels, n_cells)
    n_unlabelled = int((~labelled).sum())
    if n_unlabelled:
        warnings.warn(
            f"clustering: {n_unlabelled} of {n_cells} cells have no label; they are clustered but "
            "not scored",
            stacklevel=2,
        )
    backend = _louvain_backend(backend, method, n_cells)
    if backend == "igraph":
        _igraph()  # fail early, before the kNN search, if the extra is missing
    if weighted is None:
        weighted = method == "leiden"
    elif not isinstance(weighted, bool | np.bool_):
        raise InputError(f"weighted must be True, False or None, got {weighted!r}")
    if graph is None:
        graph = knn_graph(cells, n_neighbors, knn_method=knn_method, seed=seed, recall_cells=knn_recall_cells)
    elif graph.n_cells != n_cells:
        raise InputError(f"the kNN graph has {graph.n_cells} cells but the cell matrix has {n_cells}")
    n_neighbors = int(graph.indices.shape[1])

    start = time.perf_counter()
    memberships = _memberships(graph, resolutions, method, int(seed), weighted, n_jobs, progress, backend)
    sweep_seconds = time.perf_counter() - start
    rows = []
    for column, resolution in enumerate(resolutions):
        scored = memberships[labelled, column]
        rows.append(
            {
                "resolution": resolution,
                "n_clusters": int(memberships[:, column].max()) + 1,
                "ARI": float(adjusted_rand_score(codes, scored)),
                "NMI": float(normalized_mutual_info_score(codes, scored)),
                "AMI": float(adjusted_mutual_info_score(codes, scored)),
            }
        )
    cluster_seconds = time.perf_counter() - start
    sweep = pd.DataFrame(rows, columns=["resolution", "n_clusters", "ARI", "NMI", "AMI"])

    n_types = len(classes)
    best = int(np.argmax(sweep["ARI"].to_numpy()))  # first maximum = lowest resolution on ties
    gap = np.abs(sweep["n_clusters"].to_numpy() - n_types)
    free = int(np.flatnonzero(gap == gap.min())[np.argmin(sweep["resolution"].to_numpy()[gap == gap.min()])])

    common = {
        "method": method,
        "backend": backend,
        "weighted": bool(weighted),
        "n_neighbors": n_neighbors,
        "knn_method": graph.knn_method,
        "n_cells": n_cells,
        "n_dims": int(cells.shape[1]),
        "n_unlabelled": n_unlabelled,
        "n_types": n_types,
        "seed": int(seed),
    }
    if graph.recall is not None:  # an approximate search, checked (see knn_recall)
        common["knn_recall"] = float(graph.recall)

    def choice(key: str, row: int, rule: str) -> tuple[float, dict[str, Any]]:
        return float(sweep.at[row, key.split("_")[0]]), {
            "resolution": float(sweep.at[row, "resolution"]),
            "n_clusters": int(sweep.at[row, "n_clusters"]),
            "choice": rule,
        }

    paper_rule = "best ARI over the sweep (paper); NMI at that resolution"
    free_rule = "number of clusters closest to the number of labelled types; lowest resolution on ties"
    results = {
        "ARI": choice("ARI", best, paper_rule),
        "NMI": choice("NMI", best, paper_rule),
        "ARI_label_free": choice("ARI_label_free", free, free_rule),
        "NMI_label_free": choice("NMI_label_free", free, free_rule),
    }
    results["ARI"][1].update(common, resolutions=list(resolutions), sweep=sweep.to_dict(orient="records"))
    asw_seconds = 0.0
    if asw:
        start = time.perf_counter()
        results["ASW"] = _silhouette(cells, np.flatnonzero(labelled), codes, int(seed), int(asw_max_cells))
        asw_seconds = time.perf_counter() - start
    info = {
        **common,
        "resolutions": list(resolutions),
        "best_resolution": float(sweep.at[best, "resolution"]),
        "label_free_resolution": float(sweep.at[free, "resolution"]),
        "n_components": graph.n_components,
        "seconds": {**graph.seconds, "clustering": cluster_seconds, "sweep": sweep_seconds,
                    "scores": cluster_seconds - sweep_seconds, "asw": asw_seconds},
    }
    scores = pd.Series({key: value for key, (value, _) in results.items()}, dtype=float)
    key_info = {key: facts for key, (_, facts) in results.items()}
    return MetricResult(scores, None, sweep, info, key_info, {"memberships": memberships})


def _compute(inputs: ScoringInput, options: ClusteringOptions) -> MetricResult:
    source, cells = inputs.cells
    result = clustering_scores(cells, inputs.labels, options.cluster_resolutions, options.cluster_n_neighbors,
                               options.seed, options.cluster_method, knn_method=options.cluster_knn,
                               weighted=options.cluster_weighted, n_jobs=options.cluster_n_jobs,
                               asw_max_cells=options.cluster_asw_max_cells,
                               knn_recall_cells=options.cluster_knn_recall_cells, backend=options.cluster_backend)
    key_info = {key: {"representation": source, **result.info_for(key)} for key in result.scores.index}
    if options.n_boot:  # intervals over cells, the best-ARI partition held fixed
        from topiceval.stats import partition_ari, partition_nmi

        labelled = np.array([v is not None for v in inputs.labels], dtype=bool)
        codes = pd.factorize(pd.Series(inputs.labels[labelled]).astype(str), sort=True)[0]
        clusters = result.memberships[labelled, int(np.argmax(result.sweep["ARI"].to_numpy()))]
        for key, statistic in (("ARI", partition_ari), ("NMI", partition_nmi)):
            key_info[key]["ci"] = options.interval(statistic, codes, clusters)
    return dataclasses.replace(result, info={"representation": source, **result.info}, key_info=key_info)


#: ARI / NMI (and the label-free choice, ASW) as the registry lists them.
FAMILY = MetricFamily(
    "clustering", ("ARI", "NMI", "ARI_label_free", "NMI_label_free", "ASW"), ("labels", "cells"),
    ClusteringOptions, _compute, aliases=("ari", "nmi"),
    requires=(("igraph", 'ARI / NMI not computed: python-igraph is not installed (pip install "topiceval[cluster]")'),),
    main=("ARI", "NMI"), rank_by=("ARI", "NMI"), detail="clustering",
)
