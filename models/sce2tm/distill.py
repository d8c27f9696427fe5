"""Cross-view distillation (paper Sec. 4.2): mutual-kNN neighbour sets and the three loss terms.

Neighbour sets (as the authors' ``utils/data/SingleCellDataHandler.py`` builds them, separately
for the expression view and the external-embedding view):

1. the ``k = 15`` Euclidean nearest neighbours of every cell, the cell itself included (so 14
   others; the reference asks UMAP's ``nearest_neighbors`` for 15, which returns the cell first).
   The reference uses approximate search (pynndescent); here the search is exact (brute force);
2. mutual pairs: ``j`` is a neighbour of ``i`` and ``i`` of ``j``;
3. connectivity ("min_tree"): the components of the mutual graph are joined, cheapest first, by
   edges of the minimum spanning tree of the kNN distance graph (Kruskal seeded with the mutual
   components);
4. the neighbour set of ``i`` is ``i`` itself followed by its neighbours in that connected graph,
   nearest first, at most ``k`` entries in all (ties broken by the lower cell index).

During training a neighbour is drawn uniformly from the set at every step, so with probability
``1 / |N(i)|`` the "neighbour" is the cell itself, as in the reference.

Loss terms (the reference's ``DistillLoss``, ``consistency_loss`` and ``entropy``; the paper's
Eq. 9-13 describe them differently, see the README):

* cluster-level contrast: the ``K`` columns of the two views' ``(B, K)`` assignment matrices are
  L2-normalised; column ``k`` of one view is the positive of column ``k`` of the other, the other
  ``2K - 2`` columns are negatives; temperature 0.5; cross-entropy summed and divided by ``2K``.
  Applied twice: (external anchors, expression neighbours) + (expression anchors, external
  neighbours);
* consistency: ``mean_i -log(theta_i . phi_i)`` (binary cross-entropy against 1, log clamped at
  -100 as torch's BCE does);
* entropy of the batch-mean assignment of each view (probabilities clamped at ``1e-9``),
  subtracted with weight 5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

__all__ = [
    "NeighbourSets",
    "knn",
    "mutual_knn_neighbours",
    "cluster_contrastive_loss",
    "consistency_loss",
    "mean_entropy",
]


@dataclass
class NeighbourSets:
    """Ragged neighbour lists in CSR form; every list starts with the cell itself.

    Attributes
    ----------
    indptr
        ``(n + 1,)`` offsets.
    indices
        Neighbour indices, list ``i`` is ``indices[indptr[i]:indptr[i + 1]]``.
    mutual
        ``(n, n)`` boolean CSR matrix of mutual kNN pairs (symmetric, no diagonal).
    connected
        ``(n, n)`` boolean CSR matrix of the mutual graph plus the joining MST edges.
    """

    indptr: np.ndarray
    indices: np.ndarray
    mutual: sp.csr_matrix
    connected: sp.csr_matrix

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return int(self.indptr.size - 1)

    @property
    def sizes(self) -> np.ndarray:
        """Length of each list (self included), ``(n,)``."""
        return np.diff(self.indptr)

    def sample(self, cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One neighbour drawn uniformly from each listed cell's set, ``(len(cells),)``."""
        start = self.indptr[cells]
        offset = np.floor(rng.random(cells.size) * (self.indptr[cells + 1] - start)).astype(np.int64)
        return self.indices[start + offset]

    def as_lists(self) -> list[np.ndarray]:
        """The neighbour lists as arrays (for inspection)."""
        return [self.indices[a:b] for a, b in zip(self.indptr[:-1], self.indptr[1:], strict=True)]


def _dense_rows(data: np.ndarray | sp.spmatrix, start: int, stop: int) -> torch.Tensor:
    block = data[start:stop]
    block = block.toarray() if sp.issparse(block) else np.asarray(block)
    return torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))


#: Largest number of cells whose neighbours ``knn_method="auto"`` searches exactly; above it the
#: search is approximate (pynndescent, as in the reference), because the exact blocked search
#: costs O(n^2 d): about 4e12 multiply-adds at 20,000 cells x 5,000 genes, 100 times that at
#: 200,000. Below it the neighbour sets are the same as before the approximate search existed.
EXACT_KNN_MAX_CELLS = 20_000


