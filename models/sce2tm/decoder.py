"""The sparse linear decoder (paper Sec. 4.4.2): topic-gene matrix from embedding distances.

As in the authors' released code: gene embeddings ``g`` ``(V, E)`` and topic embeddings ``t``
``(K, E)`` are trainable, ``E = 200``, both initialised from ``N(0, 0.02^2)`` and L2-normalised per
row (the paper's "gene embeddings" are random, not pretrained). The topic-gene matrix is

``beta[k, m] = softmax_k(-||t_k - g_m||^2 / tau)``, ``tau = 0.2``,

a softmax over *topics* for each gene (paper Eq. 17 writes the same normalisation; each column of
``beta`` sums to 1, rows do not). The reconstruction is ``softmax_genes(BatchNorm(theta @ beta))``
and the reconstruction loss ``-sum_m x_m log p_m`` averaged over cells (Eq. 19). The BatchNorm
over the ``V`` genes is the reference's (the paper does not mention it). The log-probabilities are
computed with ``log_softmax`` (the reference takes ``log(softmax(.))``, which underflows to
``-inf`` for extreme logits; the values are otherwise the same).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .ecr import pairwise_sq_distances

__all__ = ["TopicGeneDecoder", "reconstruction_loss"]


class TopicGeneDecoder(nn.Module):
    """Gene and topic embeddings, the topic-gene matrix and the reconstruction.

    Parameters
    ----------
    n_genes, n_topics
        ``V`` and ``K``.
    embedding_dim
        Width ``E`` of the gene and topic embeddings (reference: 200).
    temperature
        ``tau`` of the topic-gene softmax (reference: 0.2).
    init_std
        Standard deviation of the initial embeddings before normalisation (reference: 0.02).
    """

    def __init__(self, n_genes: int, n_topics: int, embedding_dim: int = 200,
                 temperature: float = 0.2, init_std: float = 0.02) -> None:
        super().__init__()
        self.temperature = temperature
        genes = nn.init.trunc_normal_(torch.empty(n_genes, embedding_dim), std=init_std)
        topics = nn.init.trunc_normal_(torch.empty(n_topics, embedding_dim), std=init_std)
        self.gene_embeddings = nn.Parameter(F.normalize(genes))
        self.topic_embeddings = nn.Parameter(F.normalize(topics))
        self.bn = nn.BatchNorm1d(n_genes)

    def cost(self) -> torch.Tensor:
        """Squared distances ``||t_k - g_m||^2``, ``(K, V)``."""
        return pairwise_sq_distances(self.topic_embeddings, self.gene_embeddings)

    def beta(self, cost: torch.Tensor | None = None) -> torch.Tensor:
        """Topic-gene matrix ``(K, V)``, softmax over topics of ``-cost / tau``."""
        if cost is None:
            cost = self.cost()
        return torch.softmax(-cost / self.temperature, dim=0)

    def forward(self, theta: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of the reconstruction, ``(n, V)``, from proportions ``(n, K)``."""
        return torch.log_softmax(self.bn(theta @ beta), dim=1)


def reconstruction_loss(x: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor:
    """``mean_i -sum_m x_im log p_im`` (first term of Eq. 19), a scalar."""
    return -(x * log_probs).sum(1).mean()
