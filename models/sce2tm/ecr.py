"""Embedding clustering regularisation (ECR, paper Sec. 4.3, Eq. 14-15).

Genes are clustering samples and topics are cluster centres. The soft assignment of gene ``m`` to
topic ``k`` is the entropic optimal-transport plan ``pi*`` between uniform measures on the topic
embeddings (mass ``1/K`` each) and the gene embeddings (mass ``1/V`` each) with cost
``C[k, m] = ||t_k - g_m||^2``; the loss is ``lambda * sum(C * pi*)``.

The plan is computed exactly as the authors' released code does (``models/ECR.py``):

* plain (not log-domain) Sinkhorn scaling on ``exp(-alpha * C)`` with ``alpha = 20``
  (entropic regulariser ``epsilon = 1 / alpha``), starting from ``u = 1/K``;
* ``1e-16`` is added to every denominator (this matters: at initialisation the kernel entries are
  about ``exp(-40)``, so the constant dominates the first scalings, and a log-domain solver would
  give a different plan);
* the marginal error ``sum_m |v_m (K^T u)_m - 1/V|`` is checked at iterations 1, 51, 101, ... and
  the loop stops when it is at most ``5e-3``, or after 1000 iterations;
* the loss is differentiated *through the unrolled iterations* (the reference builds an autograd
  graph over the whole loop), not by the envelope theorem.

:class:`_UnrolledSinkhorn` gives the same gradient as autograd through the loop, with a hand-written
reverse pass: the forward runs without autograd bookkeeping and keeps only the scaling vectors, and
the backward replays the ``2T`` matrix-vector products in reverse and forms the kernel gradient with
two matrix products instead of ``2T`` outer products.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["SinkhornResult", "sinkhorn_plan", "ecr_loss", "pairwise_sq_distances"]


@dataclass
class SinkhornResult:
    """A transport plan and how it was reached.

    Attributes
    ----------
    plan
        ``(K, V)`` transport plan; rows sum to about ``1/K``, columns to about ``1/V``.
    n_iter
        Number of Sinkhorn iterations run.
    error
        The last marginal error checked (``sum_m |v_m (K^T u)_m - 1/V|``).
    """

    plan: torch.Tensor
    n_iter: int
    error: float


def pairwise_sq_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``||x_i - y_j||^2`` as ``|x|^2 + |y|^2 - 2 x.y``, ``(n_x, n_y)``.

    The expanded form is the reference's; it can be slightly negative for near-identical rows.
    """
    return (x * x).sum(1, keepdim=True) + (y * y).sum(1) - 2.0 * (x @ y.T)


def _run(kernel: torch.Tensor, max_iter: int, tol: float, check_every: int, eps: float,
         keep: bool) -> tuple[torch.Tensor, torch.Tensor, int, float]:
    """Sinkhorn scalings in the reference's arithmetic, on the unit-mass scale.

    Works with ``u' = u / a`` and ``v' = v / b`` (``a = 1/K``, ``b = 1/V``):
    ``v'_t = 1 / (K^T u_{t-1} + eps)`` and ``u'_t = 1 / (K v_t + eps)``, where ``u = a u'`` and
    ``v = b v'`` are folded into the matrix-vector products, so each iteration is two ``addmv`` and
    two reciprocals. Returns ``U'`` ``(T + 1, K)`` (row 0 the start) and ``V'`` ``(T, V)`` (all
    rows when ``keep``, else only the last), ``T`` and the last error checked.
    """
    n_rows, n_cols = kernel.shape
    a, b = 1.0 / n_rows, 1.0 / n_cols
    kt = kernel.t()  # a transposed view: BLAS gemv with the transpose flag
    rows = max_iter if keep else 1
    U = torch.empty((rows + 1, n_rows), dtype=kernel.dtype, device=kernel.device)
    V = torch.empty((rows, n_cols), dtype=kernel.dtype, device=kernel.device)
    eps_rows = torch.full((n_rows,), eps, dtype=kernel.dtype, device=kernel.device)
    eps_cols = torch.full((n_cols,), eps, dtype=kernel.dtype, device=kernel.device)
    U[0].fill_(1.0)  # u = 1/K, i.e. u' = 1
    u = v = None
    u_prev = U[0]
    err = 1.0
    n_iter = 0
    while err > tol and n_iter < max_iter:
        v = V[n_iter] if keep else V[0]
        u = U[n_iter + 1] if keep else U[(n_iter + 1) % 2]
        torch.reciprocal(torch.addmv(eps_cols, kt, u_prev, alpha=a), out=v)
        torch.reciprocal(torch.addmv(eps_rows, kernel, v, alpha=b), out=u)
        n_iter += 1
        if n_iter % check_every == 1:
            # sum_m |v_m (K^T u)_m - b|
            err = float(((v * torch.mv(kt, u)).mul_(a * b) - b).abs_().sum())
        u_prev = u
    if keep:
        return U[: n_iter + 1], V[:n_iter], n_iter, err
    return u[None], v[None], n_iter, err


