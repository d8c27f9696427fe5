"""Louvain (multilevel modularity optimisation) compiled with numba, for graphs past igraph's reach.

Why not a library: python-igraph's ``community_multilevel`` is the reference (and the default up
to :data:`topiceval.metrics.clustering.IGRAPH_MAX_CELLS` cells), but one call on the kNN graph of
a million cells took 392 s on the shared 2-core machine, and scikit-network's Cython Louvain 70-97 s,
i.e. the paper's 20-resolution sweep alone far over the issue's 10-minute budget; networkit's
parallel Louvain is not deterministic across thread counts. This is the textbook method (Blondel
et al. 2008) with the resolution of Reichardt and Bornholdt, as igraph implements it:

* quality ``Q = 1/(2m) sum_ij (A_ij - gamma k_i k_j / (2m)) [c_i = c_j]``;
* local moving: nodes are visited in a seeded random order (``numpy.random.default_rng(seed)``,
  a new permutation at every level); a node leaves its community and joins the neighbouring
  community with the largest gain ``k_i,in(c) - gamma tot(c) k_i / (2m)`` (its own community on
  ties, else the first neighbour's community in adjacency order); instead of full passes over
  all nodes until none moves (igraph), a node is visited again only after a neighbour moved
  (the queue of Traag et al.'s fast local moving, which reaches the same kind of local optimum:
  no node can gain by moving), so the work per level stays near linear at a million cells;
* aggregation: communities become nodes (internal weight as a self-loop), and the two steps
  repeat until a level merges nothing.

Every kernel is sequential and every floating-point sum runs in a fixed order, so a seed gives the
same partition whatever the number of threads; ``nogil`` lets a sweep run resolutions in threads.
The plain-Python twins (``kernel.py_func``) are what the tests compare the compiled code against,
with igraph's partitions and modularity as the independent reference.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

__all__ = ["GAIN_TOLERANCE", "louvain", "prepare"]

_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}

#: A node moves only when the gain beats staying by more than this, relative to its degree (so that
#: floating-point rounding cannot make a node cycle between two equally good communities).
GAIN_TOLERANCE = 1e-12


@numba.njit(**_OPTIONS)
def move_nodes(indptr, indices, weights, degree, order, scale, community, tot):  # pragma: no cover
    """Local moving on one level; updates ``community`` / ``tot`` in place, returns the moves made.

    ``scale`` is ``gamma / (2m)``; ``tot[c]`` the summed degree of community ``c``. Nodes wait in
    a first-in first-out queue, all of them at first in the order ``order``; a node that moves
    puts its neighbours outside its new community back at the end of the queue unless they are
    queued already (the fast local moving of Traag et al. 2019), until the queue is empty.
    """
    n = indptr.size - 1
    links = np.zeros(n)
    mark = np.full(n, -1, dtype=np.int64)
    touched = np.empty(n, dtype=np.int64)
    queue = order.copy()
    queued = np.ones(n, dtype=np.bool_)
    head = 0
    size = n
    moves = 0
    stamp = 0  # one per visit: marks which communities this visit has touched
    while size > 0:
        i = queue[head]
        head += 1
        if head == n:
            head = 0
        size -= 1
        queued[i] = False
        own = community[i]
        ki = degree[i]
        stamp += 1
        mark[own] = stamp
        links[own] = 0.0
        touched[0] = own
        n_touched = 1
        for t in range(indptr[i], indptr[i + 1]):
            j = indices[t]
            if j == i:
                continue
            c = community[j]
            if mark[c] != stamp:
                mark[c] = stamp
                links[c] = 0.0
                touched[n_touched] = c
                n_touched += 1
            links[c] += weights[t]
        tot[own] -= ki
        best = own
        own_gain = links[own] - scale * tot[own] * ki
        best_gain = own_gain
        for q in range(1, n_touched):
            c = touched[q]
            gain = links[c] - scale * tot[c] * ki
            if gain > best_gain:
                best_gain = gain
                best = c
        # a move must gain more than rounding, so that no node cycles between equal communities
        if best != own and best_gain - own_gain <= GAIN_TOLERANCE * (abs(own_gain) + ki):
            best = own
        tot[best] += ki
        if best != own:
            community[i] = best
            moves += 1
            for t in range(indptr[i], indptr[i + 1]):
                j = indices[t]
                if not queued[j] and community[j] != best:
                    queued[j] = True
                    queue[(head + size) % n] = j
                    size += 1
    return moves


@numba.njit(**_OPTIONS)
def renumber(community):  # pragma: no cover - compiled
    """Community ids ``0 .. C-1`` in order of first appearance; returns ``(ids, C)``."""
    n = community.size
    new = np.full(n, -1, dtype=np.int64)
    out = np.empty(n, dtype=np.int64)
    count = 0
    for i in range(n):
        c = community[i]
        if new[c] < 0:
            new[c] = count
            count += 1
        out[i] = new[c]
    return out, count


@numba.njit(**_OPTIONS)
def aggregate(indptr, indices, weights, ids, n_new):  # pragma: no cover - compiled
    """The community graph (CSR, self-loops holding internal weight) of a renumbered partition."""
    n = indptr.size - 1
    # members of each new node, by counting sort
    start = np.zeros(n_new + 1, dtype=np.int64)
    for i in range(n):
        start[ids[i] + 1] += 1
    for c in range(n_new):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    members = np.empty(n, dtype=np.int64)
    for i in range(n):
        members[fill[ids[i]]] = i
        fill[ids[i]] += 1
    links = np.zeros(n_new)
    mark = np.full(n_new, -1, dtype=np.int64)
    touched = np.empty(n_new, dtype=np.int64)
    new_indptr = np.zeros(n_new + 1, dtype=np.int64)
    # at most as many entries as the old graph
    new_indices = np.empty(indices.size, dtype=np.int64)
    new_weights = np.empty(indices.size)
    nnz = 0
    for c in range(n_new):
        n_touched = 0
        for m in range(start[c], start[c + 1]):
            i = members[m]
            for t in range(indptr[i], indptr[i + 1]):
                d = ids[indices[t]]
                if mark[d] != c:
                    mark[d] = c
                    links[d] = 0.0
                    touched[n_touched] = d
                    n_touched += 1
                links[d] += weights[t]
        for q in range(n_touched):
            new_indices[nnz] = touched[q]
            new_weights[nnz] = links[touched[q]]
            nnz += 1
        new_indptr[c + 1] = nnz
    return new_indptr, new_indices[:nnz].copy(), new_weights[:nnz].copy()


@numba.njit(**_OPTIONS)
def row_sums(indptr, weights):  # pragma: no cover - compiled
    n = indptr.size - 1
    out = np.zeros(n)
    for i in range(n):
        for t in range(indptr[i], indptr[i + 1]):
            out[i] += weights[t]
    return out


def prepare(adjacency: sp.spmatrix, weighted: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr, indices, weights)`` of a graph as :func:`louvain` reads it (built once per sweep)."""
    csr = sp.csr_matrix(adjacency)
    weights = csr.data.astype(np.float64) if weighted else np.ones(csr.indices.size)
    return csr.indptr.astype(np.int64), csr.indices.astype(np.int64), weights


