"""The scE2TM network: losses of one training step (paper Eq. 13, 15, 19, 20).

``L = L_RE + L_CVE + lambda * L_ECR`` with, as in the authors' released code:

* ``L_RE``: reconstruction ``-sum x log softmax(BN(theta beta))`` plus the KL to the
  logistic-normal prior, averaged over the batch (:mod:`.decoder`, :mod:`.encoder`);
* ``L_CVE``: cluster contrast (twice) + consistency - 5 * entropy (:mod:`.distill`);
* ``lambda * L_ECR``: the Sinkhorn-plan-weighted topic-gene distances (:mod:`.ecr`).

Two savings that change no value:

* The reference runs the expression encoder three times per step (anchor, neighbour, anchor
  again). The second anchor pass has the same ``mu`` and ``logvar`` as the first and differs only
  in its reparameterisation noise, so it is replaced by fresh noise on the first pass's ``mu`` and
  ``logvar`` (the same distribution and the same gradient function), with the BatchNorm running
  statistics updated a third time exactly as the reference's second pass updates them.
* The first encoder layer (``V x 200``, most of the arithmetic) is applied once to each distinct
  cell among the anchors and their sampled neighbours; the anchor and neighbour passes then gather
  its rows (BatchNorm statistics are still those of each pass's own batch). A neighbour is often in
  the same batch (and is the cell itself with probability ``1/|N(i)|``); on datasets of at most one
  batch, every neighbour is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from .decoder import TopicGeneDecoder, reconstruction_loss
from .distill import cluster_contrastive_loss, consistency_loss, mean_entropy
from .ecr import ecr_loss
from .encoder import ClusterHead, Encoder, LogisticNormalPrior, reparameterize

__all__ = ["SCE2TMConfig", "SCE2TMNet", "LOSS_TERMS"]

#: Loss terms reported per step and per epoch, in this order (``loss`` is their signed sum).
LOSS_TERMS = ("loss", "recon", "kl", "ecr", "contrast", "consistency", "entropy")


@dataclass(frozen=True)
class SCE2TMConfig:
    """Hyperparameters of scE2TM; defaults are the authors' released configuration.

    Parameters
    ----------
    n_topics
        Number of topics ``K`` (paper: 100).
    hidden
        Encoder hidden width (paper: 200).
    embedding_dim
        Width of the gene and topic embeddings (reference: 200).
    dropout
        Encoder dropout (reference: 0).
    beta_temperature
        ``tau`` of the topic-gene softmax (reference: 0.2).
    ecr_weight
        ``lambda`` of the ECR term (reference configuration and API default: 100; the paper says
        "20 or 100").
    sinkhorn_alpha, sinkhorn_max_iter, sinkhorn_tol, sinkhorn_check_every
        Sinkhorn kernel ``exp(-alpha C)`` and stopping rule (reference: 20, 1000, 5e-3, 50).
    contrast_temperature
        Temperature of the cluster-level contrast (reference: 0.5).
    entropy_weight
        Weight ``alpha`` of the entropy term (paper and reference: 5).
    prior_alpha
        Concentration of the symmetric Dirichlet approximated by the prior (reference: 1).
    n_neighbors
        Mutual-kNN neighbourhood size, the cell included (paper: 15).
    epochs
        Training epochs (paper: 500).
    batch_size
        Cells per step; ``None``: 512, or 2048 above 10,000 cells (paper).
    learning_rate
        RMSprop learning rate (reference: 1e-3).
    lr_step, lr_gamma
        StepLR schedule, stepped once per epoch (reference: 125, 0.5).
    seed
        Seed of every random step (initialisation, shuffling, neighbour draws, noise, PCA).
    """

    n_topics: int = 100
    hidden: int = 200
    embedding_dim: int = 200
    dropout: float = 0.0
    beta_temperature: float = 0.2
    ecr_weight: float = 100.0
    sinkhorn_alpha: float = 20.0
    sinkhorn_max_iter: int = 1000
    sinkhorn_tol: float = 5e-3
    sinkhorn_check_every: int = 50
    contrast_temperature: float = 0.5
    entropy_weight: float = 5.0
    prior_alpha: float = 1.0
    n_neighbors: int = 15
    epochs: int = 500
    batch_size: int | None = None
    learning_rate: float = 1e-3
    lr_step: int = 125
    lr_gamma: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        positive_int = ("n_topics", "hidden", "embedding_dim", "sinkhorn_max_iter", "sinkhorn_check_every",
                        "n_neighbors", "epochs", "lr_step")
        for name in positive_int:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.n_topics < 2:
            raise ValueError(f"n_topics must be at least 2, got {self.n_topics}")
        if self.n_neighbors < 2:
            raise ValueError(f"n_neighbors must be at least 2 (the cell and one other), got {self.n_neighbors}")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 2):
            raise ValueError(f"batch_size must be None or an integer >= 2, got {self.batch_size!r}")
        for name in ("beta_temperature", "sinkhorn_alpha", "sinkhorn_tol", "contrast_temperature",
                     "learning_rate", "lr_gamma", "prior_alpha"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.ecr_weight < 0 or self.entropy_weight < 0:
            raise ValueError("ecr_weight and entropy_weight must be non-negative")

    def resolved_batch_size(self, n_cells: int) -> int:
        """The batch size used for ``n_cells`` cells (paper: 2048 above 10,000 cells, else 512)."""
        if self.batch_size is not None:
            return self.batch_size
        return 2048 if n_cells > 10_000 else 512

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SCE2TMConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown scE2TM hyperparameter(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)


class SCE2TMNet(nn.Module):
    """All trainable parts: encoder, prior, cluster head, decoder.

    Parameters
    ----------
    n_genes
        ``V``.
    external_dim
        Width ``d`` of the external cell embedding (scGPT: 512).
    config
        Hyperparameters.
    """

    def __init__(self, n_genes: int, external_dim: int, config: SCE2TMConfig) -> None:
        super().__init__()
        self.config = config
        k = config.n_topics
        self.encoder = Encoder(n_genes, k, config.hidden, config.dropout)
        self.prior = LogisticNormalPrior(k, config.prior_alpha)
        self.cluster_head = ClusterHead(external_dim, k)
        self.decoder = TopicGeneDecoder(n_genes, k, config.embedding_dim, config.beta_temperature)

    def losses(self, x: torch.Tensor, v: torch.Tensor, x_nbr: torch.Tensor, v_nbr: torch.Tensor) -> tuple[dict[str, torch.Tensor], int]:
        """Loss terms of one step from separate anchor and neighbour batches.

        Parameters
        ----------
        x, x_nbr
            ``(B, V)`` expression of the anchor cells and of one expression-view neighbour each.
        v, v_nbr
            ``(B, d)`` external embedding of the anchors and of one external-view neighbour each.

        Returns
        -------
        terms
            Scalars keyed by :data:`LOSS_TERMS`; ``loss`` is the one to minimise.
        n_iter
            Sinkhorn iterations run.
        """
        n = x.shape[0]
        index = torch.arange(n, 2 * n, device=x.device)
        return self.packed_losses(torch.cat([x, x_nbr]), n, index, v, v_nbr)

    def packed_losses(self, cells: torch.Tensor, n_anchor: int, neighbour_rows: torch.Tensor,
                      v: torch.Tensor, v_nbr: torch.Tensor) -> tuple[dict[str, torch.Tensor], int]:
        """Loss terms of one step, each distinct cell's expression given once.

        Parameters
        ----------
        cells
            ``(U, V)`` expression: the ``n_anchor`` anchor cells first, in batch order, then the
            other cells drawn as neighbours.
        n_anchor
            Number of anchors ``B``.
        neighbour_rows
            ``(B,)`` row of ``cells`` holding each anchor's expression-view neighbour.
        v, v_nbr
            ``(B, d)`` external embedding of the anchors and of their external-view neighbours.

        Returns
        -------
        terms, n_iter
            As :meth:`losses`.
        """
        cfg = self.config
        h_all = self.encoder.fc1(cells)
        x = cells[:n_anchor]
        mu, logvar, pre = self.encoder(x, return_pre=True, h1=h_all[:n_anchor])
        z = reparameterize(mu, logvar, self.training)
        theta = torch.softmax(z, dim=1)
        kl = self.prior.kl(mu, logvar)
        cost = self.decoder.cost()
        beta = self.decoder.beta(cost)
        recon = reconstruction_loss(x, self.decoder(theta, beta))
        ecr, sinkhorn = ecr_loss(cost, cfg.ecr_weight, alpha=cfg.sinkhorn_alpha, max_iter=cfg.sinkhorn_max_iter,
                                 tol=cfg.sinkhorn_tol, check_every=cfg.sinkhorn_check_every)

        phi = self.cluster_head(v)
        phi_nbr = self.cluster_head(v_nbr)
        mu_n, logvar_n = self.encoder(None, h1=h_all[neighbour_rows])
        theta_nbr = torch.softmax(reparameterize(mu_n, logvar_n, self.training), dim=1)
        # the reference's second anchor pass: fresh noise, same mu/logvar, one more BN update
        theta_anchor = torch.softmax(reparameterize(mu, logvar, self.training), dim=1)
        self.encoder.repeat_running_stats(pre)

        t = cfg.contrast_temperature
        contrast = cluster_contrastive_loss(phi, theta_nbr, t) + cluster_contrastive_loss(theta_anchor, phi_nbr, t)
        consistency = consistency_loss(theta_anchor, phi)
        entropy = mean_entropy(theta_anchor) + mean_entropy(phi)
        loss = recon + kl + ecr + contrast + consistency - cfg.entropy_weight * entropy
        terms = {"loss": loss, "recon": recon, "kl": kl, "ecr": ecr, "contrast": contrast,
                 "consistency": consistency, "entropy": entropy}
        return terms, sinkhorn.n_iter

    @torch.no_grad()
    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder mean ``mu`` ``(n, K)`` in the module's current mode (eval: running statistics)."""
        return self.encoder(x)[0]

    @torch.no_grad()
    def topic_gene(self) -> torch.Tensor:
        """``beta`` ``(K, V)``."""
        return self.decoder.beta()