class _UnrolledSinkhorn(torch.autograd.Function):
    """cost ``(K, V)`` -> plan ``(K, V)``, differentiated through every iteration."""

    @staticmethod
    def forward(ctx, cost, alpha, max_iter, tol, check_every, eps, info):  # noqa: ANN001, D102
        kernel = torch.exp(-alpha * cost)
        U, V, n_iter, err = _run(kernel, max_iter, tol, check_every, eps, keep=True)
        n_rows, n_cols = kernel.shape
        a, b = 1.0 / n_rows, 1.0 / n_cols
        plan = (a * U[-1])[:, None] * kernel * (b * V[-1])[None, :]
        ctx.alpha = alpha
        info["n_iter"], info["error"] = n_iter, err
        ctx.save_for_backward(kernel, U, V)
        return plan

    @staticmethod
    def backward(ctx, grad_plan):  # noqa: ANN001, D102
        kernel, U, V = ctx.saved_tensors  # scaled: u_t = a U[t], v_t = b V[t - 1]
        n_rows, n_cols = kernel.shape
        a, b = 1.0 / n_rows, 1.0 / n_cols
        T = V.shape[0]
        kt = kernel.t()
        u_T, v_T = a * U[-1], b * V[-1]
        gk = grad_plan * kernel
        grad_kernel = grad_plan * (u_T[:, None] * v_T[None, :])
        gu = torch.mv(gk, v_T)        # dL/du_T
        gv_direct = torch.mv(gk.t(), u_T)  # dL/dv_T from the plan
        # u_t = a / (K v_t + eps): du_t/dr_t = -u_t^2 / a = -a U[t]^2 ; likewise -b V[t-1]^2
        cu = U[1:].square().mul_(-a)
        cv = V.square().mul_(-b)
        g_r = torch.empty((T, n_rows), dtype=kernel.dtype, device=kernel.device)
        g_s = torch.empty((T, n_cols), dtype=kernel.dtype, device=kernel.device)
        for t in range(T - 1, -1, -1):
            gr = torch.mul(gu, cu[t], out=g_r[t])
            gv = torch.addmv(gv_direct, kt, gr) if t == T - 1 else torch.mv(kt, gr)
            gs = torch.mul(gv, cv[t], out=g_s[t])
            gu = torch.mv(kernel, gs)
        # sum_t gr_t v_t^T + u_{t-1} gs_t^T, with v_t = b V[t-1] and u_{t-1} = a U[t-1]
        grad_kernel.addmm_(g_r.t(), V, alpha=b).addmm_(U[:-1].t(), g_s, alpha=a)
        return grad_kernel.mul_(kernel).mul_(-ctx.alpha), None, None, None, None, None, None


def sinkhorn_plan(
    cost: torch.Tensor,
    alpha: float = 20.0,
    max_iter: int = 1000,
    tol: float = 5e-3,
    check_every: int = 50,
    eps: float = 1e-16,
) -> SinkhornResult:
    """Entropic OT plan between uniform row and column measures, as in the reference code.

    Parameters
    ----------
    cost
        ``(K, V)`` cost matrix (topics x genes in scE2TM). Gradients flow back to it through the
        unrolled iterations when it requires grad.
    alpha
        Inverse entropic regulariser: the kernel is ``exp(-alpha * cost)`` (reference: 20).
    max_iter
        Most iterations (reference: 1000).
    tol
        Stop when the column-marginal error is at most this (reference: ``5e-3``).
    check_every
        The error is checked at iterations ``1, 1 + check_every, ...`` (reference: 50).
    eps
        Added to every denominator (reference: ``1e-16``).

    Returns
    -------
    SinkhornResult
        The ``(K, V)`` plan, iterations run and the last error checked.
    """
    if cost.ndim != 2:
        raise ValueError(f"cost must be 2-d, got shape {tuple(cost.shape)}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}")
    if cost.requires_grad and torch.is_grad_enabled():
        info: dict[str, float] = {}
        plan = _UnrolledSinkhorn.apply(cost, float(alpha), int(max_iter), float(tol), int(check_every), float(eps), info)
        return SinkhornResult(plan, int(info["n_iter"]), float(info["error"]))
    with torch.no_grad():
        kernel = torch.exp(-alpha * cost)
        U, V, n_iter, err = _run(kernel, max_iter, tol, check_every, eps, keep=False)
        plan = (U[-1] / cost.shape[0])[:, None] * kernel * (V[-1] / cost.shape[1])[None, :]
    return SinkhornResult(plan, n_iter, err)


def ecr_loss(cost: torch.Tensor, weight: float = 100.0, **sinkhorn_kwargs: float) -> tuple[torch.Tensor, SinkhornResult]:
    """ECR loss ``weight * sum(cost * plan)`` (paper Eq. 15) and the Sinkhorn result.

    ``cost`` is the ``(K, V)`` topic-gene squared-distance matrix; ``weight`` is the paper's
    ``lambda`` (reference configuration: 100; the paper mentions 20 or 100).
    """
    result = sinkhorn_plan(cost, **sinkhorn_kwargs)
    return weight * (result.plan * cost).sum(), result