def louvain(
    adjacency: sp.spmatrix | tuple[np.ndarray, np.ndarray, np.ndarray],
    resolution: float = 1.0,
    seed: int = 0,
    *,
    weighted: bool = False,
    compiled: bool = True,
) -> np.ndarray:
    """Louvain communities of an undirected graph at one resolution, deterministic for a seed.

    Parameters
    ----------
    adjacency
        ``(n, n)`` symmetric sparse matrix whose stored entries are the edges (both directions),
        or its :func:`prepare` arrays.
    resolution
        Modularity resolution gamma >= 0.
    seed
        Seed of the node orders (``numpy.random.default_rng(seed)``).
    weighted
        Use the stored values as edge weights, or count every stored edge as 1 (a sparse
        ``adjacency`` only; prepared arrays carry their weights).
    compiled
        Run the numba kernels (``False``: their plain-Python twins, for the tests).

    Returns
    -------
    numpy.ndarray
        ``(n,)`` int64 community of each node, numbered in order of first appearance.
    """
    kernels = (move_nodes, renumber, aggregate, row_sums)
    if not compiled:
        kernels = tuple(k.py_func for k in kernels)
    move, renum, agg, sums = kernels
    if isinstance(adjacency, tuple):
        indptr, indices, weights = adjacency
    else:
        indptr, indices, weights = prepare(adjacency, weighted)
    n = indptr.size - 1
    rng = np.random.default_rng(seed)
    degree = sums(indptr, weights)
    two_m = float(degree.sum())
    membership = np.arange(n, dtype=np.int64)
    if n == 0 or two_m == 0.0:
        return membership
    scale = float(resolution) / two_m
    while True:
        n_level = indptr.size - 1
        community = np.arange(n_level, dtype=np.int64)
        tot = degree.copy()
        order = rng.permutation(n_level).astype(np.int64)
        moves = move(indptr, indices, weights, degree, order, scale, community, tot)
        ids, n_new = renum(community)
        membership = ids[membership]
        if moves == 0 or n_new == n_level:
            return membership
        indptr, indices, weights = agg(indptr, indices, weights, ids, n_new)
        degree = sums(indptr, weights)
