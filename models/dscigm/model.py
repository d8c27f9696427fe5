"""d-scIGM's network: a deep Weibull topic model with a sawtooth embedded decoder (PyTorch).

Notation: ``V`` genes, ``L`` layers with ``K_t`` topics each (layer 0 is the closest to the
genes), ``E`` the embedding size, ``N`` cells in a minibatch.

Generative model (Poisson gamma belief network):
``theta_{L-1} ~ Gamma(1, 1)``, ``theta_t ~ Gamma(Phi_{t+1} theta_{t+1}, 1)`` and
``x ~ Poisson(Phi_0 theta_0)``.

Sawtooth decoder: ``Phi_0 = softmax_columns(rho alpha_0^T)`` with gene embeddings ``rho``
``(V, E)`` and topic embeddings ``alpha_0`` ``(K_0, E)``; ``Phi_t = softmax_columns(alpha_{t-1}
alpha_t^T)`` ``(K_{t-1}, K_t)``: the topic embeddings of layer ``t - 1`` are the "word"
embeddings of layer ``t`` (as the authors, layer ``t``'s decoder does not move ``alpha_{t-1}``:
it is detached there). Every column of ``Phi_t`` is a distribution over the units below.

Inference network: a deterministic upward pass ``h_t = tanh(W_t h_{t-1})`` (``h_{-1}`` the
cell's expression), then downward Weibull posteriors ``q(theta_t) = Weibull(k_t, lambda_t)`` whose
parameters come from ``[h_t, Phi_{t+1} theta_{t+1}]`` (the top layer from ``h_{L-1}`` alone).
``k_t`` is parameterised as ``1 / shape`` (clamped to ``[1e-30, shape_max]``) and
``lambda_t = softplus(.) / Gamma(1 + k_t)``, so ``softplus(.)`` is the Weibull mean. Samples use
the reparameterisation ``lambda (-log(1 - u))^k``, ``u ~ U(0, 1)``, averaged over ``n_samples``
(the authors: 50), in training and for the outputs alike.

Loss per cell: Poisson negative log-likelihood of ``x`` + sum over layers of
``KL(Weibull(k_t, lambda_t) || Gamma(Phi_{t+1} theta_{t+1}, 1))``; the top layer's KL against
``Gamma(1, 1)`` is weighted by ``top_kl_weight`` (the authors' released script uses 0).

The encoder is dense (the variant "without prior knowledge" the paper evaluates), or its first
layer is masked by a gene -> pathway matrix (:mod:`.prior`: one unit per pathway, whose weights
from genes outside the pathway are fixed at zero), or every layer is masked by the authors'
hierarchy (input genes -> gene nodes -> five Reactome levels, their released setting).

Correspondence with the authors' released code (nbnbhwyy/d-scIGM, ``model/model.py``,
``model/utils.py``), checked by ``benchmarks/bench_dscigm.py`` (same weights, same uniform noise,
float64: the loss terms and every gradient agree at rtol 1e-4): ``encoder`` = ``h_encoder``,
``shape_heads`` / ``scale_heads`` = ``shape_encoder`` / ``scale_encoder``, ``gene_embedding`` =
``decoder[0].rho``, ``topic_embeddings[t]`` = ``decoder[t].alphas`` (= ``decoder[t + 1].rho``).
Remaining differences, none active in ordinary training:

* the Euler-Mascheroni constant of the KL is the authors' 4-digit ``0.5772`` (as float32) by
  default (``euler_gamma``; give ``0.5772156649015329`` for the exact value). Their constant term
  ``eulergamma + 1`` is also rounded to float32 (``1.5772000551``), which shifts each KL term by
  ``5.5e-8`` per topic and changes no gradient; here it is ``euler_gamma + 1`` in the input's
  precision;
* ``-log(1 - u)`` is computed as ``-log1p(-u)`` (the authors: ``log(max(1 - u, 1e-30))``): equal
  to float rounding except for ``u`` near 0 in float32, where ``log1p`` is the accurate one;
* ``lgamma`` of the gamma prior's shape is taken at ``max(shape, 1e-30)`` (the authors: no floor;
  they differ only once a shape underflows to 0, where theirs is infinite);
* the authors' modules also hold unused BatchNorm layers, which are left out;
* masked layers (:class:`MaskedLinear`) store only their connections, where the authors'
  ``CustomizedLinear`` multiplies a dense weight by the mask: the same function, gradients and
  Adam steps (masked entries get zero gradient there and never move), up to summation order.
  With the authors' hierarchy (``masked_layers`` = all, ``mask_init="authors"``) the layers are
  theirs; ``benchmarks/bench_dscigm.py --check --masked`` compares the masks built from their
  files and the step as above. A flat gene-set collection masks the first layer only, with
  ``mask_init="fan_in"`` by default (initial weights scaled to each unit's real fan-in).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AUTHORS_HIDDEN", "COMPACT_HIDDEN", "DSCIGMConfig", "DeepWeibullTopicModel", "MaskedLinear",
           "kl_weibull_gamma", "poisson_nll"]

EULER_GAMMA = 0.5772156649015329
#: The Euler-Mascheroni constant as the authors' code has it: ``torch.tensor(0.5772,
#: dtype=torch.float32)``, i.e. 0.5772 rounded to float32.
AUTHORS_EULER_GAMMA = 0.5771999955177307
TINY = 1e-30
MASK_INITS = ("fan_in", "authors")
#: The authors' dense-variant encoder widths (``model/main.py``: ``--hidden_size``, the sizes of
#: their five prior-knowledge levels and gene layer: 9275 genes, then 1387, 1066, 447, 147, 26
#: pathways).
AUTHORS_HIDDEN = (9275, 1387, 1066, 447, 147, 26)
#: topiceval 0.1's compact encoder widths (about 40x fewer weights on 5000 genes; faster).
COMPACT_HIDDEN = (512, 256, 128, 64, 32, 32)

#: A source of uniform noise: ``noise(shape, dtype, device) -> tensor`` of ``U(0, 1)`` values.
Noise = Callable[[tuple[int, ...], torch.dtype, torch.device], torch.Tensor]


@dataclass(frozen=True)
class DSCIGMConfig:
    """Architecture and loss settings (everything needed to rebuild the network).

    Attributes
    ----------
    n_genes
        Input and output genes ``V``.
    topic_sizes
        Topics per layer, layer 0 first (paper: six layers of 100).
    hidden_sizes
        Width of the upward deterministic layers, one per topic layer (default: the authors',
        :data:`AUTHORS_HIDDEN`). With a pathway mask the first width is the number of pathways.
    embed_size
        Dimension ``E`` of gene and topic embeddings (paper: 200).
    n_samples
        Weibull samples averaged per forward pass (authors: 50).
    shape_max
        Upper clamp of ``k = 1 / Weibull shape`` (authors: 10).
    top_kl_weight
        Weight of the top layer's KL against ``Gamma(1, 1)`` (authors' script: 0; the ELBO: 1).
    encoder_log1p
        Feed ``log1p(x)`` to the encoder (for raw counts); the likelihood always scores ``x``.
    encoder_center
        Subtract each gene's mean over the training cells from the encoder input (after
        ``log1p``); the likelihood always scores ``x``. Off in the authors' code; it keeps the
        dense encoder from collapsing (see :mod:`topiceval.adapters.dscigm`).
    euler_gamma
        The Euler-Mascheroni constant in the KL (authors: ``0.5772`` as float32, the default).
    pathways
        Names of the units of a masked first layer; empty for a dense encoder.
    masked_layers
        How many encoder layers, from the bottom, are masked: 0 (dense), 1 (a flat gene-set
        prior) or all of them (the authors' hierarchy). ``None``: 1 with ``pathways``, else 0.
    mask_init
        Initial weights of masked layers: ``"fan_in"`` (``U(+-1/sqrt(n))`` over each unit's real
        fan-in ``n``) or ``"authors"`` (their ``CustomizedLinear``: ``U(+-1/sqrt(n_in))`` over the
        layer's full input width, then masked).
    """

    n_genes: int
    topic_sizes: tuple[int, ...] = (100, 100, 100, 100, 100, 100)
    hidden_sizes: tuple[int, ...] = AUTHORS_HIDDEN
    embed_size: int = 200
    n_samples: int = 50
    shape_max: float = 10.0
    top_kl_weight: float = 0.0
    encoder_log1p: bool = False
    encoder_center: bool = False
    euler_gamma: float = AUTHORS_EULER_GAMMA
    pathways: tuple[str, ...] = field(default=())
    masked_layers: int | None = None
    mask_init: str = "fan_in"

    def __post_init__(self) -> None:
        masked = (1 if self.pathways else 0) if self.masked_layers is None else int(self.masked_layers)
        object.__setattr__(self, "masked_layers", masked)
        if not 0 <= masked <= len(self.hidden_sizes) or (masked > 0) != bool(self.pathways):
            raise ValueError("masked_layers must be in 0..n_layers, and positive exactly when pathways are named")
        if self.mask_init not in MASK_INITS:
            raise ValueError(f"mask_init must be one of {', '.join(MASK_INITS)}, got {self.mask_init!r}")
        object.__setattr__(self, "topic_sizes", tuple(int(k) for k in self.topic_sizes))
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        object.__setattr__(self, "pathways", tuple(str(p) for p in self.pathways))
        if len(self.topic_sizes) < 1:
            raise ValueError("at least one topic layer is needed")
        if len(self.hidden_sizes) != len(self.topic_sizes):
            raise ValueError(
                f"{len(self.hidden_sizes)} hidden sizes for {len(self.topic_sizes)} topic layers: "
                "give one per layer"
            )
        if min(self.topic_sizes) < 1 or min(self.hidden_sizes) < 1 or self.n_genes < 1:
            raise ValueError("sizes must be positive")
        if self.pathways and self.hidden_sizes[0] != len(self.pathways):
            raise ValueError("with a pathway mask the first hidden size is the number of pathways")

    @property
    def n_layers(self) -> int:
        """Number of topic layers ``L``."""
        return len(self.topic_sizes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable settings."""
        out = asdict(self)
        out["topic_sizes"] = list(self.topic_sizes)
        out["hidden_sizes"] = list(self.hidden_sizes)
        out["pathways"] = list(self.pathways)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DSCIGMConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**data, "topic_sizes": tuple(data["topic_sizes"]),
                      "hidden_sizes": tuple(data["hidden_sizes"]),
                      "pathways": tuple(data.get("pathways", ()))})