def knn(data: np.ndarray | sp.spmatrix, k: int, block: int = 2048, *, knn_method: str = "auto",
        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean ``k - 1`` nearest other cells of every cell, exact or approximate.

    Exact: distances from ``|x|^2 + |y|^2 - 2 x.y`` in float32 matrix products over blocks of
    ``block`` cells, so a sparse matrix is densified one block at a time. Approximate
    (``"pynndescent"``, or ``"auto"`` above :data:`EXACT_KNN_MAX_CELLS` cells): nearest-neighbour
    descent on the (sparse or dense) matrix with the settings of the clustering metrics'
    search (:func:`topiceval.metrics.clustering.knn_graph`), seeded, never densified; its recall
    can be checked with :func:`topiceval.metrics.clustering.knn_recall`.

    Parameters
    ----------
    data
        ``(n, d)`` dense or sparse matrix.
    k
        Neighbourhood size counting the cell itself (reference: 15).
    block
        Cells per block.
    knn_method
        ``"auto"``, ``"exact"`` or ``"pynndescent"``.
    seed
        Seed of the approximate search.

    Returns
    -------
    distances, indices
        ``(n, k - 1)`` each, nearest first (equal distances by lower index); the cell itself is
        excluded.
    """
    n = data.shape[0]
    n_other = min(k, n) - 1
    if n_other < 1:
        raise ValueError(f"need at least 2 cells for neighbours, got {n}")
    if knn_method not in ("auto", "exact", "pynndescent"):
        raise ValueError(f"knn_method must be auto, exact or pynndescent, got {knn_method!r}")
    if knn_method == "pynndescent" or (knn_method == "auto" and n > EXACT_KNN_MAX_CELLS):
        from topiceval.metrics.clustering import _pynndescent_knn

        matrix = sp.csr_matrix(data, dtype=np.float32) if sp.issparse(data) else np.asarray(data, dtype=np.float32)
        indices, distances = _pynndescent_knn(matrix, n_other + 1, seed)
        distances = np.asarray(distances, dtype=np.float64)
        indices = np.asarray(indices, dtype=np.int64)
        order = _row_order(distances, indices)
        return np.take_along_axis(distances, order, 1), np.take_along_axis(indices, order, 1)
    best_d = torch.full((n, n_other), float("inf"))
    best_i = torch.zeros((n, n_other), dtype=torch.int64)
    for a0 in range(0, n, block):
        a1 = min(a0 + block, n)
        rows = _dense_rows(data, a0, a1)
        row_sq = (rows * rows).sum(1, keepdim=True)
        for b0 in range(0, n, block):
            b1 = min(b0 + block, n)
            cols = rows if b0 == a0 else _dense_rows(data, b0, b1)
            dist = row_sq + (cols * cols).sum(1) - 2.0 * (rows @ cols.T)
            dist.clamp_(min=0.0)
            if b0 == a0:
                dist.fill_diagonal_(float("inf"))
            take = min(n_other, b1 - b0)
            d, i = torch.topk(dist, take, dim=1, largest=False, sorted=False)
            cand_d = torch.cat([best_d[a0:a1], d], dim=1)
            cand_i = torch.cat([best_i[a0:a1], i + b0], dim=1)
            keep = torch.topk(cand_d, n_other, dim=1, largest=False, sorted=False).indices
            best_d[a0:a1] = torch.gather(cand_d, 1, keep)
            best_i[a0:a1] = torch.gather(cand_i, 1, keep)
    distances = best_d.double().sqrt_().numpy()
    indices = best_i.numpy()
    order = _row_order(distances, indices)
    return np.take_along_axis(distances, order, 1), np.take_along_axis(indices, order, 1)


def _row_order(distances: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Per-row order by (distance, index)."""
    n, m = distances.shape
    rows = np.repeat(np.arange(n), m)
    flat = np.lexsort((indices.ravel(), distances.ravel(), rows))
    return (flat - rows * m).reshape(n, m)


def mutual_knn_neighbours(data: np.ndarray | sp.spmatrix, k: int = 15, *, knn_method: str = "auto",
                          seed: int = 0) -> NeighbourSets:
    """The reference's connected mutual-kNN neighbour sets (see the module docstring).

    Parameters
    ----------
    data
        ``(n, d)`` cells in one view (expression or external embedding), dense or sparse.
    k
        Neighbourhood size counting the cell itself (paper: 15).
    knn_method, seed
        The search (see :func:`knn`): exact up to :data:`EXACT_KNN_MAX_CELLS` cells by default.

    Returns
    -------
    NeighbourSets
    """
    n = data.shape[0]
    distances, indices = knn(data, k, knn_method=knn_method, seed=seed)
    rows = np.repeat(np.arange(n), indices.shape[1])
    cols = indices.ravel()
    # kNN distance graph; exact zeros (duplicate cells) would read as "no edge" to scipy
    tiny = np.finfo(np.float64).tiny
    weights = np.maximum(distances.ravel(), tiny)
    directed = sp.csr_matrix((weights, (rows, cols)), shape=(n, n))
    adjacency = (directed > 0).astype(np.int8)
    mutual = adjacency.multiply(adjacency.T).tocsr().astype(bool)
    mutual.eliminate_zeros()
    # distances are symmetric, so the union graph keeps one value per pair
    dist_graph = directed.maximum(directed.T).tocsr()

    n_comp, labels = connected_components(mutual, directed=False)
    joined = _join_components(dist_graph, labels, n_comp)
    connected = (mutual + joined).astype(bool).tocsr()
    connected.setdiag(False)
    connected.eliminate_zeros()

    # neighbour lists: self first, then connected neighbours by (distance, index)
    coo = dist_graph.multiply(connected).tocoo()
    order = np.lexsort((coo.col, coo.data, coo.row))
    row_s, col_s = coo.row[order], coo.col[order]
    rank = np.arange(row_s.size) - np.searchsorted(row_s, row_s, side="left")
    keep = rank < k - 1
    row_s, col_s = row_s[keep], col_s[keep]
    counts = np.bincount(row_s, minlength=n) + 1
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    out = np.empty(indptr[-1], dtype=np.int64)
    out[indptr[:-1]] = np.arange(n)
    slot = indptr[row_s] + 1 + rank[keep]
    out[slot] = col_s
    return NeighbourSets(indptr=indptr, indices=out, mutual=mutual, connected=connected)


def _join_components(dist_graph: sp.csr_matrix, labels: np.ndarray, n_comp: int) -> sp.csr_matrix:
    """Edges of the kNN minimum spanning tree that join the mutual components, cheapest first.

    Equivalent to Kruskal's algorithm over the spanning-tree edges with the components pre-merged
    (the reference's "min_tree" connectivity): the spanning tree of the graph whose nodes are the
    components and whose edge between two components is their cheapest tree edge.
    """
    n = dist_graph.shape[0]
    if n_comp <= 1:
        return sp.csr_matrix((n, n), dtype=bool)
    tree = minimum_spanning_tree(dist_graph).tocoo()
    ci, cj = labels[tree.row], labels[tree.col]
    between = ci != cj
    ti, tj, tw = tree.row[between], tree.col[between], tree.data[between]
    ci, cj = ci[between], cj[between]
    lo, hi = np.minimum(ci, cj), np.maximum(ci, cj)
    # cheapest tree edge per component pair
    order = np.lexsort((tw, hi, lo))
    lo, hi, ti, tj, tw = lo[order], hi[order], ti[order], tj[order], tw[order]
    first = np.ones(lo.size, dtype=bool)
    first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    lo, hi, ti, tj, tw = lo[first], hi[first], ti[first], tj[first], tw[first]
    contracted = sp.csr_matrix((tw, (lo, hi)), shape=(n_comp, n_comp))
    chosen = minimum_spanning_tree(contracted).tocoo()
    chosen_keys = np.minimum(chosen.row, chosen.col).astype(np.int64) * n_comp + np.maximum(chosen.row, chosen.col)
    mask = np.isin(lo.astype(np.int64) * n_comp + hi, chosen_keys)
    ei, ej = ti[mask], tj[mask]
    ones = np.ones(ei.size * 2, dtype=bool)
    return sp.csr_matrix((ones, (np.concatenate([ei, ej]), np.concatenate([ej, ei]))), shape=(n, n))


def cluster_contrastive_loss(p: torch.Tensor, q: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Cluster-level contrast between two ``(B, K)`` assignment matrices, a scalar.

    Columns (clusters) are L2-normalised over the batch; the loss is
    ``(1 / 2K) sum_c [logsumexp_{c' != c} s(c, c') - s(c, partner(c))]`` with
    ``s = cosine / temperature`` over the ``2K`` columns of both views.
    """
    n_clusters = p.shape[1]
    c = torch.nn.functional.normalize(torch.cat([p.T, q.T], dim=0), dim=1)
    sim = (c @ c.T) / temperature
    eye = torch.eye(2 * n_clusters, dtype=torch.bool, device=sim.device)
    positives = torch.cat([torch.diagonal(sim, n_clusters), torch.diagonal(sim, -n_clusters)])
    denominator = torch.logsumexp(sim.masked_fill(eye, float("-inf")), dim=1)
    return (denominator - positives).sum() / (2 * n_clusters)


def consistency_loss(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``mean_i -log(sum_k p_ik q_ik)`` with the log clamped at -100, a scalar."""
    agreement = (p * q).sum(1)
    return -torch.clamp(torch.log(agreement), min=-100.0).mean()


def mean_entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy of the batch-mean assignment ``mean_i p_i`` (clamped at ``1e-9``), a scalar."""
    m = torch.clamp(p.mean(0), min=1e-9)
    return -(m * torch.log(m)).sum()
