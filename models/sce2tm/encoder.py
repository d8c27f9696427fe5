"""The cell-topic head ``f`` (a VAE encoder) and the cell-cluster head ``g`` (paper Sec. 4.2, 4.4.1).

As in the authors' released code (``models/scE2TM.py``):

* encoder body ``Linear(V, 200) - BatchNorm - Tanh - Linear(200, 200)`` (no activation after the
  second layer), dropout (0 by default), then ``mu = BatchNorm(Linear(200, K))`` and
  ``logvar = BatchNorm(Linear(200, K))``;
* during training ``z = mu + exp(logvar / 2) * eps``; the cell-topic proportions are
  ``softmax(z)``; in evaluation mode ``z = mu`` (the reference returns this *raw* ``mu`` as its
  cell-topic output and clusters it);
* the prior is the logistic-normal Laplace approximation of a symmetric Dirichlet(1):
  ``mu_0 = 0`` and ``var_0 = 1 - 1/K``; the KL term is averaged over cells;
* the cluster head is ``Linear(d, d) - BatchNorm - Tanh - Linear(d, K)`` followed by a softmax over
  the ``K`` clusters, ``d`` the width of the external cell embedding (the reference fixes
  ``d = 512``, scGPT's width).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["Encoder", "ClusterHead", "LogisticNormalPrior"]


class Encoder(nn.Module):
    """Expression ``(n, V)`` -> ``mu``, ``logvar``, each ``(n, K)``.

    Parameters
    ----------
    n_genes
        Input width ``V``.
    n_topics
        Number of topics ``K``.
    hidden
        Hidden width (paper: 200).
    dropout
        Dropout on the hidden representation (reference: 0).
    """

    def __init__(self, n_genes: int, n_topics: int, hidden: int = 200, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(n_genes, hidden)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc_mu = nn.Linear(hidden, n_topics)
        self.fc_logvar = nn.Linear(hidden, n_topics)
        self.bn_mu = nn.BatchNorm1d(n_topics)
        self.bn_logvar = nn.BatchNorm1d(n_topics)

    def forward(self, x: torch.Tensor, return_pre: bool = False, h1: torch.Tensor | None = None):  # noqa: ANN201
        """``mu`` and ``logvar`` ``(n, K)``; with ``return_pre`` also the three pre-BatchNorm inputs.

        ``h1``, when given, is ``fc1(x)`` computed beforehand (``x`` is then not used).
        """
        if h1 is None:
            h1 = self.fc1(x)
        hidden = self.dropout(self.fc2(torch.tanh(self.bn1(h1))))
        m = self.fc_mu(hidden)
        lv = self.fc_logvar(hidden)
        mu, logvar = self.bn_mu(m), self.bn_logvar(lv)
        if return_pre:
            return mu, logvar, (h1, m, lv)
        return mu, logvar

    @torch.no_grad()
    def repeat_running_stats(self, pre: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
        """Update the BatchNorm running statistics once more with a batch's pre-BatchNorm inputs.

        The reference encodes the anchor batch twice per step (once for the reconstruction, once
        more for the cross-view losses), which updates the running statistics twice; the second
        pass differs from the first only in the reparameterisation noise, so :mod:`.model` reuses
        the first pass and calls this to keep the running statistics identical to the reference's.
        """
        if not self.training:
            return
        for bn, value in zip((self.bn1, self.bn_mu, self.bn_logvar), pre, strict=True):
            bn(value.detach())


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, training: bool) -> torch.Tensor:
    """``mu + exp(logvar / 2) * N(0, 1)`` when training, ``mu`` otherwise."""
    if not training:
        return mu
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


class LogisticNormalPrior(nn.Module):
    """Laplace approximation of a symmetric Dirichlet(``alpha``) in the softmax basis.

    ``mu_0 = log(alpha) - mean(log(alpha)) = 0`` and
    ``var_0 = (1/alpha) (1 - 2/K) + (1/K^2) sum_k 1/alpha`` (``= 1 - 1/K`` for ``alpha = 1``).
    """

    def __init__(self, n_topics: int, alpha: float = 1.0) -> None:
        super().__init__()
        self.n_topics = n_topics
        log_alpha = math.log(alpha)
        var = (1.0 / alpha) * (1.0 - 2.0 / n_topics) + (1.0 / n_topics**2) * n_topics / alpha
        self.register_buffer("prior_mu", torch.full((1, n_topics), log_alpha - log_alpha))
        self.register_buffer("prior_var", torch.full((1, n_topics), var))

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Mean over cells of ``KL(N(mu, exp(logvar)) || N(mu_0, var_0))``, a scalar."""
        var_ratio = logvar.exp() / self.prior_var
        diff = mu - self.prior_mu
        term = var_ratio + diff * diff / self.prior_var + (self.prior_var.log() - logvar)
        return 0.5 * (term.sum(1) - self.n_topics).mean()


class ClusterHead(nn.Module):
    """External cell embedding ``(n, d)`` -> cluster probabilities ``(n, K)`` (``g`` of Eq. 8)."""

    def __init__(self, input_dim: int, n_topics: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(input_dim, input_dim)
        self.bn = nn.BatchNorm1d(input_dim)
        self.fc2 = nn.Linear(input_dim, n_topics)

    def forward(self, v: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return torch.softmax(self.fc2(torch.tanh(self.bn(self.fc1(v)))), dim=1)
