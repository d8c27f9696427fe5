"""Spectra's loss without its genes x genes matrices: the gene-graph terms in row blocks.

Spectra's ``SPECTRA.loss_no_cell_types`` (scspectra 0.2) adds to the reconstruction term two
terms over every pair of genes ``(i, j)``, ``i != j``, with ``M = theta eta theta^T``
(``theta``: genes x factors on the simplex, ``eta`` symmetric in (0, 1)):

* ``term2 = -sum A_ij W_ij log(a M_ij + b)`` over the gene-set graph's edges (``A_ij = 1``),
  ``a = (1 - rho)(1 - kappa)``, ``b = (1 - rho) kappa``;
* ``term3 = -sum (1 - A_ij) log(c (1 - M_ij) + rho)`` over every other pair, ``c = (1 - kappa)(1 - rho)``.

Spectra builds each as a genes x genes tensor, several of them, and autograd keeps them for the
backward pass: on 5,000 genes some twenty passes over 100 MB arrays an epoch, so an epoch waits on
memory (0.6 s on one core here; 1.3-1.5 s when two such fits share the machine's memory bandwidth).
:func:`graph_loss` computes the same two terms and their gradients (with respect to ``theta``,
``eta``, ``a``, ``b``, ``c`` and ``rho``; autograd carries them on to Spectra's parameters) one block
of rows of ``M`` at a time, a block small enough to stay in the CPU's cache, and keeps only the
gradients: the same numbers to float32 rounding (block sums are added in float64), never a
genes x genes array but the graph's edges. Written here because no library computes this loss;
its check is Spectra's own loss and autograd (``tests/test_adapters_spectra.py``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

__all__ = ["BLOCK_ELEMENTS", "GeneGraph", "graph_loss", "loss_no_cell_types"]

#: Elements of one block of rows of ``M`` (float32: 2 MiB), so that a block and the few arrays
#: derived from it stay in the CPU's cache.
BLOCK_ELEMENTS = 1 << 19


class GeneGraph:
    """The gene-set graph of a ``SPECTRA`` model as row blocks of edges.

    Parameters
    ----------
    adj_matrix, weights, adj_matrix_1m
        The model's genes x genes tensors (``SPECTRA.adj_matrix``, ``.weights``, ``.adj_matrix_1m``).
    block
        Rows of ``M`` per block; ``None``: :data:`BLOCK_ELEMENTS` divided by the number of genes.

    Raises
    ------
    ValueError
        If the matrices are not what Spectra builds from a gene-set dictionary (a 0 / 1 adjacency
        with an empty diagonal and ``adj_matrix_1m`` its complement off the diagonal), the case
        the blocked terms rely on.
    """

    def __init__(self, adj_matrix: Any, weights: Any, adj_matrix_1m: Any, block: int | None = None) -> None:
        adj = np.asarray(adj_matrix.detach().cpu().numpy())
        complement = np.asarray(adj_matrix_1m.detach().cpu().numpy())
        n = adj.shape[0]
        if adj.shape != (n, n) or complement.shape != (n, n) or tuple(weights.shape) != (n, n):
            raise ValueError("spectra graph: the adjacency, weights and complement must be square and of one size")
        if np.any(np.diagonal(adj) != 0) or np.any(np.diagonal(complement) != 0):
            raise ValueError("spectra graph: the adjacency and its complement must have an empty diagonal")
        if not np.isin(adj, (0.0, 1.0)).all():
            raise ValueError("spectra graph: the adjacency must be 0 / 1")
        complement = complement + np.eye(n, dtype=complement.dtype)  # compared off the diagonal only
        if not np.array_equal(complement, 1.0 - adj):
            raise ValueError("spectra graph: adj_matrix_1m must be 1 - adj_matrix off the diagonal")
        del complement
        rows, cols = np.nonzero(adj)
        edge_weights = (adj[rows, cols] * np.asarray(weights.detach().cpu().numpy())[rows, cols]).astype(adj.dtype)
        self.n_genes = n
        self.n_edges = int(rows.size)
        self.block = max(1, int(block) if block is not None else BLOCK_ELEMENTS // max(n, 1))
        # the graph Spectra builds is symmetric: then dL/dtheta is 2 G theta eta (one product a block)
        symmetric = np.zeros_like(adj)
        symmetric[rows, cols] = edge_weights
        self.symmetric = bool(np.array_equal(adj, adj.T) and np.array_equal(symmetric, symmetric.T))
        del symmetric
        import torch

        bounds = np.searchsorted(rows, np.arange(0, n + self.block, self.block))
        self.blocks = []
        for start in range(0, n, self.block):
            stop = min(start + self.block, n)
            lo, hi = bounds[start // self.block], bounds[start // self.block + 1]
            diagonal = np.arange(stop - start)
            self.blocks.append((start, stop, torch.from_numpy(diagonal), torch.from_numpy(diagonal + start),
                                torch.from_numpy((rows[lo:hi] - start).astype(np.int64)),
                                torch.from_numpy(cols[lo:hi].astype(np.int64)),
                                torch.from_numpy(edge_weights[lo:hi])))

    @classmethod
    def from_model(cls, internal: Any, block: int | None = None) -> GeneGraph | None:
        """The graph of a ``SPECTRA`` model fitted without cell types; ``None`` if it has none
        (an empty adjacency: Spectra's loss then has no graph terms)."""
        if len(internal.adj_matrix) == 0:
            return None
        return cls(internal.adj_matrix, internal.weights, internal.adj_matrix_1m, block)


@functools.lru_cache(maxsize=1)
def _function() -> Any:
    """The autograd function (defined on first use: importing this module imports no torch)."""
    import torch

    class GraphTerms(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, theta: Any, eta: Any, a: Any, b: Any, c: Any, rho: Any, graph: GeneGraph) -> Any:
            left = theta @ eta  # M = left @ theta^T
            right = left if graph.symmetric else theta @ eta.T
            d_theta = torch.zeros_like(theta)
            d_eta = torch.zeros_like(eta)
            # float32 sums a block (as Spectra's own sums), added up in float64 (Python floats)
            loss = d_a = d_b = inverse_sum = 0.0
            off_edges = 0  # pairs i != j off the graph
            for start, stop, diag_rows, diag_cols, rows, cols, weights in graph.blocks:
                weights = weights.to(theta.dtype)
                m = left[start:stop] @ theta.T
                y = torch.sub(1.0, m).mul_(c).add_(rho)  # term3's argument: (1 - M) c + rho
                y[diag_rows, diag_cols] = 1.0  # log 1 = 0; its inverse is zeroed below
                m_edges = m[rows, cols]
                y_edges = a * m_edges + b  # term2's argument on the edges
                loss -= float(torch.log(y).sum()) - float(torch.log(y[rows, cols]).sum()) \
                    + float((weights * torch.log(y_edges)).sum())
                d_a -= float((weights * m_edges / y_edges).sum())
                d_b -= float((weights / y_edges).sum())
                inverse = torch.reciprocal(y)
                inverse[diag_rows, diag_cols] = 0.0
                inverse[rows, cols] = 0.0
                inverse_sum += float(inverse.sum())
                off_edges += (stop - start) * (theta.shape[0] - 1) - int(rows.numel())
                grad = inverse.mul_(c)  # dL/dM off the edges: c / y
                grad[rows, cols] = -weights * a / y_edges
                h = grad @ theta
                d_eta += theta[start:stop].T @ h
                if graph.symmetric:
                    d_theta[start:stop] += 2.0 * (h @ eta)
                else:
                    d_theta[start:stop] += grad @ right
                    d_theta += grad.T @ left[start:stop]
            # dL/dc = -sum (1 - M) / y and (1 - M) = (y - rho) / c off the graph; dL/drho = -sum 1 / y
            d_c = -(off_edges - float(rho) * inverse_sum) / float(c)
            scalars = torch.tensor([d_a, d_b, d_c, -inverse_sum], dtype=theta.dtype)
            ctx.save_for_backward(d_theta, d_eta, scalars)
            return theta.new_tensor(loss)

        @staticmethod
        def backward(ctx: Any, grad_output: Any) -> Any:
            d_theta, d_eta, scalars = ctx.saved_tensors
            d = grad_output * scalars
            return grad_output * d_theta, grad_output * d_eta, d[0], d[1], d[2], d[3], None

    return GraphTerms


def graph_loss(theta: Any, eta: Any, kappa: Any, rho: Any, graph: GeneGraph) -> Any:
    """Spectra's ``term2 + term3`` (module docstring) for ``theta`` (genes x factors, rows on the
    simplex), symmetric ``eta`` and the probabilities ``kappa`` and ``rho``, differentiable."""
    a = (1.0 - rho) * (1.0 - kappa)
    b = (1.0 - rho) * kappa
    c = (1.0 - kappa) * (1.0 - rho)
    return _function().apply(theta, eta, a, b, c, rho, graph)


def loss_no_cell_types(model: Any, X: Any, graph: GeneGraph | None) -> Any:
    """``SPECTRA.loss_no_cell_types(X)`` with the graph terms of :func:`graph_loss`.

    The parameters' transforms and the reconstruction term are Spectra's, expression for
    expression; ``graph`` is :meth:`GeneGraph.from_model` of ``model``, ``None`` when the model
    has no graph (Spectra then drops both terms).
    """
    import torch

    X = torch.Tensor(X)
    theta = torch.softmax(model.theta, dim=1)
    eta = model.eta.exp() / (1.0 + (model.eta).exp())
    eta = 0.5 * (eta + eta.T)
    gene_scaling = model.gene_scaling.exp() / (1.0 + model.gene_scaling.exp())
    kappa = model.kappa.exp() / (1 + model.kappa.exp())
    rho = model.rho.exp() / (1 + model.rho.exp())
    alpha = torch.exp(model.alpha)
    scaled = theta * (gene_scaling + model.delta)[:, None]
    recon = alpha @ scaled.T
    term1 = -1.0 * (torch.xlogy(X, recon) - recon).sum()
    if graph is None:
        return model.lam * term1
    return model.lam * term1 + graph_loss(theta, eta, kappa, rho, graph)