class MaskedLinear(nn.Module):
    """A linear layer with fixed connections: only the weights a 0/1 mask ``(out, in)`` keeps.

    The layer stores one trained value per kept connection (``values``, with the buffers
    ``rows`` / ``cols``), so a gene -> 9275-node layer with a few thousand connections costs that
    many weights rather than the dense ``out x in`` matrix; :attr:`weight` is the equivalent dense
    matrix, zero off the mask. This is the same function, gradients and Adam updates as the
    authors' ``CustomizedLinear`` (a dense weight multiplied by the mask, whose masked entries get
    zero gradient and so never move), up to float summation order.

    ``init="fan_in"`` (default) scales the initial weights to ``U(+-1/sqrt(n))`` over each unit's
    real fan-in ``n``; ``init="authors"`` keeps ``U(+-1/sqrt(n_in))`` over the full input width, as
    their ``CustomizedLinear``. The bias is ``U(+-1/sqrt(n_in))`` either way. The random draws are
    those of a dense ``nn.Linear(n_in, n_out)`` (then masked), whatever the mask.
    """

    def __init__(self, mask: torch.Tensor, bias: bool = True, init: str = "fan_in") -> None:
        super().__init__()
        n_out, n_in = mask.shape
        self.in_features, self.out_features = int(n_in), int(n_out)
        dense = nn.Linear(n_in, n_out, bias=bias)  # weight and bias U(+-1/sqrt(n_in))
        keep = mask != 0
        rows, cols = keep.nonzero(as_tuple=True)  # row-major: sorted by output unit
        weight = dense.weight.detach()
        if init == "fan_in":
            fan_in = keep.sum(dim=1, keepdim=True).clamp(min=1).to(weight.dtype)
            weight = weight * (math.sqrt(n_in) / fan_in.sqrt())
        elif init != "authors":
            raise ValueError(f"unknown mask init {init!r}")
        self.values = nn.Parameter(weight[rows, cols].clone())
        self.bias = nn.Parameter(dense.bias.detach().clone()) if bias else None
        self.register_buffer("rows", rows.to(torch.long))
        self.register_buffer("cols", cols.to(torch.long))

    @property
    def weight(self) -> torch.Tensor:
        """The dense ``(out, in)`` weight, zero off the mask (a new tensor, differentiable)."""
        dense = self.values.new_zeros(self.out_features, self.in_features)
        return dense.index_put((self.rows, self.cols), self.values)

    @property
    def mask(self) -> torch.Tensor:
        """The ``(out, in)`` 0/1 mask."""
        dense = self.values.new_zeros(self.out_features, self.in_features)
        return dense.index_put((self.rows, self.cols), torch.ones_like(self.values))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        contrib = x.index_select(1, self.cols) * self.values  # (N, nnz)
        out = x.new_zeros(x.shape[0], self.out_features).index_add(1, self.rows, contrib)
        return out if self.bias is None else out + self.bias

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # models saved with a dense masked weight (topiceval 0.1): keep its kept entries
        key = prefix + "weight"
        if key in state_dict and prefix + "values" not in state_dict:
            dense = state_dict.pop(key)
            state_dict[prefix + "values"] = dense[self.rows, self.cols]
            state_dict.pop(prefix + "mask", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, connections={self.values.numel()}"


def _log(x: torch.Tensor) -> torch.Tensor:
    return torch.log(x.clamp(min=TINY))


def poisson_nll(x: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """``-sum log Poisson(x | rate)`` divided by the number of cells (rows), as the authors.

    ``x`` may be non-integer (log-normalised values); ``lgamma(x + 1)`` extends the factorial.
    """
    return -(x * _log(rate) - rate - torch.lgamma(x + 1)).sum() / x.shape[0]


def kl_weibull_gamma(gamma_shape: torch.Tensor, gamma_rate: torch.Tensor, k: torch.Tensor,
                     lam: torch.Tensor, euler_gamma: float = EULER_GAMMA) -> torch.Tensor:
    """``KL(Weibull(1/k, lam) || Gamma(gamma_shape, gamma_rate))`` summed, divided by cells.

    With ``a, b`` the gamma shape and rate and ``k = 1 / Weibull shape`` (Zhang et al. 2018,
    WHAI):
    ``KL = gamma_E a k - a log lam - log k + b lam Gamma(1 + k) - gamma_E - 1 - a log b + lgamma(a)``.
    All tensors broadcast to ``(N, K)``; ``euler_gamma`` is exact unless given (the model passes
    the authors' ``0.5772``, see :class:`DSCIGMConfig`).
    """
    a = gamma_shape
    g = euler_gamma
    kl = (g * a * k - a * _log(lam) - _log(k) + gamma_rate * lam * torch.exp(torch.lgamma(1 + k))
          - g - 1 - a * _log(gamma_rate) + torch.lgamma(a.clamp(min=TINY)))
    return kl.sum() / k.shape[0]


class DeepWeibullTopicModel(nn.Module):
    """The d-scIGM network (see the module docstring).

    Parameters
    ----------
    config
        Sizes and loss settings.
    mask
        ``(n_out, n_in)`` 0/1 tensor of a masked first encoder layer, a list of such tensors for
        the ``config.masked_layers`` bottom layers, or ``None`` (dense).
    """

    def __init__(self, config: DSCIGMConfig, mask: torch.Tensor | list[torch.Tensor] | None = None) -> None:
        super().__init__()
        self.config = config
        sizes, hidden = config.topic_sizes, config.hidden_sizes
        masks = [] if mask is None else [mask] if isinstance(mask, torch.Tensor) else list(mask)
        if len(masks) != config.masked_layers:
            raise ValueError(f"{len(masks)} masks for a config with {config.masked_layers} masked layers")
        widths = (config.n_genes, *hidden)
        layers: list[nn.Module] = []
        for t in range(len(hidden)):
            if t < len(masks):
                if tuple(masks[t].shape) != (widths[t + 1], widths[t]):
                    raise ValueError(f"mask {t} has shape {tuple(masks[t].shape)}, expected "
                                     f"({widths[t + 1]}, {widths[t]})")
                layers.append(MaskedLinear(masks[t], init=config.mask_init))
            else:
                layers.append(nn.Linear(widths[t], widths[t + 1]))
        self.encoder = nn.ModuleList(layers)
        top = config.n_layers - 1
        self.shape_heads = nn.ModuleList(
            [nn.Linear(hidden[t] + (sizes[t] if t < top else 0), sizes[t]) for t in range(config.n_layers)])
        self.scale_heads = nn.ModuleList(
            [nn.Linear(hidden[t] + (sizes[t] if t < top else 0), sizes[t]) for t in range(config.n_layers)])
        self.gene_embedding = nn.Parameter(torch.randn(config.n_genes, config.embed_size) * 0.05)
        if config.encoder_center:  # set by DSCIGM.fit: the training cells' mean encoder input
            self.register_buffer("input_offset", torch.zeros(config.n_genes))
        self.topic_embeddings = nn.ParameterList(
            [nn.Parameter(torch.randn(k, config.embed_size) * 0.05) for k in sizes])

    # ------------------------------------------------------------------ decoder
    def phi(self, t: int) -> torch.Tensor:
        """``Phi_t``: ``(V, K_0)`` for ``t = 0``, ``(K_{t-1}, K_t)`` above; columns on the simplex."""
        below = self.gene_embedding if t == 0 else self.topic_embeddings[t - 1].detach()
        return torch.softmax(below @ self.topic_embeddings[t].T, dim=0)

    def topic_gene(self, layer: int = 0) -> torch.Tensor:
        """Gene distribution of every topic of ``layer``: ``(Phi_0 ... Phi_layer)^T``, ``(K_layer, V)``."""
        with torch.no_grad():
            product = self.phi(0)
            for t in range(1, layer + 1):
                product = product @ self.phi(t)
            return product.T

    # ------------------------------------------------------------------ inference
    def _weibull(self, t: int, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        k = F.softplus(self.shape_heads[t](features)).clamp(min=TINY, max=self.config.shape_max)
        mean = F.softplus(self.scale_heads[t](features)).clamp(min=TINY)
        lam = mean / torch.exp(torch.lgamma(1 + k))
        return k, lam, mean

    def _sample(self, k: torch.Tensor, lam: torch.Tensor, generator: torch.Generator | None,
                noise: Noise | None) -> torch.Tensor:
        shape = (self.config.n_samples, *k.shape)
        if noise is None:
            u = torch.rand(shape, generator=generator, device=k.device, dtype=k.dtype)
        else:
            u = noise(shape, k.dtype, k.device)
            if tuple(u.shape) != shape:
                raise ValueError(f"the noise source gave shape {tuple(u.shape)}, expected {shape}")
        # torch.rand lies in [0, 1): -log1p(-u) is finite; pow's gradient at base 0 is 0
        return (lam * torch.pow(-torch.log1p(-u), k)).mean(dim=0)

    def forward(self, x_encoder: torch.Tensor, x_target: torch.Tensor | None = None, *,
                sample: bool = True, generator: torch.Generator | None = None,
                noise: Noise | None = None) -> dict[str, Any]:
        """Encode a minibatch and, given ``x_target``, compute the loss.

        Parameters
        ----------
        x_encoder
            ``(N, V)`` encoder input.
        x_target
            ``(N, V)`` values the Poisson likelihood scores, or ``None`` (no loss).
        sample
            Draw Weibull samples (training); ``False`` propagates posterior means (deterministic).
        generator
            Torch generator of the Weibull noise.
        noise
            Instead of ``generator``, a callable giving the ``U(0, 1)`` noise of each layer,
            called top layer first with shape ``(n_samples, N, K_t)`` (for equivalence checks).

        Returns
        -------
        dict
            ``theta`` (list of ``(N, K_t)``), and with ``x_target``: ``loss``, ``nll``, ``kl``
            (list per layer, unweighted; ``loss`` weights the top one by ``top_kl_weight``).
        """
        hidden = []
        h = x_encoder
        for layer in self.encoder:
            h = torch.tanh(layer(h))
            hidden.append(h)
        n_layers = self.config.n_layers
        theta: list[torch.Tensor] = [None] * n_layers  # type: ignore[list-item]
        params: list[tuple[torch.Tensor, torch.Tensor]] = [None] * n_layers  # type: ignore[list-item]
        prior_shape: list[torch.Tensor | None] = [None] * n_layers
        for t in range(n_layers - 1, -1, -1):
            if t == n_layers - 1:
                features = hidden[t]
            else:
                prior_shape[t] = theta[t + 1] @ self.phi(t + 1).T  # (N, K_t)
                features = torch.cat([hidden[t], prior_shape[t]], dim=1)
            k, lam, mean = self._weibull(t, features)
            params[t] = (k, lam)
            theta[t] = self._sample(k, lam, generator, noise) if sample else mean
        out: dict[str, Any] = {"theta": theta}
        if x_target is None:
            return out
        rate = theta[0] @ self.phi(0).T  # (N, V)
        nll = poisson_nll(x_target, rate)
        kls = []
        one = torch.ones((), dtype=rate.dtype, device=rate.device)
        g = self.config.euler_gamma
        for t in range(n_layers):
            k, lam = params[t]
            shape = prior_shape[t] if t < n_layers - 1 else one
            kls.append(kl_weibull_gamma(shape, one, k, lam, euler_gamma=g))
        loss = nll + sum(kls[:-1]) + self.config.top_kl_weight * kls[-1]
        out.update(loss=loss, nll=nll, kl=kls)
        return out

    @torch.no_grad()
    def transform(self, x_encoder: torch.Tensor, *, sample: bool = False,
                  generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """``theta`` of every layer for ``x_encoder`` ``(N, V)``.

        ``sample=False``: posterior means propagated down the layers (deterministic);
        ``sample=True``: as the authors' outputs, each layer an average of ``n_samples`` Weibull
        draws given the sampled layer above.
        """
        return self.forward(x_encoder, None, sample=sample, generator=generator)["theta"]

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """``(encoder, decoder)`` parameters, as the authors' two optimisers split them.

        Encoder: the upward layers and the shape / scale heads; decoder: the gene and topic
        embeddings.
        """
        encoder = [*self.encoder.parameters(), *self.shape_heads.parameters(), *self.scale_heads.parameters()]
        decoder = [self.gene_embedding, *self.topic_embeddings]
        return encoder, decoder


def as_float_tensor(matrix: Any, rows: np.ndarray | slice | None = None) -> torch.Tensor:
    """Dense float32 tensor of (rows of) a CSR or dense matrix."""
    import scipy.sparse as sp

    block = matrix if rows is None else matrix[rows]
    if sp.issparse(block):
        block = block.toarray()
    return torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))
